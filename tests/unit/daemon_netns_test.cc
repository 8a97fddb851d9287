// --netns as a list: its spelling, its resolution to namespaces, and which
// addresses a node gossips and a wildcard listener serves with several.
#include <gtest/gtest.h>

#include "node/daemon/config.h"
#include "node/daemon/netns_addresses.h"
#include "node/probe/netns.h"

namespace flowmesh {
namespace {

std::optional<DaemonConfig> Parse(std::vector<std::string> args, int* code) {
  args.insert(args.begin(), "meshd");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseDaemonArgs(static_cast<int>(argv.size()), argv.data(), code);
}

IpAddr Ip(const char* text) { return *IpAddr::Parse(text); }

TEST(NetnsFlag, AllAloneOrAListOfSelfInodesAndPaths) {
  int code = 0;
  for (const char* good : {"all", "self", "4026531840", "self,/run/netns/web",
                           "self, /proc/1/ns/net ,4026532290", "1,2,3,4,5,6,7,8"}) {
    std::optional<DaemonConfig> c = Parse({"--netns", good}, &code);
    ASSERT_TRUE(c) << good;
    EXPECT_EQ(c->netns, good);
  }
  for (const char* bad : {"", "self,", "all,self", "self,all", "web", "0", "12x", "-1",
                          "run/netns/web", "1,2,3,4,5,6,7,8,9"}) {
    code = 0;
    EXPECT_FALSE(Parse({"--netns", bad}, &code)) << bad;
    EXPECT_EQ(code, 2) << bad;
  }
  EXPECT_TRUE(CheckNetnsList("all,self").message().find("stands alone") != std::string::npos);
  EXPECT_TRUE(CheckNetnsList("1,2,3,4,5,6,7,8,9").message().find("at most 8") !=
              std::string::npos);
}

TEST(NetnsFlag, ResolvesPathsToInodesAndRecordsEachNamespaceOnce) {
  Result<uint32_t> self = SelfNetnsInode();
  ASSERT_TRUE(self.ok()) << self.status().message();
  Result<std::vector<NetnsRef>> all = ResolveNetns("all", "/proc");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());

  // self and the path of our own namespace are one namespace.
  Result<std::vector<NetnsRef>> refs =
      ResolveNetns("self,/proc/self/ns/net,4026599999", "/proc");
  ASSERT_TRUE(refs.ok()) << refs.status().message();
  ASSERT_EQ(refs->size(), 2u);
  EXPECT_EQ((*refs)[0].inode, *self);
  EXPECT_EQ((*refs)[0].path, "");
  EXPECT_EQ((*refs)[1].inode, 4026599999u);  // an inode is checked when it is dumped

  Result<std::vector<NetnsRef>> missing = ResolveNetns("self,/run/netns/fm-no-such", "/proc");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message().rfind("--netns: /run/netns/fm-no-such: no such", 0), 0u)
      << missing.status().message();
  EXPECT_NE(missing.status().message().find("ip netns list"), std::string::npos);

  Result<std::vector<NetnsRef>> file = ResolveNetns("/etc/hostname", "/proc");
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.status().message().find("not a namespace file"), std::string::npos)
      << file.status().message();
  Result<std::vector<NetnsRef>> other = ResolveNetns("/proc/self/ns/uts", "/proc");
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("not a network namespace"), std::string::npos)
      << other.status().message();
}

TEST(NetnsFilter, MatchesOnlyListedNamespaces) {
  ProbeFilter f;
  ConnKey k;
  k.netns = 7;
  EXPECT_TRUE(f.Matches(k));  // none listed: all
  f.netns = {NetnsRef{5, 0, ""}, NetnsRef{7, 0, "/run/netns/c"}};
  EXPECT_TRUE(f.Matches(k));
  k.netns = 6;
  EXPECT_FALSE(f.Matches(k));
  EXPECT_TRUE(f.RecordsNetns(5));
  EXPECT_FALSE(f.RecordsNetns(6));
}

TEST(NetnsAddresses, AWildcardListenerServesItsOwnNamespaceOnly) {
  AddressesByNetns by_netns = {
      {1, {Ip("10.213.0.8"), Ip("172.18.0.1"), Ip("fe80::1")}},
      {2, {Ip("172.18.0.2"), Ip("fd00::2")}},
  };
  std::vector<IpAddr> all = AllAddresses(by_netns);
  EXPECT_EQ(all, (std::vector<IpAddr>{Ip("10.213.0.8"), Ip("172.18.0.1"), Ip("172.18.0.2"),
                                      Ip("fd00::2")}));  // no link-local
  EXPECT_EQ(ServedAddresses(Ip("0.0.0.0"), 2, by_netns), std::vector<IpAddr>{Ip("172.18.0.2")});
  EXPECT_EQ(ServedAddresses(Ip("::"), 2, by_netns),
            (std::vector<IpAddr>{Ip("172.18.0.2"), Ip("fd00::2")}));
  EXPECT_EQ(ServedAddresses(Ip("0.0.0.0"), 1, by_netns),
            (std::vector<IpAddr>{Ip("10.213.0.8"), Ip("172.18.0.1")}));
  EXPECT_EQ(ServedAddresses(Ip("172.18.0.2"), 2, by_netns), std::vector<IpAddr>{Ip("172.18.0.2")});
  // A namespace whose addresses could not be read keeps its wildcard.
  EXPECT_EQ(ServedAddresses(Ip("0.0.0.0"), 3, by_netns), std::vector<IpAddr>{Ip("0.0.0.0")});
}

TEST(NetnsAddresses, OurOwnNamespaceIsReadWithoutEnteringIt) {
  Result<uint32_t> self = SelfNetnsInode();
  ASSERT_TRUE(self.ok());
  std::vector<Status> skipped;
  Result<AddressesByNetns> got =
      NamespaceAddresses({NetnsRef{*self, 0, ""}, NetnsRef{4026599999u, 0, ""}}, "/proc", &skipped);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->count(*self), 1u);
  for (const IpAddr& a : got->at(*self)) EXPECT_FALSE(a.is_loopback()) << a.ToString();
  // An inode no process lives in is skipped with its reason, not an error.
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].message().find("4026599999"), std::string::npos) << skipped[0].message();
}

}  // namespace
}  // namespace flowmesh
