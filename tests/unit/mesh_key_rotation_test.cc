// Key rotation: its messages ride the mesh's exchanges (told apart from look
// queries), a member refuses an operation addressed to another, and meshctl
// keys gathers every live member's keyring, this node's last, by name.
#include "node/mesh/key_rotation.h"

#include <gtest/gtest.h>

#include <asio/executor_work_guard.hpp>
#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <thread>

#include "node/mesh/wire.h"
#include "schema/mesh.capnp.h"

namespace flowmesh::mesh {
namespace {

Key K(uint8_t fill) {
  Key k;
  k.fill(fill);
  return k;
}

TEST(KeyWire, KeyOperationsRoundTripAndAreToldApartFromLook) {
  Result<Key> key = GenerateKey();
  ASSERT_TRUE(key.ok());
  Result<Bytes> req = EncodeExchangeRequest(KeyRequestMsg{KeyOp::kUse, *key, "cache-1"});
  ASSERT_TRUE(req.ok());
  Result<ExchangeRequestMsg> back = DecodeExchangeRequest(*req);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  auto* k = std::get_if<KeyRequestMsg>(&*back);
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->op, KeyOp::kUse);
  EXPECT_EQ(k->key, *key);
  // The member it is for travels with it (a cross-node replay is refused on it).
  EXPECT_EQ(k->recipient, "cache-1");
  // A look query is not a key request.
  Result<Bytes> look = EncodeExchangeRequest(QueryMsg{{1, 2, 3}});
  ASSERT_TRUE(look.ok());
  Result<ExchangeRequestMsg> q = DecodeExchangeRequest(*look);
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(std::holds_alternative<QueryMsg>(*q));

  Result<Bytes> ok = EncodeExchangeResponse(KeyResponseMsg{"", {"1a2b3c4d", "99887766"}});
  ASSERT_TRUE(ok.ok());
  Result<ExchangeResponseMsg> got = DecodeExchangeResponse(*ok);
  ASSERT_TRUE(got.ok());
  auto* ring = std::get_if<KeyResponseMsg>(&*got);
  ASSERT_NE(ring, nullptr);
  EXPECT_EQ(ring->fingerprints, (std::vector<std::string>{"1a2b3c4d", "99887766"}));
  EXPECT_EQ(ring->error, "");
  Result<Bytes> failed = EncodeExchangeResponse(KeyResponseMsg{"cannot remove the primary key", {}});
  ASSERT_TRUE(failed.ok());
  Result<ExchangeResponseMsg> err = DecodeExchangeResponse(*failed);
  ASSERT_TRUE(err.ok());
  EXPECT_EQ(std::get<KeyResponseMsg>(*err).error, "cannot remove the primary key");
}

TEST(KeyWire, AKeyOfTheWrongLengthIsMalformed) {
  capnp::MallocMessageBuilder m;
  auto keys = m.initRoot<schema::mesh::ExchangeRequest>().initKeys();
  keys.setOp(schema::mesh::KeyOp::INSTALL);
  keys.setRecipient("a");
  std::vector<uint8_t> half(16, 7);
  keys.setKey(kj::arrayPtr(half.data(), half.size()));
  kj::VectorOutputStream out;
  capnp::writePackedMessage(out, m);
  auto bytes = out.getArray();
  Result<ExchangeRequestMsg> r = DecodeExchangeRequest(std::span(bytes.begin(), bytes.size()));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("16"), std::string::npos) << r.status().message();
  EXPECT_EQ(CheckOf(r.status()), WireCheck::kBadValue);
  // A list request carries no key: it decodes without one.
  Result<Bytes> list = EncodeExchangeRequest(KeyRequestMsg{KeyOp::kList, {}, "a"});
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(DecodeExchangeRequest(*list).ok());
}

// A member with a keyring of K(1), its mesh thread, and members `members_`
// asked through `send_`.
class KeyRotationTest : public ::testing::Test {
 protected:
  KeyRotationTest() : ring_(*Keyring::FromKeys({K(1)})) {
    thread_ = std::thread([this] {
      auto guard = asio::make_work_guard(io_);
      io_.run();
    });
    rotation_ = std::make_unique<KeyRotation>(
        KeyRotationOptions{"web-1", "", false}, ring_, io_, workers_,
        [this] { return members_; },
        [this](const Address& to, KeyRequestMsg request, int64_t,
               std::function<void(Result<KeyResponseMsg>)> done) {
          asked_.push_back(to + " " + request.recipient);
          if (to == "10.0.0.3:7946") return done(Unavailable("connection refused"));
          done(KeyResponseMsg{"", {Fingerprint(request.key), Fingerprint(K(1))}});
        });
  }
  ~KeyRotationTest() override {
    io_.stop();
    thread_.join();
    workers_.join();
  }

  MemberView Member(const char* name, const char* addr, MemberState state) {
    MemberView m;
    m.name = name;
    m.address = addr;
    m.state = state;
    return m;
  }

  asio::io_context io_;
  asio::thread_pool workers_{1};
  std::thread thread_;
  Keyring ring_;
  std::unique_ptr<KeyRotation> rotation_;
  std::vector<MemberView> members_;
  std::vector<std::string> asked_;
};

TEST_F(KeyRotationTest, AMemberRefusesAnOperationAddressedToAnother) {
  std::optional<Result<KeyResponseMsg>> reply;
  rotation_->Serve(KeyRequestMsg{KeyOp::kInstall, K(2), "cache-1"},
                   [&](Result<KeyResponseMsg> r) { reply = std::move(r); });
  ASSERT_TRUE(reply.has_value());
  ASSERT_FALSE(reply->ok());
  EXPECT_EQ(reply->status().code(), Status::Code::kPermissionDenied);
  EXPECT_NE(reply->status().message().find("'cache-1'"), std::string::npos);
  EXPECT_EQ(rotation_->misaddressed(), 1u);
  EXPECT_EQ(ring_.size(), 1u);  // unchanged

  rotation_->Serve(KeyRequestMsg{KeyOp::kInstall, K(2), "web-1"},
                   [&](Result<KeyResponseMsg> r) { reply = std::move(r); });
  ASSERT_TRUE(reply->ok());
  EXPECT_EQ((*reply)->fingerprints,
            (std::vector<std::string>{Fingerprint(K(1)), Fingerprint(K(2))}));
  EXPECT_EQ(rotation_->misaddressed(), 1u);
}

TEST_F(KeyRotationTest, EveryLiveMemberIsAskedAndThisNodeAppliesItLast) {
  members_ = {Member("web-1", "10.0.0.1:7946", MemberState::kAlive),
              Member("app-1", "10.0.0.2:7946", MemberState::kSuspect),
              Member("db-1", "10.0.0.3:7946", MemberState::kAlive),
              Member("old-1", "10.0.0.9:7946", MemberState::kDead)};
  Result<std::vector<MemberKeys>> got = rotation_->Run(KeyOp::kInstall, EncodeKey(K(2)));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  // Each request names its member; neither this node nor a dead one is asked.
  EXPECT_EQ(asked_, (std::vector<std::string>{"10.0.0.2:7946 app-1", "10.0.0.3:7946 db-1"}));
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[0].node, "app-1");
  ASSERT_EQ((*got)[0].keys.size(), 2u);
  EXPECT_TRUE((*got)[0].keys[0].primary);
  EXPECT_FALSE((*got)[0].keys[1].primary);
  EXPECT_EQ((*got)[1].node, "db-1");
  EXPECT_EQ((*got)[1].error, "connection refused");
  EXPECT_EQ((*got)[2].node, "web-1");
  EXPECT_EQ((*got)[2].error, "");
  EXPECT_EQ((*got)[2].keys.size(), 2u);
  // use and remove also take a fingerprint prefix of a key this node has.
  got = rotation_->Run(KeyOp::kUse, Fingerprint(K(2)).substr(0, 6));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->back().keys.at(0).fingerprint, Fingerprint(K(2)));
  EXPECT_FALSE(rotation_->Run(KeyOp::kRemove, "zzzz").ok());
}

TEST_F(KeyRotationTest, AnUnsealedNodeHasNoKeysToRotate) {
  KeyRotation unsealed(KeyRotationOptions{"web-1", "", true}, ring_, io_, workers_,
                       [] { return std::vector<MemberView>{}; }, nullptr);
  Result<std::vector<MemberKeys>> got = unsealed.Run(KeyOp::kList, "");
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("unsealed"), std::string::npos);
}

}  // namespace
}  // namespace flowmesh::mesh
