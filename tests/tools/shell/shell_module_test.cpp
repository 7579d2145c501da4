// The shell module, loaded from its built file and driven through the C ABI.
#include "abi_test_host.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>

#include <unistd.h>

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using keel::test::AbiTestHost;
using keel::test::CallResult;
using keel::test::TempDir;

namespace {

// The request a kernel sends for one tool call.
std::string request(const json::value& args, const std::string& cwd = fs::temp_directory_path().string()) {
  return json::serialize(json::object{{"call_id", "call_1"},
                                      {"name", "shell"},
                                      {"arguments", json::serialize(args)},
                                      {"cwd", cwd},
                                      {"sandbox", json::object{{"mode", "danger-full-access"}}},
                                      {"session_id", "s1"},
                                      {"turn_id", "t1"}});
}

struct ToolReply {
  int status;
  json::object payload;
  std::vector<json::object> emits;
  std::string output() const { return std::string(payload.at("output").as_string()); }
  bool success() const { return payload.at("success").as_bool(); }
  const json::object& item() const { return payload.at("item").as_object(); }
};

ToolReply parse(const CallResult& r) {
  REQUIRE(r.reply_count == 1);
  REQUIRE(r.emits_after_reply == 0);
  ToolReply t{r.status, json::parse(r.payload).as_object(), {}};
  for (const auto& e : r.emits) t.emits.push_back(json::parse(e).as_object());
  return t;
}

ToolReply call(AbiTestHost& host, const std::string& tool, const std::string& payload) {
  return parse(host.call(tool, "call", payload));
}

ToolReply shell(AbiTestHost& host, const json::value& args, const std::string& cwd = fs::temp_directory_path().string()) {
  return call(host, "shell", request(args, cwd));
}

// "Exit code: N\nWall time: S seconds\nOutput:\n<body>"
std::string body_of(const std::string& output) {
  static const std::regex header(R"(^Exit code: -?\d+\nWall time: \d+\.\d seconds\nOutput:\n)");
  std::smatch m;
  REQUIRE(std::regex_search(output, m, header));
  return m.suffix().str();
}

}  // namespace

TEST_CASE("the module describes two mutating tools", "[shell]") {
  AbiTestHost host(KEEL_SHELL_MODULE_PATH);
  CHECK(std::string(host.module().name) == "shell");
  CHECK(std::string(host.module().version) == "0.1.0");
  REQUIRE(host.module().capability_count == 2);
  for (const char* name : {"shell", "shell_command"}) {
    const keel_capability* cap = host.capability(name);
    REQUIRE(cap);
    CHECK(cap->kind == KEEL_CAP_TOOL);
    CHECK((cap->flags & KEEL_FLAG_MUTATING) != 0);
    auto schema = json::parse(cap->schema_json).as_object();
    CHECK(schema.at("required").as_array().at(0).as_string() == "command");
  }
  CHECK(json::parse(host.capability("shell")->schema_json).at("properties").at("command").at("type") == "array");
  CHECK(json::parse(host.capability("shell_command")->schema_json).at("properties").at("command").at("type") ==
        "string");
}

TEST_CASE("output format and item", "[shell]") {
  AbiTestHost host(KEEL_SHELL_MODULE_PATH);
  host.start();

  auto r = shell(host, json::object{{"command", json::array{"bash", "-c", "echo hello; echo oops >&2"}}});
  CHECK(r.status == KEEL_OK);
  CHECK(r.success());
  CHECK(std::regex_match(r.output(), std::regex(R"(Exit code: 0\nWall time: 0\.\d seconds\nOutput:\nhello\noops\n)")));
  const auto& item = r.item();
  CHECK(item.at("type") == "command_execution");
  CHECK(item.at("command") == "bash -c 'echo hello; echo oops >&2'");
  CHECK(item.at("aggregated_output") == "hello\noops\n");
  CHECK(item.at("exit_code") == 0);
  CHECK(item.at("status") == "completed");

  auto f = shell(host, json::object{{"command", json::array{"bash", "-c", "echo failing; exit 3"}}});
  CHECK(f.status == KEEL_OK);
  CHECK_FALSE(f.success());
  CHECK(f.output().rfind("Exit code: 3\n", 0) == 0);
  CHECK(body_of(f.output()) == "failing\n");
  CHECK(f.item().at("exit_code") == 3);
  CHECK(f.item().at("status") == "failed");

  auto slow = shell(host, json::object{{"command", json::array{"sleep", "0.3"}}});
  CHECK(std::regex_search(slow.output(), std::regex(R"(Wall time: 0\.[3-9] seconds)")));
}

TEST_CASE("long output is truncated in the middle", "[shell]") {
  AbiTestHost host(KEEL_SHELL_MODULE_PATH);
  host.start();
  auto r = shell(host, json::object{{"command", json::array{"seq", "1", "100000"}}});
  CHECK(r.success());
  std::string body = body_of(r.output());
  CHECK(body.rfind("1\n2\n3\n", 0) == 0);
  CHECK(body.substr(body.size() - 13) == "99999\n100000\n");
  CHECK(std::regex_search(body, std::regex(R"(\n\[\.\.\. \d+ lines \(\d+ bytes\) truncated \.\.\.\]\n)")));
  CHECK(body.size() < 10240 + 100);
  // The item keeps more, but is bounded too.
  auto agg = std::string(r.item().at("aggregated_output").as_string());
  CHECK(agg.size() > body.size());
  CHECK(agg.size() < 70000);

  // Huge output (beyond the capture cap) still reports the real amount cut.
  auto big = shell(host, json::object{{"command", json::array{"seq", "1", "3000000"}}});
  std::string b = body_of(big.output());
  CHECK(b.rfind("1\n2\n", 0) == 0);
  CHECK(b.substr(b.size() - 16) == "2999999\n3000000\n");
  CHECK(b.find(" lines (") != std::string::npos);
  std::smatch m;
  REQUIRE(std::regex_search(b, m, std::regex(R"(\[\.\.\. (\d+) lines)")));
  CHECK(std::stoul(m[1].str()) == 3000000 - 256);
}

TEST_CASE("workdir is relative to the request's cwd, or absolute", "[shell]") {
  AbiTestHost host(KEEL_SHELL_MODULE_PATH);
  host.start();
  TempDir dir{"keel-shell-test"};
  fs::create_directories(dir.path() / "sub" / "deeper");

  auto base = shell(host, json::object{{"command", json::array{"pwd"}}}, dir.path().string());
  CHECK(body_of(base.output()) == dir.path().string() + "\n");

  auto rel = shell(host, json::object{{"command", json::array{"pwd"}}, {"workdir", "sub/deeper"}}, dir.path().string());
  CHECK(body_of(rel.output()) == (dir.path() / "sub" / "deeper").string() + "\n");

  auto abs =
      shell(host, json::object{{"command", json::array{"pwd"}}, {"workdir", (dir.path() / "sub").string()}}, "/");
  CHECK(body_of(abs.output()) == (dir.path() / "sub").string() + "\n");

  auto missing = shell(host, json::object{{"command", json::array{"pwd"}}, {"workdir", "nope"}}, dir.path().string());
  CHECK(missing.status == KEEL_OK);
  CHECK_FALSE(missing.success());
  CHECK(missing.output().rfind("Exit code: 127\n", 0) == 0);
  CHECK(missing.output().find("does not exist") != std::string::npos);
}

TEST_CASE("a timeout kills the command and says so", "[shell][timeout]") {
  AbiTestHost host(KEEL_SHELL_MODULE_PATH);
  host.start();
  auto t0 = std::chrono::steady_clock::now();
  auto r = shell(host, json::object{{"command", json::array{"bash", "-c", "echo before; sleep 30 & sleep 30 & wait"}},
                                    {"timeout_ms", 400}});
  auto elapsed = std::chrono::steady_clock::now() - t0;
  CHECK(elapsed < 1500ms);
  CHECK(r.status == KEEL_OK);
  CHECK_FALSE(r.success());
  CHECK(r.output().rfind("Exit code: 124\n", 0) == 0);
  CHECK(body_of(r.output()) == "command timed out after 400 ms\nbefore\n");
  CHECK(r.item().at("status") == "failed");
  CHECK(r.item().at("exit_code") == 124);
}

TEST_CASE("bad arguments are an unsuccessful output the model can read", "[shell][errors]") {
  AbiTestHost host(KEEL_SHELL_MODULE_PATH);
  host.start();
  auto with_arguments_text = [&](const std::string& tool, const std::string& text) {
    return call(host, tool,
                json::serialize(json::object{{"call_id", "c"}, {"name", tool}, {"arguments", text}, {"cwd", "/tmp"}}));
  };

  auto bad_json = with_arguments_text("shell", "{not json");
  CHECK(bad_json.status == KEEL_OK);
  CHECK_FALSE(bad_json.success());
  CHECK(bad_json.output().find("failed to parse function arguments") != std::string::npos);

  auto no_command = with_arguments_text("shell", "{}");
  CHECK(no_command.status == KEEL_OK);
  CHECK_FALSE(no_command.success());
  CHECK(no_command.output().find("missing required argument 'command'") != std::string::npos);

  auto string_command = shell(host, json::object{{"command", "ls -la"}});
  CHECK_FALSE(string_command.success());
  CHECK(string_command.output().find("must be an array of strings") != std::string::npos);

  auto empty = shell(host, json::object{{"command", json::array{}}});
  CHECK_FALSE(empty.success());
  CHECK(empty.output().find("must not be empty") != std::string::npos);

  auto bad_timeout = shell(host, json::object{{"command", json::array{"true"}}, {"timeout_ms", -5}});
  CHECK_FALSE(bad_timeout.success());
  CHECK(bad_timeout.output().find("timeout_ms") != std::string::npos);

  auto bad_workdir = shell(host, json::object{{"command", json::array{"true"}}, {"workdir", 7}});
  CHECK_FALSE(bad_workdir.success());
  CHECK(bad_workdir.output().find("workdir") != std::string::npos);

  auto script_not_string = with_arguments_text("shell_command", R"({"command": ["ls"]})");
  CHECK_FALSE(script_not_string.success());
  CHECK(script_not_string.output().find("must be a string") != std::string::npos);

  auto not_found = shell(host, json::object{{"command", json::array{"keel-definitely-not-a-command"}}});
  CHECK(not_found.status == KEEL_OK);
  CHECK_FALSE(not_found.success());
  CHECK(not_found.output().rfind("Exit code: 127\n", 0) == 0);
  CHECK(body_of(not_found.output()) == "command not found: keel-definitely-not-a-command\n");

  auto unknown = host.call("no_such_tool", "call", request(json::object{}));
  CHECK(unknown.status == KEEL_ERR_NOT_FOUND);
  CHECK(unknown.reply_count == 1);
}

TEST_CASE("shell_command runs a script in the user's shell", "[shell]") {
  AbiTestHost host(KEEL_SHELL_MODULE_PATH);
  host.start();
  TempDir dir{"keel-shell-test"};
  ::setenv("SHELL", "/bin/bash", 1);

  auto r = call(host, "shell_command",
                request(json::object{{"command", "echo $((1 + 2)) && echo err >&2 && sleep 0.05 && pwd"}, {"login", false}},
                        dir.path().string()));
  CHECK(r.success());
  CHECK(body_of(r.output()) == "3\nerr\n" + dir.path().string() + "\n");
  CHECK(r.item().at("command") == "/bin/bash -c 'echo $((1 + 2)) && echo err >&2 && sleep 0.05 && pwd'");

  auto login = call(host, "shell_command", request(json::object{{"command", "shopt -q login_shell && echo login"}}));
  CHECK(login.success());
  CHECK(body_of(login.output()) == "login\n");
  CHECK(login.item().at("command").as_string().find(" -lc ") != std::string::npos);

  auto timeout = call(host, "shell_command", request(json::object{{"command", "sleep 5"}, {"timeout_ms", 200}}));
  CHECK_FALSE(timeout.success());
  CHECK(body_of(timeout.output()) == "command timed out after 200 ms\n");
}

TEST_CASE("output streams as output.delta progress events", "[shell][stream]") {
  AbiTestHost host(KEEL_SHELL_MODULE_PATH);
  host.start();
  auto r = shell(host, json::object{{"command", json::array{"bash", "-c",
                                                            "for i in 1 2 3; do echo line$i; echo e$i >&2; sleep 0.05; done"}}});
  CHECK(r.success());
  REQUIRE(r.emits.size() >= 3);
  // First the command, in progress (what a UI shows while it runs), then its output.
  auto& started = r.emits.front();
  CHECK(started.at("type") == "item.started");
  CHECK(started.at("item").at("type") == "command_execution");
  CHECK(started.at("item").at("status") == "in_progress");
  CHECK(started.at("item").at("command").as_string().find("for i in 1 2 3") != std::string::npos);
  std::string out, err;
  for (std::size_t i = 1; i < r.emits.size(); ++i) {
    const auto& e = r.emits[i];
    CHECK(e.at("type") == "output.delta");
    if (e.at("stream") == "stdout") out += e.at("delta").as_string();
    else if (e.at("stream") == "stderr") err += e.at("delta").as_string();
    else FAIL("unknown stream");
  }
  CHECK(out == "line1\nline2\nline3\n");
  CHECK(err == "e1\ne2\ne3\n");

  // Events arrive while the command still runs.
  auto pending = host.begin("shell", "call",
                            request(json::object{{"command", json::array{"bash", "-c", "echo first; sleep 1; echo second"}}}));
  REQUIRE(pending->wait_for_emits(2, 5s));
  CHECK_FALSE(pending->replied());
  CHECK(json::parse(pending->emits().at(1)).at("delta") == "first\n");
  REQUIRE(pending->wait(10s));
}

TEST_CASE("output that is not UTF-8 still yields valid JSON", "[shell][utf8]") {
  AbiTestHost host(KEEL_SHELL_MODULE_PATH);
  host.start();
  // A valid 3-byte sequence split across two writes, then invalid bytes.
  auto r = shell(host, json::object{{"command", json::array{"bash", "-c",
                                                            R"(printf '\xe2\x82'; sleep 0.1; printf '\xac ok \xff\xfe\n')"}}});
  CHECK(r.success());
  CHECK(body_of(r.output()) == "\xE2\x82\xAC ok \xEF\xBF\xBD\xEF\xBF\xBD\n");
  std::string streamed;
  for (const auto& e : r.emits)
    if (e.at("type") == "output.delta") streamed += e.at("delta").as_string();
  CHECK(streamed == "\xE2\x82\xAC ok \xEF\xBF\xBD\xEF\xBF\xBD\n");
}

TEST_CASE("cancellation stops the command", "[shell][cancel]") {
  AbiTestHost host(KEEL_SHELL_MODULE_PATH);
  host.start();
  auto pending = host.begin("shell", "call",
                            request(json::object{{"command", json::array{"bash", "-c", "echo go; sleep 30 & wait"}},
                                                 {"timeout_ms", 60000}}));
  REQUIRE(pending->wait_for_emits(2, 5s));  // item.started, then "go": the command runs
  auto t0 = std::chrono::steady_clock::now();
  pending->cancel();
  REQUIRE(pending->wait(3s));
  CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);
  auto result = pending->result();
  CHECK(result.reply_count == 1);
  CHECK(result.status == KEEL_ERR_CANCELLED);
  auto payload = json::parse(result.payload).as_object();
  CHECK(payload.at("error").at("code") == "cancelled");
  CHECK(payload.at("success") == false);
}

TEST_CASE("module configuration sets limits and defaults", "[shell][config]") {
  AbiTestHost host(KEEL_SHELL_MODULE_PATH);
  host.start(R"({"max_output_lines": 4, "default_timeout_ms": 300, "env": {"KEEL_SHELL_TEST": "configured"}})");
  auto r = shell(host, json::object{{"command", json::array{"bash", "-c", "echo $KEEL_SHELL_TEST; seq 2 10"}}});
  CHECK(body_of(r.output()) == "configured\n2\n[... 6 lines (12 bytes) truncated ...]\n9\n10\n");
  auto t = shell(host, json::object{{"command", json::array{"sleep", "5"}}});
  CHECK(body_of(t.output()) == "command timed out after 300 ms\n");
}
