// Why did a sandboxed command fail? Reads the output of a failed command for the errors a
// sandbox causes and says so in words the model and the user understand:
//
//   bwrap     writes outside the writable binds fail with EROFS ("Read-only file system");
//             the network namespace has only its own loopback ("Network is unreachable",
//             "Connection refused" on 127.0.0.1, no DNS);
//   landlock  writes fail with EACCES ("Permission denied"), protected paths under a
//             private mount namespace with EROFS; sockets other than AF_UNIX fail with EPERM
//             ("Operation not permitted"), TCP connect/bind with EACCES.
//
//   both      a hard link or rename across the edge of the writable roots fails with EXDEV
//             ("Invalid cross-device link"): bwrap binds every writable root (and protected
//             path) as a mount of its own, and Landlock refuses to reparent a file from or to a
//             directory without the REFER right (everything outside the writable roots).
//
// The path a message names is classified against the same plan the backend enforced, so an
// ordinary "Permission denied" inside the workspace is not blamed on the sandbox. EXDEV is an
// ordinary error too (a rename between two filesystems), so it is blamed on the sandbox only
// when the paths the message names sit on one mount of the host (this process is outside the
// sandbox, so it sees the host's mounts) and a path is outside the writable roots, protected,
// or (bwrap) in another writable root than the rest.
#include <keel/sandbox/policy.hpp>

#include <boost/json/parse.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <system_error>

namespace keel::sandbox {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

bool contains(std::string_view text, std::string_view what) { return text.find(what) != std::string_view::npos; }

bool contains_any(std::string_view text, std::initializer_list<std::string_view> words) {
  return std::any_of(words.begin(), words.end(), [&](std::string_view w) { return contains(text, w); });
}

std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    auto nl = text.find('\n');
    out.push_back(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) out += sep;
    out += i;
  }
  return out;
}

void push_path(std::vector<std::string>& out, std::string_view s) {
  while (!s.empty() && (s.back() == ':' || s.back() == ',' || s.back() == '.' || s.back() == ')')) s.remove_suffix(1);
  while (!s.empty() && (s.front() == '(')) s.remove_prefix(1);
  if (s.empty() || s.size() > 4096) return;
  std::string v(s);
  if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(std::move(v));
}

// The quoted strings of a message line ('x', "x", `x', and typographic quotes), in order.
std::vector<std::string> quoted_paths(std::string_view line) {
  std::vector<std::string> out;
  static const std::pair<std::string_view, std::string_view> quotes[] = {
      {"'", "'"}, {"\"", "\""}, {"`", "'"}, {"\xE2\x80\x98", "\xE2\x80\x99"}, {"\xE2\x80\x9C", "\xE2\x80\x9D"}};
  for (const auto& [open, close] : quotes) {
    std::size_t pos = 0;
    while ((pos = line.find(open, pos)) != std::string_view::npos) {
      auto start = pos + open.size();
      auto end = line.find(close, start);
      if (end == std::string_view::npos) break;
      push_path(out, line.substr(start, end - start));
      pos = end + close.size();
    }
  }
  return out;
}

// Paths a message line may name: quoted strings, the field just before the error text in
// "prog: path: error" form, and words containing a slash.
std::vector<std::string> candidate_paths(std::string_view line, std::string_view error) {
  std::vector<std::string> out = quoted_paths(line);
  auto push = [&](std::string_view s) { push_path(out, s); };
  if (auto at = line.find(error); at != std::string_view::npos && at >= 2 && line.substr(at - 2, 2) == ": ") {
    auto before = line.substr(0, at - 2);
    auto colon = before.rfind(": ");
    auto field = colon == std::string_view::npos ? before : before.substr(colon + 2);
    if (!field.empty() && !contains(field, " ")) push(field);
  }
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    auto j = line.find(' ', i);
    auto word = line.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i);
    while (!word.empty() && (word.front() == '\'' || word.front() == '"')) word.remove_prefix(1);
    while (!word.empty() && (word.back() == '\'' || word.back() == '"' || word.back() == ':')) word.remove_suffix(1);
    if (contains(word, "/") && !contains(word, "://")) push(word);
    if (j == std::string_view::npos) break;
    i = j + 1;
  }
  return out;
}

enum class Where { Writable, Outside, Protected, LandlockParent };

struct Classified {
  Where where = Where::Outside;
  std::string path;
  std::string detail;  // the protected path, or the directory holding one
};

std::string resolve_path(const std::string& candidate, const std::string& workdir) {
  fs::path p(candidate);
  if (p.is_relative()) p = fs::path(workdir.empty() ? "/" : workdir) / p;
  std::error_code ec;
  fs::path r = fs::weakly_canonical(p.lexically_normal(), ec);
  std::string s = (ec ? p.lexically_normal() : r).string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

Classified classify(const std::string& path, const Plan& plan, std::string_view backend) {
  Classified c;
  c.path = path;
  for (const auto& p : plan.protected_paths)
    if (path_within(path, p)) return {Where::Protected, path, p};
  bool writable = std::any_of(plan.writable.begin(), plan.writable.end(), [&](const std::string& w) { return path_within(path, w); });
  if (!writable) return c;
  if (backend == "landlock") {
    // Without a private mount namespace, Landlock protects a path inside a writable root
    // by leaving its ancestors without create/remove rights (see tools/keel-landlock).
    std::string parent = fs::path(path).parent_path().string();
    for (const auto& p : plan.protected_paths) {
      std::string holder = fs::path(p).parent_path().string();
      if (path_within(holder, parent)) return {Where::LandlockParent, path, p};
    }
  }
  c.where = Where::Writable;
  return c;
}

// ---- EXDEV ("Invalid cross-device link") ------------------------------------------------------

bool is_cross_device_line(std::string_view line) {
  return contains_any(line, {"cross-device link", "Cross-device link", "EXDEV", "Errno 18]"});
}

// The host mount `path` is on, as this process (outside any sandbox) sees it: of the path, else
// of its nearest existing ancestor (a link or rename target need not exist). The mount id when
// the kernel reports one (5.8+), else the device, which is coarser (two bind mounts of one
// filesystem share it).
struct HostMount {
  bool by_mount_id = false;
  std::uint64_t id = 0;
  bool operator==(const HostMount&) const = default;
};

std::optional<HostMount> host_mount(const std::string& path) {
  fs::path p(path);
  for (;;) {
    struct statx stx {};
    if (::statx(AT_FDCWD, p.c_str(), AT_STATX_DONT_SYNC, STATX_MNT_ID, &stx) == 0) {
      if (stx.stx_mask & STATX_MNT_ID) return HostMount{true, stx.stx_mnt_id};
      return HostMount{false, static_cast<std::uint64_t>(makedev(stx.stx_dev_major, stx.stx_dev_minor))};
    }
    if (errno != ENOENT && errno != ENOTDIR) return std::nullopt;
    if (!p.has_relative_path()) return std::nullopt;
    p = p.parent_path();
  }
}

// True if two of `paths` are known to sit on different host mounts: then no link or rename
// between them works with or without a sandbox.
bool on_different_host_mounts(const std::vector<std::string>& paths) {
  std::optional<HostMount> first;
  for (const auto& p : paths) {
    auto m = host_mount(p);
    if (!m) continue;
    if (!first) first = m;
    else if (m->by_mount_id == first->by_mount_id && !(*m == *first)) return true;
  }
  return false;
}

// The writable root holding `path` (roots do not nest), or "".
std::string root_of(const std::string& path, const Plan& plan) {
  for (const auto& w : plan.writable)
    if (path_within(path, w)) return w;
  return {};
}

// A line reporting EXDEV, between the paths it names (resolved). nullopt: not the sandbox's
// doing, or nothing tells (no path named).
std::optional<Explanation> explain_cross_device(const std::vector<std::string>& paths, const Plan& plan,
                                                std::string_view backend, const std::string& who,
                                                const std::string& writable_list) {
  if (paths.empty() || on_different_host_mounts(paths)) return std::nullopt;
  const std::string advice = "; to use a file from elsewhere, copy it instead of linking or moving it";
  if (plan.mode == Mode::ReadOnly)
    return Explanation{true, who + ": no file may be written, linked or moved in read-only mode (tried to link or move " +
                                   paths.front() + ")"};
  for (const auto& path : paths) {
    auto c = classify(path, plan, backend);
    if (c.where == Where::Protected)
      return Explanation{true, who + ": " + c.detail + " is protected and stays read-only inside the workspace, so no hard "
                                       "link or rename may go into or out of it (tried to link or move " + path +
                                       "); .git, .keel and keel's home cannot be changed by a sandboxed command"};
  }
  for (const auto& path : paths)
    if (root_of(path, plan).empty())
      return Explanation{true, who + ": " + path + " is outside the workspace and the writable roots (writable: " +
                                   writable_list + "), and a hard link or rename (move) across that boundary is not "
                                   "allowed" + advice};
  if (backend == "bwrap") {
    // Every writable root is a bind mount of its own inside bwrap: links and renames between
    // two of them fail there even when the host has them on one filesystem.
    std::string first = root_of(paths.front(), plan);
    for (const auto& path : paths)
      if (std::string other = root_of(path, plan); other != first)
        return Explanation{true, who + ": every writable root is a separate mount in the bwrap sandbox, so a hard link or "
                                       "rename between " + first + " and " + other + " fails (within one root it works)" +
                                       advice};
  }
  return std::nullopt;  // within one writable root: a filesystem boundary of the host's own
}

// `context` is the line with the few before it (a Python traceback names socket.py there).
bool is_network_line(std::string_view line, std::string_view context, std::string_view backend) {
  if (contains_any(line, {"Network is unreachable", "Could not resolve host", "Temporary failure in name resolution",
                          "Name or service not known", "No address associated with hostname", "getaddrinfo",
                          "Could not resolve", "Failed to establish a new connection", "network is unreachable"}))
    return true;
  bool denied = contains_any(line, {"Operation not permitted", "Permission denied", "Errno 1]", "Errno 13]", "EPERM", "EACCES"});
  bool socket_words = contains_any(context, {"socket", "connect", "/dev/tcp/", "/dev/udp/", "bind", "Network", "network",
                                             "curl:", "wget:", "ssh:", "nc:", "ping:", "Connection"});
  if (denied && socket_words) return true;
  // bwrap's network namespace has a loopback of its own: the host's listeners are not there.
  return backend == "bwrap" && contains(line, "Connection refused");
}

}  // namespace

Explanation explain(std::string_view backend, std::string_view payload, const ModuleConfig& config) {
  json::value v = json::parse(payload);
  if (!v.is_object()) throw SandboxError(1, "the explain request must be a JSON object");
  const auto& o = v.as_object();
  std::int64_t exit_code = 1;
  if (const auto* e = o.if_contains("exit_code")) {
    if (e->is_int64()) exit_code = e->as_int64();
    else if (e->is_uint64()) exit_code = static_cast<std::int64_t>(e->as_uint64());
  }
  std::string output;
  if (const auto* out = o.if_contains("output"); out && out->is_string()) output = out->as_string();
  if (exit_code == 0 || backend == "none") return {};

  std::optional<Policy> policy;
  if (const auto* p = o.if_contains("policy"); p && p->is_object()) policy = parse_policy(*p);
  if (policy && policy->mode == Mode::FullAccess) return {};
  std::string cwd = config.cwd, workdir;
  if (const auto* c = o.if_contains("cwd"); c && c->is_string()) cwd = c->as_string();
  if (const auto* w = o.if_contains("workdir"); w && w->is_string()) workdir = w->as_string();
  if (workdir.empty()) workdir = cwd;
  const char* tmp = std::getenv("TMPDIR");
  Plan plan = make_plan(policy.value_or(Policy{Mode::WorkspaceWrite, {}, false, {}}), cwd, config.keel_home, tmp ? tmp : "");
  if (!policy) plan.mode = Mode::WorkspaceWrite;

  const std::string who = "blocked by the " + (policy ? std::string(mode_name(policy->mode)) + " " : std::string()) + "sandbox";
  const std::string writable_list = plan.writable.empty() ? "nothing" : join(plan.writable, ", ");

  for (auto line : lines_of(output)) {
    // The sandbox itself could not start (not the command failing).
    for (std::string_view prefix : {std::string_view("bwrap: "), std::string_view("keel-landlock-exec: ")}) {
      if (line.substr(0, prefix.size()) == prefix && !contains(line, "execvp") && !contains(line, "cannot run ")) {
        return {true, "the " + std::string(backend) + " sandbox could not start (" + std::string(line) +
                          "); nothing was run. Fix the sandbox set-up, or choose another sandbox"};
      }
    }
  }

  bool network_off = !plan.network;
  const auto lines = lines_of(output);
  for (std::size_t i = 0; i < lines.size() && network_off; ++i) {
    std::size_t first = i >= 4 ? i - 4 : 0;
    std::string_view context(lines[first].data(), static_cast<std::size_t>(lines[i].data() + lines[i].size() - lines[first].data()));
    if (is_network_line(lines[i], context, backend))
      return {true, who + ": network access is disabled, so connections (even to 127.0.0.1) and name lookups fail. " +
                        "It can be allowed with network_access = true in [sandbox_workspace_write]"};
  }

  std::optional<std::string> generic;
  for (auto line : lines_of(output)) {
    std::string_view error;
    if (contains(line, "Read-only file system")) error = "Read-only file system";
    else if (backend == "landlock" && contains(line, "Permission denied")) error = "Permission denied";
    else if (is_cross_device_line(line)) {
      // Only the quoted paths when there are any: the other words with a slash may name the
      // program (EXDEV is common enough that a stray path must not turn it into a block).
      std::vector<std::string> named = quoted_paths(line);
      if (named.empty())
        named = candidate_paths(line, contains(line, "Invalid cross-device link")   ? "Invalid cross-device link"
                                      : contains(line, "invalid cross-device link") ? "invalid cross-device link"
                                                                                    : "cross-device link");
      std::vector<std::string> paths;
      for (const auto& cand : named)
        if (std::string p = resolve_path(cand, workdir); std::find(paths.begin(), paths.end(), p) == paths.end())
          paths.push_back(std::move(p));
      if (auto e = explain_cross_device(paths, plan, backend, who, writable_list)) return *e;
      continue;
    }
    if (error.empty()) continue;
    bool classified_writable = false;
    for (const auto& cand : candidate_paths(line, error)) {
      std::string path = resolve_path(cand, workdir);
      if (plan.mode == Mode::ReadOnly)
        return {true, who + ": no file may be written in read-only mode (tried to write " + path + ")"};
      auto c = classify(path, plan, backend);
      switch (c.where) {
        case Where::Outside:
          return {true, who + ": writing outside the workspace is not allowed (tried to write " + path +
                            "; writable: " + writable_list + ")"};
        case Where::Protected:
          return {true, who + ": " + c.detail + " is protected and stays read-only inside the workspace (tried to write " +
                            path + "); .git, .keel and keel's home cannot be changed by a sandboxed command"};
        case Where::LandlockParent:
          return {true, who + " (landlock): entries cannot be created, removed or renamed directly in " +
                            fs::path(path).parent_path().string() + ", because it holds the read-only " + c.detail +
                            " and Landlock cannot exempt a subfolder from a writable one; work inside a subfolder, or "
                            "use the bwrap sandbox"};
        case Where::Writable: classified_writable = true; break;
      }
    }
    if (!classified_writable && !generic)
      generic = who + ": the command tried to write where the sandbox does not allow it (" + std::string(line) +
                "; writable: " + writable_list + ")";
  }
  if (generic) return {true, *generic};
  return {};
}

}  // namespace keel::sandbox
