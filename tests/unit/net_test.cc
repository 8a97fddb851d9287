// Address and port-list parsing.
#include <gtest/gtest.h>

#include "node/common/net.h"

namespace flowmesh {
namespace {

TEST(Endpoint, ParsesBothFamilies) {
  Result<Endpoint> a = Endpoint::Parse("10.213.0.2:80");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->ToString(), "10.213.0.2:80");
  Result<Endpoint> b = Endpoint::Parse("[::1]:6379");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->addr.ToString(), "::1");
  EXPECT_EQ(b->ToString(), "[::1]:6379");
  Result<Endpoint> c = Endpoint::Parse("[::ffff:10.0.0.1]:80");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->ToString(), "10.0.0.1:80");
  Result<Endpoint> d = Endpoint::Parse("10.0.0.9", /*allow_no_port=*/true);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->port, 0);
}

TEST(Endpoint, RejectsWithAReason) {
  EXPECT_NE(Endpoint::Parse("10.0.0.1").status().message().find("ip:port"), std::string::npos);
  EXPECT_NE(Endpoint::Parse("10.0.0.1:0").status().message().find("1 to 65535"), std::string::npos);
  EXPECT_NE(Endpoint::Parse("10.0.0.1:99999").status().message().find("1 to 65535"),
            std::string::npos);
  EXPECT_NE(Endpoint::Parse("web:80").status().message().find("not an IPv4 or IPv6"),
            std::string::npos);
  EXPECT_FALSE(Endpoint::Parse("[::1:80").ok());
}

TEST(PortList, ExpandsRangesAndLimitsCount) {
  Result<std::vector<uint16_t>> p = ParsePortList("80,443,8000-8002");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, (std::vector<uint16_t>{80, 443, 8000, 8001, 8002}));
  EXPECT_FALSE(ParsePortList("80,http").ok());
  EXPECT_FALSE(ParsePortList("9-1").ok());
  EXPECT_FALSE(ParsePortList("1-100", 16).ok());
  EXPECT_FALSE(ParsePortList("").ok());
}

TEST(IpAddr, ClassifiesAddresses) {
  EXPECT_TRUE(IpAddr::Parse("0.0.0.0")->is_unspecified());
  EXPECT_TRUE(IpAddr::Parse("::")->is_unspecified());
  EXPECT_TRUE(IpAddr::Parse("127.0.0.5")->is_loopback());
  EXPECT_TRUE(IpAddr::Parse("::1")->is_loopback());
  EXPECT_FALSE(IpAddr::Parse("10.0.0.1")->is_loopback());
}

TEST(IpAddr, ListenerServesItsAddressWildcardsAndDualStack) {
  auto a = [](const char* text) { return *IpAddr::Parse(text); };
  EXPECT_TRUE(ListenerServes(a("10.0.0.1"), a("10.0.0.1")));
  EXPECT_FALSE(ListenerServes(a("10.0.0.1"), a("10.0.0.2")));
  EXPECT_TRUE(ListenerServes(a("0.0.0.0"), a("10.0.0.2")));
  EXPECT_FALSE(ListenerServes(a("0.0.0.0"), a("fd00::1"))) << "0.0.0.0 is IPv4 only";
  EXPECT_TRUE(ListenerServes(a("::"), a("fd00::1")));
  EXPECT_TRUE(ListenerServes(a("::"), a("10.0.0.2"))) << "dual stack";
  EXPECT_FALSE(ListenerServes(a("127.0.0.1"), a("10.0.0.2")));
  EXPECT_TRUE(ListenerServes(a("127.0.0.1"), IpAddr{})) << "no address asks about any";
}

}  // namespace
}  // namespace flowmesh
