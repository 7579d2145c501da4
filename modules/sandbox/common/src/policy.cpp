// Policy parsing and planning shared by the sandbox backends. See keel/sandbox/policy.hpp.
#include <keel/sandbox/policy.hpp>

#include <keel/abi.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace keel::sandbox {

namespace json = boost::json;
namespace fs = std::filesystem;

std::string_view mode_name(Mode mode) {
  switch (mode) {
    case Mode::ReadOnly: return "read-only";
    case Mode::WorkspaceWrite: return "workspace-write";
    case Mode::FullAccess: return "danger-full-access";
  }
  return "read-only";
}

namespace {

[[noreturn]] void invalid(const std::string& message) { throw SandboxError(KEEL_ERR_INVALID_ARGUMENT, message); }

std::vector<std::string> absolute_paths(const json::object& o, std::string_view key, std::string_view what) {
  std::vector<std::string> out;
  const auto* v = o.if_contains(key);
  if (!v || v->is_null()) return out;
  if (!v->is_array()) invalid(std::string(what) + " '" + std::string(key) + "' must be an array of absolute paths");
  for (const auto& e : v->as_array()) {
    if (!e.is_string()) invalid(std::string(what) + " '" + std::string(key) + "' must contain only strings");
    std::string p(e.as_string());
    if (p.empty() || p[0] != '/')
      invalid(std::string(what) + " '" + std::string(key) + "' must contain absolute paths, not '" + p + "'");
    out.push_back(std::move(p));
  }
  return out;
}

std::string str_field(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string{};
}

// Canonical path when it exists (symlinks resolved), else the lexically normal form.
std::string resolved(const std::string& path, bool* exists = nullptr) {
  std::error_code ec;
  fs::path p = fs::canonical(path, ec);
  if (exists) *exists = !ec;
  if (ec) p = fs::path(path).lexically_normal();
  std::string s = p.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

bool is_directory(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

// Sorted (parents before children), without duplicates and without paths inside another.
std::vector<std::string> outermost(std::vector<std::string> paths) {
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  std::vector<std::string> out;
  for (auto& p : paths)
    if (std::none_of(out.begin(), out.end(), [&](const std::string& o) { return path_within(p, o); }))
      out.push_back(std::move(p));
  return out;
}

}  // namespace

bool path_within(std::string_view path, std::string_view root) {
  if (root == "/") return !path.empty() && path[0] == '/';
  if (path.size() < root.size() || path.substr(0, root.size()) != root) return false;
  return path.size() == root.size() || path[root.size()] == '/';
}

Policy parse_policy(const json::value& value) {
  if (!value.is_object())
    invalid("the sandbox policy must be an object like {\"mode\": \"workspace-write\", \"writable_roots\": []}");
  const auto& o = value.as_object();
  Policy p;
  const auto* mode = o.if_contains("mode");
  if (!mode || !mode->is_string())
    invalid("the sandbox policy needs a 'mode': read-only, workspace-write or danger-full-access");
  std::string_view m = mode->as_string();
  if (m == "read-only") p.mode = Mode::ReadOnly;
  else if (m == "workspace-write") p.mode = Mode::WorkspaceWrite;
  else if (m == "danger-full-access") p.mode = Mode::FullAccess;
  else invalid("unknown sandbox mode '" + std::string(m) + "' (expected read-only, workspace-write or danger-full-access)");
  p.writable_roots = absolute_paths(o, "writable_roots", "sandbox policy field");
  p.protected_paths = absolute_paths(o, "protected_paths", "sandbox policy field");
  if (const auto* n = o.if_contains("network_access"); n && !n->is_null()) {
    if (!n->is_bool()) invalid("sandbox policy field 'network_access' must be true or false");
    p.network_access = n->as_bool();
  }
  return p;
}

std::string ModuleConfig::string_or(std::string_view key, std::string fallback) const {
  const auto* v = raw.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : fallback;
}

bool ModuleConfig::bool_or(std::string_view key, bool fallback) const {
  const auto* v = raw.if_contains(key);
  return v && v->is_bool() ? v->as_bool() : fallback;
}

ModuleConfig parse_config(const json::object& config) {
  ModuleConfig c;
  c.raw = config;
  c.keel_home = str_field(config, "keel_home");
  c.cwd = str_field(config, "cwd");
  return c;
}

PrepareRequest parse_prepare(std::string_view payload, const ModuleConfig& config) {
  json::value v;
  try {
    v = json::parse(payload);
  } catch (const std::exception& e) {
    invalid(std::string("the prepare request is not valid JSON: ") + e.what());
  }
  if (!v.is_object()) invalid("the prepare request must be a JSON object");
  const auto& o = v.as_object();
  PrepareRequest r;
  const auto* argv = o.if_contains("argv");
  if (!argv || !argv->is_array() || argv->as_array().empty())
    invalid("the prepare request needs a non-empty 'argv' array of strings");
  for (const auto& a : argv->as_array()) {
    if (!a.is_string()) invalid("'argv' must contain only strings");
    r.argv.emplace_back(a.as_string());
  }
  if (r.argv[0].empty()) invalid("'argv[0]' must not be empty");
  r.cwd = str_field(o, "cwd");
  if (r.cwd.empty()) r.cwd = config.cwd;
  if (r.cwd.empty() || r.cwd[0] != '/') invalid("the prepare request needs an absolute 'cwd' (the workspace)");
  r.workdir = str_field(o, "workdir");
  if (r.workdir.empty()) r.workdir = r.cwd;
  if (r.workdir[0] != '/') r.workdir = (fs::path(r.cwd) / r.workdir).lexically_normal().string();
  if (const auto* env = o.if_contains("env"); env && !env->is_null()) {
    if (!env->is_object()) invalid("'env' must be an object of strings");
    r.env = env->as_object();
  }
  const auto* policy = o.if_contains("policy");
  if (!policy) invalid("the prepare request needs a 'policy' (the sandbox policy object)");
  r.policy = parse_policy(*policy);
  return r;
}

Plan make_plan(const Policy& policy, const std::string& cwd, const std::string& keel_home, const std::string& tmpdir) {
  Plan plan;
  plan.mode = policy.mode;
  plan.network = policy.network_access || policy.mode == Mode::FullAccess;
  if (policy.mode != Mode::WorkspaceWrite) return plan;

  std::vector<std::string> roots;
  auto add_root = [&](const std::string& path) {
    if (path.empty() || path[0] != '/') return;
    std::string r = resolved(path);
    if (is_directory(r)) roots.push_back(r);
  };
  add_root(cwd);
  for (const auto& w : policy.writable_roots) add_root(w);
  add_root("/tmp");
  add_root(tmpdir);
  plan.writable = outermost(std::move(roots));

  std::vector<std::string> candidates;
  for (const auto& w : plan.writable) {
    candidates.push_back(w + "/.git");
    candidates.push_back(w + "/.keel");
  }
  if (!keel_home.empty() && keel_home[0] == '/') candidates.push_back(keel_home);
  for (const auto& p : policy.protected_paths) candidates.push_back(p);

  std::vector<std::string> prot, missing;
  for (const auto& c : candidates) {
    bool exists = false;
    std::string r = resolved(c, &exists);
    bool inside = std::any_of(plan.writable.begin(), plan.writable.end(),
                              [&](const std::string& w) { return path_within(r, w); });
    if (!inside) continue;  // already read-only
    (exists ? prot : missing).push_back(r);
  }
  plan.protected_paths = outermost(std::move(prot));
  std::sort(missing.begin(), missing.end());
  missing.erase(std::unique(missing.begin(), missing.end()), missing.end());
  plan.unenforced = std::move(missing);
  return plan;
}

Plan make_plan(const PrepareRequest& request, const ModuleConfig& config) {
  std::string tmpdir;
  if (const auto* t = request.env.if_contains("TMPDIR"); t && t->is_string()) tmpdir = t->as_string();
  else if (const char* env = std::getenv("TMPDIR")) tmpdir = env;
  return make_plan(request.policy, request.cwd, config.keel_home, tmpdir);
}

std::string prepare_reply(const std::vector<std::string>& argv, const json::object& env, std::string_view backend,
                          Mode mode) {
  json::array a;
  for (const auto& s : argv) a.emplace_back(s);
  return json::serialize(json::object{{"argv", std::move(a)}, {"env", env}, {"sandbox", backend}, {"mode", mode_name(mode)}});
}

}  // namespace keel::sandbox
