// KeyRotation: meshctl keys across the mesh, and a member's side of it.
#include "node/mesh/key_rotation.h"

#include <algorithm>
#include <asio/post.hpp>
#include <chrono>
#include <future>
#include <memory>

#include "node/common/clock.h"

namespace flowmesh::mesh {
namespace {

// How long each member has to apply a key operation.
constexpr int64_t kKeyOpTimeoutNs = 5'000'000'000;
constexpr auto kMeshThreadTimeout = std::chrono::seconds(2);

bool Live(const MemberView& m) {
  return m.state == MemberState::kAlive || m.state == MemberState::kSuspect;
}

}  // namespace

KeyRotation::KeyRotation(KeyRotationOptions options, Keyring& keyring, asio::io_context& mesh,
                         asio::thread_pool& workers,
                         std::function<std::vector<MemberView>()> members, Sender send)
    : options_(std::move(options)),
      keyring_(keyring),
      mesh_(mesh),
      workers_(workers),
      members_(std::move(members)),
      send_(std::move(send)) {}

void KeyRotation::Serve(const KeyRequestMsg& request,
                        std::function<void(Result<KeyResponseMsg>)> reply) {
  if (request.recipient != options_.node_name) {
    misaddressed_++;
    std::string why = request.recipient.empty()
                          ? std::string("a key operation addressed to no member")
                          : "a key operation addressed to member '" + request.recipient + "'";
    uint64_t held = 0;
    if (misaddressed_log_.Allow(MonotonicNs(), &held))
      FM_LOG(Warn, "mesh") << "refused " << why << " (this is '" << options_.node_name
                           << "'): replayed from another member's traffic, or sent by a meshd "
                              "too old to address it; the keyring is unchanged"
                           << (held ? " (and " + std::to_string(held) + " more since)" : "");
    return reply(
        PermissionDenied("refused " + why + "; this member is '" + options_.node_name + "'"));
  }
  Apply(request.op, request.key,
        [reply = std::move(reply)](Status st, std::vector<KeyInfo> keys) {
          KeyResponseMsg answer;
          if (!st.ok()) answer.error = st.message().empty() ? "failed" : st.message();
          for (const KeyInfo& k : keys) answer.fingerprints.push_back(k.fingerprint);
          reply(std::move(answer));
        });
}

void KeyRotation::Apply(KeyOp op, const Key& key,
                        std::function<void(Status, std::vector<KeyInfo>)> done) {
  if (options_.insecure)
    return done(Unavailable("this node runs unsealed (--insecure): it has no keys"), {});
  Status st = Status::Ok();
  switch (op) {
    case KeyOp::kList: break;
    case KeyOp::kInstall: st = keyring_.Install(key); break;
    case KeyOp::kUse: st = keyring_.Use(key); break;
    case KeyOp::kRemove: st = keyring_.Remove(key); break;
  }
  std::vector<KeyInfo> keys = keyring_.List();
  if (!st.ok() || op == KeyOp::kList || options_.key_file.empty())
    return done(st, std::move(keys));
  // The file is written off the mesh thread (it fsyncs); the answer waits for
  // it, so a member that says "done" has the rotation on disk.
  FM_LOG(Info, "mesh") << "keyring changed by meshctl keys; now " << keys.size()
                       << " key(s), primary " << keys.front().fingerprint;
  asio::post(workers_,
             [this, ring = keyring_, keys = std::move(keys), done = std::move(done)]() mutable {
               Status saved = SaveKeyringFile(options_.key_file, ring);
               if (!saved.ok())
                 saved = saved.WithContext("the keyring changed in memory but was not saved");
               asio::post(mesh_, [saved, keys = std::move(keys), done = std::move(done)]() mutable {
                 done(saved, std::move(keys));
               });
             });
}

Result<Key> KeyRotation::Resolve(KeyOp op, const std::string& text) {
  if (op == KeyOp::kList) return Key{};
  Result<Key> decoded = DecodeKey(text);
  if (decoded.ok() || op == KeyOp::kInstall) return decoded;
  // use and remove also take a fingerprint prefix of a key this node has.
  auto found = std::make_shared<std::promise<Result<Key>>>();
  std::future<Result<Key>> f = found->get_future();
  asio::post(mesh_, [this, found, text] { found->set_value(keyring_.FindByFingerprint(text)); });
  if (f.wait_for(kMeshThreadTimeout) != std::future_status::ready)
    return Unavailable("the mesh thread did not answer");
  Result<Key> k = f.get();
  if (!k.ok())
    return InvalidArgument("'" + text +
                           "' is neither a base64 key nor the fingerprint of a "
                           "key this node has (" +
                           k.status().message() + "); see meshctl keys list");
  return k;
}

Result<std::vector<MemberKeys>> KeyRotation::Run(KeyOp op, const std::string& text) {
  if (options_.insecure)
    return Unavailable(
        "this mesh runs unsealed (--insecure): there are no keys to rotate; start every meshd "
        "with --cluster-key-file FILE");
  FM_ASSIGN_OR_RETURN(Key key, Resolve(op, text));

  // The others first: after `use`, this node seals with the new key, and
  // after `remove` it no longer reads the old one.
  std::vector<MemberView> others;
  std::vector<ScatterGather<KeyRequestMsg, KeyResponseMsg>::Target> targets;
  for (const MemberView& m : members_()) {
    if (m.name == options_.node_name || !Live(m)) continue;
    others.push_back(m);
    // Each request names its member, so one captured on its way to this
    // member cannot be replayed to another.
    targets.push_back({m.address, KeyRequestMsg{op, key, m.name}});
  }
  auto replies = ScatterGather<KeyRequestMsg, KeyResponseMsg>::Run(std::move(targets), send_,
                                                                   kKeyOpTimeoutNs);
  std::vector<MemberKeys> out;
  for (size_t i = 0; i < others.size(); i++) {
    MemberKeys mk{others[i].name, "", {}};
    if (!replies[i].has_value()) {
      mk.error = "no answer within " + std::to_string(kKeyOpTimeoutNs / 1'000'000'000) + "s";
    } else if (!replies[i]->ok()) {
      mk.error = replies[i]->status().message();
    } else if (!(*replies[i])->error.empty()) {
      mk.error = (*replies[i])->error;
    } else {
      for (const std::string& f : (*replies[i])->fingerprints)
        mk.keys.push_back(KeyInfo{f, mk.keys.empty()});
    }
    out.push_back(std::move(mk));
  }

  // Then here.
  auto mine = std::make_shared<std::promise<MemberKeys>>();
  std::future<MemberKeys> f = mine->get_future();
  asio::post(mesh_, [this, op, key, mine] {
    Apply(op, key, [this, mine](Status st, std::vector<KeyInfo> keys) {
      mine->set_value(MemberKeys{options_.node_name, st.ok() ? "" : st.message(), std::move(keys)});
    });
  });
  MemberKeys self{options_.node_name, "", {}};
  if (f.wait_for(std::chrono::seconds(5)) == std::future_status::ready)
    self = f.get();
  else
    self.error = "the mesh thread did not answer";
  out.push_back(std::move(self));
  std::sort(out.begin(), out.end(),
            [](const MemberKeys& a, const MemberKeys& b) { return a.node < b.node; });
  return out;
}

}  // namespace flowmesh::mesh
