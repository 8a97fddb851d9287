// What the control server asks of the daemon. The daemon implements it; the
// server (control_server.h) never reaches into the data path otherwise.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "node/flow/conn_table.h"
#include "node/flow/event_hub.h"
#include "node/probe/probe.h"

namespace flowmesh {

struct NodeStatus {
  std::string node_name;
  std::string version;
  uint32_t pid = 0;
  int64_t started_ns = 0;
  std::string probe_mode;
  std::string probe_reason;
  std::string netns;
  ProbeStats probe;
  ConnTableStats table;
  uint32_t watchers = 0;
  int64_t first_event_ns = 0;
};

class ControlBackend {
 public:
  virtual ~ControlBackend() = default;
  virtual NodeStatus GetStatus() = 0;
  virtual std::vector<OpenConnection> GetConnections() = 0;
  // A live queue of events for one watcher; the caller Close()s it when done.
  virtual std::shared_ptr<Subscriber> Subscribe() = 0;
};

}  // namespace flowmesh
