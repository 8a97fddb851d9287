// One meshctl connection inside meshd's control server: reads one request,
// answers it, or streams watch events until the client hangs up. Internal to
// control_server.cc; everything here runs on the server's strand.
#pragma once

#include <array>
#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/thread_pool.hpp>
#include <atomic>
#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include "node/control/backend.h"
#include "node/control/convert.h"
#include "node/control/frame.h"
#include "node/control/workload_memo.h"

namespace flowmesh::control_internal {

using Strand = asio::strand<asio::io_context::executor_type>;
using UnixSocket = asio::local::stream_protocol::socket;

class Session;

// Of the server's 4 workers (control_server.h), at most this many draw maps.
constexpr int kMaxMapsAtOnce = 2;

// What sessions share with the server. Handlers hold it by shared_ptr, so it
// outlives the ControlServer if the io_context still holds their handlers.
struct ServerState {
  ServerState(asio::io_context& io, ControlBackend& b, asio::thread_pool::executor_type w)
      : strand(asio::make_strand(io)), backend(b), worker(w) {}

  Strand strand;
  ControlBackend& backend;
  // Backend calls (a sock_diag refresh, table copies) run here, off the
  // io_context, so a slow `top` never delays anything else meshd serves.
  asio::thread_pool::executor_type worker;
  std::atomic<bool> stopped{false};
  std::atomic<uint64_t> malformed{0};
  std::atomic<uint64_t> accepted{0};
  // Maps being drawn, and those refused because kMaxMapsAtOnce were: a map
  // holds its worker for up to its timeout, and status and look must still
  // find one free.
  std::atomic<int> maps_in_flight{0};
  std::atomic<uint64_t> maps_refused{0};
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;  // strand only
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<ServerState> state, UnixSocket socket);
  ~Session();

  // Starts reading the request. `reject` answers an error and closes instead.
  void Start(const char* reject = nullptr);
  // Idempotent; closes the socket and the watcher queue.
  void Close();

 private:
  void ReadRequest();
  void OnRequestBytes(size_t n);
  void Malformed(const Status& why);
  void Dispatch(ControlRequest request);
  void StartWatch(WatchFilter filter);
  // flows: scans on the worker, frames go out as the socket takes them.
  void StreamRecords(ControlRequest request);
  // Runs on the worker: waits while too many frames wait for the socket;
  // false once the client has gone.
  bool WaitForRoom();
  void AwaitHangup();
  void PostDrain();
  void Drain();
  // Push queues a frame; Enqueue also starts writing it.
  void Push(Result<std::vector<uint8_t>> frame);
  void Enqueue(Result<std::vector<uint8_t>> frame);
  void WriteMore();

  std::shared_ptr<ServerState> state_;
  UnixSocket socket_;
  asio::steady_timer request_timer_;
  FrameDecoder decoder_{kMaxRequestBytes};
  std::array<uint8_t, 4096> read_buf_{};
  bool closed_ = false;

  // Writes: one async_write at a time over a bounded queue of frames.
  std::deque<std::vector<uint8_t>> queue_;
  size_t queued_bytes_ = 0;
  size_t in_flight_ = 0;  // frames of queue_ being written
  bool close_after_write_ = false;
  // A flows stream's frames posted by the worker and not yet written, and
  // whether the session closed: the worker reads both.
  std::atomic<size_t> stream_frames_{0};
  std::atomic<bool> gone_{false};

  // Watch.
  std::shared_ptr<Subscriber> sub_;
  WatchFilter filter_;
  std::unique_ptr<WorkloadMemo> memo_;  // a watch's, on the strand
  uint64_t reported_dropped_ = 0;
  bool drain_posted_ = false;
  std::vector<ConnEvent> batch_;
};

}  // namespace flowmesh::control_internal
