// meshd's options in layers: command-line flag > MESHD_* environment > config file > default,
// remembering where each value came from for error messages and --print-config.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "node/common/status.h"
#include "node/daemon/config_file.h"

namespace flowmesh {

// CLI11's own config support reads the file before the environment and reports no lines, so
// CLI11 parses argv alone here, and the environment and then the file fill what argv left unset,
// through each option's own checks and callback.
class ConfigLayers {
 public:
  struct Origin {
    enum class Kind { kDefault, kFlag, kEnv, kFile };
    Kind kind = Kind::kDefault;
    std::string file;
    int line = 0;
  };

  // Every option of `app` with a long name is layered; those in `not_in_file` (--help,
  // --version, --config, --print-config) cannot be set from the file. Call after all options
  // are added.
  ConfigLayers(CLI::App& app, const std::vector<const CLI::Option*>& not_in_file);

  // app.parse(argc, argv) with the environment names hidden; throws what app.parse throws.
  void ParseCommandLine(int argc, char** argv);
  // Fills the options argv left unset from their (non-empty) environment variables.
  Status ApplyEnvironment();
  // Then fills those still unset from the file; a wrong key or type names path:line and the fix.
  Status ApplyFile(const std::vector<ConfigEntry>& entries, const std::string& path);

  // Prefix for an error about the value of `flag` ("--retention"): "--retention: ",
  // "MESHD_RETENTION: " or "/etc/flowmesh/meshd.toml:3: retention: ".
  std::string Where(std::string_view flag) const;
  Origin OriginOf(std::string_view flag) const;
  // Every option but those in `not_in_file`, one "key = value  # origin" line each, in the
  // order they were added: a valid config file.
  std::string Render() const;

 private:
  struct Layer {
    CLI::Option* option;
    std::string key;  // the first long name
    std::string envname;
    std::string default_value;
    bool in_file;
    Origin origin;
  };
  const Layer* Find(std::string_view flag) const;
  std::string WhereOf(const Layer& layer) const;
  std::string Value(const Layer& layer) const;
  // Adds `values` as the option's results and runs its checks and callback.
  Status Set(Layer& layer, const std::vector<std::string>& values, Origin origin);

  CLI::App& app_;
  std::vector<Layer> layers_;
};

}  // namespace flowmesh
