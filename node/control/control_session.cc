// A control connection: request, response or event stream, hang-up detection.
#include "node/control/control_session.h"

#include <asio/buffer.hpp>
#include <asio/post.hpp>
#include <asio/write.hpp>
#include <exception>
#include <thread>

#include "node/common/log.h"

namespace flowmesh::control_internal {
namespace {

// A client must send its request promptly; an idle connection holds a slot.
constexpr auto kRequestTimeout = std::chrono::seconds(10);
// Events handed over per strand turn; between turns other sessions run.
constexpr size_t kDrainBatch = 256;
// Stop draining the watcher's queue while this much is waiting for the
// socket: the backlog then stays in the Subscriber, which drops and counts.
constexpr size_t kMaxQueuedBytes = 1 << 20;
// Frames gathered into one write.
constexpr size_t kMaxGather = 64;
// Frames of a flows stream that may wait for the socket (each up to
// kRecordsPerFrame records) before the scan pauses.
constexpr size_t kMaxStreamFrames = 8;

}  // namespace

Session::Session(std::shared_ptr<ServerState> state, UnixSocket socket)
    : state_(std::move(state)), socket_(std::move(socket)), request_timer_(state_->strand) {}

Session::~Session() {
  // Normally Close() ran already; this covers an io_context torn down with
  // handlers still pending, so the hub never feeds a watcher nobody reads.
  if (sub_) {
    sub_->SetNotify(nullptr);
    sub_->Close();
  }
}

void Session::Start(const char* reject) {
  state_->sessions[this] = weak_from_this();
  if (reject != nullptr) {
    close_after_write_ = true;
    Enqueue(EncodeErrorResponse(reject));
    return;
  }
  request_timer_.expires_after(kRequestTimeout);
  request_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
    if (ec || self->closed_) return;
    FM_LOG(Debug, "control") << "client sent no complete request within " << kRequestTimeout.count()
                             << "s; closing";
    self->Close();
  });
  ReadRequest();
}

void Session::Close() {
  if (closed_) return;
  closed_ = true;
  gone_ = true;
  request_timer_.cancel();
  asio::error_code ignored;
  socket_.shutdown(UnixSocket::shutdown_both, ignored);
  socket_.close(ignored);
  if (sub_) {
    // The hub forgets a closed subscriber on its next publish.
    sub_->SetNotify(nullptr);
    sub_->Close();
  }
  // queue_ stays: a write may still reference it until its handler runs.
  state_->sessions.erase(this);
}

void Session::ReadRequest() {
  socket_.async_read_some(asio::buffer(read_buf_),
                          [self = shared_from_this()](const asio::error_code& ec, size_t n) {
                            if (self->closed_) return;
                            if (ec) {
                              // Hung up before asking anything (e.g. a liveness probe).
                              self->Close();
                              return;
                            }
                            self->OnRequestBytes(n);
                          });
}

void Session::OnRequestBytes(size_t n) {
  Status fed = decoder_.Feed(read_buf_.data(), n);
  if (!fed.ok()) return Malformed(fed);
  Frame frame;
  if (!decoder_.Next(&frame)) return ReadRequest();
  request_timer_.cancel();
  Result<ControlRequest> request = DecodeRequest(frame);
  if (!request.ok()) return Malformed(request.status());
  Dispatch(std::move(request).value());
}

void Session::Malformed(const Status& why) {
  uint64_t total = state_->malformed.fetch_add(1) + 1;
  FM_LOG(Warn, "control") << "dropping control connection: " << why.message() << " (" << total
                          << " malformed so far)";
  request_timer_.cancel();
  close_after_write_ = true;
  Enqueue(EncodeErrorResponse("meshd could not decode the request: " + why.message()));
}

void Session::Dispatch(ControlRequest request) {
  if (state_->stopped.load()) return Close();
  if (request.kind == RequestKind::kWatch) return StartWatch(std::move(request.filter));
  if (request.kind == RequestKind::kFlows) return StreamRecords(std::move(request));

  // status and connections: ask the backend on the worker, answer on the strand.
  close_after_write_ = true;
  if (request.kind == RequestKind::kMap && state_->maps_in_flight.fetch_add(1) >= kMaxMapsAtOnce) {
    state_->maps_in_flight--;
    const uint64_t refused = state_->maps_refused.fetch_add(1) + 1;
    FM_LOG(Info, "control") << "refusing a map: " << kMaxMapsAtOnce << " already being drawn ("
                            << refused << " refused so far)";
    return Enqueue(EncodeErrorResponse("meshd is already drawing " +
                                       std::to_string(kMaxMapsAtOnce) +
                                       " maps; try again when one is done"));
  }
  asio::post(state_->worker, [self = shared_from_this(), request = std::move(request)] {
    Result<std::vector<uint8_t>> frame = Internal("no answer");
    try {
      if (request.kind == RequestKind::kStatus) {
        NodeStatus st = self->state_->backend.GetStatus();
        st.probe.detail.emplace_back("control_maps_refused", self->state_->maps_refused.load());
        st.probe.detail.emplace_back("control_malformed_frames", self->state_->malformed.load());
        frame = EncodeStatusResponse(st);
      } else if (request.kind == RequestKind::kEndpoints) {
        frame = EncodeEndpointsResponse(self->state_->backend.GetEndpoints());
      } else if (request.kind == RequestKind::kPeers ||
                 request.kind == RequestKind::kMeshEndpoints) {
        ControlBackend& b = self->state_->backend;
        if (!b.MeshEnabled())
          frame = EncodeErrorResponse(
              "this meshd is not in a mesh (start it with --cluster-key-file FILE and --join "
              "SEEDS, or --insecure)");
        else if (request.kind == RequestKind::kPeers)
          frame = EncodePeersResponse(b.GetPeers());
        else
          frame = EncodeEndpointsResponse(b.GetMeshEndpoints());
      } else if (request.kind == RequestKind::kKeys) {
        Result<std::vector<NodeKeys>> keys =
            self->state_->backend.RunKeyOp(request.key_op, request.key);
        frame = keys.ok() ? EncodeKeysResponse(*keys) : Result<std::vector<uint8_t>>(keys.status());
      } else if (request.kind == RequestKind::kMap) {
        // Counted down however RunMap ends, a throw included.
        struct Done {
          std::atomic<int>& n;
          ~Done() { n--; }
        } done{self->state_->maps_in_flight};
        Result<MapResult> map = self->state_->backend.RunMap(request.map);
        frame = map.ok() ? EncodeMapResponse(*map) : Result<std::vector<uint8_t>>(map.status());
        if (!frame.ok() && map.ok())
          frame = Status(frame.status().code(),
                         "the map of " + std::to_string(map->graph.nodes.size()) + " nodes and " +
                             std::to_string(map->graph.edges.size()) +
                             " edges does not fit in one reply (" + frame.status().message() +
                             "); cut it with --host, --workload and --depth");
      } else if (request.kind == RequestKind::kLook) {
        Result<LookResult> look = self->state_->backend.RunLook(request.look);
        frame = look.ok() ? EncodeLookResponse(look->root)
                          : Result<std::vector<uint8_t>>(look.status());
      } else {
        std::vector<OpenConnection> all = self->state_->backend.GetConnections();
        std::erase_if(all, [&](const OpenConnection& c) { return !request.filter.Matches(c); });
        WorkloadMemo memo(self->state_->backend);
        std::vector<Workload> workloads;
        std::vector<OpenConnection> kept;
        for (OpenConnection& c : all) {
          const Workload& w = memo.Of(c.proc);
          if (!request.filter.MatchesWorkload(w)) continue;
          workloads.push_back(w);
          kept.push_back(std::move(c));
        }
        all = std::move(kept);
        frame = EncodeConnectionsResponse(all, workloads);
        if (!frame.ok())
          frame = Status(frame.status().code(),
                         std::to_string(all.size()) + " connections do not fit in one reply (" +
                             frame.status().message() + "); narrow them with -p, -L, -D, -4 or -6");
      }
    } catch (const std::exception& e) {
      frame = Internal(std::string("meshd failed to answer: ") + e.what());
    }
    if (!frame.ok()) frame = EncodeErrorResponse(frame.status().message());
    asio::post(self->state_->strand,
               [self, frame = std::move(frame)]() mutable { self->Enqueue(std::move(frame)); });
  });
}

void Session::StreamRecords(ControlRequest request) {
  // Not close_after_write_ yet: the queue may run dry between two batches.
  asio::post(state_->worker, [self = shared_from_this(), request = std::move(request)] {
    RecordFilter filter{request.filter.pid, request.filter.family, request.filter.lports,
                        request.filter.rports};
    std::vector<ConnRecord> chunk;
    std::vector<Workload> workloads;
    chunk.reserve(kRecordsPerFrame);
    WorkloadMemo memo(self->state_->backend);
    uint64_t sent = 0;
    bool truncated = false;
    auto send = [&](bool done) {
      Result<std::vector<uint8_t>> frame = EncodeRecordsResponse(chunk, done, truncated, workloads);
      chunk.clear();
      workloads.clear();
      self->stream_frames_++;
      asio::post(self->state_->strand, [self, done, frame = std::move(frame)]() mutable {
        if (done) self->close_after_write_ = true;
        self->Enqueue(std::move(frame));
      });
    };
    Status scanned;
    try {
      scanned = self->state_->backend.ScanRecords(request.window, filter, [&](const ConnRecord& r) {
        // The store filters by process and ports; the workload is known here.
        const Workload& w = memo.Of(r.proc);
        if (!request.filter.MatchesWorkload(w)) return !self->gone_.load();
        if (request.limit != 0 && sent == request.limit) {
          truncated = true;
          return false;
        }
        chunk.push_back(r);
        workloads.push_back(w);
        sent++;
        if (chunk.size() == kRecordsPerFrame) {
          if (!self->WaitForRoom()) return false;
          send(false);
        }
        return !self->gone_.load();
      });
    } catch (const std::exception& e) {
      scanned = Internal(std::string("meshd failed to read its store: ") + e.what());
    }
    if (self->gone_.load()) return;
    if (!scanned.ok()) {
      asio::post(self->state_->strand, [self, why = scanned.message()] {
        self->close_after_write_ = true;
        self->Enqueue(EncodeErrorResponse(why));
      });
      return;
    }
    send(true);
  });
}

bool Session::WaitForRoom() {
  while (stream_frames_.load() >= kMaxStreamFrames) {
    if (gone_.load()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return !gone_.load();
}

void Session::StartWatch(WatchFilter filter) {
  filter_ = std::move(filter);
  memo_ = std::make_unique<WorkloadMemo>(state_->backend);
  sub_ = state_->backend.Subscribe();
  if (!sub_) {
    close_after_write_ = true;
    return Enqueue(EncodeErrorResponse("meshd cannot serve watchers right now"));
  }
  FM_LOG(Debug, "control") << "watcher attached";
  // Runs on the probe's thread: hand off to the strand and nothing else.
  sub_->SetNotify([weak = weak_from_this(), strand = state_->strand] {
    asio::post(strand, [weak] {
      auto self = weak.lock();
      // A drain already scheduled will see this event too.
      if (self && !self->drain_posted_) self->Drain();
    });
  });
  AwaitHangup();
}

void Session::AwaitHangup() {
  // A watch stream is one-way; the only thing the client can still say is
  // goodbye. EOF (or any error) means it went away: release its queue now.
  socket_.async_read_some(asio::buffer(read_buf_),
                          [self = shared_from_this()](const asio::error_code& ec, size_t) {
                            if (self->closed_) return;
                            if (ec) {
                              FM_LOG(Debug, "control") << "watcher hung up: " << ec.message();
                              return self->Close();
                            }
                            self->Malformed(InvalidArgument("client sent data during a watch"));
                          });
}

void Session::PostDrain() {
  if (drain_posted_ || closed_) return;
  drain_posted_ = true;
  asio::post(state_->strand, [self = shared_from_this()] { self->Drain(); });
}

void Session::Drain() {
  drain_posted_ = false;
  if (closed_ || !sub_ || close_after_write_) return;
  // Resumed by the write completion once the socket catches up.
  if (queued_bytes_ >= kMaxQueuedBytes) return;
  batch_.clear();
  size_t n = sub_->Drain(&batch_, kDrainBatch);
  for (const ConnEvent& e : batch_) {
    // UPDATEs are meshd's internal counter refreshes, not events to show.
    if (e.kind == EventKind::kUpdate || !filter_.Matches(e)) continue;
    const Workload& w = memo_->Of(e.proc);
    if (!filter_.MatchesWorkload(w)) continue;
    Push(EncodeEventResponse(e, w));
  }
  uint64_t dropped = sub_->dropped();
  if (dropped > reported_dropped_) {
    reported_dropped_ = dropped;
    Push(EncodeDroppedResponse(dropped));
  }
  WriteMore();  // once per batch, so the write gathers the whole batch
  if (n == kDrainBatch) PostDrain();
}

void Session::Push(Result<std::vector<uint8_t>> frame) {
  if (closed_) return;
  if (!frame.ok()) {
    FM_LOG(Warn, "control") << "cannot encode a response: " << frame.status().message();
    return;
  }
  queued_bytes_ += frame->size();
  queue_.push_back(std::move(frame).value());
}

void Session::Enqueue(Result<std::vector<uint8_t>> frame) {
  Push(std::move(frame));
  WriteMore();
}

void Session::WriteMore() {
  if (closed_ || in_flight_ > 0) return;
  if (queue_.empty()) {
    if (close_after_write_) Close();
    return;
  }
  std::vector<asio::const_buffer> buffers;
  for (size_t i = 0; i < queue_.size() && i < kMaxGather; i++)
    buffers.push_back(asio::buffer(queue_[i]));
  in_flight_ = buffers.size();
  asio::async_write(socket_, buffers,
                    [self = shared_from_this()](const asio::error_code& ec, size_t) {
                      if (self->closed_) return;
                      if (ec) {
                        FM_LOG(Debug, "control") << "write failed: " << ec.message();
                        return self->Close();
                      }
                      for (; self->in_flight_ > 0; self->in_flight_--) {
                        self->queued_bytes_ -= self->queue_.front().size();
                        self->queue_.pop_front();
                        if (self->stream_frames_.load() > 0) self->stream_frames_--;
                      }
                      self->WriteMore();
                      if (self->sub_) self->Drain();
                    });
}

}  // namespace flowmesh::control_internal
