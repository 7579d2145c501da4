// The sandbox modules' shared logic: policy parsing, the plan of what is enforced, and the
// explanation of a blocked command from typical tool messages.
#include "scratch_dir.hpp"
#include <keel/abi.h>
#include <keel/sandbox/policy.hpp>

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace keel::sandbox;

namespace {

struct Dir {
  fs::path path;
  Dir() {
    std::string tmpl = (keel::test::scratch_parent() / "keel-sandbox-policy-XXXXXX").string();
    path = fs::canonical(::mkdtemp(tmpl.data()));
    fs::create_directories(path / "ws" / ".git");
    fs::create_directories(path / "ws" / "src");
    fs::create_directories(path / "extra" / "home");
    fs::create_directories(path / "out");
  }
  ~Dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string s(const std::string& rel) const { return (path / rel).string(); }
};

Policy ww(const Dir& d, bool network = false) {
  return parse_policy(json::object{{"mode", "workspace-write"},
                                   {"writable_roots", json::array{d.s("extra")}},
                                   {"network_access", network}});
}

Explanation why(const Dir& d, std::string_view backend, const std::string& output, const json::object& policy,
                const std::string& workdir = "") {
  json::object req{{"argv", json::array{"x"}}, {"exit_code", 1}, {"output", output}, {"policy", policy}, {"cwd", d.s("ws")}};
  if (!workdir.empty()) req["workdir"] = workdir;
  ModuleConfig config = parse_config(json::object{{"keel_home", d.s("extra/home")}, {"cwd", d.s("ws")}});
  return explain(backend, json::serialize(req), config);
}

json::object ww_json(const Dir& d, bool network = false) {
  return {{"mode", "workspace-write"}, {"writable_roots", json::array{d.s("extra")}}, {"network_access", network}};
}

std::optional<std::uint64_t> mount_id(const fs::path& p) {
  struct statx stx {};
  if (::statx(AT_FDCWD, p.c_str(), 0, STATX_MNT_ID, &stx) != 0 || !(stx.stx_mask & STATX_MNT_ID)) return std::nullopt;
  return stx.stx_mnt_id;
}

// A directory on another mount of the host than the test's tree (a real filesystem boundary),
// or "" when there is none to be found.
std::string other_mount(const Dir& d) {
  auto ours = mount_id(d.path);
  for (const char* dir : {"/dev/shm", "/tmp", "/run", "/dev"}) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec) || fs::is_symlink(dir, ec)) continue;
    auto theirs = mount_id(dir);
    if (ours && theirs && *ours != *theirs) return dir;
  }
  return {};
}

}  // namespace

TEST_CASE("policies parse, and bad ones say what is wrong", "[sandbox][policy]") {
  auto p = parse_policy(json::parse(R"({"mode":"workspace-write","writable_roots":["/a"],"network_access":true,"protected_paths":["/a/b"]})"));
  CHECK(p.mode == Mode::WorkspaceWrite);
  CHECK(p.writable_roots == std::vector<std::string>{"/a"});
  CHECK(p.network_access);
  CHECK(p.protected_paths == std::vector<std::string>{"/a/b"});
  CHECK(parse_policy(json::parse(R"({"mode":"read-only"})")).mode == Mode::ReadOnly);
  auto message = [](const char* text) {
    try {
      parse_policy(json::parse(text));
    } catch (const SandboxError& e) {
      CHECK(e.status == KEEL_ERR_INVALID_ARGUMENT);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(message(R"({})"), Catch::Contains("needs a 'mode'"));
  CHECK_THAT(message(R"({"mode":"full"})"), Catch::Contains("unknown sandbox mode 'full'"));
  CHECK_THAT(message(R"({"mode":"read-only","writable_roots":"/a"})"), Catch::Contains("must be an array"));
  CHECK_THAT(message(R"({"mode":"read-only","writable_roots":["a"]})"), Catch::Contains("absolute paths, not 'a'"));
  CHECK_THAT(message(R"({"mode":"read-only","network_access":"yes"})"), Catch::Contains("true or false"));
  CHECK_THAT(message(R"([])"), Catch::Contains("must be an object"));
}

TEST_CASE("the plan: writable roots, protected paths inside them, network", "[sandbox][policy]") {
  Dir d;
  Plan plan = make_plan(ww(d), d.s("ws"), d.s("extra/home"), "");
  CHECK(std::find(plan.writable.begin(), plan.writable.end(), d.s("ws")) != plan.writable.end());
  CHECK(std::find(plan.writable.begin(), plan.writable.end(), d.s("extra")) != plan.writable.end());
  CHECK(std::find(plan.writable.begin(), plan.writable.end(), fs::canonical("/tmp").string()) != plan.writable.end());
  CHECK(std::find(plan.protected_paths.begin(), plan.protected_paths.end(), d.s("ws/.git")) != plan.protected_paths.end());
  CHECK(std::find(plan.protected_paths.begin(), plan.protected_paths.end(), d.s("extra/home")) != plan.protected_paths.end());
  // .keel does not exist: it cannot be bound read-only without creating it, so it is reported.
  CHECK(std::find(plan.unenforced.begin(), plan.unenforced.end(), d.s("ws/.keel")) != plan.unenforced.end());
  CHECK_FALSE(plan.network);

  SECTION("nested writable roots collapse into the outer one") {
    auto p = ww(d);
    p.writable_roots.push_back(d.s("ws/src"));
    Plan nested = make_plan(p, d.s("ws"), "", "");
    CHECK(std::count(nested.writable.begin(), nested.writable.end(), d.s("ws/src")) == 0);
  }
  SECTION("paths outside every writable root need no protection") {
    Plan outside = make_plan(ww(d), d.s("ws"), d.s("out"), "");
    CHECK(std::count(outside.protected_paths.begin(), outside.protected_paths.end(), d.s("out")) == 0);
  }
  SECTION("read-only has no writable roots and no network unless asked") {
    Plan ro = make_plan(parse_policy(json::parse(R"({"mode":"read-only"})")), d.s("ws"), "", "");
    CHECK(ro.writable.empty());
    CHECK_FALSE(ro.network);
  }
  SECTION("the workspace's symlinked path is resolved") {
    fs::create_directory_symlink(d.path / "ws", d.path / "ws-link");
    Plan linked = make_plan(ww(d), d.s("ws-link"), "", "");
    CHECK(std::find(linked.writable.begin(), linked.writable.end(), d.s("ws")) != linked.writable.end());
    CHECK(std::find(linked.protected_paths.begin(), linked.protected_paths.end(), d.s("ws/.git")) !=
          linked.protected_paths.end());
  }
}

TEST_CASE("explain: writes outside the workspace, from the messages tools print", "[sandbox][explain]") {
  Dir d;
  for (std::string line : {"bash: " + d.s("out/x") + ": Read-only file system",
                           "touch: cannot touch '" + d.s("out/x") + "': Read-only file system",
                           "rm: cannot remove '" + d.s("out/x") + "': Read-only file system",
                           "mkdir: cannot create directory \xE2\x80\x98" + d.s("out/d") + "\xE2\x80\x99: Read-only file system",
                           "OSError: [Errno 30] Read-only file system: '" + d.s("out/x") + "'",
                           "sed: couldn't open temporary file " + d.s("out/sedAbc") + ": Read-only file system"}) {
    auto e = why(d, "bwrap", line, ww_json(d));
    INFO(line);
    CHECK(e.blocked);
    CHECK_THAT(e.reason, Catch::StartsWith("blocked by the workspace-write sandbox: writing outside the workspace is not allowed"));
    CHECK_THAT(e.reason, Catch::Contains(d.s("out")));
  }
  // Landlock reports EACCES.
  auto e = why(d, "landlock", "bash: line 1: " + d.s("out/x") + ": Permission denied", ww_json(d));
  CHECK(e.blocked);
  CHECK_THAT(e.reason, Catch::Contains("writing outside the workspace is not allowed"));
  e = why(d, "landlock", "PermissionError: [Errno 13] Permission denied: '" + d.s("out/x") + "'", ww_json(d));
  CHECK(e.blocked);
}

TEST_CASE("explain: protected paths, relative paths, read-only mode", "[sandbox][explain]") {
  Dir d;
  auto e = why(d, "bwrap", "fatal: Unable to create '" + d.s("ws/.git/index.lock") + "': Read-only file system", ww_json(d));
  CHECK(e.blocked);
  CHECK_THAT(e.reason, Catch::Contains(d.s("ws/.git") + " is protected"));
  e = why(d, "bwrap", "bash: .git/HEAD: Read-only file system", ww_json(d));
  CHECK_THAT(e.reason, Catch::Contains(d.s("ws/.git") + " is protected"));
  e = why(d, "landlock", "mkdir: cannot create directory '" + d.s("extra/home/x") + "': Permission denied", ww_json(d));
  CHECK_THAT(e.reason, Catch::Contains(d.s("extra/home") + " is protected"));
  e = why(d, "bwrap", "bash: x.txt: Read-only file system", json::object{{"mode", "read-only"}});
  CHECK(e.blocked);
  CHECK_THAT(e.reason, Catch::StartsWith("blocked by the read-only sandbox: no file may be written"));
  // Relative to the workdir, not the workspace.
  e = why(d, "bwrap", "bash: ../../out/y: Read-only file system", ww_json(d), d.s("ws/src"));
  CHECK_THAT(e.reason, Catch::Contains("tried to write " + d.s("out/y")));
  // Landlock rules only: the directory holding .git cannot get entries.
  e = why(d, "landlock", "bash: new.txt: Permission denied", ww_json(d));
  CHECK(e.blocked);
  CHECK_THAT(e.reason, Catch::Contains("cannot exempt a subfolder"));
}

TEST_CASE("explain: ordinary failures are not blamed on the sandbox", "[sandbox][explain]") {
  Dir d;
  CHECK_FALSE(why(d, "bwrap", "grep: nothing matched", ww_json(d)).blocked);
  CHECK_FALSE(why(d, "bwrap", "cat: " + d.s("ws/src/missing") + ": No such file or directory", ww_json(d)).blocked);
  // EACCES under bwrap is the file's own permissions, not the sandbox.
  CHECK_FALSE(why(d, "bwrap", "bash: " + d.s("out/x") + ": Permission denied", ww_json(d)).blocked);
  // Inside a writable subfolder, EACCES is not Landlock's doing.
  CHECK_FALSE(why(d, "landlock", "bash: " + d.s("ws/src/locked") + ": Permission denied", ww_json(d)).blocked);
  // A successful command, full access, and the none backend never are.
  json::object ok{{"argv", json::array{"x"}}, {"exit_code", 0}, {"output", "Read-only file system"}};
  CHECK_FALSE(explain("bwrap", json::serialize(ok), parse_config({})).blocked);
  CHECK_FALSE(why(d, "bwrap", "bash: /etc/x: Read-only file system", json::object{{"mode", "danger-full-access"}}).blocked);
  CHECK_FALSE(why(d, "none", "bash: /etc/x: Read-only file system", ww_json(d)).blocked);
  // The command not existing is not the sandbox failing.
  CHECK_FALSE(why(d, "bwrap", "bwrap: execvp nosuchcmd: No such file or directory", ww_json(d)).blocked);
  CHECK_FALSE(why(d, "landlock", "keel-landlock-exec: cannot run nosuchcmd: No such file or directory", ww_json(d)).blocked);
}

TEST_CASE("explain: hard links and renames across the edge of the writable roots (EXDEV)", "[sandbox][explain]") {
  Dir d;
  for (std::string backend : {"bwrap", "landlock"}) {
    INFO(backend);
    // A hard link to a file outside, into the workspace root (next to .git: not Landlock's
    // "cannot exempt a subfolder", which is about EACCES) and into a subfolder.
    for (std::string line : {"ln: failed to create hard link 'hard.txt' => '" + d.s("out/keep.txt") + "': Invalid cross-device link",
                             "ln: failed to create hard link '" + d.s("ws/src/h") + "' => '" + d.s("out/keep.txt") +
                                 "': Invalid cross-device link",
                             std::string("cp: cannot create hard link 'src/h' to '../out/keep.txt': Invalid cross-device link")}) {
      INFO(line);
      auto e = why(d, backend, line, ww_json(d));
      CHECK(e.blocked);
      CHECK_THAT(e.reason, Catch::StartsWith("blocked by the workspace-write sandbox: " + d.s("out/keep.txt") +
                                             " is outside the workspace"));
      CHECK_THAT(e.reason, Catch::Contains("hard link or rename"));
      CHECK_THAT(e.reason, !Catch::Contains("cannot exempt a subfolder"));
    }
    // Renames (moves) out of and into the workspace, as rename(2) callers report them.
    for (std::string line : {"OSError: [Errno 18] Invalid cross-device link: 'src/a' -> '" + d.s("out/a") + "'",
                             "mv: cannot move '" + d.s("out/a") + "' to 'src/a': Invalid cross-device link",
                             "Error: EXDEV: cross-device link not permitted, rename '" + d.s("out/a") + "' -> 'a'",
                             "rename " + d.s("ws/src/a") + " " + d.s("out/a") + ": invalid cross-device link"}) {
      INFO(line);
      auto e = why(d, backend, line, ww_json(d));
      CHECK(e.blocked);
      CHECK_THAT(e.reason, Catch::Contains(d.s("out/a") + " is outside the workspace"));
    }
    // Into a protected path (a read-only mount of its own).
    auto e = why(d, backend, "OSError: [Errno 18] Invalid cross-device link: 'src/a' -> '.git/a'", ww_json(d));
    CHECK(e.blocked);
    CHECK_THAT(e.reason, Catch::Contains(d.s("ws/.git") + " is protected"));
    // Read-only mode.
    e = why(d, backend, "ln: failed to create hard link 'h' => '" + d.s("out/x") + "': Invalid cross-device link",
            json::object{{"mode", "read-only"}});
    CHECK_THAT(e.reason, Catch::StartsWith("blocked by the read-only sandbox: no file may be written"));
  }
  // Two writable roots on one filesystem of the host: separate bind mounts under bwrap only.
  std::string between = "mv: cannot move '" + d.s("ws/src/a") + "' to '" + d.s("extra/a") + "': Invalid cross-device link";
  auto e = why(d, "bwrap", between, ww_json(d));
  CHECK(e.blocked);
  CHECK_THAT(e.reason, Catch::Contains("every writable root is a separate mount in the bwrap sandbox"));
  CHECK_THAT(e.reason, Catch::Contains(d.s("ws")) && Catch::Contains(d.s("extra")));
  CHECK_FALSE(why(d, "landlock", between, ww_json(d)).blocked);
}

TEST_CASE("explain: EXDEV the sandbox did not cause is not blamed on it", "[sandbox][explain]") {
  Dir d;
  for (std::string backend : {"bwrap", "landlock"}) {
    INFO(backend);
    // Within one writable root, only a filesystem mounted inside it can be the boundary.
    CHECK_FALSE(why(d, backend, "OSError: [Errno 18] Invalid cross-device link: 'src/a' -> 'mnt/a'", ww_json(d)).blocked);
    CHECK_FALSE(why(d, backend, "mv: cannot move 'a' to 'src/b': Invalid cross-device link", ww_json(d)).blocked);
    // Nothing named: nothing tells it was the sandbox (and no generic blame either).
    CHECK_FALSE(why(d, backend, "Error: Invalid cross-device link (os error 18)", ww_json(d)).blocked);
    // A stray path next to the quoted ones (the program) is not taken for one of them.
    CHECK_FALSE(why(d, backend, "/usr/bin/tool: cannot move 'src/a' to 'src/b': Invalid cross-device link", ww_json(d)).blocked);

    // Paths on different filesystems of the host: the link or rename fails without a sandbox too.
    std::string other = other_mount(d);
    if (other.empty()) {
      WARN("no directory on another mount than " << d.path << " found; skipping the real-filesystem cases");
      continue;
    }
    INFO("other mount: " << other);
    json::object both{{"mode", "workspace-write"}, {"writable_roots", json::array{d.s("extra"), json::value(other)}}};
    CHECK_FALSE(why(d, backend, "mv: cannot move '" + d.s("ws/src/a") + "' to '" + other + "/keel-x': Invalid cross-device link",
                    both)
                    .blocked);
    CHECK_FALSE(why(d, backend, "OSError: [Errno 18] Invalid cross-device link: '" + other + "/keel-x' -> 'src/x'", both).blocked);
    // Even from outside the writable roots: it could not have worked unsandboxed either.
    CHECK_FALSE(why(d, backend, "ln: failed to create hard link 'h' => '" + other + "/keel-x': Invalid cross-device link",
                    ww_json(d))
                    .blocked);
  }
}

TEST_CASE("explain: network", "[sandbox][explain]") {
  Dir d;
  for (const char* line : {"bash: connect: Network is unreachable", "bash: socket: Operation not permitted",
                           "curl: (6) Could not resolve host: example.com",
                           "  File \"/usr/lib/python3.11/socket.py\", line 232, in __init__\n"
                           "    _socket.socket.__init__(self, family, type, proto, fileno)\n"
                           "PermissionError: [Errno 1] Operation not permitted",
                           "ssh: Could not resolve hostname github.com: Temporary failure in name resolution",
                           "bash: connect: Permission denied"}) {
    INFO(line);
    auto e = why(d, "landlock", line, ww_json(d));
    CHECK(e.blocked);
    CHECK_THAT(e.reason, Catch::Contains("network access is disabled"));
  }
  CHECK(why(d, "bwrap", "bash: connect: Connection refused", ww_json(d)).blocked);
  CHECK_FALSE(why(d, "landlock", "chmod: changing permissions of '" + d.s("ws/src") + "': Operation not permitted", ww_json(d)).blocked);
  CHECK_FALSE(why(d, "landlock", "bash: connect: Connection refused", ww_json(d)).blocked);
  CHECK_FALSE(why(d, "bwrap", "bash: connect: Network is unreachable", ww_json(d, true)).blocked);
}

TEST_CASE("explain: the sandbox failing to start", "[sandbox][explain]") {
  Dir d;
  auto e = why(d, "bwrap", "bwrap: No permissions to creating new namespace, likely because the kernel does not allow "
                           "non-privileged user namespaces.",
               ww_json(d));
  CHECK(e.blocked);
  CHECK_THAT(e.reason, Catch::Contains("the bwrap sandbox could not start"));
  e = why(d, "landlock", "keel-landlock-exec: Landlock is unavailable: x; the command was not run", ww_json(d));
  CHECK_THAT(e.reason, Catch::Contains("the landlock sandbox could not start"));
}
