// `keel models`: the provider modules' models endpoint through the kernel's bus, against the
// real keel-mock-model-server, with built-in presets, [models.<id>] overrides and the 24-hour
// cache under $KEEL_HOME/cache, run through the real keel binary.
#include "e2e_support.hpp"

using namespace keel::e2e;

namespace {

const fs::path kModelsDriver = KEEL_EXE;  // `keel models`

KeelRun models(const Home& h, std::vector<std::string> args, const fs::path& exe = kModelsDriver) {
  args.insert(args.begin(), "models");
  return run_keel(h, args, {}, true, exe);
}

json::object models_json(const KeelRun& r) {
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.events.size() == 1);  // one JSON object
  return r.events[0];
}

const json::object* find_model(const json::object& listing, const std::string& id) {
  for (auto& m : listing.at("models").as_array())
    if (str(m.as_object(), "id") == id) return &m.as_object();
  return nullptr;
}

std::size_t models_gets(const MockServer& s) {
  std::size_t n = 0;
  for (auto& r : s.requests())
    if (str(r, "method") == "GET" && contains(str(r, "path"), "/models")) ++n;
  return n;
}

const char* kOverrides = R"(
[models.gpt-5-codex]
context_window = 200000
supports_images = false

[models.my-local-model]
context_window = 32768
max_output_tokens = 4096
supports_parallel_tool_calls = false
)";

}  // namespace

TEST_CASE("keel models: presets, overrides, per wire protocol", "[e2e][providers][models]") {
  for (const auto& w : wires()) {
    DYNAMIC_SECTION("wire " << w.wire) {
      TempDir dir{"keel-e2e"};
      MockServer server(dir.path(), "", true, "gpt-5-codex");
      Home home(provider_config(server.port(), kOverrides));
      auto listing = models_json(models(home, {"--provider", w.provider, "--json"}));
      CHECK(str(listing, "provider") == w.provider);
      CHECK(str(listing, "source") == "endpoint");
      CHECK(num(listing, "fetched_at") > 0);

      auto* gpt = find_model(listing, "gpt-5-codex");
      REQUIRE(gpt);
      CHECK(num(*gpt, "context_window") == 200000);       // [models.gpt-5-codex] wins over the preset
      CHECK(num(*gpt, "max_output_tokens") == 128000);    // the gpt-5 preset
      CHECK(gpt->at("supports_parallel_tool_calls").as_bool());
      CHECK(gpt->at("supports_reasoning_effort").as_bool());
      CHECK_FALSE(gpt->at("supports_images").as_bool());  // overridden

      auto* local = find_model(listing, "my-local-model");  // only in the configuration
      REQUIRE(local);
      CHECK(num(*local, "context_window") == 32768);
      CHECK(num(*local, "max_output_tokens") == 4096);
      CHECK_FALSE(local->at("supports_parallel_tool_calls").as_bool());
      CHECK(str(*local, "source") == "config");

      auto reqs = server.requests();
      REQUIRE(reqs.size() == 1);
      CHECK(str(reqs[0], "method") == "GET");
      auto path = str(reqs[0], "path");
      CHECK(path.substr(0, path.find('?')) == "/v1/models");  // Anthropic adds ?limit=1000
    }
  }
}

TEST_CASE("keel models: the list is cached under $KEEL_HOME for 24 hours", "[e2e][providers][models]") {
  TempDir dir{"keel-e2e"};
  MockServer server(dir.path(), "", true, "qwen2.5-coder:7b");
  Home home(provider_config(server.port(), kOverrides));
  fs::path cache = home.home / "cache" / "models-mock-chat.json";

  auto first = models_json(models(home, {"--provider", "mock-chat", "--json"}));
  CHECK(str(first, "source") == "endpoint");
  REQUIRE(fs::is_regular_file(cache));
  CHECK(models_gets(server) == 1);
  auto cached = json::parse(read_file(cache)).as_object();
  CHECK(str(cached, "provider") == "mock-chat");
  CHECK(num(cached, "fetched_at") == num(first, "fetched_at"));
  // The preset of qwen2.5-coder (the name without the Ollama tag).
  auto* qwen = find_model(first, "qwen2.5-coder:7b");
  REQUIRE(qwen);
  CHECK(num(*qwen, "context_window") == 32768);

  SECTION("a fresh cache is used without asking the server") {
    auto again = models_json(models(home, {"--provider", "mock-chat", "--json"}));
    CHECK(str(again, "source") == "cache");
    CHECK(models_gets(server) == 1);
    CHECK(find_model(again, "qwen2.5-coder:7b"));
    // Overrides apply to cached lists too.
    CHECK(num(*find_model(again, "my-local-model"), "context_window") == 32768);
  }
  SECTION("a cache older than 24 hours is refreshed") {
    auto old = num(cached, "fetched_at") - 25 * 3600;
    cached["fetched_at"] = old;
    write_file(cache, json::serialize(cached));
    auto again = models_json(models(home, {"--provider", "mock-chat", "--json"}));
    CHECK(str(again, "source") == "endpoint");
    CHECK(models_gets(server) == 2);
    CHECK(num(json::parse(read_file(cache)).as_object(), "fetched_at") > old);
  }
  SECTION("`refresh` asks the server even when the cache is fresh") {
    auto again = models_json(models(home, {"--provider", "mock-chat", "--json", "refresh"}));
    CHECK(str(again, "source") == "endpoint");
    CHECK(models_gets(server) == 2);
  }
  SECTION("another base_url does not use this cache") {
    auto r = models(home, {"--provider", "mock-chat", "--json", "-c",
                           "model_providers.mock-chat.base_url=\"" + server.url() + "/v1/\""});
    CHECK(str(models_json(r), "source") == "endpoint");
    CHECK(models_gets(server) == 2);
  }
  SECTION("a stale cache is shown, with a warning, when the server is down") {
    cached["fetched_at"] = num(cached, "fetched_at") - 25 * 3600;
    write_file(cache, json::serialize(cached));
    server.stop();
    auto r = models(home, {"--provider", "mock-chat", "--json"});
    auto listing = models_json(r);
    CHECK(str(listing, "source") == "stale cache");
    CHECK(contains(r.err, "could not refresh"));
    CHECK(find_model(listing, "qwen2.5-coder:7b"));
  }
  SECTION("each provider has its own cache file") {
    models_json(models(home, {"--provider", "mock-anthropic", "--json"}));
    CHECK(fs::is_regular_file(home.home / "cache" / "models-mock-anthropic.json"));
    CHECK(models_gets(server) == 2);
  }
}

TEST_CASE("keel models: errors and the text table", "[e2e][providers][models]") {
  TempDir dir{"keel-e2e"};
  MockServer server(dir.path(), "", true, "gpt-5-codex");
  Home home(provider_config(server.port(), kOverrides) + "\n[model_providers.nowhere]\nbase_url = \"http://127.0.0.1:1/v1\"\n"
                                                         "wire_api = \"chat\"\nconnect_timeout_ms = 2000\n");

  SECTION("text output: one row per model, the configured one marked") {
    auto r = models(home, {"--provider", "mock-responses", "-m", "gpt-5-codex"});
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    CHECK(contains(r.out, "provider mock-responses (openai-responses, " + server.url() + "/v1)"));
    CHECK(contains(r.out, "MODEL"));
    CHECK(contains(r.out, "CONTEXT"));
    CHECK(contains(r.out, "REASONING"));
    CHECK(contains(r.out, "* gpt-5-codex"));
    CHECK(contains(r.out, "200000"));
    CHECK(contains(r.out, "my-local-model"));
  }
  SECTION("an unreachable server with no cache fails with the reason") {
    auto r = models(home, {"--provider", "nowhere"});
    INFO(r.describe());
    CHECK(r.exit_code == 1);
    CHECK(contains(r.err, "cannot list the models of provider 'nowhere'"));
    CHECK_FALSE(fs::exists(home.home / "cache" / "models-nowhere.json"));
  }
  SECTION("an unknown provider is a configuration error") {
    auto r = models(home, {"--provider", "no-such-provider"});
    CHECK(r.exit_code == 2);
    CHECK(contains(r.err, "unknown model provider 'no-such-provider'"));
  }
  SECTION("the replay provider has no endpoint: the configured model is shown") {
    auto r = models(home, {"--provider", "replay", "-m", "my-local-model", "--json"});
    auto listing = models_json(r);
    CHECK(str(listing, "source") == "config");
    auto* m = find_model(listing, "my-local-model");
    REQUIRE(m);
    CHECK(num(*m, "context_window") == 32768);
  }
}

// The launcher itself: passes once tools/keel/main.cpp dispatches `models` to run_models.
TEST_CASE("keel models through the keel launcher", "[e2e][providers][models]") {
  TempDir dir{"keel-e2e"};
  MockServer server(dir.path(), "", true, "gpt-5-codex");
  Home home(provider_config(server.port(), kOverrides));
  auto r = models(home, {"--provider", "mock-chat", "--json"}, kKeelExe);
  auto listing = models_json(r);
  CHECK(str(listing, "provider") == "mock-chat");
  CHECK(find_model(listing, "gpt-5-codex"));
}
