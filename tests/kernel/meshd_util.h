// Runs the real meshd and meshctl binaries for kernel tests: start, wait
// until the control socket answers, watch events as JSON lines, stop.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace flowmesh::testing {

// One flat JSON object ({"k": "v", "n": 1, "x": null}) as strings; enough
// for meshctl's line-per-event output.
using JsonLine = std::map<std::string, std::string>;
bool ParseFlatJson(const std::string& line, JsonLine* out);
// meshctl's one-line arrays of flat objects (endpoints, peers).
std::vector<JsonLine> ParseFlatJsonArray(const std::string& text);

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs a command to completion with a timeout (killed after it).
CommandResult RunCommand(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10),
                         uid_t as_uid = 0);

// A fresh random cluster key (32 bytes, base64) at `path`, mode 0600, as an
// operator makes one: `head -c32 /dev/urandom | base64`.
CommandResult WriteClusterKey(const std::string& path);

class MeshdProcess {
 public:
  MeshdProcess();
  ~MeshdProcess();
  // Starts meshd with these extra flags (a private control socket is added)
  // and waits until `meshctl status` answers. Returns false with the log on failure.
  bool Start(const std::vector<std::string>& flags, std::string* error);
  // SIGTERM (or `sig`) and wait; returns the exit code (128 + signal if killed by one).
  int Stop(int sig = 15);
  // SIGKILL: a crash. Start() again reopens the same data directory.
  void Kill();
  // Runs meshd inside this network namespace (ip netns exec) from now on.
  void set_netns(std::string name) { netns_ = std::move(name); }
  // Runs meshd without these capabilities (capsh --drop, e.g.
  // "cap_net_admin"): root as the unit would be without them.
  void set_drop_caps(std::string caps) { drop_caps_ = std::move(caps); }
  std::string data_dir() const { return dir_ + "/data"; }
  const std::string& socket() const { return socket_; }
  std::string Log() const;  // meshd's stderr so far
  pid_t pid() const { return pid_; }
  // Runs meshctl against this meshd.
  CommandResult Meshctl(std::vector<std::string> args) const;

 private:
  std::string dir_;
  std::string socket_;
  std::string drop_caps_;
  std::string netns_;
  pid_t pid_ = -1;
};

// `meshctl watch --json` in the background, collecting lines.
class Watcher {
 public:
  Watcher(const MeshdProcess& meshd, std::vector<std::string> extra_args = {});
  ~Watcher();
  // Waits until some collected line satisfies `pred`; returns it.
  bool WaitFor(const std::function<bool(const JsonLine&)>& pred, JsonLine* found,
               std::chrono::milliseconds timeout = std::chrono::seconds(5));
  std::vector<JsonLine> Lines();

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::thread reader_;
  std::mutex mu_;
  std::vector<JsonLine> lines_;
};

}  // namespace flowmesh::testing
