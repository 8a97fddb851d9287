// Capability masks read from /proc/<pid>/status, and how missing ones are named.
#include "node/common/capabilities.h"

#include <gtest/gtest.h>

namespace flowmesh {
namespace {

TEST(Capabilities, ParsesTheEffectiveMask) {
  // The systemd unit's set: CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE, CAP_NET_ADMIN,
  // CAP_DAC_READ_SEARCH.
  std::string status =
      "Name:\tmeshd\nCapInh:\t0000000000000000\nCapPrm:\t000000c000081004\n"
      "CapEff:\t000000c000081004\nCapBnd:\t000000c000081004\n";
  uint64_t caps = ParseEffectiveCaps(status);
  EXPECT_EQ(caps, 0x000000c000081004ULL);
  EXPECT_TRUE(MissingCaps(caps, {Cap::kBpf, Cap::kPerfmon, Cap::kSysPtrace, Cap::kNetAdmin,
                                 Cap::kDacReadSearch})
                  .empty());
  EXPECT_EQ(MissingCaps(caps, {Cap::kSysAdmin, Cap::kBpf}),
            (std::vector<std::string>{"CAP_SYS_ADMIN"}));
  EXPECT_EQ(MissingCaps(0x000000c000080004ULL, {Cap::kNetAdmin}),
            (std::vector<std::string>{"CAP_NET_ADMIN"}));
}

TEST(Capabilities, NoMaskMeansNothingToReport) {
  EXPECT_EQ(ParseEffectiveCaps("Name:\tx\n"), ~uint64_t{0});
  EXPECT_EQ(ParseEffectiveCaps("CapEff:\tzz\n"), ~uint64_t{0});
}

TEST(Capabilities, JoinsNamesForAMessage) {
  EXPECT_EQ(JoinCapNames({"CAP_BPF"}), "CAP_BPF");
  EXPECT_EQ(JoinCapNames({"CAP_BPF", "CAP_PERFMON"}), "CAP_BPF and CAP_PERFMON");
  EXPECT_EQ(JoinCapNames({"A", "B", "C"}), "A, B and C");
  EXPECT_EQ(CapName(Cap::kDacReadSearch), "CAP_DAC_READ_SEARCH");
}

}  // namespace
}  // namespace flowmesh
