// openai-chat core (Chat Completions) against the mock server over real loopback HTTP.
#include "provider_test_support.hpp"

#include <keel/abi.h>
#include <keel/providers/openai_chat.hpp>

#include <catch2/catch.hpp>

#include <map>

using namespace keel::test;
namespace api = keel::providers::openai_chat;
using keel::testing::MockModelServer;

namespace {

struct Fixture {
  Fixture() { set_env("KEEL_TEST_MOCK_KEY", "sk-test-secret-123"); }
  MockModelServer server;
  Collector events;
  keel::providers::ProviderConfig config = mock_config(server, "/v1");
  keel::providers::Reply run(const bj::object& request = sample_request()) {
    return api::stream(config, request, events.fn(), {});
  }
};

}  // namespace

TEST_CASE_METHOD(Fixture, "chat: history becomes messages, tools become functions") {
  server.add_script(R"({"text": "ok"})");
  REQUIRE(run().status == KEEL_OK);
  auto reqs = server.model_requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].path == "/v1/chat/completions");
  CHECK(reqs[0].header("Authorization") == "Bearer sk-test-secret-123");
  auto body = reqs[0].json().as_object();
  CHECK(body.at("stream").as_bool());
  CHECK(body.at("stream_options").at("include_usage").as_bool());
  CHECK(body.at("model").as_string() == "mock-model");
  const auto& m = body.at("messages").as_array();
  REQUIRE(m.size() == 8);
  // system = instructions + the leading developer message
  CHECK(str(m[0], "role") == "system");
  CHECK(str(m[0], "content") == "You are a coding agent.\n\nSandbox: read-only.");
  CHECK(str(m[1], "role") == "user");
  CHECK(str(m[1], "content") == "List the files.");
  // The assistant text and the two function calls that followed it are one message.
  CHECK(str(m[2], "role") == "assistant");
  CHECK(str(m[2], "content") == "Sure.");
  const auto& calls = m[2].at("tool_calls").as_array();
  REQUIRE(calls.size() == 2);
  CHECK(str(calls[0], "id") == "call_a");
  CHECK(str(calls[0], "type") == "function");
  CHECK(calls[0].at("function").at("name").as_string() == "shell");
  CHECK(calls[0].at("function").at("arguments").as_string() == "{\"command\":[\"ls\"]}");
  CHECK(str(calls[1], "id") == "call_b");
  CHECK(str(m[3], "role") == "tool");
  CHECK(str(m[3], "tool_call_id") == "call_a");
  CHECK(str(m[3], "content") == "a.txt\nb.txt");
  CHECK(str(m[4], "tool_call_id") == "call_b");
  // The freeform call goes as a function call with {"input": ...}.
  CHECK(str(m[5], "role") == "assistant");
  CHECK(m[5].at("content").is_null());
  auto args = bj::parse(m[5].at("tool_calls").at(0).at("function").at("arguments").as_string());
  CHECK(args.at("input").as_string() == "*** Begin Patch\n*** End Patch");
  CHECK(str(m[6], "role") == "tool");
  CHECK(str(m[7], "content") == "Thanks!");

  const auto& tools = body.at("tools").as_array();
  REQUIRE(tools.size() == 2);
  CHECK(str(tools[0], "type") == "function");
  CHECK(tools[0].at("function").at("name").as_string() == "shell");
  CHECK(tools[0].at("function").at("parameters").at("required").at(0).as_string() == "command");
  CHECK(tools[1].at("function").at("name").as_string() == "apply_patch");
  CHECK(tools[1].at("function").at("parameters").at("required").at(0).as_string() == "input");
  CHECK_THAT(std::string(tools[1].at("function").at("description").as_string()), Catch::Contains("start: patch"));
  CHECK(body.at("tool_choice").as_string() == "auto");
  CHECK(body.at("parallel_tool_calls").as_bool());
}

TEST_CASE_METHOD(Fixture, "chat: text, reasoning and usage") {
  server.add_script(
      R"({"text": "Plain answer, streamed.", "reasoning": "Thinking it over.", "chunk_size": 3, "usage": {"input_tokens": 50, "cached_input_tokens": 20, "output_tokens": 9, "reasoning_output_tokens": 4}})");
  auto r = run();
  REQUIRE(r.status == KEEL_OK);
  CHECK(events.deltas() == "Plain answer, streamed.");
  CHECK(events.deltas("reasoning.delta") == "Thinking it over.");
  const auto& items = items_of(r);
  REQUIRE(items.size() == 2);
  CHECK(str(items[0], "type") == "reasoning");
  CHECK(str(items[1], "type") == "message");
  CHECK(items[1].at("content").at(0).at("text").as_string() == "Plain answer, streamed.");
  // The deltas name the item they belong to.
  CHECK(events.of("output_text.delta").at(0).at("item_id").as_string() == str(items[1], "id"));
  auto usage = r.payload.at("usage").as_object();
  CHECK(usage.at("input_tokens").as_int64() == 50);
  CHECK(usage.at("cached_input_tokens").as_int64() == 20);
  CHECK(usage.at("output_tokens").as_int64() == 9);
  CHECK(usage.at("reasoning_output_tokens").as_int64() == 4);
  CHECK(usage.at("total_tokens").as_int64() == 59);
  CHECK(r.payload.at("response_id").as_string() == "chatcmpl-mock-1");
}

TEST_CASE_METHOD(Fixture, "chat: parallel tool-call fragments are assembled per index") {
  server.add_script(R"({"tool_calls": [)"
                    R"({"name": "shell", "call_id": "call_x", "arguments": {"command": ["ls", "-la", "src"]}},)"
                    R"({"name": "shell", "call_id": "call_y", "arguments": {"command": ["git", "diff", "--stat"]}},)"
                    R"({"name": "apply_patch", "call_id": "call_z", "input": "*** Begin Patch\n*** End Patch"}],)"
                    R"("chunk_size": 3})");
  auto r = run();
  REQUIRE(r.status == KEEL_OK);
  CHECK(r.payload.at("finish_reason").as_string() == "tool_calls");
  const auto& items = items_of(r);
  REQUIRE(items.size() == 3);
  CHECK(str(items[0], "type") == "function_call");
  CHECK(str(items[0], "call_id") == "call_x");
  CHECK(bj::parse(str(items[0], "arguments")) == bj::parse(R"({"command":["ls","-la","src"]})"));
  CHECK(str(items[1], "call_id") == "call_y");
  CHECK(bj::parse(str(items[1], "arguments")) == bj::parse(R"({"command":["git","diff","--stat"]})"));
  CHECK(str(items[2], "type") == "custom_tool_call");
  CHECK(str(items[2], "input") == "*** Begin Patch\n*** End Patch");

  // Fragments arrived interleaved; the deltas are still attributed to the right call.
  std::map<std::string, std::string> per_call;
  std::vector<std::string> order;
  for (auto& e : events.of("tool_input.delta")) {
    std::string id(e.at("call_id").as_string());
    if (order.empty() || order.back() != id) order.push_back(id);
    per_call[id] += e.at("delta").as_string();
  }
  CHECK(order.size() > 3);  // interleaved
  CHECK(per_call["call_x"] == str(items[0], "arguments"));
  CHECK(per_call["call_y"] == str(items[1], "arguments"));
}

TEST_CASE_METHOD(Fixture, "chat: malformed tool-call JSON is passed through unparsed") {
  server.add_script(R"({"tool_calls": [{"name": "shell", "arguments_raw": "{'command': ls"}]})");
  auto r = run();
  REQUIRE(r.status == KEEL_OK);
  CHECK(str(items_of(r).at(0), "arguments") == "{'command': ls");

  // Resent in the history, it is wrapped so that strict servers still accept the request.
  auto req = sample_request();
  auto input = req["input"].as_array();
  input.push_back(items_of(r).at(0));
  input.push_back(parse_obj(R"({"type":"function_call_output","call_id":")" + str(items_of(r).at(0), "call_id") +
                            R"(","output":"invalid JSON arguments"})"));
  req["input"] = input;
  server.add_script(R"({"text": "fixed"})");
  REQUIRE(run(req).status == KEEL_OK);
  auto messages = server.model_requests().back().json().at("messages").as_array();
  const auto& call = messages[messages.size() - 2].at("tool_calls").at(0);
  CHECK(bj::parse(call.at("function").at("arguments").as_string()).at("invalid_json").as_string() ==
        "{'command': ls");
}

TEST_CASE_METHOD(Fixture, "chat: 500 then success; a cut stream is retried with the partial discarded") {
  server.add_script("{\"fault\": \"http_500\"}\n"
                    R"({"text": "partial partial partial partial", "chunk_size": 2, "fault": "cut"})"
                    "\n"
                    R"({"text": "final"})");
  auto r = run();
  REQUIRE(r.status == KEEL_OK);
  auto retries = events.of("retry");
  REQUIRE(retries.size() == 2);
  CHECK(retries[0].at("reason").as_string() == "HTTP 500");
  CHECK(retries[1].at("reason").as_string() == "stream cut");
  REQUIRE(items_of(r).size() == 1);
  CHECK(items_of(r)[0].at("content").at(0).at("text").as_string() == "final");
}

TEST_CASE_METHOD(Fixture, "chat: an error chunk in the stream is retried; invalid JSON too") {
  server.add_script(R"({"text": "x", "fault": {"type": "stream_error", "message": "upstream exploded"}})"
                    "\n"
                    R"({"text": "x", "fault": "invalid_json"})"
                    "\n"
                    R"({"text": "fine"})");
  auto r = run();
  REQUIRE(r.status == KEEL_OK);
  REQUIRE(events.of("retry").size() == 2);
  CHECK_THAT(std::string(events.of("retry")[0].at("message").as_string()), Catch::Contains("upstream exploded"));
}

TEST_CASE_METHOD(Fixture, "chat: 401 names the env var; context length has its own code") {
  server.add_script("{\"fault\": \"unauthorized\"}\n{\"fault\": \"context_length_exceeded\"}");
  auto r = run();
  CHECK(error_code(r) == "unauthorized");
  CHECK_THAT(error_message(r), Catch::Contains("KEEL_TEST_MOCK_KEY"));
  CHECK_THAT(error_message(r), !Catch::Contains("sk-test-secret-123"));
  auto r2 = run();
  CHECK(error_code(r2) == "context_window_exceeded");
}

TEST_CASE_METHOD(Fixture, "chat: no env_key means no Authorization header (local servers)") {
  config.env_key.clear();
  server.add_script(R"({"text": "local"})");
  REQUIRE(run().status == KEEL_OK);
  CHECK(server.model_requests().at(0).header("Authorization").empty());

  // A 401 then explains that no key was sent.
  server.add_script(R"({"fault": "unauthorized"})");
  auto r = run();
  CHECK_THAT(error_message(r), Catch::Contains("No API key was sent"));
}

TEST_CASE_METHOD(Fixture, "chat: a stream ending after finish_reason without [DONE] is complete") {
  // Some servers close right after the last chunk. Simulated with a cut placed after the
  // finish chunk and the usage chunk: the whole response is there, only [DONE] is missing.
  server.add_script(R"({"text": "hi", "fault": {"type": "cut", "after_events": 5}})");
  auto r = run();
  REQUIRE(r.status == KEEL_OK);
  CHECK(events.of("retry").empty());
  CHECK(items_of(r).at(0).at("content").at(0).at("text").as_string() == "hi");
}

TEST_CASE_METHOD(Fixture, "chat: models endpoint") {
  server.set_models(bj::array{bj::object{{"id", "qwen2.5-coder:7b"}}});
  auto r = api::models(config, {});
  REQUIRE(r.status == KEEL_OK);
  CHECK(r.payload.at("models").at(0).at("id").as_string() == "qwen2.5-coder:7b");
  CHECK(r.payload.at("models").at(0).at("context_window").as_int64() == 32768);
}
