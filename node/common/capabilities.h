// Which Linux capabilities this process holds, so meshd can say exactly which
// one is missing instead of "permission denied" (it runs unprivileged under
// its systemd unit with a handful of them; see packaging/systemd/meshd.service).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flowmesh {

// Capability numbers (linux/capability.h), named here so callers need not
// depend on the kernel header's macros.
enum class Cap : int {
  kDacReadSearch = 2,
  kNetAdmin = 12,
  kSysPtrace = 19,
  kSysAdmin = 21,
  kPerfmon = 38,
  kBpf = 39,
};

std::string CapName(Cap cap);  // "CAP_BPF"

// The effective set from a /proc/<pid>/status text ("CapEff:\t000001ffffffffff").
// All bits set when the line is missing (nothing to say then).
uint64_t ParseEffectiveCaps(const std::string& status_text);
// This process's effective set, from /proc/self/status.
uint64_t EffectiveCaps();

// Those of `wanted` not in `effective`, as names, in the order given.
std::vector<std::string> MissingCaps(uint64_t effective, const std::vector<Cap>& wanted);
// "CAP_BPF and CAP_PERFMON", "CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE".
std::string JoinCapNames(const std::vector<std::string>& names);

}  // namespace flowmesh
