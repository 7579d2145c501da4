// Escape tests for every sandbox backend: each module is loaded from its built file and asked
// through its C ABI to wrap a command, the wrapped command is spawned with keel_process, and
// what it managed to do is checked on disk and at a TCP listener on 127.0.0.1.
//
// Backends: bwrap; landlock (protected paths through a private mount namespace); landlock with
// Landlock rules only (mount_namespace = false: the fallback where no namespace can be made).
// A backend the environment cannot run is skipped with a WARN saying exactly why.
#include "sandbox_support.hpp"

#include <sched.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>

using namespace keel::sandbox_test;
using namespace std::chrono_literals;

namespace {

struct Backend {
  std::string cap;
  std::string label;
  bool mount_namespace;
};

const Backend kBackends[] = {
    {"bwrap", "bwrap", true},
    {"landlock", "landlock", true},
    {"landlock", "landlock-rules-only", false},
};

// Can this process make a private mount namespace (as the landlock helper would)?
bool can_make_mount_namespace() {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::unshare(CLONE_NEWNS) == 0 || ::unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0) ::_exit(0);
    ::_exit(1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Whether entries can be created directly in the workspace root (which holds .git).
bool root_creatable(const Backend& b) {
  if (b.cap == "bwrap") return true;
  return b.mount_namespace && can_make_mount_namespace();
}

struct Ctx {
  const Backend& backend;
  Tree& tree;
  Sandbox& sandbox;

  keel::common::ProcessResult sh(const std::string& script, const json::object& policy,
                                 const std::map<std::string, std::string>& env = {}) {
    auto p = sandbox.prepare({"bash", "-c", script}, tree.ws.string(), policy);
    INFO(p.error);
    REQUIRE(p.status == KEEL_OK);
    REQUIRE(p.argv.size() > 3);
    return run(p.argv, tree.ws.string(), env);
  }

  // Runs `script`, which must fail, and returns the sandbox's explanation of the failure.
  std::string blocked(const std::string& script, const json::object& policy,
                      const std::map<std::string, std::string>& env = {}) {
    auto r = sh(script, policy, env);
    INFO(backend.label << ": " << script << "\n" << r.output());
    CHECK(r.exit_code != 0);
    auto [is_blocked, reason] = sandbox.explain({"bash", "-c", script}, r.exit_code, r.output(), tree.ws.string(), policy);
    INFO("explain: " << reason);
    CHECK(is_blocked);
    return reason;
  }
};

template <class F>
void for_each_backend(F&& body) {
  for (const auto& b : kBackends) {
    DYNAMIC_SECTION(b.label) {
      Tree tree;
      Sandbox sandbox(b.cap, b.label, sandbox_config(tree, b.cap, b.mount_namespace));
      if (!sandbox.available) {
        WARN("skipping the " << b.label << " sandbox: " << sandbox.why_not);
      } else {
        Ctx ctx{b, tree, sandbox};
        body(ctx);
      }
    }
  }
}

}  // namespace

TEST_CASE("sandboxed work inside the workspace, writable roots and temp dirs succeeds", "[sandbox][escape]") {
  for_each_backend([](Ctx& c) {
    auto& t = c.tree;
    auto tmp_name = "/tmp/keel-sandbox-test-" + std::to_string(::getpid());
    auto r = c.sh("set -e; echo hi > src/new.txt; mkdir -p src/d/e; echo x > src/d/e/f; rm src/old.txt; "
                  "mv src/new.txt src/moved.txt; echo more >> top.txt; echo t > " + tmp_name + "; rm " + tmp_name +
                      "; echo e > " + (t.extra / "work" / "other.txt").string() + "; echo done",
                  workspace_write(t));
    INFO(c.backend.label << "\n" << r.output());
    REQUIRE(r.exit_code == 0);
    CHECK(read_file(t.ws / "src" / "moved.txt") == "hi\n");
    CHECK(read_file(t.ws / "src" / "d" / "e" / "f") == "x\n");
    CHECK_FALSE(fs::exists(t.ws / "src" / "old.txt"));
    CHECK(read_file(t.ws / "top.txt") == "top\nmore\n");
    CHECK(read_file(t.extra / "work" / "other.txt") == "e\n");
    CHECK_FALSE(fs::exists(tmp_name));

    // Directly in the workspace root, next to the protected .git.
    if (root_creatable(c.backend)) {
      auto r2 = c.sh("echo hi > new-at-root.txt && mkdir dir-at-root && rm top.txt", workspace_write(t));
      INFO(r2.output());
      CHECK(r2.exit_code == 0);
      CHECK(read_file(t.ws / "new-at-root.txt") == "hi\n");
      CHECK(fs::is_directory(t.ws / "dir-at-root"));
      CHECK_FALSE(fs::exists(t.ws / "top.txt"));
    } else {
      if (c.backend.mount_namespace)
        WARN("no mount namespace can be made here: landlock falls back to Landlock rules only");
      auto reason = c.blocked("echo hi > new-at-root.txt", workspace_write(t));
      CHECK_THAT(reason, Catch::Contains("cannot exempt a subfolder"));
      CHECK_FALSE(fs::exists(t.ws / "new-at-root.txt"));
    }
  });
}

TEST_CASE("writing outside the workspace is blocked", "[sandbox][escape]") {
  for_each_backend([](Ctx& c) {
    auto& t = c.tree;
    auto reason = c.blocked("echo x > " + (t.outside / "new.txt").string(), workspace_write(t));
    CHECK_THAT(reason, Catch::Contains("blocked by the workspace-write sandbox: writing outside the workspace is not allowed"));
    c.blocked("echo x >> " + (t.outside / "keep.txt").string(), workspace_write(t));
    c.blocked("rm -f " + (t.outside / "keep.txt").string(), workspace_write(t));
    c.blocked("mkdir " + (t.outside / "dir").string(), workspace_write(t));
    c.blocked("mv " + (t.ws / "top.txt").string() + " " + (t.outside / "moved.txt").string(), workspace_write(t));
    CHECK_FALSE(fs::exists(t.outside / "new.txt"));
    CHECK_FALSE(fs::exists(t.outside / "dir"));
    CHECK_FALSE(fs::exists(t.outside / "moved.txt"));
    CHECK(read_file(t.outside / "keep.txt") == "keep\n");
  });
}

TEST_CASE(".git and .keel inside the workspace stay read-only", "[sandbox][escape]") {
  for_each_backend([](Ctx& c) {
    auto& t = c.tree;
    auto reason = c.blocked("echo evil > .git/HEAD", workspace_write(t));
    CHECK_THAT(reason, Catch::Contains(".git is protected"));
    for (const char* script : {"echo x >> .git/config", "touch .git/hooks/pre-commit", "mkdir .git/objects",
                               "ln -s /bin/true .git/hooks/post-checkout", "rm .git/HEAD", "rm -rf .git",
                               "mv .git git-moved", "umount .git", "echo x > .keel/config.toml", "rm -rf .keel",
                               "mv .keel keel-moved"}) {
      auto r = c.sh(script, workspace_write(t));
      INFO(c.backend.label << ": " << script << "\n" << r.output());
      CHECK(r.exit_code != 0);
    }
    CHECK(read_file(t.ws / ".git" / "HEAD") == "ref: refs/heads/main\n");
    CHECK(read_file(t.ws / ".git" / "config") == "[core]\n");
    CHECK(fs::is_empty(t.ws / ".git" / "hooks"));
    CHECK_FALSE(fs::exists(t.ws / ".git" / "objects"));
    CHECK_FALSE(fs::exists(t.ws / "git-moved"));
    CHECK(read_file(t.ws / ".keel" / "config.toml") == "model = \"x\"\n");
    CHECK_FALSE(fs::exists(t.ws / "keel-moved"));
  });
}

TEST_CASE("$KEEL_HOME stays read-only, even inside a writable root", "[sandbox][escape]") {
  for_each_backend([](Ctx& c) {
    auto& t = c.tree;
    auto reason = c.blocked("echo 'sandbox = \"none\"' > " + (t.keel_home / "config.toml").string(), workspace_write(t));
    CHECK_THAT(reason, Catch::Contains(t.keel_home.string() + " is protected"));
    c.blocked("mkdir " + (t.keel_home / "modules" / "evil").string(), workspace_write(t));
    c.blocked("rm -rf " + t.keel_home.string(), workspace_write(t));
    CHECK(read_file(t.keel_home / "config.toml") == "sandbox = \"bwrap\"\n");
    CHECK_FALSE(fs::exists(t.keel_home / "modules" / "evil"));
    // Its writable parent stays writable (in a subfolder for landlock-rules-only).
    auto r = c.sh("mkdir -p " + (t.extra / "work" / "sub").string() + " && echo ok > " + (t.extra / "work" / "sub" / "f").string(),
                  workspace_write(t));
    INFO(r.output());
    CHECK(r.exit_code == 0);
  });
}

TEST_CASE("rm -rf ~ is blocked", "[sandbox][escape]") {
  for_each_backend([](Ctx& c) {
    auto& t = c.tree;
    std::map<std::string, std::string> env{{"HOME", t.home.string()}};
    auto reason = c.blocked("rm -rf ~", workspace_write(t), env);
    CHECK_THAT(reason, Catch::Contains("writing outside the workspace is not allowed"));
    c.blocked("rm -rf ~/*", workspace_write(t), env);
    c.blocked("find ~ -delete", workspace_write(t), env);
    CHECK(read_file(t.home / "notes.txt") == "precious\n");
    CHECK(read_file(t.home / "projects" / "a.txt") == "a\n");
  });
}

TEST_CASE("without network access, no TCP connection reaches 127.0.0.1, not even from a grandchild",
          "[sandbox][escape][network]") {
  for_each_backend([](Ctx& c) {
    Listener listener;
    std::string port = std::to_string(listener.port());
    auto reason = c.blocked("exec 3<>/dev/tcp/127.0.0.1/" + port + " && echo connected", workspace_write(c.tree));
    CHECK_THAT(reason, Catch::Contains("network access is disabled"));
    auto r = c.sh("bash -c 'bash -c \"exec 3<>/dev/tcp/127.0.0.1/" + port + " && echo connected\"'",
                  workspace_write(c.tree));
    INFO(r.output());
    CHECK(r.exit_code != 0);
    CHECK_THAT(r.output(), !Catch::Contains("connected"));
    if (keel::common::find_on_path("python3")) {
      auto py = c.sh("python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", " + port + "), 5); print(\"connected\")'",
                     workspace_write(c.tree));
      INFO(py.output());
      CHECK(py.exit_code != 0);
      CHECK_THAT(py.output(), !Catch::Contains("connected"));
      // Nor does a UDP datagram.
      UdpReceiver udp_receiver;
      auto udp = c.sh("python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b\"x\", (\"127.0.0.1\", " +
                          std::to_string(udp_receiver.port()) + "))'",
                      workspace_write(c.tree));
      INFO(udp.output());
      std::this_thread::sleep_for(100ms);
      CHECK_FALSE(udp_receiver.received());
    }
    std::this_thread::sleep_for(200ms);
    CHECK(listener.accepted() == 0);
    if (keel::common::find_on_path("python3")) {
      // UNIX sockets (local IPC, not network) still work.
      auto unix_ok = c.sh("python3 -c 'import socket; a, b = socket.socketpair(); a.send(b\"local\"); print(b.recv(5).decode())'",
                          workspace_write(c.tree));
      INFO(unix_ok.output());
      CHECK(unix_ok.exit_code == 0);
      CHECK_THAT(unix_ok.output(), Catch::Contains("local"));
    }
  });
}

TEST_CASE("network_access = true lets the loopback connection through", "[sandbox][escape][network]") {
  for_each_backend([](Ctx& c) {
    Listener listener;
    auto r = c.sh("bash -c 'exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(listener.port()) + " && echo connected'",
                  workspace_write(c.tree, true));
    INFO(c.backend.label << "\n" << r.output());
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.output(), Catch::Contains("connected"));
    for (int i = 0; i < 40 && listener.accepted() == 0; ++i) std::this_thread::sleep_for(25ms);
    CHECK(listener.accepted() >= 1);
  });
}

TEST_CASE("read-only mode allows reading but no writes, even in the workspace", "[sandbox][escape]") {
  for_each_backend([](Ctx& c) {
    auto& t = c.tree;
    json::object ro{{"mode", "read-only"}};
    auto reason = c.blocked("echo x > top.txt", ro);
    CHECK_THAT(reason, Catch::Contains("blocked by the read-only sandbox"));
    c.blocked("echo x > /tmp/keel-sandbox-ro-" + std::to_string(::getpid()), ro);
    c.blocked("echo x > src/new.txt", ro);
    CHECK(read_file(t.ws / "top.txt") == "top\n");
    auto r = c.sh("cat top.txt src/old.txt && ls .git", ro);
    INFO(r.output());
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.output(), Catch::Contains("top\nold\n"));
  });
}

TEST_CASE("the sandboxed command runs in the requested working directory", "[sandbox]") {
  for_each_backend([](Ctx& c) {
    json::array argv{"pwd"};
    auto res = c.sandbox.host->call(
        c.sandbox.backend, "prepare",
        json::serialize(json::object{{"argv", argv}, {"cwd", c.tree.ws.string()}, {"workdir", (c.tree.ws / "src").string()},
                                     {"policy", workspace_write(c.tree)}}));
    REQUIRE(res.status == KEEL_OK);
    std::vector<std::string> wrapped;
    json::value reply = json::parse(res.payload);
    for (const auto& v : reply.at("argv").as_array()) wrapped.emplace_back(v.as_string());
    auto r = run(wrapped, (c.tree.ws / "src").string());
    CHECK(r.exit_code == 0);
    CHECK(r.stdout_text() == (c.tree.ws / "src").string() + "\n");
  });
}

TEST_CASE("danger-full-access leaves the command unchanged in every module", "[sandbox]") {
  Tree t;
  for (const std::string cap : {"none", "bwrap", "landlock"}) {
    Sandbox sb(cap, cap, sandbox_config(t, cap));
    auto p = sb.prepare({"echo", "hi"}, t.ws.string(), json::object{{"mode", "danger-full-access"}});
    INFO(cap << ": " << p.error);
    REQUIRE(p.status == KEEL_OK);
    CHECK(p.argv == std::vector<std::string>{"echo", "hi"});
  }
}

TEST_CASE("the none sandbox passes every command through and never claims a block", "[sandbox]") {
  Tree t;
  Sandbox sb("none", "none", sandbox_config(t, "none"));
  REQUIRE(sb.available);
  for (const char* mode : {"read-only", "workspace-write"}) {
    auto p = sb.prepare({"bash", "-c", "echo x > /etc/x"}, t.ws.string(), json::object{{"mode", mode}});
    REQUIRE(p.status == KEEL_OK);
    CHECK(p.argv == std::vector<std::string>{"bash", "-c", "echo x > /etc/x"});
  }
  auto [blocked, reason] = sb.explain({"x"}, 1, "bash: /etc/x: Read-only file system", t.ws.string(), workspace_write(t));
  CHECK_FALSE(blocked);
  auto logs = sb.host->logs();
  CHECK(std::any_of(logs.begin(), logs.end(), [](const keel::test::HostLog& l) {
    return l.level == KEEL_LOG_WARN && l.message.find("enforces nothing") != std::string::npos;
  }));
}

TEST_CASE("a sandbox that cannot run here refuses with a clear error, never falls back", "[sandbox]") {
  Tree t;
  SECTION("bwrap not on PATH") {
    auto config = sandbox_config(t, "bwrap");
    config["path"] = (t.base / "empty-path").string();
    Sandbox sb("bwrap", "bwrap", config);
    CHECK_FALSE(sb.available);
    auto p = sb.prepare({"true"}, t.ws.string(), workspace_write(t));
    CHECK(p.status == KEEL_ERR_UNAVAILABLE);
    CHECK_THAT(p.error, Catch::Contains("bubblewrap (bwrap) was not found on PATH"));
    CHECK_THAT(p.error, Catch::Contains("was not run"));
    auto logs = sb.host->logs();
    CHECK(std::any_of(logs.begin(), logs.end(), [](const keel::test::HostLog& l) {
      return l.level == KEEL_LOG_ERROR && l.message.find("bwrap") != std::string::npos;
    }));
    // Full access needs no sandbox, so it is still answered.
    CHECK(sb.prepare({"true"}, t.ws.string(), json::object{{"mode", "danger-full-access"}}).status == KEEL_OK);
  }
  SECTION("landlock helper missing") {
    auto config = sandbox_config(t, "landlock");
    config["helper"] = (t.base / "nowhere" / "keel-landlock-exec").string();
    Sandbox sb("landlock", "landlock", config);
    CHECK_FALSE(sb.available);
    auto p = sb.prepare({"true"}, t.ws.string(), json::object{{"mode", "read-only"}});
    CHECK(p.status == KEEL_ERR_UNAVAILABLE);
    CHECK_THAT(p.error, Catch::Contains("keel-landlock-exec is missing"));
    auto logs = sb.host->logs();
    CHECK(std::any_of(logs.begin(), logs.end(), [](const keel::test::HostLog& l) {
      return l.level == KEEL_LOG_ERROR && l.message.find("landlock") != std::string::npos;
    }));
  }
}

TEST_CASE("malformed prepare requests are refused with a message naming the problem", "[sandbox]") {
  Tree t;
  for (const std::string cap : {"none", "bwrap", "landlock"}) {
    Sandbox sb(cap, cap, sandbox_config(t, cap));
    auto p = sb.prepare({"true"}, t.ws.string(), json::object{{"mode", "yolo"}});
    CHECK(p.status == KEEL_ERR_INVALID_ARGUMENT);
    CHECK_THAT(p.error, Catch::Contains("unknown sandbox mode 'yolo'"));
    p = sb.prepare({"true"}, t.ws.string(), json::object{{"mode", "workspace-write"}, {"writable_roots", json::array{"rel/dir"}}});
    CHECK(p.status == KEEL_ERR_INVALID_ARGUMENT);
    CHECK_THAT(p.error, Catch::Contains("absolute paths, not 'rel/dir'"));
    auto r = sb.host->call(cap, "prepare", R"({"argv":[],"cwd":"/","policy":{"mode":"read-only"}})");
    CHECK(r.status == KEEL_ERR_INVALID_ARGUMENT);
    r = sb.host->call(cap, "prepare", R"({"argv":["true"],"cwd":"/"})");
    CHECK(r.status == KEEL_ERR_INVALID_ARGUMENT);
    CHECK_THAT(r.payload, Catch::Contains("needs a 'policy'"));
    r = sb.host->call(cap, "frobnicate", "{}");
    CHECK(r.status == KEEL_ERR_NOT_FOUND);
  }
}

// Not a test: `sandbox_escape_test "[.bench]"` prints the added latency per command.
TEST_CASE("per-command overhead of each sandbox", "[.bench]") {
  Tree t;
  auto median_ms = [](const std::vector<std::string>& argv, const std::string& cwd) {
    std::vector<double> ms;
    for (int i = 0; i < 50; ++i) {
      auto start = std::chrono::steady_clock::now();
      auto r = run(argv, cwd);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
      REQUIRE(r.exit_code == 0);
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  };
  std::string truth = keel::common::find_on_path("true").value_or("/bin/true");
  double base = median_ms({truth}, t.ws.string());
  WARN("unwrapped `true`: median " << base << " ms over 50 runs");
  for (const auto& b : kBackends) {
    Sandbox sb(b.cap, b.label, sandbox_config(t, b.cap, b.mount_namespace));
    if (!sb.available) continue;
    for (bool network : {false, true}) {
      auto p = sb.prepare({truth}, t.ws.string(), workspace_write(t, network));
      REQUIRE(p.status == KEEL_OK);
      double m = median_ms(p.argv, t.ws.string());
      WARN(b.label << (network ? " (network on)" : " (network off)") << ": median " << m << " ms, +" << (m - base)
                   << " ms per command");
    }
  }
}

// The availability probe runs on its own thread. Stopping a module right after start (a
// short `keel` command, a kernel booted and shut down) destroys the backend while the probe
// still runs; it used to read the backend's freed members and spawn a garbage path.
TEST_CASE("stopping a sandbox while its start-up probe runs is safe", "[sandbox]") {
  Tree t;
  for (const std::string backend : {"bwrap", "landlock"}) {
    for (int i = 0; i < 20; ++i) {
      auto host = std::make_unique<keel::test::AbiTestHost>(module_path(backend));
      host->start(json::serialize(sandbox_config(t, backend)));
      host->stop();  // at once: the probe has usually not finished
      std::vector<std::string> probe_failures;
      for (const auto& l : host->logs())
        if (l.message.find("start-up check") != std::string::npos ||
            l.message.find("cannot create its namespaces") != std::string::npos)
          probe_failures.push_back(l.message);
      INFO(backend << " run " << i);
      CHECK(probe_failures.empty());
    }
  }
}
