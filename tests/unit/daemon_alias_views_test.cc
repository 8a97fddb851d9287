// Gossiped NAT aliases as `endpoints` rows: a published port one row with its
// owner, a balancer's front one row with all its backends, sorted.
#include <gtest/gtest.h>

#include "node/daemon/daemon.h"

namespace flowmesh {
namespace {

Endpoint Ep(const char* text) { return *Endpoint::Parse(text); }

TEST(AliasViews, OneRowPerPublishedPortAndOnePerBalancerFront) {
  std::vector<mesh::AliasSummary> aliases = {
      {Ep("10.213.0.9:8000"), Ep("10.213.0.4:8000"), true, 0, 0, "", ""},
      {Ep("10.213.0.8:9090"), Ep("172.18.0.2:80"), false, 4656, 4650, "nginx", "/usr/sbin/nginx"},
      {Ep("10.213.0.9:8000"), Ep("10.213.0.3:8000"), true, 0, 0, "", ""},
      {Ep("10.213.0.9:8001"), Ep("10.213.0.3:8001"), true, 0, 0, "", ""},
  };
  std::vector<EndpointView> v = AliasViews(aliases, "lb-1");
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ((Endpoint{v[0].endpoint.addr, v[0].endpoint.port}), Ep("10.213.0.9:8000"));
  EXPECT_TRUE(v[0].balancer);
  EXPECT_EQ(v[0].targets, (std::vector<Endpoint>{Ep("10.213.0.3:8000"), Ep("10.213.0.4:8000")}));
  EXPECT_EQ(v[0].process.pid, 0u) << "a balancer's front has no process";
  EXPECT_EQ(v[0].node, "lb-1");
  EXPECT_FALSE(v[1].balancer);
  EXPECT_EQ(v[1].targets, std::vector<Endpoint>{Ep("172.18.0.2:80")});
  EXPECT_EQ(v[1].process.comm, "nginx");
  EXPECT_EQ(v[1].process.exe, "/usr/sbin/nginx");
  EXPECT_EQ(v[1].endpoint.proc.pid, 4656u);
  EXPECT_EQ(v[2].targets, std::vector<Endpoint>{Ep("10.213.0.3:8001")});
  EXPECT_TRUE(AliasViews({}, "lb-1").empty());
}

}  // namespace
}  // namespace flowmesh
