// The control socket's messages: requests and responses as whole frames.
// Declared in convert.h, next to the struct conversions they are built from.
#include <capnp/message.h>
#include <kj/exception.h>

#include <map>
#include <string>

#include "node/control/convert.h"
#include "node/wire/wire.h"

namespace flowmesh {
namespace {

namespace s = schema;

Result<std::vector<uint8_t>> ResponseFrame(capnp::MallocMessageBuilder& message) {
  return EncodeFrame(message, kMaxResponseBytes);
}

// Each distinct workload of a response once (a host's thousands of
// connections belong to a few units), named by 1 + its index.
class WorkloadIndex {
 public:
  uint32_t Of(const Workload& w) {
    // One past the wire's bounds is none, as meshctl would read it.
    if (w.empty() || !wire::WorkloadFitsWire(w)) return 0;
    std::string key = w.cgroup + '\0' + WorkloadGroupKey(w) + '\0' + w.id;
    auto [it, added] = by_key_.try_emplace(std::move(key), all_.size() + 1);
    if (added) all_.push_back(&w);
    return it->second;
  }
  void Write(s::Response::Builder root) const {
    if (all_.empty()) return;
    auto list = root.initWorkloads(static_cast<unsigned>(all_.size()));
    for (unsigned i = 0; i < all_.size(); i++) wire::WorkloadToWire(*all_[i], list[i]);
  }

 private:
  std::map<std::string, uint32_t> by_key_;
  std::vector<const Workload*> all_;
};

// Connections or records, each with its workload's index (`workloads` is
// parallel to `items`, or shorter: none known).
template <typename T, typename ListBuilder>
void ItemsToCapnp(const std::vector<T>& items, const std::vector<Workload>& workloads,
                  ListBuilder list, s::Response::Builder root) {
  WorkloadIndex index;
  for (unsigned i = 0; i < items.size(); i++) {
    ToCapnp(items[i], list[i]);
    if (i < workloads.size()) list[i].getProcess().setWorkload(index.Of(workloads[i]));
  }
  index.Write(root);
}

Status AddWorkload(const std::vector<Workload>& table, uint32_t index, std::vector<Workload>* out) {
  if (index > table.size())
    return InvalidArgument("malformed response: workload " + std::to_string(index) + " of " +
                           std::to_string(table.size()));
  out->push_back(index == 0 ? Workload{} : table[index - 1]);
  return Status::Ok();
}

}  // namespace

Result<std::vector<uint8_t>> EncodeRequest(const ControlRequest& request) {
  capnp::MallocMessageBuilder message;
  auto req = message.initRoot<s::Request>();
  switch (request.kind) {
    case RequestKind::kStatus: req.setStatus(); break;
    case RequestKind::kConnections: ToCapnp(request.filter, req.initConnections()); break;
    case RequestKind::kWatch: ToCapnp(request.filter, req.initWatch()); break;
    case RequestKind::kFlows: {
      auto q = req.initFlows();
      ToCapnp(request.filter, q.initFilter());
      q.setSinceNs(request.window.since_ns);
      q.setUntilNs(request.window.until_ns);
      q.setLimit(request.limit);
      break;
    }
    case RequestKind::kEndpoints: req.setEndpoints(); break;
    case RequestKind::kLook: ToCapnp(request.look, req.initLook()); break;
    case RequestKind::kPeers: req.setPeers(); break;
    case RequestKind::kMeshEndpoints: req.setMeshEndpoints(); break;
    case RequestKind::kKeys: {
      auto k = req.initKeys();
      k.setOp(static_cast<s::KeyOp>(request.key_op));
      k.setKey(request.key);
      break;
    }
    case RequestKind::kMap: ToCapnp(request.map, req.initMap()); break;
  }
  return EncodeFrame(message, kMaxRequestBytes);
}

Result<std::vector<uint8_t>> EncodeErrorResponse(std::string_view text) {
  capnp::MallocMessageBuilder message;
  message.initRoot<s::Response>().setError(capnp::Text::Reader(text.data(), text.size()));
  return ResponseFrame(message);
}

Result<std::vector<uint8_t>> EncodeStatusResponse(const NodeStatus& status) {
  capnp::MallocMessageBuilder message;
  ToCapnp(status, message.initRoot<s::Response>().initStatus());
  return ResponseFrame(message);
}

Result<std::vector<uint8_t>> EncodeConnectionsResponse(const std::vector<OpenConnection>& conns,
                                                       const std::vector<Workload>& workloads) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<s::Response>();
  ItemsToCapnp(conns, workloads, root.initConnections(static_cast<unsigned>(conns.size())), root);
  return ResponseFrame(message);
}

Result<std::vector<uint8_t>> EncodeEventResponse(const ConnEvent& event, const Workload& workload) {
  capnp::MallocMessageBuilder message(64);  // one event is ~50 words; one allocation
  auto root = message.initRoot<s::Response>();
  auto e = root.initEvent();
  ToCapnp(event, e);
  WorkloadIndex index;
  e.getProcess().setWorkload(index.Of(workload));
  index.Write(root);
  return ResponseFrame(message);
}

Result<std::vector<uint8_t>> EncodeDroppedResponse(uint64_t total_dropped) {
  capnp::MallocMessageBuilder message(8);
  message.initRoot<s::Response>().setWatchDropped(total_dropped);
  return ResponseFrame(message);
}

Result<std::vector<uint8_t>> EncodeRecordsResponse(const std::vector<ConnRecord>& records,
                                                   bool done, bool truncated,
                                                   const std::vector<Workload>& workloads) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<s::Response>();
  auto batch = root.initRecords();
  ItemsToCapnp(records, workloads, batch.initRecords(static_cast<unsigned>(records.size())), root);
  batch.setDone(done);
  batch.setTruncated(truncated);
  return ResponseFrame(message);
}

Result<std::vector<uint8_t>> EncodeEndpointsResponse(const std::vector<EndpointView>& endpoints) {
  capnp::MallocMessageBuilder message;
  auto list =
      message.initRoot<s::Response>().initEndpoints(static_cast<unsigned>(endpoints.size()));
  for (unsigned i = 0; i < endpoints.size(); i++) ToCapnp(endpoints[i], list[i]);
  return ResponseFrame(message);
}

Result<std::vector<uint8_t>> EncodeLookResponse(const LookNode& root) {
  capnp::MallocMessageBuilder message;
  ToCapnp(root, message.initRoot<s::Response>().initLook());
  return ResponseFrame(message);
}

Result<std::vector<uint8_t>> EncodePeersResponse(const std::vector<PeerView>& peers) {
  capnp::MallocMessageBuilder message;
  auto list = message.initRoot<s::Response>().initPeers(static_cast<unsigned>(peers.size()));
  for (unsigned i = 0; i < peers.size(); i++) {
    const PeerView& p = peers[i];
    auto b = list[i];
    b.setName(p.name);
    b.setAddr(p.addr);
    b.setState(p.state);
    b.setIncarnation(p.incarnation);
    b.setEndpoints(p.endpoints);
    b.setStateChangeNs(p.state_change_ns);
    b.setGeneration(p.generation);
    b.setNodeId(p.node_id);
  }
  return ResponseFrame(message);
}

Result<std::vector<uint8_t>> EncodeKeysResponse(const std::vector<NodeKeys>& nodes) {
  capnp::MallocMessageBuilder message;
  auto list = message.initRoot<s::Response>().initKeys(static_cast<unsigned>(nodes.size()));
  for (unsigned i = 0; i < nodes.size(); i++) {
    list[i].setNode(nodes[i].node);
    list[i].setError(nodes[i].error);
    auto keys = list[i].initKeys(static_cast<unsigned>(nodes[i].keys.size()));
    for (unsigned k = 0; k < nodes[i].keys.size(); k++) {
      keys[k].setFingerprint(nodes[i].keys[k].fingerprint);
      keys[k].setPrimary(nodes[i].keys[k].primary);
    }
  }
  return ResponseFrame(message);
}

Result<std::vector<uint8_t>> EncodeMapResponse(const MapResult& map) {
  capnp::MallocMessageBuilder message;
  ToCapnp(map, message.initRoot<s::Response>().initMap());
  return ResponseFrame(message);
}

Result<ControlRequest> DecodeRequest(Frame& frame) {
  try {
    auto req = frame.Root<s::Request>();
    ControlRequest out;
    switch (req.which()) {
      case s::Request::STATUS: out.kind = RequestKind::kStatus; return out;
      case s::Request::CONNECTIONS: {
        out.kind = RequestKind::kConnections;
        FM_ASSIGN_OR_RETURN(out.filter, FromCapnp(req.getConnections()));
        return out;
      }
      case s::Request::WATCH: {
        out.kind = RequestKind::kWatch;
        FM_ASSIGN_OR_RETURN(out.filter, FromCapnp(req.getWatch()));
        return out;
      }
      case s::Request::FLOWS: {
        out.kind = RequestKind::kFlows;
        auto q = req.getFlows();
        FM_ASSIGN_OR_RETURN(out.filter, FromCapnp(q.getFilter()));
        out.window.since_ns = q.getSinceNs();
        out.window.until_ns = q.getUntilNs();
        if (out.window.until_ns < out.window.since_ns)
          return InvalidArgument("flows: the window ends before it starts");
        out.limit = q.getLimit();
        return out;
      }
      case s::Request::ENDPOINTS: out.kind = RequestKind::kEndpoints; return out;
      case s::Request::PEERS: out.kind = RequestKind::kPeers; return out;
      case s::Request::MESH_ENDPOINTS: out.kind = RequestKind::kMeshEndpoints; return out;
      case s::Request::KEYS: {
        out.kind = RequestKind::kKeys;
        auto k = req.getKeys();
        switch (k.getOp()) {
          case s::KeyOp::LIST: out.key_op = KeyOp::kList; break;
          case s::KeyOp::INSTALL: out.key_op = KeyOp::kInstall; break;
          case s::KeyOp::USE: out.key_op = KeyOp::kUse; break;
          case s::KeyOp::REMOVE: out.key_op = KeyOp::kRemove; break;
          default: return InvalidArgument("keys: unknown operation (is meshctl newer than meshd?)");
        }
        out.key = k.getKey();
        return out;
      }
      case s::Request::LOOK: {
        out.kind = RequestKind::kLook;
        FM_ASSIGN_OR_RETURN(out.look, FromCapnp(req.getLook()));
        return out;
      }
      case s::Request::MAP: {
        out.kind = RequestKind::kMap;
        FM_ASSIGN_OR_RETURN(out.map, FromCapnp(req.getMap()));
        return out;
      }
    }
    return InvalidArgument("unknown request " + std::to_string(static_cast<int>(req.which())) +
                           " (is meshctl newer than meshd?)");
  } catch (const kj::Exception& e) {
    return InvalidArgument("malformed request: " + std::string(e.getDescription().cStr()));
  }
}

Result<ControlResponse> DecodeResponse(Frame& frame) {
  try {
    auto resp = frame.Root<s::Response>();
    ControlResponse out;
    std::vector<Workload> table;
    for (schema::Workload::Reader w : resp.getWorkloads())
      table.push_back(wire::WorkloadFromWire(w));
    switch (resp.which()) {
      case s::Response::ERROR:
        out.kind = ControlResponse::Kind::kError;
        out.error = resp.getError();
        return out;
      case s::Response::STATUS: {
        out.kind = ControlResponse::Kind::kStatus;
        FM_ASSIGN_OR_RETURN(out.status, FromCapnp(resp.getStatus()));
        return out;
      }
      case s::Response::CONNECTIONS: {
        out.kind = ControlResponse::Kind::kConnections;
        auto list = resp.getConnections();
        out.connections.reserve(list.size());
        for (s::Connection::Reader c : list) {
          FM_ASSIGN_OR_RETURN(OpenConnection conn, FromCapnp(c));
          out.connections.push_back(std::move(conn));
          FM_RETURN_IF_ERROR(AddWorkload(table, c.getProcess().getWorkload(), &out.workloads));
        }
        return out;
      }
      case s::Response::EVENT: {
        out.kind = ControlResponse::Kind::kEvent;
        FM_ASSIGN_OR_RETURN(out.event, FromCapnp(resp.getEvent()));
        FM_RETURN_IF_ERROR(
            AddWorkload(table, resp.getEvent().getProcess().getWorkload(), &out.workloads));
        return out;
      }
      case s::Response::WATCH_DROPPED:
        out.kind = ControlResponse::Kind::kWatchDropped;
        out.dropped = resp.getWatchDropped();
        return out;
      case s::Response::RECORDS: {
        out.kind = ControlResponse::Kind::kRecords;
        auto batch = resp.getRecords();
        out.records.reserve(batch.getRecords().size());
        for (s::Record::Reader r : batch.getRecords()) {
          FM_ASSIGN_OR_RETURN(ConnRecord rec, FromCapnp(r));
          out.records.push_back(rec);
          FM_RETURN_IF_ERROR(AddWorkload(table, r.getProcess().getWorkload(), &out.workloads));
        }
        out.done = batch.getDone();
        out.truncated = batch.getTruncated();
        return out;
      }
      case s::Response::ENDPOINTS: {
        out.kind = ControlResponse::Kind::kEndpoints;
        for (s::EndpointInfo::Reader e : resp.getEndpoints()) {
          FM_ASSIGN_OR_RETURN(EndpointView view, FromCapnp(e));
          out.endpoints.push_back(std::move(view));
        }
        return out;
      }
      case s::Response::PEERS: {
        out.kind = ControlResponse::Kind::kPeers;
        for (s::PeerInfo::Reader r : resp.getPeers()) {
          PeerView p;
          p.name = r.getName();
          p.addr = r.getAddr();
          p.state = r.getState();
          p.incarnation = r.getIncarnation();
          p.endpoints = r.getEndpoints();
          p.state_change_ns = r.getStateChangeNs();
          p.generation = r.getGeneration();
          p.node_id = r.getNodeId();
          out.peers.push_back(std::move(p));
        }
        return out;
      }
      case s::Response::KEYS: {
        out.kind = ControlResponse::Kind::kKeys;
        for (s::NodeKeys::Reader n : resp.getKeys()) {
          NodeKeys nk;
          nk.node = n.getNode();
          nk.error = n.getError();
          for (s::KeyState::Reader k : n.getKeys())
            nk.keys.push_back(KeyState{k.getFingerprint(), k.getPrimary()});
          out.keys.push_back(std::move(nk));
        }
        return out;
      }
      case s::Response::LOOK: {
        out.kind = ControlResponse::Kind::kLook;
        FM_ASSIGN_OR_RETURN(out.look, FromCapnp(resp.getLook()));
        return out;
      }
      case s::Response::MAP: {
        out.kind = ControlResponse::Kind::kMap;
        FM_ASSIGN_OR_RETURN(out.map, FromCapnp(resp.getMap()));
        return out;
      }
    }
    return InvalidArgument("unknown response " + std::to_string(static_cast<int>(resp.which())) +
                           " (is meshd newer than meshctl?)");
  } catch (const kj::Exception& e) {
    return InvalidArgument("malformed response: " + std::string(e.getDescription().cStr()));
  }
}

}  // namespace flowmesh
