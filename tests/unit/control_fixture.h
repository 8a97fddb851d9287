// A real ControlServer on a temporary socket, served by a background
// io_context thread, with a fake backend the test steers. Header-only: the
// unit-test binary globs *_test.cc, and two test files share this.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "node/control/backend.h"
#include "node/control/control_server.h"
#include "node/control/frame.h"

namespace flowmesh::testing {

class FakeBackend : public ControlBackend {
 public:
  NodeStatus GetStatus() override;
  std::vector<OpenConnection> GetConnections() override;
  std::shared_ptr<Subscriber> Subscribe() override;
  Status ScanRecords(const TimeWindow& window, const RecordFilter& filter,
                     const std::function<bool(const ConnRecord&)>& fn) override;
  std::vector<EndpointView> GetEndpoints() override { return endpoints; }
  Result<LookResult> RunLook(const LookQuery& query) override;
  Result<MapResult> RunMap(const MapQuery& query) override {
    last_map = query;
    if (map_hook) map_hook();
    if (!map_error.empty()) return Unavailable(map_error);
    MapResult r = map_result;
    r.query = query;
    return r;
  }
  Workload WorkloadOf(const ProcessRef& p) override {
    std::lock_guard<std::mutex> lock(workloads_mu);
    workload_asks++;
    auto it = workloads.find(p.pid);
    return it == workloads.end() ? Workload{} : it->second;
  }

  // Waits until the n-th subscriber (1-based) exists and returns it.
  std::shared_ptr<Subscriber> WaitForSubscriber(size_t n);
  // Makes GetConnections block until Release().
  void Block();
  void Release();

  EventHub hub;
  NodeStatus status;
  std::vector<OpenConnection> connections;
  std::vector<ConnRecord> records;  // served by ScanRecords, window and filter applied
  std::vector<EndpointView> endpoints;
  LookNode look_root;               // RunLook's answer
  LookQuery last_look;
  MapResult map_result;  // RunMap's answer (its query is the one asked)
  MapQuery last_map;
  std::string map_error;           // not empty: RunMap fails with it
  std::function<void()> map_hook;  // runs first in RunMap (a slow mesh)
  // WorkloadOf's answers by pid, and how often it was asked.
  std::mutex workloads_mu;
  std::map<uint32_t, Workload> workloads;
  int workload_asks = 0;
  // When set, Subscribe returns a queue of this capacity already holding
  // `prefill` events, so drops are deterministic.
  size_t small_capacity = 0;
  std::vector<ConnEvent> prefill;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<Subscriber>> subs_;
  bool blocked_ = false;
};

class ControlTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  // Stops the server and joins the io thread (idempotent).
  void StopServer();

  std::string dir_;
  std::string path_;
  FakeBackend backend_;
  asio::io_context io_;
  std::unique_ptr<ControlServer> server_;

 private:
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
};

// Polls `cond` every 5 ms for up to `timeout`.
inline bool WaitUntil(const std::function<bool()>& cond,
                      std::chrono::milliseconds timeout = std::chrono::seconds(5));
// A connected raw Unix socket, or -1.
inline int RawConnect(const std::string& path);
inline bool WriteAllRaw(int fd, const std::vector<uint8_t>& bytes);
// Everything the peer sends until it closes (or `timeout` passes).
inline std::vector<uint8_t> ReadUntilEof(
    int fd, std::chrono::milliseconds timeout = std::chrono::seconds(5));
inline ConnEvent TestEvent(EventKind kind, uint16_t lport, uint16_t rport, int64_t ts_ns = 1);

// ---- definitions ----

inline NodeStatus FakeBackend::GetStatus() { return status; }

inline std::vector<OpenConnection> FakeBackend::GetConnections() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !blocked_; });
  return connections;
}

inline std::shared_ptr<Subscriber> FakeBackend::Subscribe() {
  std::shared_ptr<Subscriber> sub;
  if (small_capacity > 0) {
    sub = std::make_shared<Subscriber>(small_capacity);
    for (const ConnEvent& e : prefill) sub->Push(e);
  } else {
    sub = hub.Subscribe();
  }
  std::lock_guard lock(mu_);
  subs_.push_back(sub);
  cv_.notify_all();
  return sub;
}

inline Status FakeBackend::ScanRecords(const TimeWindow& window, const RecordFilter& filter,
                                       const std::function<bool(const ConnRecord&)>& fn) {
  for (const ConnRecord& r : records)
    if (window.Contains(r.ts_ns) && filter.Matches(r) && !fn(r)) break;
  return Status::Ok();
}

inline Result<LookResult> FakeBackend::RunLook(const LookQuery& query) {
  last_look = query;
  if (look_root.host == "fail") return Unavailable("look failed on purpose");
  return LookResult{query, look_root};
}

inline std::shared_ptr<Subscriber> FakeBackend::WaitForSubscriber(size_t n) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, std::chrono::seconds(5), [&] { return subs_.size() >= n; }))
    return nullptr;
  return subs_[n - 1];
}

inline void FakeBackend::Block() {
  std::lock_guard lock(mu_);
  blocked_ = true;
}

inline void FakeBackend::Release() {
  std::lock_guard lock(mu_);
  blocked_ = false;
  cv_.notify_all();
}

inline void ControlTest::SetUp() {
  char tmpl[] = "/tmp/fm-control-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  dir_ = tmpl;
  path_ = dir_ + "/run/meshd.sock";  // run/ does not exist: Listen creates it
  server_ = std::make_unique<ControlServer>(io_, backend_);
  Status s = server_->Listen(path_);
  ASSERT_TRUE(s.ok()) << s.message();
  work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
      io_.get_executor());
  thread_ = std::thread([this] { io_.run(); });
}

inline void ControlTest::TearDown() {
  backend_.Release();
  StopServer();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

inline void ControlTest::StopServer() {
  if (!server_) return;
  server_->Stop();
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

inline bool WaitUntil(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

inline int RawConnect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

inline bool WriteAllRaw(int fd, const std::vector<uint8_t>& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

inline std::vector<uint8_t> ReadUntilEof(int fd, std::chrono::milliseconds timeout) {
  std::vector<uint8_t> out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return out;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    uint8_t buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return out;
    out.insert(out.end(), buf, buf + n);
  }
}

inline ConnEvent TestEvent(EventKind kind, uint16_t lport, uint16_t rport, int64_t ts_ns) {
  ConnEvent e;
  e.kind = kind;
  e.direction = Direction::kActive;
  e.ts_ns = ts_ns;
  e.key.laddr = IpAddr::V4(127, 0, 0, 1);
  e.key.lport = lport;
  if (kind != EventKind::kListen && kind != EventKind::kUnlisten) {
    e.key.raddr = IpAddr::V4(127, 0, 0, 1);
    e.key.rport = rport;
  }
  e.proc.pid = 100;
  e.proc.set_comm("curl");
  return e;
}

}  // namespace flowmesh::testing
