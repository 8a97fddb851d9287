# Look's queries between nodes, inside a sealed mesh exchange (mesh.capnp
# ExchangeRequest.query): DESIGN.md "look": the origin of a walk sends each
# node of one level all its questions in one QueryRequest and gets one
# QueryResponse back. Every query is a NodeQuery and every answer a
# NodeAnswer. node/look/look_wire.cc reads these with tight ReaderOptions
# after checking the size against a cap.
@0xc4b0b3e1f27a9d51;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("flowmesh::schema::query");

using Common = import "common.capnp";
using Addr = Common.Addr;
using Endpoint = Common.Endpoint;

enum Kind {
  describe @0;             # "describe your endpoint": listener, clients, dependencies
  clients @1;              # "which of your processes connected to endpoint from addr"
  active @2;               # "which of your processes at addr connected anywhere"
}

# Which processes of a node are one (issue 15). pgid is 0, so a question of
# an older origin, which never sets it, is answered as it always was; an
# older node ignores it and groups by pgid.
enum GroupBy {
  pgid @0;                 # a process group (nginx's master and workers)
  workload @1;             # the unit or container across restarts; else the pgid
  pid @2;                  # each process alone
}

struct Question {
  kind @0 :Kind;
  endpoint @1 :Endpoint;   # describe: the endpoint; clients: the target
  addr @2 :Addr;           # clients: the client address; active: the host address
  groupBy @3 :GroupBy;
}

struct QueryRequest {
  sinceNs @0 :Int64;
  untilNs @1 :Int64;
  questions @2 :List(Question);
}

struct ClientEdge {
  addr @0 :Addr;
  stats @1 :Common.FlowStats;
  endpoint @2 :Endpoint;   # port 0 = not said
}

struct DependencyEdge {
  remote @0 :Endpoint;     # where the connections really went
  stats @1 :Common.FlowStats;
  via @2 :Endpoint;        # what was dialled, when the node's NAT translated it; port 0 = none
}

# Fields @5.. are NAT's (issue 14); an older node leaves them unset, which
# reads as "no translation".
struct Description {
  found @0 :Bool;
  endpoint @1 :Endpoint;
  process @2 :Common.ProcessDetails;
  clients @3 :List(ClientEdge);
  dependencies @4 :List(DependencyEdge);
  listener @5 :Endpoint;   # a published port resolved to this listener; port 0 = none
  balancer @6 :Bool;       # a balancer's front: dependencies are its backends
  aliases @7 :List(Endpoint);  # published ports that reach this listener
}

# A process (group) in a clients or active answer.
struct Process {
  process @0 :Common.ProcessDetails;
  stats @1 :Common.FlowStats;
  endpoints @2 :List(Endpoint);         # clients: where it listens
  clients @3 :List(ClientEdge);         # clients: who connected to those
  dependencies @4 :List(DependencyEdge);  # active: where it connected
  balancer @5 :Bool;       # clients: a balancer's forwarded connections, endpoints = its front
  via @6 :Endpoint;        # clients: the process dialled this, its node's NAT sent it to the target
  agent @7 :Bool;          # map: the answering meshd itself (drawn only when something called it)
}

struct Answer {
  error @0 :Text;          # non-empty: this question failed on the node
  description @1 :Description;
  processes @2 :List(Process);
}

struct QueryResponse {
  answers @0 :List(Answer);  # one per question, in order
}

# ---- The envelope ----

# Key operations travel in mesh.capnp's exchanges. Without a union, `look`
# keeps the pointer it had when a union here also held them, so look queries
# of older and newer nodes read the same.
# `meshctl map` (issue 16): "your part of the map in this window". A node of
# before reads a query with only `map` set as a look query without questions
# and answers an empty look; the asker, finding no `map` in the answer, says
# the member runs a meshd without map.
struct MapRequest {
  sinceNs @0 :Int64;
  untilNs @1 :Int64;
  groupBy @2 :GroupBy;
}

# One Process per process group (endpoints: where it listened; clients: who
# connected to those; dependencies: where it connected) and one per balancer
# front (balancer set, endpoints: the front, dependencies: its backends).
struct MapResponse {
  error @0 :Text;          # non-empty: the node could not read its map
  entries @1 :List(Process);
  truncated @2 :Bool;      # it had more than an answer may carry
}

struct NodeQuery {
  look @0 :QueryRequest;
  map @1 :MapRequest;      # set: a map query (look is then empty)
}

struct NodeAnswer {
  look @0 :QueryResponse;
  map @1 :MapResponse;     # the answer to a map query
}
