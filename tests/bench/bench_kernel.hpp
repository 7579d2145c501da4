// Helpers for the benchmarks that run a real Kernel: a temporary KEEL_HOME holding the
// first-party modules exactly as the build signed them (copied from
// ${PROJECT_BINARY_DIR}/keel-home), a workspace, and synchronous bus calls.
#pragma once

#include "bench.hpp"

#include <keel/kernel/kernel.hpp>

#include <boost/json/serialize.hpp>

#include <unistd.h>

#include <future>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace keel::bench {

namespace fs = std::filesystem;

inline std::string toml_string(const std::string& s) {
  return boost::json::serialize(boost::json::value(s));  // a JSON string is a TOML basic string
}

class BenchHome {
 public:
  explicit BenchHome(const std::string& tag)
      : tmp_(fs::temp_directory_path() / ("keel-bench-" + tag + "-" + std::to_string(::getpid()))) {
    fs::remove_all(tmp_);
    fs::create_directories(work());
    fs::create_directories(home());
    const fs::path build_home = KEEL_BUILD_HOME;
    if (!fs::is_directory(build_home / "modules"))
      throw std::runtime_error(build_home.string() + "/modules is missing: build the keel-home target first");
    fs::copy(build_home / "modules", home() / "modules", fs::copy_options::recursive);
    fs::copy(build_home / "trusted_keys", home() / "trusted_keys", fs::copy_options::recursive);
  }
  ~BenchHome() {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
  BenchHome(const BenchHome&) = delete;
  BenchHome& operator=(const BenchHome&) = delete;

  fs::path tmp() const { return tmp_; }
  fs::path home() const { return tmp_ / "home"; }
  fs::path work() const { return tmp_ / "work"; }

  // The configuration of an embedding: no files read, only these `-c`-style overrides.
  Config config(const std::vector<std::string>& overrides) const {
    ConfigSources src;
    src.keel_home = home();
    src.cwd = work();
    src.read_files = false;
#ifdef KEEL_LANDLOCK_HELPER
    // The landlock helper is looked for next to the running executable, which is not keel here.
    src.overrides.push_back("modules.landlock.helper=" + toml_string(KEEL_LANDLOCK_HELPER));
#endif
    src.overrides.insert(src.overrides.end(), overrides.begin(), overrides.end());
    return Config::load(src);
  }

 private:
  fs::path tmp_;
};

inline void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

struct Reply {
  int status = -1;
  std::string body;
};

// bus.request and wait for the reply (which may come from another thread), the way the
// kernel's own tool dispatch waits (a promise per call).
inline Reply call(Bus& bus, std::string_view topic, std::string payload) {
  std::promise<Reply> done;
  auto f = done.get_future();
  bus.request(topic, std::move(payload), nullptr,
              [&done](int status, std::string_view body) { done.set_value(Reply{status, std::string(body)}); });
  return f.get();
}

inline std::optional<ModuleInfo> module_info(Kernel& k, const std::string& name) {
  for (auto& m : k.modules().modules())
    if (m.name == name) return m;
  return std::nullopt;
}

inline const char* state_name(ModuleState s) {
  switch (s) {
    case ModuleState::loaded: return "loaded";
    case ModuleState::refused: return "refused";
    case ModuleState::failed_to_start: return "failed to start";
    case ModuleState::deferred: return "deferred";
  }
  return "?";
}

// Throws unless the module is loaded (after loading it if it was deferred).
inline void require_module(Kernel& k, const std::string& name) {
  k.modules().ensure_loaded(name);
  auto m = module_info(k, name);
  if (!m) throw std::runtime_error("module '" + name + "' is not installed in the bench home");
  if (m->state != ModuleState::loaded)
    throw std::runtime_error("module '" + name + "' is " + state_name(m->state) + ": " + m->reason);
}

}  // namespace keel::bench
