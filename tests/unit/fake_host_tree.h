// A fake host for workload tests: a /proc tree and a cgroup v2 tree in a
// temp directory (`<root>/proc`, `<root>/cg`), as ProcReader and
// WorkloadResolver read them.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "node/proc/cgroup.h"

namespace flowmesh::testing {

// Makes the cgroup at `path` ("/system.slice/x.service") under root/cg and
// returns its id as the resolver reads it: the directory's file handle (on a
// disk filesystem it holds a generation beside the inode).
inline uint64_t MakeFakeCgroup(const std::filesystem::path& root, const std::string& path) {
  std::filesystem::create_directories(root / "cg" / path.substr(1));
  Result<uint64_t> id = CgroupIdOfPath((root / "cg").string(), path);
  EXPECT_TRUE(id.ok()) << id.status().message();
  return id.ok() ? *id : 0;
}

// /proc/<pid>/{stat,cmdline,cgroup} of a process in cgroup `cgroup`.
inline void PutFakeProcess(const std::filesystem::path& root, uint32_t pid, uint64_t start,
                           const std::string& comm, const std::string& cgroup) {
  std::filesystem::path p = root / "proc" / std::to_string(pid);
  std::filesystem::create_directories(p);
  std::ofstream(p / "stat") << pid << " (" << comm << ") S 1 " << pid
                            << " 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 " << start << " 0 0\n";
  std::ofstream(p / "cmdline") << comm;
  std::ofstream(p / "cgroup") << "0::" << cgroup << "\n";
}

}  // namespace flowmesh::testing
