#include <keel/kernel/config.hpp>

#include <boost/json/value.hpp>
#include <toml++/toml.h>

#include <cstdlib>
#include <sstream>

namespace keel {
namespace fs = std::filesystem;

namespace {

boost::json::value to_json(const toml::node& node) {
  if (auto* t = node.as_table()) {
    boost::json::object o;
    for (auto& [k, v] : *t) o[std::string(k.str())] = to_json(v);
    return o;
  }
  if (auto* a = node.as_array()) {
    boost::json::array arr;
    for (auto& v : *a) arr.push_back(to_json(v));
    return arr;
  }
  if (auto* s = node.as_string()) return boost::json::value(s->get());
  if (auto* i = node.as_integer()) return boost::json::value(i->get());
  if (auto* f = node.as_floating_point()) return boost::json::value(f->get());
  if (auto* b = node.as_boolean()) return boost::json::value(b->get());
  std::ostringstream os;  // dates and times: their TOML text
  if (auto* d = node.as_date()) os << d->get();
  else if (auto* t = node.as_time()) os << t->get();
  else if (auto* dt = node.as_date_time()) os << dt->get();
  return boost::json::value(os.str());
}

boost::json::object read_toml_file(const fs::path& path) {
  try {
    auto table = toml::parse_file(path.string());
    return to_json(table).as_object();
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << path.string() << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << e.description();
    throw ConfigError(os.str());
  }
}

fs::path find_project_config(const fs::path& cwd, const fs::path& user_file) {
  std::error_code ec;
  for (fs::path dir = cwd; !dir.empty(); dir = dir.parent_path()) {
    auto candidate = dir / ".keel" / "config.toml";
    // ~/.keel/config.toml is the user layer, not a project's, even when cwd is under ~.
    if (fs::is_regular_file(candidate, ec) && !fs::equivalent(candidate, user_file, ec)) return candidate;
    if (fs::exists(dir / ".git", ec)) break;  // the project root bounds the search
    if (dir == dir.parent_path()) break;
  }
  return {};
}

}  // namespace

fs::path default_keel_home() {
  if (const char* env = std::getenv("KEEL_HOME"); env && *env) return fs::path(env);
  if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".keel";
  return fs::current_path() / ".keel";
}

void merge_json(boost::json::object& base, const boost::json::object& overlay) {
  for (auto& [key, value] : overlay) {
    auto* existing = base.if_contains(key);
    if (existing && existing->is_object() && value.is_object()) merge_json(existing->as_object(), value.as_object());
    else base[key] = value;
  }
}

Config Config::load(const ConfigSources& sources) {
  Config config;
  config.keel_home_ = sources.keel_home.empty() ? default_keel_home() : sources.keel_home;
  config.cwd_ = fs::weakly_canonical(sources.cwd.empty() ? fs::current_path() : fs::absolute(sources.cwd));
  if (sources.read_files) {
    std::vector<fs::path> layers{sources.system_file, config.keel_home_ / "config.toml",
                                 find_project_config(config.cwd_, config.keel_home_ / "config.toml")};
    for (auto& file : layers) {
      std::error_code ec;
      if (file.empty() || !fs::is_regular_file(file, ec)) continue;
      merge_json(config.root_, read_toml_file(file));
      config.files_.push_back(file);
    }
  }
  // -c overrides first, so that `-c profile=x` selects a profile too; then again on top of it.
  for (auto& o : sources.overrides) config.set(o);
  std::string profile = sources.profile.value_or(config.string_or("profile", ""));
  if (!profile.empty()) {
    auto* p = config.find("profiles." + profile);
    if (!p || !p->is_object()) throw ConfigError("profile '" + profile + "' is not defined under [profiles]");
    merge_json(config.root_, p->as_object());
    config.root_["profile"] = profile;
    for (auto& o : sources.overrides) config.set(o);
  }
  return config;
}

void Config::set(std::string_view assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string_view::npos || eq == 0)
    throw ConfigError("override '" + std::string(assignment) + "' is not of the form key=value");
  std::string key(assignment.substr(0, eq));
  std::string raw(assignment.substr(eq + 1));
  boost::json::value value;
  try {  // parse the value as TOML ("true", "5", "[1,2]", "'x'", "{a=1}"); fall back to a string
    auto t = toml::parse("v = " + raw);
    value = to_json(*t.get("v"));
  } catch (const toml::parse_error&) {
    value = boost::json::value(raw);
  }
  boost::json::object* table = &root_;
  std::size_t start = 0;
  for (;;) {
    auto dot = key.find('.', start);
    std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty()) throw ConfigError("override key '" + key + "' has an empty part");
    if (dot == std::string::npos) {
      (*table)[part] = std::move(value);
      return;
    }
    auto& next = (*table)[part];
    if (!next.is_object()) next = boost::json::object{};
    table = &next.as_object();
    start = dot + 1;
  }
}

const boost::json::value* Config::find(std::string_view dotted) const {
  const boost::json::object* table = &root_;
  for (;;) {
    auto dot = dotted.find('.');
    auto* v = table->if_contains(dotted.substr(0, dot));
    if (!v || dot == std::string_view::npos) return v;
    if (!v->is_object()) return nullptr;
    table = &v->as_object();
    dotted.remove_prefix(dot + 1);
  }
}

std::string Config::string_or(std::string_view dotted, std::string fallback) const {
  auto* v = find(dotted);
  return v && v->is_string() ? std::string(v->as_string()) : fallback;
}

std::int64_t Config::int_or(std::string_view dotted, std::int64_t fallback) const {
  auto* v = find(dotted);
  return v && v->is_int64() ? v->as_int64() : fallback;
}

bool Config::bool_or(std::string_view dotted, bool fallback) const {
  auto* v = find(dotted);
  return v && v->is_bool() ? v->as_bool() : fallback;
}

}  // namespace keel
