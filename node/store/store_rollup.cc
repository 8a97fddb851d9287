// Flow roll-ups: finished minute buckets summed into the 10-minute and hour
// buckets, and the plan that lets a window read those coarse buckets.
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <unordered_map>

#include "node/store/codec.h"
#include "node/store/store_impl.h"

namespace flowmesh {

std::vector<FlowSpan> PlanFlowSpans(int64_t first_bucket, int64_t end_bucket, int64_t coarse_end) {
  std::vector<FlowSpan> spans;
  const int64_t coarse_stop = std::min(end_bucket, coarse_end);
  for (int64_t t = first_bucket; t < end_bucket;) {
    // The coarsest level whose bucket starts here and ends inside the window
    // (and before what has not been rolled up yet).
    int level = kFlowLevels - 1;
    while (level > 0 && (t % kFlowLevelNs[level] != 0 || t > coarse_stop ||
                         coarse_stop - t < kFlowLevelNs[level]))
      --level;
    const int64_t size = kFlowLevelNs[level];
    // As many of them as fit before the next coarser boundary (or the end).
    int64_t stop = level == 0 ? end_bucket : coarse_stop;
    if (level + 1 < kFlowLevels) {
      const int64_t coarser = kFlowLevelNs[level + 1];
      const int64_t boundary_base = t - t % coarser;
      if (stop - boundary_base > coarser) stop = boundary_base + coarser;  // no overflow
    }
    const int64_t n = std::max<int64_t>(1, (stop - t) / size);
    if (!spans.empty() && spans.back().level == level && spans.back().end_ns == t)
      spans.back().end_ns += n * size;  // one seek for both
    else
      spans.push_back({level, t, t + n * size});
    t += n * size;
  }
  return spans;
}

Status Store::Impl::RollUp(int64_t target_bucket) {
  if (target_bucket <= rolled_up_to_) return Status::Ok();
  // Under write_mu_: no delta for these minutes can land between the read
  // and the write below (a later one sees the new watermark and goes to
  // every level itself).
  rocksdb::ReadOptions ro;
  const std::string upper = FlowBucketKey(0, target_bucket);
  const rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, flows));
  std::unordered_map<std::string, FlowStats> sums;  // coarse row key -> sum
  FlowRowKeyParts key;
  for (it->Seek(FlowBucketKey(0, rolled_up_to_)); it->Valid(); it->Next()) {
    auto stats = DecodeFlowStats({it->value().data(), it->value().size()});
    if (!ParseFlowRowKey({it->key().data(), it->key().size()}, &key) || !stats.ok()) {
      corrupt->fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    for (int level = 1; level < kFlowLevels; ++level)
      sums[FlowRowKey(level, FlowLevelBucketOf(level, key.bucket_ns), key.key)].Merge(*stats);
  }
  FM_RETURN_IF_ERROR(FromRocks(it->status(), "cannot roll up flows in " + options.dir));
  rocksdb::WriteBatch wb;
  for (const auto& [row, stats] : sums) wb.Merge(flows, row, EncodeFlowStats(stats));
  wb.Put(meta, std::string(kMetaRolledUpToKey), EncodeCount(static_cast<uint64_t>(target_bucket)));
  FM_RETURN_IF_ERROR(FromRocks(db->Write({}, &wb), "cannot roll up flows in " + options.dir));
  rolled_up_to_ = target_bucket;
  return Status::Ok();
}

}  // namespace flowmesh
