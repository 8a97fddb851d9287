// meshd's settings from flags, MESHD_* variables, the config file and defaults: precedence,
// errors that say where a bad value came from, --print-config and the packaged sample file.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "node/daemon/config.h"
#include "node/daemon/config_file.h"
#include "tests/test_paths.h"

namespace flowmesh {
namespace {

// Sets an environment variable for one scope and puts back what was there.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// A config file in the test's temporary directory, removed at the end.
class TempConfig {
 public:
  explicit TempConfig(const std::string& text) {
    path_ = ::testing::TempDir() + "meshd_config_test_" + std::to_string(getpid()) + "_" +
            std::to_string(counter_++) + ".toml";
    std::ofstream(path_) << text;
  }
  ~TempConfig() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

struct Outcome {
  std::optional<DaemonConfig> config;
  int code = -1;
  std::string out;
  std::string err;
};

Outcome Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "meshd");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  Outcome run;
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  run.config = ParseDaemonArgs(static_cast<int>(argv.size()), argv.data(), &run.code);
  run.out = ::testing::internal::GetCapturedStdout();
  run.err = ::testing::internal::GetCapturedStderr();
  return run;
}

// --print-config's lines as key -> {value as written, origin comment}.
std::map<std::string, std::pair<std::string, std::string>> PrintedLines(const std::string& out) {
  std::map<std::string, std::pair<std::string, std::string>> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    size_t eq = line.find(" = "), hash = line.rfind("  # ");
    if (eq == std::string::npos || hash == std::string::npos) continue;
    std::string value = line.substr(eq + 3, hash - eq - 3);
    while (!value.empty() && value.back() == ' ') value.pop_back();
    lines[line.substr(0, eq)] = {value, line.substr(hash + 4)};
  }
  return lines;
}

// A valid key file (meshd reads it while checking the flags), made once per run.
const std::string& KeyFile() {
  static const std::string path = [] {
    std::string p = ::testing::TempDir() + "meshd_config_test_" + std::to_string(getpid()) + ".key";
    std::ofstream(p) << "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
    chmod(p.c_str(), 0600);
    return p;
  }();
  return path;
}

std::string FileText() {
  return "# a test config\n"
         "data-dir = \"/from/file\"\n"
         "retention = \"2d\"\n"
         "cluster-key-file = \"" +
         KeyFile() +
         "\"\n"
         "insecure = true\n"
         "join = [\"10.0.0.5:7946\", \"10.0.0.6:7946\"]\n"
         "ports = [80, 443]\n"
         "probe-mode = \"polling\"\n";
}

TEST(ConfigLayers, FileValuesApplyUnderDefaults) {
  TempConfig file(FileText());
  Outcome r = Parse({"--config", file.path()});
  ASSERT_TRUE(r.config) << r.err;
  EXPECT_EQ(r.config->data_dir, "/from/file");
  EXPECT_EQ(r.config->retention, std::chrono::hours(48));
  EXPECT_TRUE(r.config->insecure);
  EXPECT_EQ(r.config->join, (std::vector<std::string>{"10.0.0.5:7946", "10.0.0.6:7946"}));
  EXPECT_EQ(r.config->ports, (std::vector<uint16_t>{80, 443}));
  EXPECT_EQ(r.config->probe_mode, ProbeMode::kPolling);
  EXPECT_EQ(r.config->flush_interval, std::chrono::seconds(1));  // not in the file: default
  EXPECT_EQ(r.config->log_level, "info");
}

TEST(ConfigLayers, EnvironmentWinsOverTheFile) {
  TempConfig file(FileText());
  ScopedEnv config("MESHD_CONFIG", file.path().c_str());
  ScopedEnv dir("MESHD_DATA_DIR", "/from/env");
  ScopedEnv retention("MESHD_RETENTION", "3d");
  ScopedEnv insecure("MESHD_INSECURE", "false");
  ScopedEnv join("MESHD_JOIN", "10.0.0.7:7946");
  ScopedEnv ports("MESHD_PORTS", "22");
  Outcome r = Parse({"--print-config"});
  EXPECT_EQ(r.code, 0) << r.err;
  Outcome c = Parse({});
  ASSERT_TRUE(c.config) << c.err;
  EXPECT_EQ(c.config->data_dir, "/from/env");
  EXPECT_EQ(c.config->retention, std::chrono::hours(72));
  EXPECT_FALSE(c.config->insecure);
  EXPECT_EQ(c.config->join, std::vector<std::string>{"10.0.0.7:7946"});
  EXPECT_EQ(c.config->ports, std::vector<uint16_t>{22});
  EXPECT_EQ(c.config->probe_mode, ProbeMode::kPolling);  // only in the file
  auto lines = PrintedLines(r.out);
  EXPECT_EQ(lines["data-dir"],
            (std::pair<std::string, std::string>{"\"/from/env\"", "env MESHD_DATA_DIR"}));
  EXPECT_EQ(lines["insecure"],
            (std::pair<std::string, std::string>{"false", "env MESHD_INSECURE"}));
  EXPECT_EQ(lines["join"],
            (std::pair<std::string, std::string>{"\"10.0.0.7:7946\"", "env MESHD_JOIN"}));
  EXPECT_EQ(lines["probe-mode"],
            (std::pair<std::string, std::string>{"\"polling\"", file.path() + ":8"}));
  EXPECT_NE(r.out.find("# Config file: " + file.path() + " (env MESHD_CONFIG)"), std::string::npos)
      << r.out;
}

TEST(ConfigLayers, FlagsWinOverEnvironmentAndFile) {
  TempConfig file(FileText());
  ScopedEnv dir("MESHD_DATA_DIR", "/from/env");
  ScopedEnv retention("MESHD_RETENTION", "3d");
  ScopedEnv insecure("MESHD_INSECURE", "true");
  ScopedEnv ports("MESHD_PORTS", "22");
  std::vector<std::string> flags = {"--config",      file.path(), "--data-dir",       "/from/flag",
                                    "--retention",   "4d",        "--insecure=false", "--join",
                                    "10.0.0.8:7946", "--ports",   "8000-8001"};
  Outcome c = Parse(flags);
  ASSERT_TRUE(c.config) << c.err;
  EXPECT_EQ(c.config->data_dir, "/from/flag");
  EXPECT_EQ(c.config->retention, std::chrono::hours(96));
  EXPECT_FALSE(c.config->insecure);
  EXPECT_EQ(c.config->join, std::vector<std::string>{"10.0.0.8:7946"});
  EXPECT_EQ(c.config->ports, (std::vector<uint16_t>{8000, 8001}));
  flags.push_back("--print-config");
  Outcome r = Parse(flags);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(r.config);
  auto lines = PrintedLines(r.out);
  using Line = std::pair<std::string, std::string>;
  EXPECT_EQ(lines["data-dir"], (Line{"\"/from/flag\"", "flag --data-dir"}));
  EXPECT_EQ(lines["retention"], (Line{"\"4d\"", "flag --retention"}));
  EXPECT_EQ(lines["insecure"], (Line{"false", "flag --insecure"}));
  EXPECT_EQ(lines["ports"], (Line{"\"8000-8001\"", "flag --ports"}));
  EXPECT_EQ(lines["cluster-key-file"], (Line{"\"" + KeyFile() + "\"", file.path() + ":4"}));
  EXPECT_EQ(lines["flush-interval"], (Line{"\"1s\"", "default"}));
  EXPECT_EQ(lines["log-level"], (Line{"\"info\"", "default"}));
}

TEST(ConfigLayers, UnknownKeySuggestsTheFlag) {
  TempConfig file("# x\nretention = \"2d\"\ndata_dir = \"/srv\"\n");
  Outcome r = Parse({"--config", file.path()});
  EXPECT_FALSE(r.config);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("meshd: " + file.path() +
                       ":3: unknown key 'data_dir'; did you mean 'data-dir'? (keys are meshd's "
                       "long flags without --; see meshd --help)"),
            std::string::npos)
      << r.err;
  TempConfig other("colour = \"blue\"\n");
  r = Parse({"--config", other.path()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(other.path() + ":1: unknown key 'colour' (keys are"), std::string::npos)
      << r.err;
}

TEST(ConfigLayers, BadValueSaysWhereItCameFrom) {
  TempConfig file("\n\nretention = \"7x\"\n");
  Outcome r = Parse({"--config", file.path()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("meshd: " + file.path() + ":3: retention: '7x'"), std::string::npos)
      << r.err;
  TempConfig empty("");
  {
    ScopedEnv retention("MESHD_RETENTION", "7x");
    r = Parse({"--config", empty.path()});
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("meshd: MESHD_RETENTION: '7x'"), std::string::npos) << r.err;
  }
  r = Parse({"--config", empty.path(), "--retention", "7x"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("meshd: --retention: '7x'"), std::string::npos) << r.err;

  // The checks in ParseDaemonArgs and CLI11's own (IsMember) alike.
  struct Bad {
    std::string text;
    std::string error;
  };
  for (const Bad& bad : std::vector<Bad>{
           {"log-level = \"loud\"\n", ":1: log-level: "},
           {"\nprobe-mode = \"fast\"\n", ":2: probe-mode: "},
           {"insecure = true\njoin = [\"10.0.0.5\"]\n", ":2: join: '10.0.0.5' is not IP:PORT"},
           {"join = [\"10.0.0.5:7946\"]\n",
            ":1: join: refusing to join a mesh without a cluster key"},
           {"bind = \"0.0.0.0\"\n", ":1: bind: '0.0.0.0' is not IP:PORT"},
           {"ports = [80, \"http\"]\n", ":1: ports: "},
           {"netns = \"mine\"\n", ":1: netns: 'mine' is not self, a namespace inode"},
           {"retention-size = 1\n", ":1: retention-size: must be 0"},
           {"flush-interval = 5\n", ":1: flush-interval: "},
           {"insecure = \"yes\"\n",
            ":1: insecure: is a switch; write insecure = true or "
            "insecure = false"},
           {"data-dir = false\n",
            ":1: data-dir: takes a value, not true or false; e.g. "
            "data-dir = \"/var/lib/flowmesh\""},
           {"config = \"/x.toml\"\n", ":1: 'config' cannot be set in a config file"},
           {"print-config = true\n", ":1: 'print-config' cannot be set in a config file"},
       }) {
    TempConfig f(bad.text);
    Outcome b = Parse({"--config", f.path()});
    EXPECT_EQ(b.code, 2) << bad.text;
    EXPECT_NE(b.err.find("meshd: " + f.path() + bad.error), std::string::npos) << bad.text << "\n"
                                                                               << b.err;
  }
}

TEST(ConfigLayers, ClearerErrorsForCli11ChecksOnEnvAndFile) {
  ScopedEnv mode("MESHD_PROBE_MODE", "fast");
  Outcome r = Parse({"--config", ""});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("meshd: MESHD_PROBE_MODE: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("fast"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("--probe-mode"), std::string::npos) << r.err;  // not the flag's name
}

TEST(ConfigLayers, AFlagOverridesABadFileValueButNotABadKey) {
  TempConfig bad_value("retention = \"7x\"\n");
  Outcome r = Parse({"--config", bad_value.path(), "--retention", "1d"});
  ASSERT_TRUE(r.config) << r.err;
  EXPECT_EQ(r.config->retention, std::chrono::hours(24));
  TempConfig bad_type("insecure = 1\n");
  r = Parse({"--config", bad_type.path(), "--insecure"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(bad_type.path() + ":1: insecure: is a switch"), std::string::npos) << r.err;
}

TEST(ConfigLayers, ExplicitFileMustExist) {
  Outcome r = Parse({"--config", "/nonexistent/meshd.toml"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("meshd: --config: cannot open config file /nonexistent/meshd.toml: No such "
                       "file or directory"),
            std::string::npos)
      << r.err;
  {
    ScopedEnv config("MESHD_CONFIG", "/nonexistent/meshd.toml");
    r = Parse({});
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("meshd: MESHD_CONFIG: cannot open config file /nonexistent/meshd.toml"),
              std::string::npos)
        << r.err;
  }
  r = Parse({"--config", "/"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--config: config file / is not a regular file"), std::string::npos)
      << r.err;
  // A syntax error is a usage error too, naming the line.
  TempConfig file("a = 1\n[mesh]\n");
  r = Parse({"--config", file.path()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("meshd: " + file.path() + ":2: '[mesh]': tables"), std::string::npos)
      << r.err;
}

TEST(ConfigLayers, EmptyConfigReadsNoFile) {
  Outcome r = Parse({"--config", "", "--print-config"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("# Config file: none"), std::string::npos) << r.out;
}

TEST(ConfigLayers, PrintConfigFailsLikeARunOnABadConfig) {
  TempConfig file("retention = \"30s\"\n");
  Outcome r = Parse({"--config", file.path(), "--print-config"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find(file.path() + ":1: retention: must be at least 1m"), std::string::npos)
      << r.err;
}

// Every option is one line of a valid config file; read back, it gives the same settings.
TEST(ConfigLayers, PrintConfigIsAConfigFileThatReadsBackTheSame) {
  TempConfig file(FileText());
  Outcome first;
  {
    ScopedEnv label("MESHD_CLUSTER_LABEL", "lab \"one\"");
    first = Parse({"--config", file.path(), "--log-level", "debug", "--print-config"});
  }
  ASSERT_EQ(first.code, 0) << first.err;
  Result<std::vector<ConfigEntry>> entries = ParseConfigText(first.out, "printed");
  ASSERT_TRUE(entries.ok()) << entries.status().message() << "\n" << first.out;
  std::set<std::string> keys;
  for (const ConfigEntry& e : *entries) keys.insert(e.key);
  // Every long flag --help lists, but the four that only the command line takes.
  std::set<std::string> flags;
  std::istringstream help(Parse({"--help"}).out);
  std::regex option(R"(^\s+(?:-\w,)?--([a-z0-9-]+))");
  for (std::string line; std::getline(help, line);) {
    std::smatch m;
    if (std::regex_search(line, m, option)) flags.insert(m[1]);
  }
  EXPECT_TRUE(flags.contains("retention") && flags.contains("insecure")) << help.str();
  for (const char* not_in_file : {"help", "version", "config", "print-config"})
    EXPECT_EQ(flags.erase(not_in_file), 1u) << not_in_file;
  EXPECT_EQ(keys, flags);
  auto lines = PrintedLines(first.out);
  using Line = std::pair<std::string, std::string>;
  EXPECT_EQ(lines["cluster-label"], (Line{"\"lab \\\"one\\\"\"", "env MESHD_CLUSTER_LABEL"}));
  EXPECT_EQ(lines["log-level"], (Line{"\"debug\"", "flag --log-level"}));
  EXPECT_EQ(lines["join"], (Line{"\"10.0.0.5:7946,10.0.0.6:7946\"", file.path() + ":6"}));
  EXPECT_EQ(lines["insecure"], (Line{"true", file.path() + ":5"}));

  TempConfig printed(first.out);
  Outcome again = Parse({"--config", printed.path(), "--print-config"});
  ASSERT_EQ(again.code, 0) << again.err;
  auto relines = PrintedLines(again.out);
  ASSERT_EQ(relines.size(), lines.size());
  int line = 4;  // after the three header lines
  for (const ConfigEntry& e : *entries) {
    EXPECT_EQ(relines[e.key].first, lines[e.key].first) << e.key;
    EXPECT_EQ(relines[e.key].second, printed.path() + ":" + std::to_string(line++)) << e.key;
  }
}

TEST(ConfigLayers, HelpStillShowsTheEnvironmentNames) {
  Outcome r = Parse({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("MESHD_RETENTION"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--config"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--print-config"), std::string::npos) << r.out;
}

// --version answers from the command line alone: the version, exit 0, nothing started,
// even with a configuration file that would not parse.
TEST(ConfigLayers, VersionPrintsTheVersionAndExits) {
  TempConfig broken("no-such-key = 1\n");
  Outcome r = Parse({"--config", broken.path(), "--version"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(r.config.has_value());
  EXPECT_EQ(r.out, FLOWMESH_VERSION "\n");
  EXPECT_EQ(r.err, "");
}

// packaging/meshd.toml, uncommented, is a valid config file that sets every option to its
// default (the node name excepted: its default is the host's name).
TEST(ConfigSample, CoversEveryOptionAtItsDefault) {
  std::string path = std::string(FLOWMESH_TESTDATA) + "/../../../packaging/meshd.toml";
  Result<std::string> sample = ReadConfigFile(path);
  ASSERT_TRUE(sample.ok()) << sample.status().message();
  Result<std::vector<ConfigEntry>> commented = ParseConfigText(*sample, path);
  ASSERT_TRUE(commented.ok()) << commented.status().message();
  EXPECT_TRUE(commented->empty()) << "every key in the sample is commented out";
  std::string uncommented;
  std::istringstream in(*sample);
  for (std::string line; std::getline(in, line);) {
    size_t eq = line.find(" = ");
    bool setting = line.starts_with("# ") && eq != std::string::npos &&
                   line.find_first_not_of("abcdefghijklmnopqrstuvwxyz-", 2) == eq;
    uncommented += (setting ? line.substr(2) : line) + "\n";
  }
  Result<std::vector<ConfigEntry>> entries = ParseConfigText(uncommented, path);
  ASSERT_TRUE(entries.ok()) << entries.status().message();

  Outcome defaults = Parse({"--config", "", "--print-config"});
  ASSERT_EQ(defaults.code, 0) << defaults.err;
  auto want = PrintedLines(defaults.out);
  std::set<std::string> missing;
  for (const auto& [key, line] : want) missing.insert(key);
  for (const ConfigEntry& e : *entries) {
    ASSERT_TRUE(want.count(e.key)) << "the sample sets '" << e.key << "', which meshd lacks";
    missing.erase(e.key);
    if (e.key == "node-name") continue;
    std::string value;
    if (e.type == ConfigEntry::Type::kBool) {
      value = e.items[0];
    } else {
      for (const std::string& item : e.items) value += (value.empty() ? "" : ",") + item;
      value = TomlQuote(value);
    }
    EXPECT_EQ(value, want[e.key].first) << "packaging/meshd.toml's default for " << e.key;
  }
  EXPECT_TRUE(missing.empty()) << "packaging/meshd.toml lacks a commented line for: "
                               << ::testing::PrintToString(missing);
  // And meshd itself reads the uncommented sample.
  TempConfig file(uncommented);
  Outcome r = Parse({"--config", file.path()});
  EXPECT_TRUE(r.config) << r.err;
}

}  // namespace
}  // namespace flowmesh
