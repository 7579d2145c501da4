// openai-responses core against the mock server over real loopback HTTP.
#include "provider_test_support.hpp"

#include <keel/abi.h>
#include <keel/providers/openai_responses.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <thread>

using namespace keel::test;
namespace api = keel::providers::openai_responses;
using keel::testing::MockModelServer;

namespace {

struct Fixture {
  Fixture() { set_env("KEEL_TEST_MOCK_KEY", "sk-test-secret-123"); }
  MockModelServer server;
  Collector events;
  keel::providers::ProviderConfig config = mock_config(server, "/v1");
  keel::providers::Reply run(const bj::object& request = sample_request(), keel::providers::CancelFn cancelled = {}) {
    return api::stream(config, request, events.fn(), cancelled);
  }
};

}  // namespace

TEST_CASE_METHOD(Fixture, "responses: text deltas, usage and the request sent") {
  server.add_script(
      R"({"text": "Hello, world! This streams in pieces.", "reasoning": "Let me think.", "usage": {"input_tokens": 120, "cached_input_tokens": 100, "output_tokens": 30, "reasoning_output_tokens": 12}})");
  auto r = run();
  REQUIRE(r.status == KEEL_OK);
  CHECK(events.deltas() == "Hello, world! This streams in pieces.");
  CHECK(events.of("output_text.delta").size() > 3);
  CHECK(events.deltas("reasoning.delta") == "Let me think.");
  CHECK(events.of("retry").empty());

  const auto& items = items_of(r);
  REQUIRE(items.size() == 2);
  CHECK(str(items[0], "type") == "reasoning");
  CHECK(str(items[1], "type") == "message");
  CHECK(items[1].at("content").at(0).at("text").as_string() == "Hello, world! This streams in pieces.");
  CHECK(events.of("item.done").size() == 2);
  auto usage = r.payload.at("usage").as_object();
  CHECK(usage.at("input_tokens").as_int64() == 120);
  CHECK(usage.at("cached_input_tokens").as_int64() == 100);
  CHECK(usage.at("output_tokens").as_int64() == 30);
  CHECK(usage.at("reasoning_output_tokens").as_int64() == 12);
  CHECK(usage.at("total_tokens").as_int64() == 150);
  CHECK(r.payload.at("response_id").as_string() == "resp_mock_1");

  auto reqs = server.model_requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].path == "/v1/responses");
  CHECK(reqs[0].header("Authorization") == "Bearer sk-test-secret-123");
  auto body = reqs[0].json().as_object();
  CHECK(body.at("model").as_string() == "mock-model");
  CHECK(body.at("instructions").as_string() == "You are a coding agent.");
  CHECK(body.at("store").as_bool() == false);
  CHECK(body.at("stream").as_bool() == true);
  CHECK(body.at("tool_choice").as_string() == "auto");
  CHECK(body.at("parallel_tool_calls").as_bool() == true);
  CHECK(body.at("prompt_cache_key").as_string() == "sess-1");
  const auto& input = body.at("input").as_array();
  // The summary-only reasoning item cannot be replayed with store:false; ids are dropped.
  CHECK(input.size() == 10);
  for (const auto& item : input) {
    CHECK(str(item, "type") != "reasoning");
    CHECK_FALSE(item.as_object().contains("id"));
  }
  CHECK(str(input[3], "type") == "function_call");
  CHECK(str(input[3], "arguments") == "{\"command\":[\"ls\"]}");
  const auto& tools = body.at("tools").as_array();
  REQUIRE(tools.size() == 2);
  CHECK(str(tools[0], "type") == "function");
  CHECK(tools[0].at("strict").as_bool() == false);
  CHECK(str(tools[1], "type") == "custom");
  CHECK(tools[1].at("format").at("syntax").as_string() == "lark");
}

TEST_CASE_METHOD(Fixture, "responses: reasoning effort asks for encrypted reasoning") {
  server.add_script(R"({"text": "ok"})");
  auto req = sample_request();
  req["reasoning_effort"] = "high";
  auto input = req["input"].as_array();
  input.push_back(parse_obj(R"({"type":"reasoning","id":"rs_9","summary":[],"encrypted_content":"xyz"})"));
  req["input"] = input;
  REQUIRE(run(req).status == KEEL_OK);
  auto body = server.model_requests().at(0).json().as_object();
  CHECK(body.at("reasoning").at("effort").as_string() == "high");
  CHECK(body.at("include").at(0).as_string() == "reasoning.encrypted_content");
  const auto& last = body.at("input").as_array().back();
  CHECK(str(last, "type") == "reasoning");
  CHECK(str(last, "id") == "rs_9");  // replayable: kept whole
}

TEST_CASE_METHOD(Fixture, "responses: parallel function and freeform tool calls") {
  server.add_script(R"({"text": "Running both.", "tool_calls": [)"
                    R"({"name": "shell", "call_id": "call_1", "arguments": {"command": ["ls", "-la"]}},)"
                    R"({"name": "shell", "call_id": "call_2", "arguments": {"command": ["git", "status"]}},)"
                    R"({"name": "apply_patch", "call_id": "call_3", "input": "*** Begin Patch\n*** Add File: x\n+hi\n*** End Patch"}]})");
  auto r = run();
  REQUIRE(r.status == KEEL_OK);
  const auto& items = items_of(r);
  REQUIRE(items.size() == 4);
  CHECK(str(items[1], "type") == "function_call");
  CHECK(str(items[1], "call_id") == "call_1");
  CHECK(bj::parse(str(items[1], "arguments")) == bj::parse(R"({"command":["ls","-la"]})"));
  CHECK(str(items[2], "call_id") == "call_2");
  CHECK(str(items[3], "type") == "custom_tool_call");
  CHECK(str(items[3], "input") == "*** Begin Patch\n*** Add File: x\n+hi\n*** End Patch");

  // Tool input streamed per call, named.
  std::map<std::string, std::string> per_call;
  for (auto& e : events.of("tool_input.delta")) {
    CHECK(e.at("name").as_string().size() > 0);
    per_call[std::string(e.at("call_id").as_string())] += e.at("delta").as_string();
  }
  CHECK(per_call["call_1"] == str(items[1], "arguments"));
  CHECK(per_call["call_3"] == str(items[3], "input"));
}

TEST_CASE_METHOD(Fixture, "responses: malformed tool-call JSON is passed through unparsed") {
  server.add_script(R"({"tool_calls": [{"name": "shell", "arguments_raw": "{\"command\": [\"ls\", "}]})");
  auto r = run();
  REQUIRE(r.status == KEEL_OK);
  REQUIRE(items_of(r).size() == 1);
  CHECK(str(items_of(r)[0], "arguments") == "{\"command\": [\"ls\", ");
}

TEST_CASE_METHOD(Fixture, "responses: HTTP 500 then success is retried") {
  server.add_script("{\"fault\": \"http_500\"}\n{\"fault\": \"http_500\"}\n{\"text\": \"recovered\"}");
  auto r = run();
  REQUIRE(r.status == KEEL_OK);
  CHECK(events.deltas() == "recovered");
  auto retries = events.of("retry");
  REQUIRE(retries.size() == 2);
  CHECK(retries[0].at("attempt").as_int64() == 1);
  CHECK(retries[1].at("attempt").as_int64() == 2);
  CHECK(retries[0].at("max_attempts").as_int64() == 4);
  CHECK(retries[0].at("reason").as_string() == "HTTP 500");
  CHECK(server.model_requests().size() == 3);
}

TEST_CASE_METHOD(Fixture, "responses: a connection dropped before any response is retried") {
  server.add_script("{\"fault\": \"drop\"}\n{\"text\": \"after the drop\"}");
  auto r = run();
  REQUIRE(r.status == KEEL_OK);
  auto retries = events.of("retry");
  REQUIRE(retries.size() == 1);
  CHECK(retries[0].at("reason").as_string() == "connection failed");
  CHECK(retries[0].at("max_attempts").as_int64() == 4);
  CHECK(events.deltas() == "after the drop");
}

TEST_CASE_METHOD(Fixture, "responses: a stream cut mid-event is retried and the partial response discarded") {
  server.add_script(
      R"({"text": "This partial answer will be cut off and must not survive.", "chunk_size": 4, "fault": "cut"})"
      "\n"
      R"({"text": "The whole answer.", "tool_calls": [{"name": "shell", "arguments": {"command": ["ls"]}}]})");
  auto r = run();
  REQUIRE(r.status == KEEL_OK);
  auto retries = events.of("retry");
  REQUIRE(retries.size() == 1);
  CHECK(retries[0].at("reason").as_string() == "stream cut");
  CHECK(retries[0].at("max_attempts").as_int64() == 5);
  // Deltas of the cut attempt came before the retry event; the reply has only the second.
  const auto& items = items_of(r);
  REQUIRE(items.size() == 2);
  CHECK(items[0].at("content").at(0).at("text").as_string() == "The whole answer.");
  CHECK(str(items[1], "type") == "function_call");
  std::size_t retry_pos = 0;
  for (std::size_t i = 0; i < events.events.size(); ++i)
    if (events.events[i].at("type") == "retry") retry_pos = i;
  std::string after;
  for (std::size_t i = retry_pos; i < events.events.size(); ++i)
    if (events.events[i].at("type") == "output_text.delta") after += events.events[i].at("delta").as_string();
  CHECK(after == "The whole answer.");
}

TEST_CASE_METHOD(Fixture, "responses: 429 with Retry-After is honoured") {
  server.add_script("{\"fault\": {\"type\": \"rate_limit\", \"retry_after\": \"1\"}}\n{\"text\": \"ok\"}");
  Stopwatch sw;
  auto r = run();
  REQUIRE(r.status == KEEL_OK);
  CHECK(sw.ms() >= 1000);
  auto retries = events.of("retry");
  REQUIRE(retries.size() == 1);
  CHECK(retries[0].at("delay_ms").as_int64() == 1000);
  CHECK(retries[0].at("reason").as_string() == "rate limited (HTTP 429)");
}

TEST_CASE_METHOD(Fixture, "responses: 'Please try again in Xs' sets the delay; exhausted retries say rate_limited") {
  config.request_max_retries = 1;
  server.add_script(
      "{\"fault\": {\"type\": \"rate_limit\", \"try_again_in\": \"0.25s\"}}\n"
      "{\"fault\": {\"type\": \"rate_limit\", \"try_again_in\": \"0.25s\"}}\n");
  auto r = run();
  REQUIRE(r.status != KEEL_OK);
  CHECK(error_code(r) == "rate_limited");
  CHECK(r.payload.at("error").at("retry_after_ms").as_int64() == 250);
  CHECK(r.payload.at("error").at("http_status").as_int64() == 429);
  CHECK_THAT(error_message(r), Catch::Contains("gave up after 1 retry"));
  auto retries = events.of("retry");
  REQUIRE(retries.size() == 1);
  CHECK(retries[0].at("delay_ms").as_int64() == 250);
}

TEST_CASE_METHOD(Fixture, "responses: insufficient quota is not retried") {
  server.add_script(R"({"fault": "insufficient_quota"})");
  auto r = run();
  CHECK(error_code(r) == "quota_exceeded");
  CHECK(r.status == KEEL_ERR_DENIED);
  CHECK(events.of("retry").empty());
  CHECK(server.model_requests().size() == 1);
}

TEST_CASE_METHOD(Fixture, "responses: a stream idle past the timeout is retried") {
  config.stream_idle_timeout_ms = 300;
  server.add_script(R"({"text": "stalling here", "fault": {"type": "stall", "stall_ms": 5000}})"
                    "\n"
                    R"({"text": "fresh"})");
  Stopwatch sw;
  auto r = run();
  REQUIRE(r.status == KEEL_OK);
  CHECK(sw.ms() < 3000);
  auto retries = events.of("retry");
  REQUIRE(retries.size() == 1);
  CHECK(retries[0].at("reason").as_string() == "stream idle timeout");
  CHECK(items_of(r).at(0).at("content").at(0).at("text").as_string() == "fresh");
}

TEST_CASE_METHOD(Fixture, "responses: idle timeouts exhausted end in stream_error") {
  config.stream_idle_timeout_ms = 200;
  config.stream_max_retries = 1;
  server.add_script(R"({"text": "a", "fault": {"type": "stall", "stall_ms": 5000}})"
                    "\n"
                    R"({"text": "b", "fault": {"type": "stall", "stall_ms": 5000}})");
  auto r = run();
  CHECK(error_code(r) == "stream_error");
  CHECK_THAT(error_message(r), Catch::Contains("idle"));
}

TEST_CASE_METHOD(Fixture, "responses: invalid JSON in an event is a stream error, retried") {
  server.add_script(R"({"text": "x", "fault": "invalid_json"})"
                    "\n"
                    R"({"text": "valid"})");
  auto r = run();
  REQUIRE(r.status == KEEL_OK);
  REQUIRE(events.of("retry").size() == 1);
  CHECK(events.of("retry")[0].at("reason").as_string() == "invalid event");

  // With no retries left it is reported clearly.
  config.stream_max_retries = 0;
  server.add_script(R"({"text": "x", "fault": "invalid_json"})");
  auto r2 = run();
  CHECK(error_code(r2) == "stream_error");
  CHECK(r2.status == KEEL_ERR_UNAVAILABLE);
  CHECK_THAT(error_message(r2), Catch::Contains("invalid JSON"));
}

TEST_CASE_METHOD(Fixture, "responses: 401 names the key's environment variable, never the key") {
  server.add_script(R"({"fault": "unauthorized"})");
  auto r = run();
  CHECK(error_code(r) == "unauthorized");
  CHECK(r.status == KEEL_ERR_DENIED);
  CHECK_THAT(error_message(r), Catch::Contains("KEEL_TEST_MOCK_KEY"));
  CHECK_THAT(error_message(r), Catch::Contains("HTTP 401"));
  CHECK_THAT(error_message(r), !Catch::Contains("sk-test-secret-123"));
  CHECK(server.model_requests().size() == 1);
}

TEST_CASE_METHOD(Fixture, "responses: a missing key is a clear error naming the variable") {
  config.env_key = "KEEL_TEST_UNSET_KEY_VAR";
  ::unsetenv("KEEL_TEST_UNSET_KEY_VAR");
  auto r = run();
  CHECK(error_code(r) == "unauthorized");
  CHECK_THAT(error_message(r), Catch::Contains("KEEL_TEST_UNSET_KEY_VAR"));
  CHECK(server.model_requests().empty());
}

TEST_CASE_METHOD(Fixture, "responses: context window exceeded has its own code") {
  server.add_script(R"({"fault": "context_length_exceeded"})");
  auto r = run();
  CHECK(error_code(r) == "context_window_exceeded");
  CHECK(r.status == KEEL_ERR_INVALID_ARGUMENT);
  CHECK(events.of("retry").empty());

  // The same reported in the stream (response.failed).
  server.add_script(
      R"({"text": "x", "fault": {"type": "stream_error", "code": "context_length_exceeded", "message": "Your input exceeds the context window of this model."}})");
  auto r2 = run();
  CHECK(error_code(r2) == "context_window_exceeded");
  CHECK(events.of("retry").empty());
}

TEST_CASE_METHOD(Fixture, "responses: response.failed with a server error is retried") {
  server.add_script(R"({"text": "x", "fault": {"type": "stream_error", "code": "server_error", "message": "boom"}})"
                    "\n"
                    R"({"text": "ok"})");
  auto r = run();
  REQUIRE(r.status == KEEL_OK);
  CHECK(events.of("retry").size() == 1);
}

TEST_CASE_METHOD(Fixture, "responses: cancelling closes the stream at once") {
  server.add_script(R"({"text": "a long slow answer that goes on and on", "chunk_size": 1, "chunk_delay_ms": 200})");
  std::atomic<bool> cancel{false};
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cancel = true;
  });
  Stopwatch sw;
  auto r = run(sample_request(), [&] { return cancel.load(); });
  t.join();
  CHECK(error_code(r) == "cancelled");
  CHECK(r.status == KEEL_ERR_CANCELLED);
  CHECK(sw.ms() < 1000);
}

TEST_CASE_METHOD(Fixture, "responses: a dead server is retried, then reported") {
  config.request_max_retries = 2;
  server.stop();
  auto r = run();
  CHECK(error_code(r) == "server_error");
  CHECK_THAT(error_message(r), Catch::Contains("could not connect"));
  CHECK(events.of("retry").size() == 2);
}

TEST_CASE_METHOD(Fixture, "responses: models endpoint") {
  server.set_models(bj::array{bj::object{{"id", "gpt-5-codex"}}, bj::object{{"id", "my-finetune"}}});
  auto r = api::models(config, {});
  REQUIRE(r.status == KEEL_OK);
  const auto& models = r.payload.at("models").as_array();
  REQUIRE(models.size() == 2);
  CHECK(str(models[0], "id") == "gpt-5-codex");
  CHECK(models[0].at("context_window").as_int64() == 272000);
  CHECK(models[0].at("supports_parallel_tool_calls").as_bool());
  CHECK(models[1].as_object().size() == 1);  // unknown model: only its id
  CHECK(server.requests().back().path == "/v1/models");
}

TEST_CASE_METHOD(Fixture, "responses: configured headers and query params are sent") {
  config.http_headers = {{"X-Team", "core"}};
  config.query_params = {{"api-version", "2025-04-01"}};
  set_env("KEEL_TEST_HEADER_VALUE", "from-env");
  config.env_http_headers = {{"X-Env", "KEEL_TEST_HEADER_VALUE"}};
  server.add_script(R"({"text": "ok"})");
  REQUIRE(run().status == KEEL_OK);
  auto req = server.model_requests().at(0);
  CHECK(req.path == "/v1/responses?api-version=2025-04-01");
  CHECK(req.header("X-Team") == "core");
  CHECK(req.header("X-Env") == "from-env");
}
