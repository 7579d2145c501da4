// keel::sandbox — what every sandbox backend shares: the policy JSON, the requests of the
// `sandbox` capability, the plan of what to enforce, and the explanation of a blocked command.
//
//   policy   {"mode": "read-only" | "workspace-write" | "danger-full-access",
//             "writable_roots": [abs], "network_access": bool, "protected_paths": [abs]}
//   prepare  {"argv", "cwd", "workdir"?, "env"?, "policy"} -> {"argv", "env", "sandbox", "mode"}
//   explain  {"argv", "exit_code", "output", "policy"?, "cwd"?, "workdir"?} -> {"blocked", "reason"}
//
// `cwd` is the workspace (the session's working directory; writable in workspace-write);
// `workdir` is where the command runs, which defaults to cwd and is never made writable by
// itself (a model asking to run in / must not make / writable).
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace keel::sandbox {

enum class Mode { ReadOnly, WorkspaceWrite, FullAccess };

std::string_view mode_name(Mode mode);

struct Policy {
  Mode mode = Mode::ReadOnly;
  std::vector<std::string> writable_roots;
  bool network_access = false;
  std::vector<std::string> protected_paths;
};

// A request the module refuses; `status` is a keel_status (KEEL_ERR_*).
struct SandboxError : std::runtime_error {
  SandboxError(int status, const std::string& message) : std::runtime_error(message), status(status) {}
  int status;
};

// Throws SandboxError(KEEL_ERR_INVALID_ARGUMENT) with a message naming the bad field.
Policy parse_policy(const boost::json::value& value);

struct PrepareRequest {
  std::vector<std::string> argv;
  std::string cwd;      // the workspace
  std::string workdir;  // where the command runs (cwd when not given)
  boost::json::object env;
  Policy policy;
};

// The module's configuration as the kernel hands it over ("keel_home", "cwd", own keys).
struct ModuleConfig {
  std::string keel_home;
  std::string cwd;
  boost::json::object raw;
  std::string string_or(std::string_view key, std::string fallback) const;
  bool bool_or(std::string_view key, bool fallback) const;
};
ModuleConfig parse_config(const boost::json::object& config);

// Parses a `prepare` payload; cwd falls back to the module config's cwd.
PrepareRequest parse_prepare(std::string_view payload, const ModuleConfig& config);

// What a backend enforces for one command.
struct Plan {
  Mode mode = Mode::ReadOnly;
  // Existing directories, canonical, parents before children, no duplicates. Empty unless
  // workspace-write. Includes the workspace, the policy's writable roots, /tmp and $TMPDIR.
  std::vector<std::string> writable;
  // Existing paths that lie inside (or are) a writable root and must stay read-only:
  // <root>/.git and <root>/.keel of every writable root, keel_home, the policy's
  // protected_paths. Canonical, sorted.
  std::vector<std::string> protected_paths;
  // Protected candidates inside a writable root that do not exist (yet): neither backend can
  // protect them without creating them in the user's tree, so they are reported, not enforced.
  std::vector<std::string> unenforced;
  bool network = false;
};

// `tmpdir` is the command's $TMPDIR (from the request env, else the module's environment).
Plan make_plan(const Policy& policy, const std::string& cwd, const std::string& keel_home, const std::string& tmpdir);
Plan make_plan(const PrepareRequest& request, const ModuleConfig& config);

// True if `path` is `root` or lies beneath it (both lexically normal absolute paths).
bool path_within(std::string_view path, std::string_view root);

struct Explanation {
  bool blocked = false;
  std::string reason;
};

// Reads a failed command's output and says whether (and why, in words for the model and the
// user) the sandbox blocked it. `backend` is "bwrap", "landlock" or "none".
Explanation explain(std::string_view backend, std::string_view payload, const ModuleConfig& config);

// The wrapped-command reply: {"argv": [...], "env": {...}, "sandbox": backend, "mode": ...}.
std::string prepare_reply(const std::vector<std::string>& argv, const boost::json::object& env, std::string_view backend,
                          Mode mode);

}  // namespace keel::sandbox
