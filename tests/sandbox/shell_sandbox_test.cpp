// The shell tool under a sandbox: the shell module is loaded through its C ABI, and the test
// host answers its "sandbox.prepare" / "sandbox.explain" requests the way the kernel does, by
// forwarding them to a sandbox module (also loaded through its C ABI).
#include "sandbox_support.hpp"

#include <memory>
#include <mutex>

using namespace keel::sandbox_test;

namespace {

struct ShellReply {
  int status;
  json::object payload;
  std::string output() const { return std::string(payload.at("output").as_string()); }
  bool success() const { return payload.at("success").as_bool(); }
};

struct Forwarder {
  std::mutex mu;
  std::vector<std::string> topics;
  Sandbox* sandbox = nullptr;
  std::optional<std::pair<int, std::string>> forced;  // answer every request with this instead

  std::pair<int, std::string> operator()(std::string_view topic, std::string_view payload) {
    {
      std::lock_guard lock(mu);
      topics.emplace_back(topic);
    }
    if (forced) return *forced;
    std::string method;
    if (topic == "sandbox.prepare") method = "prepare";
    else if (topic == "sandbox.explain") method = "explain";
    else return {KEEL_ERR_NOT_FOUND, R"({"error":{"message":"no such topic"}})"};
    auto r = sandbox->host->call(sandbox->backend, method, std::string(payload));
    return {r.status, r.payload};
  }
};

// A tool module loaded through its C ABI, its sandbox requests answered by `fwd`.
std::unique_ptr<keel::test::AbiTestHost> tool_module(const char* path, Forwarder& fwd, const std::string& config = "{}") {
  auto host = std::make_unique<keel::test::AbiTestHost>(path);
  host->set_request_handler([&fwd](std::string_view topic, std::string_view payload) { return fwd(topic, payload); });
  host->start(config);
  return host;
}

ShellReply shell(keel::test::AbiTestHost& host, const std::string& script, const Tree& t, const json::value& sandbox) {
  json::object req{{"call_id", "c1"},
                   {"name", "shell"},
                   {"arguments", json::serialize(json::object{{"command", json::array{"bash", "-c", script}}})},
                   {"cwd", t.ws.string()},
                   {"session_id", "s1"},
                   {"turn_id", "t1"}};
  if (!sandbox.is_null()) req["sandbox"] = sandbox;
  auto r = host.call("shell", "call", json::serialize(req));
  REQUIRE(r.reply_count == 1);
  return {r.status, json::parse(r.payload).as_object()};
}

}  // namespace

TEST_CASE("the shell tool runs commands through the sandbox and explains blocks", "[sandbox][shell]") {
  for (const std::string cap : {"bwrap", "landlock"}) {
    DYNAMIC_SECTION(cap) {
      Tree t;
      Sandbox sb(cap, cap, sandbox_config(t, cap));
      if (!sb.available) {
        WARN("skipping the " << cap << " sandbox: " << sb.why_not);
        continue;
      }
      Forwarder fwd;
      fwd.sandbox = &sb;
      auto module = tool_module(KEEL_SHELL_MODULE_PATH, fwd);
      auto& host = *module;

      auto ok = shell(host, "echo inside > src/ok.txt && cat src/ok.txt", t, workspace_write(t));
      INFO(ok.output());
      CHECK(ok.success());
      CHECK_THAT(ok.output(), Catch::Contains("inside"));
      CHECK(read_file(t.ws / "src" / "ok.txt") == "inside\n");
      // The item shows the command the model asked for, not the wrapper.
      CHECK(ok.payload.at("item").at("command").as_string() == "bash -c 'echo inside > src/ok.txt && cat src/ok.txt'");

      auto out = shell(host, "echo x > " + (t.outside / "evil.txt").string(), t, workspace_write(t));
      INFO(out.output());
      CHECK_FALSE(out.success());
      CHECK_THAT(out.output(), Catch::Contains("blocked by the workspace-write sandbox: writing outside the workspace is not allowed"));
      CHECK(out.payload.at("item").at("sandbox_blocked").as_bool());
      CHECK_FALSE(fs::exists(t.outside / "evil.txt"));

      Listener listener;
      auto net = shell(host, "bash -c 'exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(listener.port()) + "'", t,
                       workspace_write(t));
      INFO(net.output());
      CHECK_FALSE(net.success());
      CHECK_THAT(net.output(), Catch::Contains("network access is disabled"));
      CHECK(listener.accepted() == 0);

      std::lock_guard lock(fwd.mu);
      CHECK(std::count(fwd.topics.begin(), fwd.topics.end(), "sandbox.prepare") == 3);
      CHECK(std::count(fwd.topics.begin(), fwd.topics.end(), "sandbox.explain") == 2);
    }
  }
}

TEST_CASE("the shell tool never runs a command unsandboxed when the sandbox refuses", "[sandbox][shell]") {
  Tree t;
  Forwarder fwd;
  fwd.forced = std::pair<int, std::string>{
      KEEL_ERR_UNAVAILABLE, R"({"error":{"message":"the bwrap sandbox cannot run here: bubblewrap (bwrap) was not found on PATH"}})"};
  auto module = tool_module(KEEL_SHELL_MODULE_PATH, fwd);
  auto& host = *module;
  auto marker = t.ws / "ran.txt";
  auto r = shell(host, "touch " + marker.string(), t, workspace_write(t));
  CHECK(r.status == KEEL_OK);
  CHECK_FALSE(r.success());
  CHECK_THAT(r.output(), Catch::Contains("sandbox error: the bwrap sandbox cannot run here"));
  CHECK_THAT(r.output(), Catch::Contains("The command was not run."));
  CHECK(r.payload.at("item").at("status").as_string() == "failed");
  CHECK_FALSE(fs::exists(marker));

  SECTION("no sandbox server at all is a refusal too") {
    fwd.forced = std::pair<int, std::string>{KEEL_ERR_NOT_FOUND, R"({"error":{"message":"nobody serves sandbox.prepare"}})"};
    auto r2 = shell(host, "touch " + marker.string(), t, json::object{{"mode", "read-only"}});
    CHECK_FALSE(r2.success());
    CHECK_THAT(r2.output(), Catch::Contains("nobody serves sandbox.prepare"));
    CHECK_FALSE(fs::exists(marker));
  }
  SECTION("danger-full-access and a request without a policy ask no sandbox") {
    fwd.topics.clear();
    auto r3 = shell(host, "touch " + marker.string(), t, json::object{{"mode", "danger-full-access"}});
    CHECK(r3.success());
    CHECK(fs::exists(marker));
    auto r4 = shell(host, "true", t, json::value());
    CHECK(r4.success());
    CHECK(fwd.topics.empty());
  }
}

TEST_CASE("exec_command runs under the sandbox too and explains a block", "[sandbox][unified-exec]") {
  for (const std::string cap : {"bwrap", "landlock"}) {
    DYNAMIC_SECTION(cap) {
      Tree t;
      Sandbox sb(cap, cap, sandbox_config(t, cap));
      if (!sb.available) {
        WARN("skipping the " << cap << " sandbox: " << sb.why_not);
        continue;
      }
      Forwarder fwd;
      fwd.sandbox = &sb;
      auto module = tool_module(KEEL_UNIFIED_EXEC_MODULE_PATH, fwd);
      auto& host = *module;
      auto exec = [&](const std::string& cmd) {
        json::object req{{"call_id", "c1"},
                         {"name", "exec_command"},
                         {"arguments", json::serialize(json::object{{"cmd", cmd}, {"login", false}, {"yield_time_ms", 5000}})},
                         {"cwd", t.ws.string()},
                         {"session_id", "s1"},
                         {"turn_id", "t1"},
                         {"sandbox", workspace_write(t)}};
        auto r = host.call("exec_command", "call", json::serialize(req));
        REQUIRE(r.reply_count == 1);
        return ShellReply{r.status, json::parse(r.payload).as_object()};
      };
      auto ok = exec("echo inside > ok.txt && cat ok.txt");
      INFO(ok.output());
      CHECK(ok.success());
      CHECK(read_file(t.ws / "ok.txt") == "inside\n");
      CHECK_FALSE(ok.payload.at("item").as_object().contains("sandbox_blocked"));

      auto out = exec("echo x > " + (t.outside / "evil.txt").string());
      INFO(out.output());
      CHECK_FALSE(out.success());
      CHECK_THAT(out.output(), Catch::Contains("blocked by the workspace-write sandbox"));
      CHECK(out.payload.at("item").at("sandbox_blocked").as_bool());
      CHECK_FALSE(fs::exists(t.outside / "evil.txt"));
      std::lock_guard lock(fwd.mu);
      CHECK(std::count(fwd.topics.begin(), fwd.topics.end(), "sandbox.prepare") == 2);
      CHECK(std::count(fwd.topics.begin(), fwd.topics.end(), "sandbox.explain") == 1);
    }
  }
}

TEST_CASE("a TMPDIR set in the shell tool's env is writable under the sandbox", "[sandbox][shell]") {
  for (const std::string cap : {"bwrap", "landlock"}) {
    DYNAMIC_SECTION(cap) {
      Tree t;
      Sandbox sb(cap, cap, sandbox_config(t, cap));
      if (!sb.available) {
        WARN("skipping the " << cap << " sandbox: " << sb.why_not);
        continue;
      }
      const fs::path tmp = t.outside / "tmp";  // outside every writable root otherwise
      fs::create_directories(tmp);
      Forwarder fwd;
      fwd.sandbox = &sb;
      auto module = tool_module(KEEL_SHELL_MODULE_PATH, fwd, json::serialize(json::object{{"env", json::object{{"TMPDIR", tmp.string()}}}}));
      auto& host = *module;
      auto r = shell(host, "echo scratch > \"$TMPDIR/t.txt\" && cat \"$TMPDIR/t.txt\"", t, workspace_write(t));
      INFO(r.output());
      CHECK(r.success());
      CHECK(read_file(tmp / "t.txt") == "scratch\n");
      auto beside = shell(host, "echo x > " + (t.outside / "beside.txt").string(), t, workspace_write(t));
      CHECK_FALSE(beside.success());  // only TMPDIR itself, not its parent
      CHECK_FALSE(fs::exists(t.outside / "beside.txt"));
    }
  }
}
