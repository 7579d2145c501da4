// The provider modules through their real C ABI (dlopen + keel_module_entry), the way the
// kernel drives them, against the mock model server.
#include "abi_test_host.hpp"
#include "provider_test_support.hpp"

#include <catch2/catch.hpp>

using namespace keel::test;
using keel::testing::MockModelServer;

namespace {

std::string module_config(const MockModelServer& server, const std::string& path, const char* extra = "") {
  return R"({"model": "mock-model", "provider": {"name": "Mock", "base_url": ")" + server.url() + path +
         R"(", "env_key": "KEEL_TEST_ABI_KEY", "retry_base_delay_ms": 1, "stream_idle_timeout_ms": 3000)" + extra +
         "}}";
}

std::vector<bj::object> parse_all(const std::vector<std::string>& emits) {
  std::vector<bj::object> out;
  for (const auto& e : emits) out.push_back(parse_obj(e));
  return out;
}

}  // namespace

TEST_CASE("module abi: openai-chat streams, retries, answers exactly once") {
  set_env("KEEL_TEST_ABI_KEY", "sk-abi");
  MockModelServer server;
  AbiTestHost host(KEEL_CHAT_MODULE_PATH);
  REQUIRE(std::string(host.module().name) == "openai-chat");
  auto* cap = host.capability("openai-chat");
  REQUIRE(cap);
  CHECK(cap->kind == KEEL_CAP_PROVIDER);
  host.start(module_config(server, "/v1"));

  server.add_script("{\"fault\": \"http_500\"}\n"
                    R"({"text": "Hello through the ABI", "tool_calls": [{"name": "shell", "arguments": {"command": ["ls"]}}]})");
  auto r = host.call("openai-chat", "stream", bj::serialize(sample_request()));
  CHECK(r.reply_count == 1);
  CHECK(r.emits_after_reply == 0);
  REQUIRE(r.status == KEEL_OK);
  auto payload = parse_obj(r.payload);
  const auto& items = payload.at("items").as_array();
  REQUIRE(items.size() == 2);
  CHECK(items[0].at("content").at(0).at("text").as_string() == "Hello through the ABI");
  CHECK(str(items[1], "type") == "function_call");
  auto emits = parse_all(r.emits);
  int retries = 0;
  std::string text;
  for (auto& e : emits) {
    if (e.at("type") == "retry") ++retries;
    if (e.at("type") == "output_text.delta") text += e.at("delta").as_string();
  }
  CHECK(retries == 1);
  CHECK(text == "Hello through the ABI");
  CHECK(server.model_requests().at(1).header("Authorization") == "Bearer sk-abi");

  auto m = host.call("openai-chat", "models", "{}");
  REQUIRE(m.status == KEEL_OK);
  CHECK(parse_obj(m.payload).at("models").at(0).at("id").as_string() == "mock-model");

  auto nf = host.call("openai-chat", "nonsense", "{}");
  CHECK(nf.status == KEEL_ERR_NOT_FOUND);
  auto bad = host.call("openai-chat", "stream", "not json");
  CHECK(bad.status == KEEL_ERR_INVALID_ARGUMENT);
  CHECK(parse_obj(bad.payload).at("error").at("code").as_string() == "bad_request");
}

TEST_CASE("module abi: cancelling a stream closes it at once") {
  set_env("KEEL_TEST_ABI_KEY", "sk-abi");
  MockModelServer server;
  AbiTestHost host(KEEL_CHAT_MODULE_PATH);
  host.start(module_config(server, "/v1"));
  server.add_script(R"({"text": "slow slow slow slow slow", "chunk_size": 1, "chunk_delay_ms": 300})");
  auto pending = host.begin("openai-chat", "stream", bj::serialize(sample_request()));
  REQUIRE(pending->wait_for_emits(1, std::chrono::seconds(5)));
  Stopwatch sw;
  pending->cancel();
  REQUIRE(pending->wait(std::chrono::seconds(5)));
  CHECK(sw.ms() < 500);
  auto r = pending->result();
  CHECK(r.status == KEEL_ERR_CANCELLED);
  CHECK(parse_obj(r.payload).at("error").at("code").as_string() == "cancelled");
}

TEST_CASE("module abi: a bad provider config is reported on use, not at load") {
  MockModelServer server;
  AbiTestHost host(KEEL_RESPONSES_MODULE_PATH);
  host.start(module_config(server, "/v1", R"(, "stream_max_retries": "lots")"));
  auto r = host.call("openai-responses", "stream", bj::serialize(sample_request()));
  CHECK(r.status == KEEL_ERR_INVALID_ARGUMENT);
  CHECK_THAT(r.payload, Catch::Contains("stream_max_retries"));
  CHECK(server.model_requests().empty());
}

TEST_CASE("module abi: openai-responses and anthropic stream too; 401 names the key variable") {
  set_env("KEEL_TEST_ABI_KEY", "sk-abi-secret");
  MockModelServer server;
  {
    AbiTestHost host(KEEL_RESPONSES_MODULE_PATH);
    host.start(module_config(server, "/v1"));
    server.add_script(R"({"text": "from responses"})");
    auto r = host.call("openai-responses", "stream", bj::serialize(sample_request()));
    REQUIRE(r.status == KEEL_OK);
    CHECK(parse_obj(r.payload).at("items").at(0).at("content").at(0).at("text").as_string() == "from responses");
  }
  {
    AbiTestHost host(KEEL_ANTHROPIC_MODULE_PATH);
    host.start(module_config(server, ""));
    server.add_script(R"({"text": "from anthropic"})"
                      "\n"
                      R"({"fault": "unauthorized"})");
    auto r = host.call("anthropic", "stream", bj::serialize(sample_request()));
    REQUIRE(r.status == KEEL_OK);
    CHECK(parse_obj(r.payload).at("items").at(0).at("content").at(0).at("text").as_string() == "from anthropic");
    CHECK(server.model_requests().back().header("x-api-key") == "sk-abi-secret");
    auto u = host.call("anthropic", "stream", bj::serialize(sample_request()));
    CHECK(u.status == KEEL_ERR_DENIED);
    CHECK_THAT(u.payload, Catch::Contains("KEEL_TEST_ABI_KEY"));
    CHECK_THAT(u.payload, !Catch::Contains("sk-abi-secret"));
  }
}
