// The mesh on the lab (DESIGN.md "The lab"): five real meshd, each in its own
// network namespace, join through one seed and see each other; a kill -9'd
// node is marked dead by every other and comes back alive with a higher
// generation; an endpoint opened on one host reaches every other; a node
// with the wrong key never gets in.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <thread>

#include "tests/kernel/kernel_test_util.h"
#include "tests/kernel/meshd_util.h"

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
    CommandResult r = RunCommand(
        {"/bin/sh", "-c", "head -c32 /dev/urandom | base64 > " + path + " && chmod 600 " + path});
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

}  // namespace
}  // namespace flowmesh::testing
