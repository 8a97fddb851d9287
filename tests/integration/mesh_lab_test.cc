// The mesh on the lab (DESIGN.md "The lab"): five real meshd, each in its own
// network namespace, join through one seed and see each other; a kill -9'd
// node is marked dead by every other and comes back alive with a higher
// generation; an endpoint opened on one host reaches every other; a node
// with the wrong key never gets in.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <thread>

#include "tests/kernel/kernel_test_util.h"
#include "tests/kernel/meshd_util.h"
#include "tests/test_paths.h"

namespace flowmesh::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kLab = "fmlab";
constexpr int kHosts = 5;

std::string Host(int i) { return std::string(kLab) + "-" + std::to_string(i); }
std::string Addr(int i) { return "10.213.0." + std::to_string(i); }

std::string Field(const JsonLine& l, const std::string& k) {
  auto it = l.find(k);
  return it == l.end() ? "" : it->second;
}

// Polls `pred` until it holds or the deadline passes.
bool Eventually(const std::function<bool()>& pred, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(250ms);
  }
  return pred();
}

class MeshLabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FM_REQUIRE_ROOT();
    CommandResult up =
        RunCommand({"/bin/bash", LAB_SH, "up", kLab, std::to_string(kHosts + 1)}, 30s);
    ASSERT_EQ(up.exit_code, 0) << up.err;
    char tmpl[] = "/tmp/fm-lab-XXXXXX";
    dir_ = mkdtemp(tmpl);
    key_ = WriteKey("cluster.key");
    bad_key_ = WriteKey("other.key");
  }

  void TearDown() override {
    nodes_.clear();  // stops every meshd
    if (server_ > 0) {
      kill(server_, SIGKILL);
      waitpid(server_, nullptr, 0);
    }
    RunCommand({"/bin/bash", LAB_SH, "down", kLab}, 30s);
    if (!dir_.empty()) RunCommand({"/bin/rm", "-rf", dir_});
  }

  std::string WriteKey(const std::string& name) {
    std::string path = dir_ + "/" + name;
    CommandResult r = WriteClusterKey(path);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return path;
  }

  std::vector<std::string> Flags(int i, const std::string& key) {
    return {"--node-name",     "h" + std::to_string(i), "--netns", "self",   "--bind",
            Addr(i) + ":7946", "--cluster-key-file",    key,       "--join", Addr(1) + ":7946"};
  }

  void StartNode(int i, const std::string& key) {
    auto& n = nodes_[i];
    if (!n) {
      n = std::make_unique<MeshdProcess>();
      n->set_netns(Host(i));
    }
    std::string err;
    ASSERT_TRUE(n->Start(Flags(i, key), &err)) << err;
  }

  std::vector<JsonLine> Peers(int i) {
    CommandResult r = nodes_[i]->Meshctl({"peers", "--json"});
    if (r.exit_code != 0) return {};
    return ParseFlatJsonArray(r.out);
  }

  // The state node `viewer` has for member `name` ("" = not listed).
  std::string StateOf(int viewer, const std::string& name, std::string* generation = nullptr) {
    for (const JsonLine& p : Peers(viewer))
      if (Field(p, "name") == name) {
        if (generation) *generation = Field(p, "generation");
        return Field(p, "state");
      }
    return "";
  }

  std::string dir_, key_, bad_key_;
  std::map<int, std::unique_ptr<MeshdProcess>> nodes_;
  pid_t server_ = -1;
};

TEST_F(MeshLabTest, FiveNodesJoinDetectDeathRejoinAndShareEndpoints) {
  if (IsSkipped() || HasFatalFailure()) return;
  for (int i = 1; i <= kHosts; i++) StartNode(i, key_);

  // Everyone sees everyone alive.
  for (int i = 1; i <= kHosts; i++) {
    EXPECT_TRUE(Eventually(
        [&] {
          std::vector<JsonLine> peers = Peers(i);
          int alive = 0;
          for (const JsonLine& p : peers) alive += Field(p, "state") == "alive";
          return peers.size() == kHosts && alive == kHosts;
        },
        20s))
        << "h" << i << " sees: " << nodes_[i]->Meshctl({"peers"}).out << nodes_[i]->Log();
  }

  // A service opens on h2: every other node learns who owns 10.213.0.2:8000.
  server_ = fork();
  if (server_ == 0) {
    setpgid(0, 0);
    execlp("ip", "ip", "netns", "exec", Host(2).c_str(), "python3", "-m", "http.server", "8000",
           "--bind", Addr(2).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 1; i <= kHosts; i++) {
    EXPECT_TRUE(Eventually(
        [&] {
          for (const JsonLine& e :
               ParseFlatJsonArray(nodes_[i]->Meshctl({"endpoints", "--all", "--json"}).out))
            if (Field(e, "node") == "h2" && Field(e, "port") == "8000" &&
                Field(e, "addr") == Addr(2) && Field(e, "comm").rfind("python3", 0) == 0)
              return true;
          return false;
        },
        20s))
        << "h" << i << ": " << nodes_[i]->Meshctl({"endpoints", "--all"}).out;
  }

  // kill -9 h4: every other node declares it dead.
  nodes_[4]->Kill();
  for (int i : {1, 2, 3, 5})
    EXPECT_TRUE(Eventually([&] { return StateOf(i, "h4") == "dead"; }, 40s))
        << "h" << i << " has h4 " << StateOf(i, "h4");

  // Restarted, it is alive again everywhere, with a higher generation.
  StartNode(4, key_);
  for (int i = 1; i <= kHosts; i++) {
    std::string generation;
    EXPECT_TRUE(Eventually(
        [&] { return StateOf(i, "h4", &generation) == "alive" && generation == "2"; }, 30s))
        << "h" << i << " has h4 " << StateOf(i, "h4", &generation) << " generation " << generation;
  }

  // A node with another key never gets in and changes nobody's tables.
  StartNode(kHosts + 1, bad_key_);
  std::this_thread::sleep_for(5s);
  for (int i = 1; i <= kHosts; i++) {
    EXPECT_EQ(StateOf(i, "h6"), "") << "h" << i << " lists the node with the wrong key";
    EXPECT_EQ(Peers(i).size(), static_cast<size_t>(kHosts));
  }
  std::vector<JsonLine> outsider = Peers(kHosts + 1);
  for (const JsonLine& p : outsider)
    EXPECT_TRUE(Field(p, "name") == "h6") << "h6 learned about " << Field(p, "name");
  std::printf(
      "mesh lab: 5 joined, kill -9 detected, rejoined at generation 2, wrong key shut out\n");
}

// meshctl keys on one node rotates the key on every member while the mesh
// runs: install, use, remove; every member keeps answering, every key file
// is rewritten (a restarted member rejoins with it), and a node that only has
// the old key is shut out.
// Issue 13: right after a member joins, a look never calls its addresses
// `no-agent`. The address it joined from is its own at once; a second address
// is its own once its table arrives, `unsynced` (naming it) until then.
TEST_F(MeshLabTest, ALookRightAfterJoinNeverCallsAMembersAddressNoAgent) {
  if (IsSkipped() || HasFatalFailure()) return;
  ASSERT_EQ(
      RunCommand({"/usr/sbin/ip", "-n", Host(2), "addr", "add", "10.213.1.2/16", "dev", "eth0"})
          .exit_code,
      0);
  StartNode(1, key_);
  StartNode(2, key_);
  ASSERT_TRUE(
      Eventually([&] { return StateOf(1, "h2") == "alive" && StateOf(2, "h1") == "alive"; }, 10s));
  int looks = 0, unsynced = 0;
  bool second_known = false;
  for (auto end = std::chrono::steady_clock::now() + 3s; std::chrono::steady_clock::now() < end;) {
    for (const auto& [asker, target] :
         std::vector<std::pair<int, std::string>>{{1, Addr(2)}, {2, Addr(1)}, {1, "10.213.1.2"}}) {
      CommandResult r = nodes_[asker]->Meshctl({"look", target});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      looks++;
      EXPECT_EQ(r.out.find("[no-agent]"), std::string::npos) << target << ":\n" << r.out;
      if (target == "10.213.1.2") {
        unsynced += r.out.find("[unsynced]") != std::string::npos;
        second_known |= r.out.rfind("10.213.1.2 on h2", 0) == 0;
      } else {
        EXPECT_EQ(r.out.find("[unsynced]"), std::string::npos) << target << ":\n" << r.out;
      }
    }
  }
  std::printf("[ measured ] %d looks in the 3 s after join: %d unsynced, second address %s\n",
              looks, unsynced, second_known ? "known by then" : "not known yet");
  EXPECT_TRUE(Eventually(
      [&] {
        return nodes_[1]->Meshctl({"look", "10.213.1.2"}).out.rfind("10.213.1.2 on h2", 0) == 0;
      },
      10s));
}

TEST_F(MeshLabTest, KeysRotateAcrossTheRunningMesh) {
  if (IsSkipped() || HasFatalFailure()) return;
  // Each member its own key file, as on real hosts.
  std::map<int, std::string> files;
  for (int i = 1; i <= kHosts + 1; i++) {
    files[i] = dir_ + "/key-" + std::to_string(i);
    ASSERT_EQ(RunCommand({"/bin/cp", "-p", key_, files[i]}).exit_code, 0);
    if (i <= kHosts) StartNode(i, files[i]);
  }
  auto all_alive = [&](int viewer) {
    std::vector<JsonLine> peers = Peers(viewer);
    int alive = 0;
    for (const JsonLine& p : peers) alive += Field(p, "state") == "alive";
    return peers.size() == kHosts && alive == kHosts;
  };
  for (int i = 1; i <= kHosts; i++) ASSERT_TRUE(Eventually([&] { return all_alive(i); }, 20s));

  CommandResult k2 = RunCommand({"/bin/sh", "-c", "head -c32 /dev/urandom | base64"});
  std::string new_key = k2.out.substr(0, k2.out.find('\n'));
  std::string old_key;
  {
    CommandResult r = RunCommand({"/usr/bin/head", "-n1", key_});
    old_key = r.out.substr(0, r.out.find('\n'));
  }
  // Each step on a different member; each must reach all five.
  CommandResult install = nodes_[1]->Meshctl({"keys", "install", new_key});
  EXPECT_EQ(install.exit_code, 0) << install.out << install.err;
  EXPECT_NE(install.out.find("done on 5 of 5 members"), std::string::npos) << install.out;
  CommandResult list = nodes_[3]->Meshctl({"--json", "keys", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  for (int i = 1; i <= kHosts; i++)
    EXPECT_NE(list.out.find("\"node\":\"h" + std::to_string(i) + "\",\"error\":null,\"keys\":[{"),
              std::string::npos)
        << list.out;
  CommandResult use = nodes_[2]->Meshctl({"keys", "use", new_key});
  EXPECT_EQ(use.exit_code, 0) << use.out << use.err;
  CommandResult remove = nodes_[5]->Meshctl({"keys", "remove", old_key});
  EXPECT_EQ(remove.exit_code, 0) << remove.out << remove.err;
  CommandResult after = nodes_[4]->Meshctl({"keys", "list"});
  EXPECT_EQ(after.exit_code, 0) << after.err;
  // One key left, installed on and used by all five.
  std::string rows = after.out.substr(after.out.find('\n') + 1);
  EXPECT_EQ(std::count(rows.begin(), rows.end(), '\n'), 2) << after.out;
  EXPECT_NE(after.out.find("5/5        5"), std::string::npos) << after.out;

  // The mesh carries on under the new key alone.
  std::this_thread::sleep_for(3s);
  for (int i = 1; i <= kHosts; i++) EXPECT_TRUE(all_alive(i)) << nodes_[i]->Meshctl({"peers"}).out;
  // Every key file now holds the new key only.
  for (int i = 1; i <= kHosts; i++) {
    CommandResult f = RunCommand({"/bin/grep", "-v", "^#", files[i]});
    EXPECT_EQ(f.out, new_key + "\n") << files[i];
  }
  // A member restarted from its rewritten file rejoins...
  nodes_[4]->Kill();
  StartNode(4, files[4]);
  for (int i = 1; i <= kHosts; i++) {
    std::string generation;
    EXPECT_TRUE(Eventually(
        [&] { return StateOf(i, "h4", &generation) == "alive" && generation == "2"; }, 30s))
        << "h" << i << " has h4 " << StateOf(i, "h4");
  }
  // ... and a node that only has the old key never gets in.
  StartNode(kHosts + 1, files[kHosts + 1]);
  std::this_thread::sleep_for(5s);
  for (int i = 1; i <= kHosts; i++) EXPECT_EQ(StateOf(i, "h6"), "") << "h" << i;
}

}  // namespace
}  // namespace flowmesh::testing
