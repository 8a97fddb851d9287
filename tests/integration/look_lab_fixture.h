// The nine-host lab of the look lab tests (topology.sh, prefix fmc): its
// fixture and the helpers that read trees.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <ctime>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/kernel/kernel_test_util.h"
#include "tests/kernel/meshd_util.h"
#include "tests/test_paths.h"

namespace flowmesh::testing {

using namespace std::chrono_literals;

inline constexpr const char* kPrefix = "fmc";  // not the demo's fmt: both may be up at once
inline constexpr const char* kHostNames[] = {"client-1", "web-1",    "app-1",
                                             "app-2",    "cache-1",  "kv-1",
                                             "client-2", "docker-1", "lb-1"};
inline constexpr int kHosts = 9;  // every host runs a meshd; 7-9 put NAT on paths

inline std::string Ns(int i) { return std::string(kPrefix) + "-" + std::to_string(i); }

// A look has every connection made before it was asked (the read barrier,
// see look_instant_lab_test.cc), but servers close their side, with the
// final byte counts, after the client has its answer: trees compared byte
// for byte are asked once that is over.
inline void LetEventsArrive() { std::this_thread::sleep_for(std::chrono::milliseconds(500)); }

inline std::string Rfc3339(std::chrono::system_clock::time_point t) {
  std::time_t s = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The line of `text` matching `pattern` (ECMAScript), or "".
inline std::string LineMatching(const std::string& text, const std::string& pattern) {
  std::regex re(pattern);
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (std::regex_search(line, re)) return line;
  return "";
}

inline int CountMatching(const std::string& text, const std::string& pattern) {
  std::regex re(pattern);
  std::istringstream in(text);
  int n = 0;
  for (std::string line; std::getline(in, line);) n += std::regex_search(line, re);
  return n;
}

class LookLabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FM_REQUIRE_ROOT();
    setenv("TOPOLOGY_PREFIX", kPrefix, 1);
    setenv("MESHD", MESHD_BIN, 1);
    setenv("MESHCTL", MESHCTL_BIN, 1);
    char tmpl[] = "/tmp/fm-look-XXXXXX";
    work_ = mkdtemp(tmpl);
    Topology({"down", work_}, 60s);  // a lab left over from an aborted run
    CommandResult up = Topology({"up", work_}, 120s);
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    before_traffic_ = std::chrono::system_clock::now() - 2s;
  }

  void TearDown() override {
    if (work_.empty()) return;
    CommandResult down = Topology({"down", work_}, 60s);
    EXPECT_EQ(down.exit_code, 0) << down.err;
    RunCommand({"/bin/rm", "-rf", work_});
  }

  CommandResult Topology(std::vector<std::string> args, std::chrono::milliseconds limit = 30s) {
    args.insert(args.begin(), {"/bin/bash", TOPOLOGY_SH});
    return RunCommand(args, limit);
  }

  // meshctl on host i (1..kHosts).
  CommandResult Ctl(int i, std::vector<std::string> args) {
    args.insert(args.begin(), {"ctl", work_, std::to_string(i)});
    return Topology(args, 30s);
  }

  std::string Look(int i, std::vector<std::string> args) {
    args.insert(args.begin(), "look");
    CommandResult r = Ctl(i, args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }

  // A command in the background on host i, output to a file in the work dir.
  void Background(int i, const std::string& name, const std::string& command) {
    std::string log = work_ + "/" + name + ".log";
    CommandResult r = RunCommand(
        {"/bin/sh", "-c",
         "ip netns exec " + Ns(i) + " setsid " + command + " >" + log + " 2>&1 </dev/null &"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // Polls until something listens on addr:port inside host i.
  bool Listening(int i, const std::string& addr_port) {
    for (int n = 0; n < 100; n++) {
      CommandResult r = RunCommand({"/usr/sbin/ip", "netns", "exec", Ns(i), "ss", "-Hltn"});
      if (r.out.find(addr_port) != std::string::npos) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  std::string work_;
  std::chrono::system_clock::time_point before_traffic_;
};

}  // namespace flowmesh::testing
