// Merge operators for the flows and meta column families.
#include "node/store/merge_operators.h"

#include <string>

#include "node/store/codec.h"

namespace flowmesh {
namespace {

std::string_view View(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

class FlowStatsMerge : public rocksdb::AssociativeMergeOperator {
 public:
  explicit FlowStatsMerge(std::shared_ptr<std::atomic<uint64_t>> corrupt)
      : corrupt_(std::move(corrupt)) {}
  const char* Name() const override { return "flowmesh.FlowStatsMerge"; }
  bool Merge(const rocksdb::Slice& key, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger*) const override {
    FlowStats sum;
    if (existing) Add(View(*existing), &sum);
    Add(View(value), &sum);
    *new_value = EncodeFlowStats(sum);
    return true;
  }

 private:
  void Add(std::string_view v, FlowStats* sum) const {
    auto s = DecodeFlowStats(v);
    if (s.ok())
      sum->Merge(*s);
    else
      corrupt_->fetch_add(1, std::memory_order_relaxed);
  }
  std::shared_ptr<std::atomic<uint64_t>> corrupt_;
};

class CountMerge : public rocksdb::AssociativeMergeOperator {
 public:
  explicit CountMerge(std::shared_ptr<std::atomic<uint64_t>> corrupt)
      : corrupt_(std::move(corrupt)) {}
  const char* Name() const override { return "flowmesh.CountMerge"; }
  bool Merge(const rocksdb::Slice& key, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger*) const override {
    uint64_t n = 0;
    if (existing) n += Get(View(*existing));
    n += Get(View(value));
    *new_value = EncodeCount(n);
    return true;
  }

 private:
  uint64_t Get(std::string_view v) const {
    auto n = DecodeCount(v);
    if (n.ok()) return *n;
    corrupt_->fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  std::shared_ptr<std::atomic<uint64_t>> corrupt_;
};

}  // namespace

std::shared_ptr<rocksdb::MergeOperator> MakeFlowStatsMerge(
    std::shared_ptr<std::atomic<uint64_t>> corrupt) {
  return std::make_shared<FlowStatsMerge>(std::move(corrupt));
}

std::shared_ptr<rocksdb::MergeOperator> MakeCountMerge(
    std::shared_ptr<std::atomic<uint64_t>> corrupt) {
  return std::make_shared<CountMerge>(std::move(corrupt));
}

}  // namespace flowmesh
