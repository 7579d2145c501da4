// Full `keel exec --json` sessions through each wire protocol: the real keel binary, the
// real signed provider/shell/exec modules, and the real keel-mock-model-server on loopback.
// The same test body runs for Responses, Chat Completions and Anthropic Messages — only the
// --provider flag differs (one build, three protocols).
#include "e2e_support.hpp"

#include <algorithm>

using namespace keel::e2e;

namespace {

const char* kShellScript =
    R"({"text": "Let me run it.", "tool_calls": [{"name": "shell", "call_id": "call_e2e_1", "arguments": {"command": ["bash", "-lc", "echo hi"]}}]}
{"text": "The command printed hi.", "usage": {"input_tokens": 30, "cached_input_tokens": 0, "output_tokens": 7, "reasoning_output_tokens": 0}}
)";

std::ptrdiff_t index_of(const std::vector<std::string>& v, const std::string& s, std::size_t from = 0) {
  auto it = std::find(v.begin() + static_cast<std::ptrdiff_t>(std::min(from, v.size())), v.end(), s);
  return it == v.end() ? -1 : it - v.begin();
}

// The JSONL of a completed shell session (the script above), whichever wire carried it.
void check_shell_session(const KeelRun& r) {
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  auto types = r.types();
  REQUIRE(types.size() >= 6);
  CHECK(types.front() == "thread.started");
  CHECK(!str(r.events.front(), "thread_id").empty());
  CHECK(types[1] == "turn.started");
  CHECK(types.back() == "turn.completed");
  CHECK(r.of_type("turn.failed").empty());

  auto commands = r.completed("command_execution");
  REQUIRE(commands.size() == 1);
  CHECK(contains(json::serialize(commands[0].at("command")), "echo hi"));
  CHECK(num(commands[0], "exit_code") == 0);
  CHECK(str(commands[0], "status") == "completed");
  // The last line (a login shell may print notices of the machine's profile first).
  auto output = str(commands[0], "aggregated_output");
  CHECK((output == "hi\n" || (output.size() > 4 && output.substr(output.size() - 4) == "\nhi\n")));
  CHECK(!str(commands[0], "id").empty());

  auto messages = r.completed("agent_message");
  REQUIRE(messages.size() == 2);
  CHECK(str(messages[0], "text") == "Let me run it.");
  CHECK(str(messages[1], "text") == "The command printed hi.");

  // Order: first message, the command, the answer, then turn.completed.
  std::vector<std::string> order;
  for (auto& e : r.events) {
    auto t = str(e, "type");
    if (t == "item.completed") order.push_back("completed:" + str(e.at("item").as_object(), "type"));
    else order.push_back(t);
  }
  auto first = index_of(order, "completed:agent_message");
  auto cmd = index_of(order, "completed:command_execution");
  auto answer = index_of(order, "completed:agent_message", static_cast<std::size_t>(first + 1));
  CHECK(first >= 0);
  CHECK(cmd > first);
  CHECK(answer > cmd);
  CHECK(answer < static_cast<std::ptrdiff_t>(order.size()) - 1);

  // Usage of both responses: 10+30 in, 5+7 out (the mock's default for the first).
  auto completed = r.of_type("turn.completed");
  REQUIRE(!completed.empty());
  auto usage = completed.back().at("usage").as_object();
  CHECK(num(usage, "input_tokens") == 40);
  CHECK(num(usage, "output_tokens") == 12);
  CHECK(num(usage, "cached_input_tokens") == 0);
  CHECK(num(usage, "reasoning_output_tokens") == 0);
}

// The second request carried the shell's output back in the wire's own shape.
void check_tool_output_sent(const MockServer& server, const Wire& w) {
  auto reqs = server.model_requests();
  REQUIRE(reqs.size() == 2);
  for (auto& req : reqs) {
    CHECK(str(req, "path") == w.path);
    auto& body = req.at("body").as_object();
    CHECK(str(body, "model") == "test-model");
    CHECK(body.at("stream").as_bool());
  }
  auto outputs = tool_outputs(reqs[1]);
  REQUIRE(outputs.size() == 1);
  CHECK(contains(outputs[0], "Exit code: 0"));
  CHECK(contains(outputs[0], "hi"));
  CHECK(contains(body_text(reqs[1]), "call_e2e_1"));
  // The key went the wire's way (the mock answers 401 otherwise, so this is belt and braces).
  auto& headers = reqs[0].at("headers").as_object();
  std::string auth;
  for (auto& [k, v] : headers)
    if (lower(std::string(k)) == (w.wire == "anthropic" ? "x-api-key" : "authorization")) auth = std::string(v.as_string());
  CHECK(auth == (w.wire == "anthropic" ? std::string(kKey) : std::string("Bearer ") + kKey));
}

}  // namespace

TEST_CASE("keel exec: a shell tool session through each wire protocol", "[e2e][providers]") {
  for (const auto& w : wires()) {
    DYNAMIC_SECTION("wire " << w.wire) {
      TempDir dir{"keel-e2e"};
      MockServer server(dir.path(), kShellScript);
      Home home(provider_config(server.port()));
      auto r = exec_json(home, w.provider, "run echo hi and tell me what it printed");
      check_shell_session(r);
      check_tool_output_sent(server, w);
      // The prompt reached the model.
      CHECK(contains(body_text(server.model_requests()[0]), "run echo hi and tell me what it printed"));
    }
  }
}

TEST_CASE("keel exec: switching providers is a flag, profile or config change only", "[e2e][providers]") {
  TempDir dir{"keel-e2e"};
  // One mock server, one KEEL_HOME, one build: three protocols in a row.
  std::string script;
  for (int i = 0; i < 5; ++i) script += kShellScript;
  MockServer server(dir.path(), script);
  std::string profiles =
      "[profiles.e2e-chat]\nmodel_provider = \"mock-chat\"\nmodel = \"profile-model\"\n\n"
      "[profiles.e2e-anthropic]\nmodel_provider = \"mock-anthropic\"\nmodel = \"claude-profile\"\n";
  Home home(provider_config(server.port(), profiles));

  SECTION("--provider selects the wire") {
    std::size_t before = 0;
    for (const auto& w : wires()) {
      INFO("provider " << w.provider);
      auto r = exec_json(home, w.provider, "say hi");
      check_shell_session(r);
      auto reqs = server.model_requests();
      REQUIRE(reqs.size() == before + 2);
      CHECK(str(reqs[before], "path") == w.path);
      CHECK(str(reqs[before + 1], "path") == w.path);
      before = reqs.size();
    }
  }

  SECTION("-p PROFILE selects provider and model") {
    for (auto [profile, path, model] : {std::tuple{"e2e-chat", "/v1/chat/completions", "profile-model"},
                                        std::tuple{"e2e-anthropic", "/v1/messages", "claude-profile"}}) {
      INFO("profile " << profile);
      auto before = server.model_requests().size();
      auto r = run_keel(home, {"exec", "--json", "-p", profile, "-C", home.work.string(), "say hi"});
      check_shell_session(r);
      auto reqs = server.model_requests();
      REQUIRE(reqs.size() == before + 2);
      CHECK(str(reqs[before], "path") == path);
      CHECK(str(reqs[before].at("body").as_object(), "model") == model);
    }
  }

  SECTION("model_provider from config.toml, and -c overriding it") {
    auto r = run_keel(home, {"exec", "--json", "-C", home.work.string(), "say hi"});
    check_shell_session(r);
    auto reqs = server.model_requests();
    REQUIRE(reqs.size() == 2);
    CHECK(str(reqs[0], "path") == "/v1/responses");  // model_provider = "mock-responses"

    auto r2 = run_keel(home, {"exec", "--json", "-c", "model_provider=\"mock-chat\"", "-C", home.work.string(), "say hi"});
    check_shell_session(r2);
    reqs = server.model_requests();
    REQUIRE(reqs.size() == 4);
    CHECK(str(reqs[2], "path") == "/v1/chat/completions");
  }
}

TEST_CASE("keel exec: malformed tool-call JSON from the model is answered, and the session continues",
          "[e2e][providers]") {
  for (const auto& w : wires()) {
    DYNAMIC_SECTION("wire " << w.wire) {
      TempDir dir{"keel-e2e"};
      MockServer server(dir.path(),
                        R"({"text": "Running.", "tool_calls": [{"name": "shell", "call_id": "call_bad_1", "arguments_raw": "{\"command\": [\"bash\", \"-lc\", \"echo hi\""}]}
{"text": "Sorry, let me fix the arguments.", "tool_calls": [{"name": "shell", "call_id": "call_good_2", "arguments": {"command": ["bash", "-lc", "echo fixed"]}}]}
{"text": "Fixed and done."}
)");
      Home home(provider_config(server.port()));
      auto r = exec_json(home, w.provider, "run something");
      INFO(r.describe());
      REQUIRE(r.exit_code == 0);
      CHECK(r.types().back() == "turn.completed");

      auto reqs = server.model_requests();
      REQUIRE(reqs.size() == 3);
      // The second request tells the model its arguments were not valid JSON...
      auto outputs = tool_outputs(reqs[1]);
      REQUIRE(outputs.size() == 1);
      CHECK(contains(lower(outputs[0]), "json"));
      CHECK(contains(body_text(reqs[1]), "call_bad_1"));
      // ...and the next call ran normally.
      auto later = tool_outputs(reqs[2]);
      REQUIRE(later.size() == 2);
      CHECK(contains(later[1], "fixed"));

      auto messages = r.completed("agent_message");
      REQUIRE(!messages.empty());
      CHECK(str(messages.back(), "text") == "Fixed and done.");
    }
  }
}

TEST_CASE("keel exec: parallel tool calls in one response all run and are answered in order", "[e2e][providers]") {
  for (const auto& w : wires()) {
    DYNAMIC_SECTION("wire " << w.wire) {
      TempDir dir{"keel-e2e"};
      MockServer server(dir.path(),
                        R"({"tool_calls": [{"name": "shell", "call_id": "call_p1", "arguments": {"command": ["bash", "-lc", "echo one"]}}, {"name": "shell", "call_id": "call_p2", "arguments": {"command": ["bash", "-lc", "echo two"]}}]}
{"text": "Both ran."}
)");
      Home home(provider_config(server.port()));
      auto r = exec_json(home, w.provider, "run two commands");
      INFO(r.describe());
      REQUIRE(r.exit_code == 0);
      auto commands = r.completed("command_execution");
      REQUIRE(commands.size() == 2);
      auto reqs = server.model_requests();
      REQUIRE(reqs.size() == 2);
      auto outputs = tool_outputs(reqs[1]);
      REQUIRE(outputs.size() == 2);
      CHECK(contains(outputs[0], "one"));
      CHECK(contains(outputs[1], "two"));
    }
  }
}
