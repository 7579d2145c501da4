// Layered TOML configuration, merged into one JSON object:
//   /etc/keel/config.toml < $KEEL_HOME/config.toml < .keel/config.toml (project, nearest to cwd)
//   < [profiles.<name>] (selected by `profile = "..."` or -p) < -c key=value overrides.
#pragma once

#include <boost/json/object.hpp>

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace keel {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ConfigSources {
  std::filesystem::path keel_home;                   // empty: $KEEL_HOME or ~/.keel
  std::filesystem::path cwd;                         // empty: the current directory
  std::optional<std::string> profile;                // -p NAME
  std::vector<std::string> overrides;                // -c a.b=value (value parsed as TOML, else a string)
  std::filesystem::path system_file = "/etc/keel/config.toml";
  bool read_files = true;                            // false: overrides only (tests, embedding)
};

class Config {
 public:
  Config() = default;
  explicit Config(boost::json::object root) : root_(std::move(root)) {}
  static Config load(const ConfigSources& sources);

  const boost::json::object& root() const { return root_; }
  boost::json::object& root() { return root_; }
  const std::filesystem::path& keel_home() const { return keel_home_; }
  const std::filesystem::path& cwd() const { return cwd_; }
  const std::vector<std::filesystem::path>& files() const { return files_; }

  // Dotted lookup ("model_providers.ollama.base_url"); nullptr when absent.
  const boost::json::value* find(std::string_view dotted) const;
  std::string string_or(std::string_view dotted, std::string fallback) const;
  std::int64_t int_or(std::string_view dotted, std::int64_t fallback) const;
  bool bool_or(std::string_view dotted, bool fallback) const;

  // Applies one "a.b.c=value" override.
  void set(std::string_view assignment);

 private:
  std::filesystem::path keel_home_;
  std::filesystem::path cwd_;
  boost::json::object root_;
  std::vector<std::filesystem::path> files_;
};

std::filesystem::path default_keel_home();
// Deep merge: tables merge key by key, anything else in overlay replaces base.
void merge_json(boost::json::object& base, const boost::json::object& overlay);

}  // namespace keel
