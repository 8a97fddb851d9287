// look_wire: look's batches of questions and answers in Cap'n Proto.
#include "node/look/look_wire.h"

#include "node/look/look_wire_parts.h"

namespace flowmesh {
namespace q = schema::query;
using wire::AddrFromWire;

namespace look_wire {

void SetClients(capnp::List<q::ClientEdge>::Builder list, const std::vector<ClientEdge>& edges) {
  for (unsigned i = 0; i < edges.size(); i++) {
    wire::AddrToWire(edges[i].addr, list[i].initAddr());
    wire::FlowStatsToWire(edges[i].stats, list[i].initStats());
    wire::EndpointToWire(edges[i].endpoint, list[i].initEndpoint());
  }
}

Result<std::vector<ClientEdge>> GetClients(capnp::List<q::ClientEdge>::Reader list) {
  std::vector<ClientEdge> out(list.size());
  for (unsigned i = 0; i < list.size(); i++) {
    FM_ASSIGN_OR_RETURN(out[i].addr, AddrFromWire(list[i].getAddr().getBytes(), "client address"));
    out[i].stats = wire::FlowStatsFromWire(list[i].getStats());
    FM_ASSIGN_OR_RETURN(out[i].endpoint, wire::EndpointFromWire(list[i].getEndpoint()));
  }
  return out;
}

// NAT's fields are absent when there was no translation (and from nodes of
// before): that reads as port 0.
Result<Endpoint> OptionalEndpoint(bool has, schema::Endpoint::Reader e) {
  if (!has) return Endpoint{};
  return wire::EndpointFromWire(e);
}

void SetDependencies(capnp::List<q::DependencyEdge>::Builder list,
                     const std::vector<DependencyEdge>& edges) {
  for (unsigned i = 0; i < edges.size(); i++) {
    wire::EndpointToWire(edges[i].remote, list[i].initRemote());
    wire::FlowStatsToWire(edges[i].stats, list[i].initStats());
    if (edges[i].via.port != 0) wire::EndpointToWire(edges[i].via, list[i].initVia());
  }
}

Result<std::vector<DependencyEdge>> GetDependencies(capnp::List<q::DependencyEdge>::Reader list) {
  std::vector<DependencyEdge> out(list.size());
  for (unsigned i = 0; i < list.size(); i++) {
    FM_ASSIGN_OR_RETURN(out[i].remote, wire::EndpointFromWire(list[i].getRemote()));
    out[i].stats = wire::FlowStatsFromWire(list[i].getStats());
    FM_ASSIGN_OR_RETURN(out[i].via, OptionalEndpoint(list[i].hasVia(), list[i].getVia()));
  }
  return out;
}

void SetEndpoints(capnp::List<schema::Endpoint>::Builder list, const std::vector<Endpoint>& eps) {
  for (unsigned i = 0; i < eps.size(); i++) wire::EndpointToWire(eps[i], list[i]);
}

Result<std::vector<Endpoint>> GetEndpoints(capnp::List<schema::Endpoint>::Reader list) {
  std::vector<Endpoint> out;
  out.reserve(list.size());
  for (schema::Endpoint::Reader e : list) {
    FM_ASSIGN_OR_RETURN(Endpoint ep, wire::EndpointFromWire(e));
    out.push_back(ep);
  }
  return out;
}

Result<std::vector<uint8_t>> Flatten(capnp::MallocMessageBuilder& message, const char* what) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  kj::ArrayPtr<const kj::byte> bytes = words.asBytes();
  if (bytes.size() > kMaxQueryBytes)
    return Status(Status::Code::kResourceExhausted,
                  std::string(what) + " of " + std::to_string(bytes.size()) +
                      " bytes is over the " + std::to_string(kMaxQueryBytes) +
                      "-byte cap; narrow the window (--since/--until)");
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

q::GroupBy GroupByToWire(GroupBy g) {
  switch (g) {
    case GroupBy::kWorkload: return q::GroupBy::WORKLOAD;
    case GroupBy::kPgid: return q::GroupBy::PGID;
    case GroupBy::kPid: return q::GroupBy::PID;
  }
  return q::GroupBy::WORKLOAD;
}

Result<GroupBy> GroupByFromWire(q::GroupBy g, const char* what) {
  switch (g) {
    case q::GroupBy::PGID: return GroupBy::kPgid;
    case q::GroupBy::WORKLOAD: return GroupBy::kWorkload;
    case q::GroupBy::PID: return GroupBy::kPid;
  }
  return InvalidArgument(std::string("malformed ") + what + ": unknown grouping");
}

}  // namespace look_wire

using namespace look_wire;  // NOLINT: this file defines them

Result<std::vector<uint8_t>> EncodeQuery(const QueryBatch& batch) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<q::NodeQuery>().initLook();
  root.setSinceNs(batch.window.since_ns);
  root.setUntilNs(batch.window.until_ns);
  auto list = root.initQuestions(static_cast<unsigned>(batch.questions.size()));
  for (unsigned i = 0; i < batch.questions.size(); i++) {
    const LookQuestion& in = batch.questions[i];
    switch (in.kind) {
      case LookQuestion::Kind::kDescribe: list[i].setKind(q::Kind::DESCRIBE); break;
      case LookQuestion::Kind::kClients: list[i].setKind(q::Kind::CLIENTS); break;
      case LookQuestion::Kind::kActive: list[i].setKind(q::Kind::ACTIVE); break;
    }
    wire::EndpointToWire(in.endpoint, list[i].initEndpoint());
    wire::AddrToWire(in.from, list[i].initAddr());
    list[i].setGroupBy(GroupByToWire(in.group_by));
  }
  return Flatten(message, "look query");
}

Result<QueryBatch> DecodeQuery(std::span<const uint8_t> bytes) {
  return Read<q::NodeQuery, QueryBatch>(
      bytes, "look query", [](q::NodeQuery::Reader envelope, QueryBatch* out) -> Status {
        q::QueryRequest::Reader r = envelope.getLook();
        out->window.since_ns = r.getSinceNs();
        out->window.until_ns = r.getUntilNs();
        for (q::Question::Reader in : r.getQuestions()) {
          LookQuestion question;
          switch (in.getKind()) {
            case q::Kind::DESCRIBE: question.kind = LookQuestion::Kind::kDescribe; break;
            case q::Kind::CLIENTS: question.kind = LookQuestion::Kind::kClients; break;
            case q::Kind::ACTIVE: question.kind = LookQuestion::Kind::kActive; break;
            default: return InvalidArgument("malformed look query: unknown question kind");
          }
          FM_ASSIGN_OR_RETURN(question.group_by, GroupByFromWire(in.getGroupBy(), "look query"));
          FM_ASSIGN_OR_RETURN(question.endpoint, wire::EndpointFromWire(in.getEndpoint()));
          FM_ASSIGN_OR_RETURN(question.from, AddrFromWire(in.getAddr().getBytes(), "address"));
          out->questions.push_back(std::move(question));
        }
        return Status::Ok();
      });
}

Result<std::vector<uint8_t>> EncodeAnswers(const std::vector<LookAnswer>& answers) {
  capnp::MallocMessageBuilder message;
  auto list = message.initRoot<q::NodeAnswer>().initLook().initAnswers(
      static_cast<unsigned>(answers.size()));
  for (unsigned i = 0; i < answers.size(); i++) {
    const LookAnswer& a = answers[i];
    q::Answer::Builder b = list[i];
    if (!a.status.ok()) {
      b.setError(a.status.message().empty() ? "failed" : a.status.message());
      continue;
    }
    const EndpointDescription& d = a.description;
    if (d.found) {
      auto db = b.initDescription();
      db.setFound(true);
      wire::EndpointToWire(d.endpoint, db.initEndpoint());
      wire::DetailsToWire(d.process, db.initProcess());
      SetClients(db.initClients(static_cast<unsigned>(d.clients.size())), d.clients);
      SetDependencies(db.initDependencies(static_cast<unsigned>(d.dependencies.size())),
                      d.dependencies);
      if (d.listener.port != 0) wire::EndpointToWire(d.listener, db.initListener());
      db.setBalancer(d.balancer);
      SetEndpoints(db.initAliases(static_cast<unsigned>(d.aliases.size())), d.aliases);
    }
    size_t n = a.clients.size() + a.active.size();
    auto procs = b.initProcesses(static_cast<unsigned>(n));
    unsigned k = 0;
    for (const ClientProcess& cp : a.clients) {
      auto pb = procs[k++];
      wire::DetailsToWire(cp.process, pb.initProcess());
      wire::FlowStatsToWire(cp.stats, pb.initStats());
      SetEndpoints(pb.initEndpoints(static_cast<unsigned>(cp.endpoints.size())), cp.endpoints);
      SetClients(pb.initClients(static_cast<unsigned>(cp.clients.size())), cp.clients);
      pb.setBalancer(cp.balancer);
      if (cp.via.port != 0) wire::EndpointToWire(cp.via, pb.initVia());
    }
    for (const ActiveProcess& ap : a.active) {
      auto pb = procs[k++];
      wire::DetailsToWire(ap.process, pb.initProcess());
      wire::FlowStatsToWire(ap.stats, pb.initStats());
      SetDependencies(pb.initDependencies(static_cast<unsigned>(ap.dependencies.size())),
                      ap.dependencies);
    }
  }
  return Flatten(message, "look answer");
}

Result<std::vector<LookAnswer>> DecodeAnswers(std::span<const uint8_t> bytes,
                                              const std::vector<LookQuestion>& asked) {
  return Read<q::NodeAnswer, std::vector<LookAnswer>>(
      bytes, "look answer",
      [&asked](q::NodeAnswer::Reader envelope, std::vector<LookAnswer>* out) -> Status {
        q::QueryResponse::Reader r = envelope.getLook();
        auto list = r.getAnswers();
        if (list.size() != asked.size())
          return InvalidArgument("malformed look answer: " + std::to_string(list.size()) +
                                 " answers to " + std::to_string(asked.size()) + " questions");
        out->resize(list.size());
        for (unsigned i = 0; i < list.size(); i++) {
          q::Answer::Reader in = list[i];
          LookAnswer& a = (*out)[i];
          if (in.hasError() && in.getError().size() > 0) {
            a.status = Unavailable(std::string(in.getError().cStr()));
            continue;
          }
          switch (asked[i].kind) {
            case LookQuestion::Kind::kDescribe: {
              if (!in.hasDescription()) break;
              auto d = in.getDescription();
              a.description.found = d.getFound();
              FM_ASSIGN_OR_RETURN(a.description.endpoint, wire::EndpointFromWire(d.getEndpoint()));
              a.description.process = wire::DetailsFromWire(d.getProcess());
              FM_ASSIGN_OR_RETURN(a.description.clients, GetClients(d.getClients()));
              FM_ASSIGN_OR_RETURN(a.description.dependencies, GetDependencies(d.getDependencies()));
              FM_ASSIGN_OR_RETURN(a.description.listener,
                                  OptionalEndpoint(d.hasListener(), d.getListener()));
              a.description.balancer = d.getBalancer();
              FM_ASSIGN_OR_RETURN(a.description.aliases, GetEndpoints(d.getAliases()));
              break;
            }
            case LookQuestion::Kind::kClients:
              for (q::Process::Reader p : in.getProcesses()) {
                ClientProcess cp;
                cp.process = wire::DetailsFromWire(p.getProcess());
                cp.stats = wire::FlowStatsFromWire(p.getStats());
                FM_ASSIGN_OR_RETURN(cp.endpoints, GetEndpoints(p.getEndpoints()));
                FM_ASSIGN_OR_RETURN(cp.clients, GetClients(p.getClients()));
                cp.balancer = p.getBalancer();
                FM_ASSIGN_OR_RETURN(cp.via, OptionalEndpoint(p.hasVia(), p.getVia()));
                a.clients.push_back(std::move(cp));
              }
              break;
            case LookQuestion::Kind::kActive:
              for (q::Process::Reader p : in.getProcesses()) {
                ActiveProcess ap;
                ap.process = wire::DetailsFromWire(p.getProcess());
                ap.stats = wire::FlowStatsFromWire(p.getStats());
                FM_ASSIGN_OR_RETURN(ap.dependencies, GetDependencies(p.getDependencies()));
                a.active.push_back(std::move(ap));
              }
              break;
          }
        }
        return Status::Ok();
      });
}

}  // namespace flowmesh
