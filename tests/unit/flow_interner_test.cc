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

TEST(Interner, AnIdOutlivesAllButItsLastReleaseAndIsThenReused) {
  Strings in;
  uint32_t a = in.Intern("nginx");
  in.Intern("nginx");
  in.Release(a);
  EXPECT_EQ(in.Get(a), "nginx") << "one holder left";
  EXPECT_EQ(in.size(), 1u);
  in.Release(a);
  EXPECT_EQ(in.size(), 0u);
  uint32_t b = in.Intern("postgres");
  EXPECT_EQ(b, a) << "the freed id is reused";
  EXPECT_EQ(in.Get(b), "postgres");
  EXPECT_EQ(in.Intern("nginx"), b + 1) << "a value released is a new value";
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
  in.Replace(&id, "");
  EXPECT_EQ(id, 0u);
  EXPECT_EQ(in.size(), 0u);
}

}  // namespace
}  // namespace flowmesh
