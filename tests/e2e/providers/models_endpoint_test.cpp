// The models endpoint's metadata (modules/providers/common/src/models.cpp, fetch_models)
// for the listing shapes real servers send: ids only (Ollama, LM Studio, llama.cpp), vLLM's
// max_model_len, OpenRouter's context_length / top_provider / supported_parameters /
// architecture. In-process against the mock model server's library (set_models).
#include <keel/providers/models.hpp>
#include <keel/testing/mock_model_server.hpp>

#include <catch2/catch.hpp>

#include <boost/json.hpp>

using namespace keel::providers;
namespace bj = boost::json;

namespace {

bj::object fetch_one(keel::testing::MockModelServer& server, const bj::object& listed) {
  server.set_models(bj::array{listed});
  ProviderConfig config;
  config.id = "mock";
  config.base_url = server.url() + "/v1";
  auto r = fetch_models(config, server.url() + "/v1/models", {}, [] { return false; }, ApiKey{});
  INFO(r.json());
  REQUIRE(r.ok());
  auto& models = r.payload.at("models").as_array();
  REQUIRE(models.size() == 1);
  return models[0].as_object();
}

}  // namespace

TEST_CASE("models endpoint: metadata from the listing overrides presets", "[e2e][providers][models]") {
  keel::testing::MockModelServer server;

  SECTION("ids only: presets, or nothing") {
    auto m = fetch_one(server, bj::object{{"id", "qwen2.5-coder:7b"}, {"object", "model"}});
    CHECK(m.at("context_window").as_int64() == 32768);
    CHECK_FALSE(m.at("supports_parallel_tool_calls").as_bool());
    auto unknown = fetch_one(server, bj::object{{"id", "my-finetune"}});
    CHECK(unknown.size() == 1);  // just the id
  }
  SECTION("vLLM: max_model_len") {
    auto m = fetch_one(server, bj::object{{"id", "Qwen/Qwen2.5-Coder-32B-Instruct"}, {"max_model_len", 16384}});
    CHECK(m.at("context_window").as_int64() == 16384);   // over the qwen2.5-coder preset
    CHECK(m.at("max_output_tokens").as_int64() == 8192);  // the preset's
  }
  SECTION("OpenRouter: context, output limit, tools, reasoning and images") {
    auto m = fetch_one(server, bj::object{
        {"id", "openai/gpt-5"},
        {"context_length", 400000},
        {"top_provider", bj::object{{"context_length", 400000}, {"max_completion_tokens", 128000}}},
        {"architecture", bj::object{{"input_modalities", bj::array{"text", "image", "file"}}}},
        {"supported_parameters", bj::array{"tools", "tool_choice", "reasoning", "max_tokens"}}});
    CHECK(m.at("context_window").as_int64() == 400000);
    CHECK(m.at("max_output_tokens").as_int64() == 128000);
    CHECK(m.at("supports_reasoning_effort").as_bool());
    CHECK(m.at("supports_images").as_bool());
    CHECK(m.at("supports_parallel_tool_calls").as_bool());  // the gpt-5 preset; not contradicted

    auto plain = fetch_one(server, bj::object{
        {"id", "some/text-model"},
        {"top_provider", bj::object{{"context_length", 8192}, {"max_completion_tokens", 2048}}},
        {"architecture", bj::object{{"input_modalities", bj::array{"text"}}}},
        {"supported_parameters", bj::array{"max_tokens", "temperature"}}});
    CHECK(plain.at("context_window").as_int64() == 8192);  // from top_provider
    CHECK(plain.at("max_output_tokens").as_int64() == 2048);
    CHECK_FALSE(plain.at("supports_reasoning_effort").as_bool());
    CHECK_FALSE(plain.at("supports_images").as_bool());
    CHECK_FALSE(plain.at("supports_parallel_tool_calls").as_bool());  // no tools at all
  }
}
