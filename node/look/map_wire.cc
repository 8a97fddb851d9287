// map_wire: the map's member query and answer in Cap'n Proto.
#include "node/look/map_wire.h"

#include "node/look/local_directory.h"
#include "node/look/look_wire_parts.h"
#include "node/look/map_types.h"

namespace flowmesh {
namespace {

namespace q = schema::query;
using namespace look_wire;  // NOLINT: the shared converters

Result<std::vector<uint8_t>> EncodeEntries(const MemberMap& map) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<q::NodeAnswer>().initMap();
  root.setTruncated(map.truncated);
  auto list = root.initEntries(static_cast<unsigned>(map.entries.size()));
  for (unsigned i = 0; i < map.entries.size(); i++) {
    const MapEntry& e = map.entries[i];
    auto b = list[i];
    if (!e.balancer) wire::DetailsToWire(e.process, b.initProcess());
    b.setBalancer(e.balancer);
    b.setAgent(e.agent);
    wire::FlowStatsToWire(e.stats, b.initStats());
    SetEndpoints(b.initEndpoints(static_cast<unsigned>(e.endpoints.size())), e.endpoints);
    SetClients(b.initClients(static_cast<unsigned>(e.clients.size())), e.clients);
    SetDependencies(b.initDependencies(static_cast<unsigned>(e.dependencies.size())),
                    e.dependencies);
  }
  return Flatten(message, "map answer");
}

}  // namespace

Result<std::vector<uint8_t>> EncodeMapQuery(const TimeWindow& w, GroupBy group_by) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<q::NodeQuery>().initMap();
  root.setSinceNs(w.since_ns);
  root.setUntilNs(w.until_ns);
  root.setGroupBy(GroupByToWire(group_by));
  return Flatten(message, "map query");
}

Result<std::optional<MapAsk>> DecodeMapQuery(std::span<const uint8_t> bytes) {
  return Read<q::NodeQuery, std::optional<MapAsk>>(
      bytes, "map query", [](q::NodeQuery::Reader envelope, std::optional<MapAsk>* out) -> Status {
        if (!envelope.hasMap()) return Status::Ok();
        q::MapRequest::Reader r = envelope.getMap();
        MapAsk ask;
        ask.window.since_ns = r.getSinceNs();
        ask.window.until_ns = r.getUntilNs();
        if (ask.window.until_ns < ask.window.since_ns)
          return InvalidArgument("malformed map query: the window ends before it begins");
        FM_ASSIGN_OR_RETURN(ask.group_by, GroupByFromWire(r.getGroupBy(), "map query"));
        *out = ask;
        return Status::Ok();
      });
}

Result<std::vector<uint8_t>> EncodeMapAnswer(const Result<MemberMap>& answer) {
  if (!answer.ok()) {
    capnp::MallocMessageBuilder message;
    const std::string& why = answer.status().message();
    message.initRoot<q::NodeAnswer>().initMap().setError(why.empty() ? "failed" : why);
    return Flatten(message, "map answer");
  }
  Result<std::vector<uint8_t>> bytes = EncodeEntries(*answer);
  if (bytes.ok() || bytes.status().code() != Status::Code::kResourceExhausted) return bytes;
  // Entries are busiest first: keep the busiest half until it fits.
  MemberMap cut = *answer;
  cut.truncated = true;
  while (!bytes.ok() && bytes.status().code() == Status::Code::kResourceExhausted &&
         !cut.entries.empty()) {
    cut.entries.resize(cut.entries.size() / 2);
    bytes = EncodeEntries(cut);
  }
  return bytes;
}

Result<MemberMap> DecodeMapAnswer(std::span<const uint8_t> bytes) {
  return Read<q::NodeAnswer, MemberMap>(
      bytes, "map answer", [](q::NodeAnswer::Reader envelope, MemberMap* out) -> Status {
        if (!envelope.hasMap())
          return Unavailable(std::string(kNoMapError) + " (an older version; upgrade it)");
        q::MapResponse::Reader r = envelope.getMap();
        if (r.hasError()) {
          // Read once: each read counts against the traversal limit.
          capnp::Text::Reader error = r.getError();
          if (error.size() > 0)
            return Unavailable(ClampMapText(std::string_view(error.cStr(), error.size()),
                                            kMaxMapPeerErrorBytes));
        }
        auto list = r.getEntries();
        if (list.size() > kMaxMapEntries)
          return InvalidArgument("malformed map answer: " + std::to_string(list.size()) +
                                 " entries, over the cap of " + std::to_string(kMaxMapEntries));
        size_t edges = 0;
        for (q::Process::Reader p : list)
          edges += p.getClients().size() + p.getDependencies().size() + p.getEndpoints().size();
        if (edges > kMaxMemberMapEdges)
          return InvalidArgument("malformed map answer: " + std::to_string(edges) +
                                 " edges and endpoints, over the cap of " +
                                 std::to_string(kMaxMemberMapEdges));
        out->truncated = r.getTruncated();
        out->entries.reserve(list.size());
        for (q::Process::Reader p : list) {
          MapEntry e;
          e.balancer = p.getBalancer();
          e.agent = p.getAgent();
          if (!e.balancer) e.process = wire::DetailsFromWire(p.getProcess());
          e.stats = wire::FlowStatsFromWire(p.getStats());
          FM_ASSIGN_OR_RETURN(e.endpoints, GetEndpoints(p.getEndpoints()));
          FM_ASSIGN_OR_RETURN(e.clients, GetClients(p.getClients()));
          FM_ASSIGN_OR_RETURN(e.dependencies, GetDependencies(p.getDependencies()));
          out->entries.push_back(std::move(e));
        }
        return Status::Ok();
      });
}

}  // namespace flowmesh
