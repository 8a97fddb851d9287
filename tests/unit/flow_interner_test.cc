// Interner: one shared copy per distinct value, counted, ids reused only
// once nothing holds them.
#include "node/flow/interner.h"

#include <gtest/gtest.h>

#include <string>

namespace flowmesh {
namespace {

using Strings = Interner<std::string, std::hash<std::string>>;

TEST(Interner, EqualValuesShareOneIdAndTheEmptyValueIsZero) {
  Strings in;
  EXPECT_EQ(in.Intern(""), 0u);
  EXPECT_EQ(in.Get(0), "");
  uint32_t a = in.Intern("nginx");
  uint32_t b = in.Intern("nginx");
  uint32_t c = in.Intern("curl");
  EXPECT_NE(a, 0u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(in.Get(a), "nginx");
  EXPECT_EQ(in.Get(c), "curl");
  EXPECT_EQ(in.size(), 2u);
  in.Release(0);  // nothing to release
  EXPECT_EQ(in.size(), 2u);
}

TEST(Interner, AValueNoOneHoldsKeepsItsIdUntilManyAreUnheld) {
  Strings in;
  uint32_t a = in.Intern("nginx");
  in.Intern("nginx");
  in.Release(a);
  EXPECT_EQ(in.Get(a), "nginx") << "one holder left";
  EXPECT_EQ(in.size(), 1u);
  in.Release(a);
  EXPECT_EQ(in.size(), 0u);
  in.Intern("postgres");
  EXPECT_EQ(in.Intern("nginx"), a) << "kept while few are unheld: the same id again";
  EXPECT_EQ(in.Get(a), "nginx");
  EXPECT_EQ(in.size(), 2u);
}

// Churn: values come and go one at a time; unheld ones are forgotten in
// sweeps, their ids reused, so the ids stay bounded and held values intact.
TEST(Interner, ChurnReusesIdsAndKeepsWhatIsHeld) {
  Strings in;
  const uint32_t kept = in.Intern("kept");
  for (int i = 0; i < 20000; i++) {
    uint32_t id = in.Intern("conn-" + std::to_string(i));
    EXPECT_EQ(in.Get(id), "conn-" + std::to_string(i));
    in.Release(id);
  }
  EXPECT_LE(in.slots(), Strings::kMinUnused + 2);
  EXPECT_EQ(in.size(), 1u);
  EXPECT_EQ(in.Get(kept), "kept");
  EXPECT_EQ(in.Intern("kept"), kept);
  // A value forgotten in a sweep is a new value, with a valid id.
  uint32_t again = in.Intern("conn-0");
  EXPECT_EQ(in.Get(again), "conn-0");
  EXPECT_EQ(in.Get(kept), "kept");
}

TEST(Interner, ReplaceToTheSameValueKeepsTheId) {
  Strings in;
  uint32_t id = in.Intern("nginx");
  const uint32_t before = id;
  in.Replace(&id, "nginx");
  EXPECT_EQ(id, before);
  EXPECT_EQ(in.size(), 1u);
  in.Replace(&id, "curl");
  EXPECT_EQ(in.Get(id), "curl");
  EXPECT_EQ(in.size(), 1u) << "nginx had no other holder";
  EXPECT_NE(id, before);
  in.Replace(&id, "");
  EXPECT_EQ(id, 0u);
  EXPECT_EQ(in.size(), 0u);
}

}  // namespace
}  // namespace flowmesh
