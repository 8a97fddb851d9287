// The cluster keyring: install/use/remove rules, fingerprints, base64 keys,
// key file parsing with line numbers, the permissions check and atomic saves.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "node/mesh/keyring.h"

namespace flowmesh::mesh {
namespace {

using ::testing::HasSubstr;

Key K(uint8_t fill) {
  Key k;
  k.fill(fill);
  return k;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/flowmesh_keyring_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name, const std::string& text, mode_t mode) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p) << text;
    chmod(p.c_str(), mode);
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(MeshKeyring, FirstInstalledKeyIsPrimaryAndUseMovesIt) {
  Keyring ring;
  EXPECT_TRUE(ring.empty());
  EXPECT_EQ(ring.primary(), nullptr);
  ASSERT_TRUE(ring.Install(K(1)).ok());
  ASSERT_TRUE(ring.Install(K(2)).ok());
  ASSERT_TRUE(ring.Install(K(3)).ok());
  EXPECT_EQ(*ring.primary(), K(1));
  ASSERT_TRUE(ring.Install(K(2)).ok());  // already there: no-op
  EXPECT_EQ(ring.size(), 3u);

  ASSERT_TRUE(ring.Use(K(3)).ok());
  EXPECT_EQ(ring.keys(), (std::vector<Key>{K(3), K(1), K(2)}));
  std::vector<KeyInfo> list = ring.List();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_TRUE(list[0].primary);
  EXPECT_FALSE(list[1].primary);
  EXPECT_EQ(list[0].fingerprint, Fingerprint(K(3)));
}

TEST(MeshKeyring, UseNeedsAnInstalledKeyAndThePrimaryCannotBeRemoved) {
  Keyring ring;
  ASSERT_TRUE(ring.Install(K(1)).ok());
  Status use = ring.Use(K(9));
  EXPECT_EQ(use.code(), Status::Code::kNotFound);
  EXPECT_THAT(use.message(), HasSubstr("install it on every node first"));
  Status remove = ring.Remove(K(1));
  EXPECT_FALSE(remove.ok());
  EXPECT_THAT(remove.message(), HasSubstr("it is the primary; use another key first"));
  EXPECT_EQ(ring.Remove(K(9)).code(), Status::Code::kNotFound);
  ASSERT_TRUE(ring.Install(K(2)).ok());
  ASSERT_TRUE(ring.Remove(K(2)).ok());
  EXPECT_EQ(ring.keys(), std::vector<Key>{K(1)});
}

TEST(MeshKeyring, RingSizeIsBounded) {
  Keyring ring;
  for (size_t i = 0; i < kMaxKeys; i++) ASSERT_TRUE(ring.Install(K(uint8_t(i))).ok());
  EXPECT_EQ(ring.Install(K(200)).code(), Status::Code::kResourceExhausted);
}

TEST(MeshKeyring, FingerprintIsTheStartOfSha256AndNeverTheKey) {
  // SHA-256 of 32 zero bytes is 66687aad f862bd77...
  EXPECT_EQ(Fingerprint(K(0)), "66687aad");
  Keyring ring;
  ASSERT_TRUE(ring.Install(K(0)).ok());
  ASSERT_TRUE(ring.Install(K(7)).ok());
  Result<Key> found = ring.FindByFingerprint("66687a");
  ASSERT_TRUE(found.ok()) << found.status().message();
  EXPECT_EQ(*found, K(0));
  EXPECT_FALSE(ring.FindByFingerprint("abc").ok());  // too short
  EXPECT_EQ(ring.FindByFingerprint("ffffffff").status().code(), Status::Code::kNotFound);
}

TEST(MeshKeyring, Base64RoundTripAndErrors) {
  Result<Key> gen = GenerateKey();
  ASSERT_TRUE(gen.ok());
  std::string text = EncodeKey(*gen);
  EXPECT_EQ(text.size(), 44u);
  EXPECT_EQ(text.back(), '=');
  Result<Key> back = DecodeKey(text);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, *gen);
  EXPECT_NE(*GenerateKey(), *gen);

  // 31 bytes: base64 of 31 zero bytes.
  Result<Key> short_key = DecodeKey(std::string(40, 'A') + "AA==");
  ASSERT_FALSE(short_key.ok());
  EXPECT_THAT(short_key.status().message(), HasSubstr("key is 31 bytes after base64 decoding"));
  EXPECT_THAT(short_key.status().message(), HasSubstr("head -c32 /dev/urandom | base64"));
  Result<Key> bad_char = DecodeKey("AAAA*AAA");
  ASSERT_FALSE(bad_char.ok());
  EXPECT_THAT(bad_char.status().message(), HasSubstr("character 5 is not base64"));
}

TEST(MeshKeyring, KeyFileFirstKeyIsPrimaryCommentsAndBlankLinesSkipped) {
  std::string text = "# cluster keys\n\n" + EncodeKey(K(5)) + "\n  " + EncodeKey(K(6)) +
                     "  \r\n# old one below\n" + EncodeKey(K(7));
  Result<Keyring> ring = ParseKeyringFile(text, "keys");
  ASSERT_TRUE(ring.ok()) << ring.status().message();
  EXPECT_EQ(ring->keys(), (std::vector<Key>{K(5), K(6), K(7)}));
}

TEST(MeshKeyring, KeyFileErrorsNameTheFileTheLineAndTheFix) {
  std::string text = "# comment\n" + EncodeKey(K(1)) + "\n" + std::string(40, 'A') + "AA==\n";
  Result<Keyring> ring = ParseKeyringFile(text, "/etc/flowmesh/keys");
  ASSERT_FALSE(ring.ok());
  EXPECT_THAT(ring.status().message(),
              HasSubstr("/etc/flowmesh/keys line 3: key is 31 bytes after base64 decoding; "
                        "keys are 32 random bytes, e.g. `head -c32 /dev/urandom | base64`"));

  Result<Keyring> dup = ParseKeyringFile(EncodeKey(K(1)) + "\n" + EncodeKey(K(1)) + "\n", "f");
  ASSERT_FALSE(dup.ok());
  EXPECT_THAT(dup.status().message(),
              HasSubstr("f line 2: key " + Fingerprint(K(1)) + " is listed twice"));

  Result<Keyring> empty = ParseKeyringFile("# nothing yet\n\n", "f");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(), HasSubstr("holds no key"));
}

TEST(MeshKeyring, LoadRefusesAFileOthersCanRead) {
  TempDir dir;
  std::string path = dir.File("keys", EncodeKey(K(1)) + "\n", 0644);
  Result<Keyring> ring = LoadKeyringFile(path);
  ASSERT_FALSE(ring.ok());
  EXPECT_EQ(ring.status().code(), Status::Code::kPermissionDenied);
  EXPECT_THAT(ring.status().message(), HasSubstr("has mode 0644"));
  EXPECT_THAT(ring.status().message(), HasSubstr("chmod 600 " + path));
  // Group-readable only is refused too.
  chmod(path.c_str(), 0640);
  EXPECT_FALSE(LoadKeyringFile(path).ok());
  chmod(path.c_str(), 0600);
  ring = LoadKeyringFile(path);
  ASSERT_TRUE(ring.ok()) << ring.status().message();
  EXPECT_EQ(*ring->primary(), K(1));

  Result<Keyring> missing = LoadKeyringFile(dir.path() + "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr(dir.path() + "/nope"));
}

TEST(MeshKeyring, SaveIsAtomicMode0600AndLoadsBack) {
  TempDir dir;
  // An existing, too-open file is replaced by a private one.
  std::string path = dir.File("keys", EncodeKey(K(1)) + "\n", 0644);
  Keyring ring;
  ASSERT_TRUE(ring.Install(K(1)).ok());
  ASSERT_TRUE(ring.Install(K(2)).ok());
  ASSERT_TRUE(ring.Use(K(2)).ok());
  ASSERT_TRUE(SaveKeyringFile(path, ring).ok());

  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  size_t entries = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) entries += !e.path().empty();
  EXPECT_EQ(entries, 1u) << "no temporary file left behind";

  Result<Keyring> back = LoadKeyringFile(path);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->keys(), (std::vector<Key>{K(2), K(1)}));
  EXPECT_FALSE(SaveKeyringFile(path, Keyring()).ok());
  EXPECT_FALSE(SaveKeyringFile(dir.path() + "/no/such/dir/keys", ring).ok());
}

}  // namespace
}  // namespace flowmesh::mesh
