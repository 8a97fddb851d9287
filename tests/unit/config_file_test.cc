// The TOML subset of meshd's config file: what it accepts, and errors that name the line.
#include "node/daemon/config_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

namespace flowmesh {
namespace {

using Type = ConfigEntry::Type;

TEST(ConfigFile, ParsesTheSubset) {
  const char* text =
      "# meshd\n"
      "\n"
      "data-dir = \"/srv/flowmesh\"   # trailing comment\n"
      "  insecure=true\n"
      "cluster-label = \"a \\\"b\\\" \\\\ c\\n\\td\"\n"
      "cluster-key-file = 'C:\\keys'\r\n"
      "retention-size = 1_048_576\n"
      "probe-interval = -5\n"
      "ports = [80, +443]\n"
      "join = [\n"
      "  \"10.0.0.5:7946\",  # first seed\n"
      "\n"
      "  \"10.0.0.6:7946\",\n"
      "]\n"
      "advertise = \"\"\n"
      "bind = []";
  Result<std::vector<ConfigEntry>> r = ParseConfigText(text, "f.toml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const std::vector<ConfigEntry>& e = *r;
  ASSERT_EQ(e.size(), 10u);
  auto expect = [&](size_t i, const std::string& key, Type type, std::vector<std::string> items,
                    int line) {
    EXPECT_EQ(e[i].key, key);
    EXPECT_EQ(e[i].type, type) << key;
    EXPECT_EQ(e[i].items, items) << key;
    EXPECT_EQ(e[i].line, line) << key;
  };
  expect(0, "data-dir", Type::kString, {"/srv/flowmesh"}, 3);
  expect(1, "insecure", Type::kBool, {"true"}, 4);
  expect(2, "cluster-label", Type::kString, {"a \"b\" \\ c\n\td"}, 5);
  expect(3, "cluster-key-file", Type::kString, {"C:\\keys"}, 6);
  expect(4, "retention-size", Type::kInteger, {"1048576"}, 7);
  expect(5, "probe-interval", Type::kInteger, {"-5"}, 8);
  expect(6, "ports", Type::kArray, {"80", "443"}, 9);
  expect(7, "join", Type::kArray, {"10.0.0.5:7946", "10.0.0.6:7946"}, 10);
  expect(8, "advertise", Type::kString, {""}, 15);
  expect(9, "bind", Type::kArray, {}, 16);
}

TEST(ConfigFile, EmptyAndCommentOnlyFilesHaveNoEntries) {
  for (const char* text : {"", "\n\n", "# all defaults\n   # indented\n\t\n"}) {
    Result<std::vector<ConfigEntry>> r = ParseConfigText(text, "f.toml");
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_TRUE(r->empty());
  }
}

TEST(ConfigFile, ErrorsNameTheLineAndTheFix) {
  struct Bad {
    const char* text;
    const char* error;  // the whole message must contain this
  };
  for (const Bad& bad : std::vector<Bad>{
           {"a = 1\n[mesh]\n", "f.toml:2: '[mesh]': tables ([section]) are not supported"},
           {"a = 1\n\nb = \"x\n", "f.toml:3: the string of 'b' is not closed; end it with \""},
           {"a = \"x\" junk\n", "f.toml:1: unexpected 'junk' after the value of 'a'"},
           {"a = \"x\" \"y\"\n", "f.toml:1: unexpected '\"y\"'"},
           {"a = 1\nb = 2\na = 3\n", "f.toml:3: 'a' is set twice (first on line 1); keep one"},
           {"retention = 7d\n",
            "f.toml:1: '7d' is not an integer; put strings in double quotes: "
            "retention = \"7d\""},
           {"data-dir = /srv/x\n",
            "f.toml:1: '/srv/x' is not a value; put strings in double "
            "quotes: data-dir = \"/srv/x\""},
           {"insecure = yes\n", "f.toml:1: 'yes' is not a value"},
           {"a = 1.5\n", "f.toml:1: '1.5' is not an integer"},
           {"a = 01\n", "f.toml:1: '01': TOML integers have no leading zeros"},
           {"a = 99999999999999999999\n", "f.toml:1: '99999999999999999999' is too large"},
           {"a = \"\\q\"\n", "f.toml:1: unsupported escape '\\q'"},
           {"a = \"\"\"x\"\"\"\n", "f.toml:1: multi-line strings are not supported"},
           {"\n a =\n", "f.toml:2: 'a =' has no value"},
           {"a = # none\n", "f.toml:1: 'a =' has no value"},
           {"a\n", "f.toml:1: 'a' has no value; write a = value"},
           {"a : 1\n", "f.toml:1: expected '=' after 'a'"},
           {"a.b = 1\n", "f.toml:1: dotted keys"},
           {"\"a\" = 1\n", "f.toml:1: quoted keys are not supported"},
           {"= 1\n", "f.toml:1: expected key = value, found '= 1'"},
           {"a = {b = 1}\n", "f.toml:1: inline tables"},
           {"x = 1\nj = [\"a\",\n  \"b\"\n", "f.toml:2: the array of 'j' is never closed"},
           {"j = [\"a\",\n  true]\n",
            "f.toml:2: the array of 'j' may hold only strings and "
            "integers"},
           {"j = [[1]]\n", "f.toml:1: the array of 'j' may hold only strings and integers"},
           {"j = [1 2]\n", "f.toml:1: expected ',' or ']' in the array of 'j', found '2]'"},
           {"j = [a]\n", "f.toml:1: 'a' is not a value"},
           {"a = \"x\tok\x01\"\n", "f.toml:1: control character in the string of 'a'"},
       }) {
    Result<std::vector<ConfigEntry>> r = ParseConfigText(bad.text, "f.toml");
    ASSERT_FALSE(r.ok()) << bad.text;
    EXPECT_NE(r.status().message().find(bad.error), std::string::npos)
        << "input: " << bad.text << "\nerror: " << r.status().message();
  }
}

TEST(ConfigFile, UnicodeEscapesBecomeUtf8) {
  Result<std::vector<ConfigEntry>> r =
      ParseConfigText("k = \"caf\\u00E9 \\u20AC\\u0041\"\n", "f.toml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)[0].items, std::vector<std::string>{"caf\xc3\xa9 \xe2\x82\xac"
                                                    "A"});
  for (const char* bad : {"k = \"\\u12\"\n", "k = \"\\uZZZZ\"\n", "k = \"\\uD800\"\n"}) {
    Result<std::vector<ConfigEntry>> e = ParseConfigText(bad, "f.toml");
    ASSERT_FALSE(e.ok()) << bad;
    EXPECT_NE(e.status().message().find("f.toml:1: bad \\u escape"), std::string::npos)
        << e.status().message();
  }
}

TEST(ConfigFile, QuotedValuesReadBack) {
  for (std::string value : {"", "plain", "with \"quotes\"", "back\\slash", "tab\tand\nnewline",
                            "cr\r bell\x07 del\x7f", "caf\xc3\xa9"}) {
    std::string text = "k = " + TomlQuote(value) + "\n";
    Result<std::vector<ConfigEntry>> r = ParseConfigText(text, "f.toml");
    ASSERT_TRUE(r.ok()) << r.status().message();
    ASSERT_EQ(r->size(), 1u);
    EXPECT_EQ((*r)[0].items, std::vector<std::string>{value});
  }
}

TEST(ConfigFile, SuggestsTheClosestKey) {
  std::vector<std::string> keys = {"data-dir", "retention", "retention-size", "join", "bind"};
  EXPECT_EQ(SuggestKey("data_dir", keys), "data-dir");
  EXPECT_EQ(SuggestKey("DATA-DIR", keys), "data-dir");
  EXPECT_EQ(SuggestKey("--data-dir", keys), "data-dir");
  EXPECT_EQ(SuggestKey("retension", keys), "retention");
  EXPECT_EQ(SuggestKey("retention_size", keys), "retention-size");
  EXPECT_EQ(SuggestKey("joins", keys), "join");
  EXPECT_EQ(SuggestKey("metrics-listen", keys), "");
  EXPECT_EQ(SuggestKey("x", keys), "");
}

TEST(ConfigFile, ReadingAMissingFileIsNotFound) {
  Result<std::string> r = ReadConfigFile("/nonexistent/meshd.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kNotFound);
  EXPECT_NE(r.status().message().find("/nonexistent/meshd.toml"), std::string::npos);
  r = ReadConfigFile("/");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("config file / is not a regular file"), std::string::npos)
      << r.status().message();
}

// /dev/zero was read until memory ran out, and a FIFO nobody writes to blocked start-up.
TEST(ConfigFile, NonRegularFilesAreRefusedAtOnce) {
  for (const char* path : {"/dev/zero", "/dev/null"}) {
    Result<std::string> r = ReadConfigFile(path);
    ASSERT_FALSE(r.ok()) << path;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find(std::string(path) + " is not a regular file"),
              std::string::npos)
        << r.status().message();
    EXPECT_NE(r.status().message().find("--config \"\" to read none"), std::string::npos);
  }
  char dir[] = "/tmp/fm-config-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string fifo = std::string(dir) + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  Result<std::string> r = ReadConfigFile(fifo);
  EXPECT_FALSE(r.ok());
  unlink(fifo.c_str());
  rmdir(dir);
}

TEST(ConfigFile, FilesOverOneMebibyteAreRefused) {
  char path[] = "/tmp/fm-config-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string line = "# " + std::string(1000, 'x') + "\n";
  for (size_t written = 0; written <= kMaxConfigFileBytes; written += line.size())
    ASSERT_EQ(write(fd, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  close(fd);
  Result<std::string> r = ReadConfigFile(path);
  unlink(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("bytes; meshd reads at most 1048576"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace flowmesh
