#include "commands.hpp"

#include <keel/kernel/kernel.hpp>

#include <boost/json/serialize.hpp>

#include <filesystem>
#include <iostream>
#include <iterator>

namespace keel::cli {
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

Config load_config(const Options& o) {
  ConfigSources src;
  if (o.cwd) {
    std::error_code ec;
    if (!fs::is_directory(*o.cwd, ec)) throw UsageError("-C " + *o.cwd + ": not a directory");
    src.cwd = fs::canonical(*o.cwd);
  }
  src.profile = o.profile;
  src.overrides = o.overrides;
  if (o.model) src.overrides.push_back("model=" + json::serialize(json::value(*o.model)));
  if (o.provider) src.overrides.push_back("model_provider=" + json::serialize(json::value(*o.provider)));
  if (o.replay) {
    std::error_code ec;
    auto path = fs::absolute(*o.replay);
    if (!fs::is_regular_file(path, ec)) throw UsageError("--replay " + *o.replay + ": no such file");
    src.overrides.push_back("model_provider=\"replay\"");
    src.overrides.push_back("model_providers.replay.script=" + json::serialize(json::value(path.string())));
  }
  return Config::load(src);
}

}  // namespace

int run_exec(const Options& o) {
  std::string prompt;
  for (auto& p : o.positional) prompt += (prompt.empty() ? "" : " ") + p;
  if (prompt.empty() || prompt == "-") {
    prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    while (!prompt.empty() && (prompt.back() == '\n' || prompt.back() == '\r')) prompt.pop_back();
  }
  if (prompt.empty()) throw UsageError("keel exec: no prompt (give it as an argument or on stdin)");
  Config config = load_config(o);
  Kernel kernel(std::move(config));
  json::object args{{"prompt", prompt}, {"json", o.json}, {"cwd", kernel.config().cwd().string()}};
  if (o.output_last_message) args["output_last_message"] = fs::absolute(*o.output_last_message).string();
  return kernel.run_ui(o.ui.value_or(kernel.config().string_or("ui", "exec")), std::move(args));
}

int run_modules(const Options& o) {
  Kernel kernel(load_config(o));
  auto& mods = kernel.modules().modules();
  if (o.json) {
    json::array out;
    for (auto& m : mods) {
      const char* state = m.state == ModuleState::loaded ? "loaded" : m.state == ModuleState::refused ? "refused" : "failed";
      out.push_back(json::object{{"name", m.name}, {"version", m.version}, {"kind", m.kind}, {"state", state},
                                 {"reason", m.reason}, {"signer", m.signer}, {"dir", m.dir.string()}});
    }
    std::cout << json::serialize(out) << "\n";
    return 0;
  }
  std::cout << "KEEL_HOME " << kernel.config().keel_home().string() << "\n";
  if (mods.empty()) std::cout << "no modules installed\n";
  for (auto& m : mods) {
    std::cout << (m.state == ModuleState::loaded ? "loaded   " : m.state == ModuleState::refused ? "REFUSED  " : "FAILED   ")
              << m.name << " " << m.version << " (" << m.kind << ")";
    if (m.state == ModuleState::loaded) {
      std::cout << " signed by " << m.signer << ":";
      for (auto& c : m.capabilities) std::cout << " " << ModuleHost::kind_name(c.kind) << "." << c.name;
    } else {
      std::cout << ": " << m.reason;
    }
    std::cout << "\n";
  }
  return 0;
}

}  // namespace keel::cli
