// RocksDB merge operators: flow stats add up per (bucket, flow key), and the
// per-bucket record counts in the meta column family add up too.
#pragma once

#include <rocksdb/merge_operator.h>

#include <atomic>
#include <cstdint>
#include <memory>

namespace flowmesh {

// Malformed operands are skipped (never fail the read, which would make the
// whole bucket unreadable) and counted in *corrupt.
std::shared_ptr<rocksdb::MergeOperator> MakeFlowStatsMerge(
    std::shared_ptr<std::atomic<uint64_t>> corrupt);
std::shared_ptr<rocksdb::MergeOperator> MakeCountMerge(
    std::shared_ptr<std::atomic<uint64_t>> corrupt);

}  // namespace flowmesh
