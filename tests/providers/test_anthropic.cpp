// anthropic core (Messages API) against the mock server over real loopback HTTP.
#include "provider_test_support.hpp"

#include <keel/abi.h>
#include <keel/providers/anthropic.hpp>

#include <catch2/catch.hpp>

using namespace keel::test;
namespace api = keel::providers::anthropic;
using keel::testing::MockModelServer;

namespace {

struct Fixture {
  Fixture() { set_env("KEEL_TEST_ANTHROPIC_KEY", "sk-ant-secret-456"); }
  MockModelServer server;
  Collector events;
  keel::providers::ProviderConfig config = mock_config(server, "", "KEEL_TEST_ANTHROPIC_KEY");
  keel::providers::Reply run(const bj::object& request = sample_request()) {
    return api::stream(config, request, events.fn(), {});
  }
};

}  // namespace

TEST_CASE("anthropic: endpoint with and without /v1 in base_url") {
  keel::providers::ProviderConfig c;
  c.base_url = "https://api.anthropic.com";
  CHECK(api::endpoint(c, "messages") == "https://api.anthropic.com/v1/messages");
  c.base_url = "https://proxy.example/anthropic/v1/";
  CHECK(api::endpoint(c, "messages") == "https://proxy.example/anthropic/v1/messages");
}

TEST_CASE_METHOD(Fixture, "anthropic: request has system, merged turns, tool_use and tool_result blocks") {
  server.add_script(R"({"text": "ok"})");
  REQUIRE(run().status == KEEL_OK);
  auto req = server.model_requests().at(0);
  CHECK(req.path == "/v1/messages");
  CHECK(req.header("x-api-key") == "sk-ant-secret-456");
  CHECK(req.header("anthropic-version") == "2023-06-01");
  CHECK(req.header("Authorization").empty());
  auto body = req.json().as_object();
  CHECK(body.at("max_tokens").as_int64() == 8192);
  CHECK(body.at("stream").as_bool());
  CHECK(body.at("system").as_string() == "You are a coding agent.\n\nSandbox: read-only.");
  const auto& m = body.at("messages").as_array();
  REQUIRE(m.size() == 5);
  CHECK(str(m[0], "role") == "user");
  CHECK(str(m[1], "role") == "assistant");
  const auto& a = m[1].at("content").as_array();
  REQUIRE(a.size() == 3);  // text + two tool_use blocks in one turn
  CHECK(str(a[0], "type") == "text");
  CHECK(str(a[1], "type") == "tool_use");
  CHECK(str(a[1], "id") == "call_a");
  CHECK(a[1].at("input").at("command").at(0).as_string() == "ls");
  CHECK(str(a[2], "id") == "call_b");
  const auto& results = m[2].at("content").as_array();
  REQUIRE(results.size() == 2);
  CHECK(str(results[0], "type") == "tool_result");
  CHECK(str(results[0], "tool_use_id") == "call_a");
  CHECK(str(results[0], "content") == "a.txt\nb.txt");
  CHECK(str(m[3], "role") == "assistant");
  CHECK(m[3].at("content").at(0).at("input").at("input").as_string() == "*** Begin Patch\n*** End Patch");
  // The last tool result and the user's next words share one user turn.
  CHECK(str(m[4], "role") == "user");
  CHECK(m[4].at("content").as_array().size() == 2);

  const auto& tools = body.at("tools").as_array();
  REQUIRE(tools.size() == 2);
  CHECK(str(tools[0], "name") == "shell");
  CHECK(tools[0].at("input_schema").at("type").as_string() == "object");
  CHECK(tools[1].at("input_schema").at("required").at(0).as_string() == "input");
  CHECK_FALSE(body.contains("tool_choice"));  // parallel calls allowed
}

TEST_CASE_METHOD(Fixture, "anthropic: max_tokens from config; parallel_tool_calls false; bad history JSON") {
  config.max_tokens = 1234;
  server.add_script(R"({"text": "ok"})");
  auto req = sample_request();
  req["parallel_tool_calls"] = false;
  auto input = req["input"].as_array();
  input.push_back(parse_obj(R"({"type":"function_call","call_id":"call_bad","name":"shell","arguments":"{oops"})"));
  req["input"] = input;
  REQUIRE(run(req).status == KEEL_OK);
  auto body = server.model_requests().at(0).json().as_object();
  CHECK(body.at("max_tokens").as_int64() == 1234);
  CHECK(body.at("tool_choice").at("disable_parallel_tool_use").as_bool());
  const auto& last = body.at("messages").as_array().back();
  CHECK(last.at("content").at(0).at("input").at("invalid_json").as_string() == "{oops");
}

TEST_CASE_METHOD(Fixture, "anthropic: text, thinking, tool_use assembled from input_json_delta, usage") {
  server.add_script(R"({"text": "Let me look.", "reasoning": "I should list files.", "chunk_size": 3, )"
                    R"("tool_calls": [{"name": "shell", "call_id": "toolu_1", "arguments": {"command": ["ls"]}},)"
                    R"({"name": "apply_patch", "call_id": "toolu_2", "input": "*** Begin Patch\n*** End Patch"}],)"
                    R"("usage": {"input_tokens": 1000, "cached_input_tokens": 800, "output_tokens": 42}})");
  auto r = run();
  REQUIRE(r.status == KEEL_OK);
  CHECK(events.deltas() == "Let me look.");
  CHECK(events.deltas("reasoning.delta") == "I should list files.");
  const auto& items = items_of(r);
  REQUIRE(items.size() == 4);
  CHECK(str(items[0], "type") == "reasoning");
  CHECK(str(items[1], "type") == "message");
  CHECK(items[1].at("content").at(0).at("text").as_string() == "Let me look.");
  CHECK(str(items[2], "type") == "function_call");
  CHECK(str(items[2], "call_id") == "toolu_1");
  CHECK(bj::parse(str(items[2], "arguments")) == bj::parse(R"({"command":["ls"]})"));
  CHECK(str(items[3], "type") == "custom_tool_call");
  CHECK(str(items[3], "input") == "*** Begin Patch\n*** End Patch");
  std::string streamed;
  for (auto& e : events.of("tool_input.delta"))
    if (e.at("call_id") == "toolu_1") streamed += e.at("delta").as_string();
  CHECK(streamed == str(items[2], "arguments"));
  auto usage = r.payload.at("usage").as_object();
  CHECK(usage.at("input_tokens").as_int64() == 1000);
  CHECK(usage.at("cached_input_tokens").as_int64() == 800);
  CHECK(usage.at("output_tokens").as_int64() == 42);
  CHECK(usage.at("total_tokens").as_int64() == 1042);
  CHECK(r.payload.at("stop_reason").as_string() == "tool_use");
  CHECK(r.payload.at("response_id").as_string() == "msg_mock_1");
}

TEST_CASE_METHOD(Fixture, "anthropic: malformed tool input is passed through unparsed") {
  server.add_script(R"({"tool_calls": [{"name": "shell", "arguments_raw": "{\"command\": [\"ls\""}]})");
  auto r = run();
  REQUIRE(r.status == KEEL_OK);
  CHECK(str(items_of(r).at(0), "arguments") == "{\"command\": [\"ls\"");
}

TEST_CASE_METHOD(Fixture, "anthropic: overloaded (529) and an in-stream error are retried; a cut too") {
  server.add_script("{\"fault\": \"overloaded\"}\n"
                    R"({"text": "x", "fault": {"type": "stream_error", "after_events": 3}})"
                    "\n"
                    R"({"text": "partial text that is cut", "chunk_size": 2, "fault": "cut"})"
                    "\n"
                    R"({"text": "done"})");
  auto r = run();
  REQUIRE(r.status == KEEL_OK);
  auto retries = events.of("retry");
  REQUIRE(retries.size() == 3);
  CHECK(retries[0].at("reason").as_string() == "HTTP 529");
  CHECK(retries[1].at("reason").as_string() == "overloaded_error");
  CHECK(retries[2].at("reason").as_string() == "stream cut");
  REQUIRE(items_of(r).size() == 1);
  CHECK(items_of(r)[0].at("content").at(0).at("text").as_string() == "done");
}

TEST_CASE_METHOD(Fixture, "anthropic: 401, prompt too long, credit balance") {
  server.add_script("{\"fault\": \"unauthorized\"}\n{\"fault\": \"context_length_exceeded\"}\n"
                    "{\"fault\": \"insufficient_quota\"}");
  auto r = run();
  CHECK(error_code(r) == "unauthorized");
  CHECK_THAT(error_message(r), Catch::Contains("KEEL_TEST_ANTHROPIC_KEY"));
  CHECK_THAT(error_message(r), !Catch::Contains("sk-ant-secret-456"));
  CHECK(error_code(run()) == "context_window_exceeded");
  CHECK(error_code(run()) == "quota_exceeded");
  CHECK(events.of("retry").empty());
}

TEST_CASE_METHOD(Fixture, "anthropic: models endpoint") {
  server.set_models(bj::array{bj::object{{"id", "claude-sonnet-4-5"}, {"display_name", "Claude Sonnet 4.5"}}});
  auto r = api::models(config, {});
  REQUIRE(r.status == KEEL_OK);
  const auto& m = r.payload.at("models").at(0);
  CHECK(str(m, "id") == "claude-sonnet-4-5");
  CHECK(str(m, "display_name") == "Claude Sonnet 4.5");
  CHECK(m.at("context_window").as_int64() == 200000);
  auto path = server.requests().back().path;
  CHECK(path == "/v1/models?limit=1000");
}
