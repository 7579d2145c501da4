// The module host: discovers installed modules, verifies each library's minisign signature
// against the trusted keys before a single byte of it is mapped, loads exactly the verified
// bytes (no window between check and load), negotiates the ABI and serves the module's
// capabilities on the bus.
#pragma once

#include <keel/abi.h>
#include <keel/kernel/bus.hpp>

#include <boost/json/object.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace keel {

struct CapabilityInfo {
  keel_capability_kind kind;
  std::uint32_t flags = 0;
  std::string name, description, schema_json;
  std::string module;  // which module provides it
};

enum class ModuleState { loaded, refused, failed_to_start, deferred };

struct ModuleInfo {
  std::string name, version, kind, description;
  std::filesystem::path dir, library;
  ModuleState state = ModuleState::refused;
  std::string reason;  // why it was refused or failed
  std::string signer;  // key id that signed it
  std::vector<CapabilityInfo> capabilities;
  double verify_ms = 0, load_ms = 0;
};

struct ModuleHostOptions {
  std::filesystem::path keel_home;
  std::vector<std::filesystem::path> extra_module_dirs;  // searched after $KEEL_HOME/modules
  bool allow_legacy_signatures = false;
  // Modules for which this returns true (given name and manifest kind) are found but not
  // verified or loaded until ensure_loaded() asks for them: front ends, providers, sandboxes
  // and memory backends that the configuration does not select cost nothing at start-up.
  std::function<bool(const std::string& name, const std::string& kind)> defer;
  // Config handed to a module's start(), by module name.
  std::function<boost::json::object(const ModuleInfo&)> module_config;
  std::function<void(keel_log_level, std::string_view)> log;
};

class ModuleHost {
 public:
  ModuleHost(Bus& bus, ModuleHostOptions options);
  ~ModuleHost();  // stops every module, then unloads the libraries
  ModuleHost(const ModuleHost&) = delete;
  ModuleHost& operator=(const ModuleHost&) = delete;

  // Discovers, verifies, loads and starts every installed module. Never throws for a bad
  // module: it is recorded as refused with the reason, and the rest still load.
  void load_all();

  // Verifies and loads a deferred module now. Returns false if it is not installed or was
  // refused (modules() says why).
  bool ensure_loaded(const std::string& name);
  void load_deferred();  // every deferred module (e.g. for `keel modules`)

  std::vector<ModuleInfo> modules() const;
  std::vector<CapabilityInfo> capabilities(keel_capability_kind kind) const;
  std::optional<CapabilityInfo> find_capability(keel_capability_kind kind, std::string_view name) const;

  // The bus server name of a capability, e.g. "tool.shell".
  static std::string server_name(keel_capability_kind kind, std::string_view name);
  static const char* kind_name(keel_capability_kind kind);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel
