// meshctl's side of the control socket: plain blocking Unix-socket calls
// that return C++ structs. One request per connection, as meshd expects.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "node/common/status.h"
#include "node/control/control_types.h"
#include "node/control/convert.h"

namespace flowmesh {

class ControlClient {
 public:
  // Each event or record with its process's workload (none when meshd did
  // not say: a meshd of before issue 15).
  using EventFn = std::function<bool(const ConnEvent&, const Workload&)>;
  using RecordFn = std::function<bool(const ConnRecord&, const Workload&)>;

  // Connects now, so a wrong path or missing permission is reported before
  // any work; the error says what to do.
  static Result<ControlClient> Connect(const std::string& path);

  ControlClient(ControlClient&& other) noexcept;
  ControlClient& operator=(ControlClient&& other) noexcept;
  ControlClient(const ControlClient&) = delete;
  ControlClient& operator=(const ControlClient&) = delete;
  ~ControlClient();

  Result<NodeStatus> Status();
  // `workloads` (optional) gets each connection's workload, in order.
  Result<std::vector<OpenConnection>> Connections(const WatchFilter& filter,
                                                  std::vector<Workload>* workloads = nullptr);
  // Streams events (filtered by meshd) to `on_event` until it returns false
  // or `timeout` passes (0 = no limit), both Ok, or meshd goes away (error).
  // `on_dropped` gets meshd's running total of events dropped for this watcher.
  ::flowmesh::Status Watch(const WatchFilter& filter, EventFn on_event,
                           std::function<void(uint64_t dropped)> on_dropped,
                           std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

  // Closed connections from the store, oldest first, streamed to `on_record`
  // until it returns false or the window is done. `truncated` (optional)
  // says whether meshd stopped at `limit`.
  ::flowmesh::Status Flows(const WatchFilter& filter, const TimeWindow& window, uint64_t limit,
                           RecordFn on_record, bool* truncated = nullptr);
  Result<std::vector<EndpointView>> Endpoints();
  // The mesh: its members, and every endpoint every member announced.
  Result<std::vector<PeerView>> Peers();
  // A key operation across the mesh (meshctl keys); `timeout` bounds the wait.
  Result<std::vector<NodeKeys>> Keys(KeyOp op, const std::string& key,
                                     std::chrono::milliseconds timeout);
  Result<std::vector<EndpointView>> MeshEndpoints();
  // The tree; waits up to `timeout` (a mesh-wide walk takes a while).
  Result<LookNode> Look(const LookQuery& query, std::chrono::milliseconds timeout);
  // The mesh's map; waits up to `timeout`, which must exceed the query's
  // own (meshd answers by then, with the members that did not marked).
  // A meshd of before says so: "this meshd does not know `map`; upgrade it".
  Result<MapResult> Map(const MapQuery& query, std::chrono::milliseconds timeout);

  // How long a status or connections call waits for meshd (default 10 s).
  void set_io_timeout(std::chrono::milliseconds t) { io_timeout_ = t; }
  const std::string& path() const { return path_; }

 private:
  ControlClient(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  // The socket for the next request: the one Connect opened, then new ones.
  Result<int> TakeConnection();
  Result<ControlResponse> Call(const ControlRequest& request);
  Result<ControlResponse> Call(const ControlRequest& request, std::chrono::milliseconds timeout);

  std::string path_;
  int fd_ = -1;
  std::chrono::milliseconds io_timeout_{10'000};
};

}  // namespace flowmesh
