// Applies the environment and the config file beneath meshd's command line, and renders the
// result for --print-config.
#include "node/daemon/config_layers.h"

#include <algorithm>
#include <cstdlib>

namespace flowmesh {
namespace {

bool IsFlag(const CLI::Option* option) { return option->get_expected_max() == 0; }

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

}  // namespace

ConfigLayers::ConfigLayers(CLI::App& app, const std::vector<const CLI::Option*>& not_in_file)
    : app_(app) {
  for (CLI::Option* option : app.get_options()) {
    if (option->get_lnames().empty()) continue;
    // The bound variable's value now is the default; capture it without changing what --help
    // shows (options without capture_default_str show none).
    std::string shown = option->get_default_str();
    option->capture_default_str();
    std::string default_value = option->get_default_str();
    option->default_str(shown);
    bool in_file = std::find(not_in_file.begin(), not_in_file.end(), option) == not_in_file.end();
    layers_.push_back(
        {option, option->get_lnames()[0], option->get_envname(), default_value, in_file, Origin{}});
  }
}

void ConfigLayers::ParseCommandLine(int argc, char** argv) {
  for (Layer& layer : layers_) layer.option->envname("");
  try {
    app_.parse(argc, argv);
  } catch (...) {
    for (Layer& layer : layers_) layer.option->envname(layer.envname);
    throw;
  }
  for (Layer& layer : layers_) {
    layer.option->envname(layer.envname);
    if (layer.option->count() > 0) layer.origin.kind = Origin::Kind::kFlag;
  }
}

Status ConfigLayers::ApplyEnvironment() {
  for (Layer& layer : layers_) {
    if (layer.option->count() > 0 || layer.envname.empty()) continue;
    // Like CLI11: an empty variable counts as unset.
    const char* value = std::getenv(layer.envname.c_str());
    if (value == nullptr || *value == '\0') continue;
    FM_RETURN_IF_ERROR(Set(layer, {value}, Origin{Origin::Kind::kEnv, "", 0}));
  }
  return Status::Ok();
}

Status ConfigLayers::ApplyFile(const std::vector<ConfigEntry>& entries, const std::string& path) {
  std::vector<std::string> keys;
  for (const Layer& layer : layers_)
    if (layer.in_file) keys.push_back(layer.key);
  for (const ConfigEntry& entry : entries) {
    std::string at = path + ":" + std::to_string(entry.line) + ": ";
    auto it = std::find_if(layers_.begin(), layers_.end(),
                           [&](const Layer& l) { return l.key == entry.key; });
    if (it == layers_.end()) {
      std::string suggestion = SuggestKey(entry.key, keys);
      return InvalidArgument(at + "unknown key '" + entry.key + "'" +
                             (suggestion.empty() ? "" : "; did you mean '" + suggestion + "'?") +
                             " (keys are meshd's long flags without --; see meshd --help)");
    }
    Layer& layer = *it;
    if (!layer.in_file) {
      return InvalidArgument(at + "'" + entry.key + "' cannot be set in a config file; give --" +
                             entry.key + " on the command line");
    }
    bool is_bool = entry.type == ConfigEntry::Type::kBool;
    if (IsFlag(layer.option) && !is_bool) {
      return InvalidArgument(at + entry.key + ": is a switch; write " + entry.key + " = true or " +
                             entry.key + " = false");
    }
    if (!IsFlag(layer.option) && is_bool) {
      return InvalidArgument(at + entry.key + ": takes a value, not true or false; e.g. " +
                             entry.key + " = " + TomlQuote(layer.default_value));
    }
    // A flag or the environment wins; the file's value is not used, nor checked further.
    if (layer.option->count() > 0) continue;
    // An array is the flag's comma-separated form, unless the option takes several values.
    std::vector<std::string> values = entry.items;
    if (entry.type == ConfigEntry::Type::kArray && layer.option->get_items_expected_max() <= 1)
      values = {Join(entry.items)};
    FM_RETURN_IF_ERROR(Set(layer, values, Origin{Origin::Kind::kFile, path, entry.line}));
  }
  return Status::Ok();
}

Status ConfigLayers::Set(Layer& layer, const std::vector<std::string>& values, Origin origin) {
  layer.origin = std::move(origin);
  try {
    for (const std::string& value : values) layer.option->add_result(value);
    layer.option->run_callback();
  } catch (const CLI::ParseError& e) {
    // CLI11 says "--probe-mode: ..."; the prefix becomes where the value came from.
    std::string message = e.what();
    std::string name = layer.option->get_name() + ": ";
    if (message.starts_with(name)) message.erase(0, name.size());
    return InvalidArgument(WhereOf(layer) + message);
  }
  return Status::Ok();
}

const ConfigLayers::Layer* ConfigLayers::Find(std::string_view flag) const {
  while (flag.starts_with("-")) flag.remove_prefix(1);
  for (const Layer& layer : layers_)
    if (layer.key == flag) return &layer;
  return nullptr;
}

std::string ConfigLayers::WhereOf(const Layer& layer) const {
  switch (layer.origin.kind) {
    case Origin::Kind::kEnv: return layer.envname + ": ";
    case Origin::Kind::kFile:
      return layer.origin.file + ":" + std::to_string(layer.origin.line) + ": " + layer.key + ": ";
    case Origin::Kind::kFlag:
    case Origin::Kind::kDefault: break;
  }
  return "--" + layer.key + ": ";
}

std::string ConfigLayers::Where(std::string_view flag) const {
  const Layer* layer = Find(flag);
  return layer ? WhereOf(*layer) : std::string(flag) + ": ";
}

ConfigLayers::Origin ConfigLayers::OriginOf(std::string_view flag) const {
  const Layer* layer = Find(flag);
  return layer ? layer->origin : Origin{};
}

std::string ConfigLayers::Value(const Layer& layer) const {
  if (IsFlag(layer.option)) {
    bool on = layer.option->count() > 0
                  ? layer.option->as<bool>()
                  : layer.default_value == "true" || layer.default_value == "1";
    return on ? "true" : "false";
  }
  if (layer.option->count() == 0) return TomlQuote(layer.default_value);
  return TomlQuote(Join(layer.option->reduced_results()));
}

std::string ConfigLayers::Render() const {
  std::vector<std::pair<std::string, std::string>> lines;
  size_t width = 0;
  for (const Layer& layer : layers_) {
    if (!layer.in_file) continue;
    std::string setting = layer.key + " = " + Value(layer);
    std::string origin;
    switch (layer.origin.kind) {
      case Origin::Kind::kDefault: origin = "default"; break;
      case Origin::Kind::kFlag: origin = "flag --" + layer.key; break;
      case Origin::Kind::kEnv: origin = "env " + layer.envname; break;
      case Origin::Kind::kFile:
        origin = layer.origin.file + ":" + std::to_string(layer.origin.line);
        break;
    }
    width = std::max(width, setting.size());
    lines.emplace_back(std::move(setting), std::move(origin));
  }
  // Comments line up, unless one long value (a join list) would push them all far right.
  width = std::min<size_t>(width, 48);
  std::string out;
  for (const auto& [setting, origin] : lines) {
    out += setting;
    out += std::string(setting.size() < width ? width - setting.size() : 0, ' ');
    out += "  # " + origin + "\n";
  }
  return out;
}

}  // namespace flowmesh
