// Shared provider code: configuration, retry timing, error mapping, and the HTTP client's
// behaviour on real loopback connections (non-2xx bodies, idle timeout, cancellation).
#include "provider_test_support.hpp"

#include <keel/abi.h>
#include <keel/common/http_client.hpp>
#include <keel/providers/config.hpp>
#include <keel/providers/errors.hpp>
#include <keel/providers/models.hpp>
#include <keel/providers/retry.hpp>

#include <catch2/catch.hpp>

#include <thread>

using namespace keel::test;
using namespace keel::providers;
using keel::common::HttpError;
using keel::common::HttpRequest;
using keel::common::HttpResponse;
using keel::testing::MockModelServer;

TEST_CASE("config: defaults and Codex-compatible fields") {
  ProviderDefaults d{"OpenAI", "https://api.openai.com/v1", "responses"};
  auto c = parse_module_config(parse_obj(R"({"model": "gpt-5"})"), d);
  CHECK(c.base_url == "https://api.openai.com/v1");
  CHECK(c.model == "gpt-5");
  CHECK(c.request_max_retries == 4);
  CHECK(c.stream_max_retries == 5);
  CHECK(c.stream_idle_timeout_ms == 300000);
  CHECK(c.env_key.empty());

  c = parse_module_config(parse_obj(R"({"model": "qwen2.5-coder:7b", "provider": {
        "name": "Ollama", "base_url": "http://localhost:11434/v1/", "wire_api": "chat",
        "env_key": "OLLAMA_API_KEY", "http_headers": {"X-Team": "core"},
        "query_params": {"api-version": "2025-04-01"}, "request_max_retries": 2,
        "stream_max_retries": 3, "stream_idle_timeout_ms": 1000, "retry_base_delay_ms": 5}})"),
                          d);
  CHECK(c.name == "Ollama");
  CHECK(c.base_url == "http://localhost:11434/v1");
  CHECK(c.wire_api == "chat");
  CHECK(c.env_key == "OLLAMA_API_KEY");
  REQUIRE(c.http_headers.size() == 1);
  CHECK(c.http_headers[0].first == "X-Team");
  CHECK(c.query_params.at(0).second == "2025-04-01");
  CHECK(c.request_max_retries == 2);
  CHECK(c.stream_max_retries == 3);
  CHECK(c.stream_idle_timeout_ms == 1000);
  CHECK(c.retry_base_delay_ms == 5);
  CHECK(c.model == "qwen2.5-coder:7b");

  CHECK_THROWS_WITH(parse_module_config(parse_obj(R"({"provider": {"request_max_retries": "many"}})"), d),
                    Catch::Contains("request_max_retries"));
  CHECK_THROWS_WITH(parse_module_config(parse_obj(R"({"provider": {"id": "x", "stream_max_retries": -1}})"), d),
                    Catch::Contains("model_providers.x.stream_max_retries"));
  CHECK_THROWS_WITH(parse_module_config(parse_obj(R"({"provider": {"http_headers": {"A": [1]}}})"), d),
                    Catch::Contains("http_headers.A"));
}

TEST_CASE("config: API key resolution never shows the key") {
  ProviderConfig c;
  c.id = "openai";
  c.env_key = "KEEL_TEST_KEY_RESOLVE";
  ::unsetenv("KEEL_TEST_KEY_RESOLVE");
  try {
    resolve_api_key(c);
    FAIL("expected an error");
  } catch (const ProviderError& e) {
    CHECK(e.code == "unauthorized");
    CHECK_THAT(std::string(e.what()), Catch::Contains("KEEL_TEST_KEY_RESOLVE"));
    CHECK_THAT(std::string(e.what()), Catch::Contains("'openai'"));
  }
  set_env("KEEL_TEST_KEY_RESOLVE", "sk-shh");
  auto key = resolve_api_key(c);
  CHECK(key.value == "sk-shh");
  CHECK_THAT(key.source, Catch::Contains("KEEL_TEST_KEY_RESOLVE"));
  CHECK_THAT(key.source, !Catch::Contains("sk-shh"));

  ProviderConfig none;
  CHECK(resolve_api_key(none).value.empty());
}

TEST_CASE("retry: server-suggested delays") {
  HttpResponse r;
  r.headers = {{"Retry-After", "3"}};
  CHECK(retry_after_from_headers(r) == 3000);
  r.headers = {{"retry-after", "1.5"}};
  CHECK(retry_after_from_headers(r) == 1500);
  r.headers = {{"retry-after-ms", "250"}, {"Retry-After", "9"}};
  CHECK(retry_after_from_headers(r) == 250);
  r.headers = {{"Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"}};  // in the past
  CHECK(retry_after_from_headers(r) == 0);
  r.headers = {};
  CHECK_FALSE(retry_after_from_headers(r));

  CHECK(retry_after_from_message("Rate limit reached. Please try again in 1.5s. Visit ...") == 1500);
  CHECK(retry_after_from_message("please try again in 20ms") == 20);
  CHECK(retry_after_from_message("Try again in 6m0s.") == 360000);
  CHECK(retry_after_from_message("try again in 2 seconds") == 2000);
  CHECK(retry_after_from_message("try again in 1 second") == 1000);
  CHECK(retry_after_from_message("try again in 0.001s") == 1);
  CHECK_FALSE(retry_after_from_message("try again later"));
  CHECK_FALSE(retry_after_from_message("no hint here"));
}

TEST_CASE("retry: exponential backoff with jitter, capped") {
  for (int i = 0; i < 50; ++i) {
    auto d1 = backoff_delay_ms(1, 200, 20000);
    CHECK(d1 >= 180);
    CHECK(d1 <= 220);
    auto d3 = backoff_delay_ms(3, 200, 20000);
    CHECK(d3 >= 720);
    CHECK(d3 <= 880);
    auto d20 = backoff_delay_ms(20, 200, 20000);
    CHECK(d20 <= 22000);
    CHECK(d20 >= 18000);
  }
}

TEST_CASE("errors: HTTP responses map onto the protocol's codes") {
  ProviderConfig c;
  c.name = "Test";
  c.id = "test";
  ApiKey key{"secret", "the environment variable TEST_KEY (env_key of model provider 'test')"};
  auto classify = [&](int status, std::string body, keel::common::HttpHeaders h = {}) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    r.headers = std::move(h);
    return classify_http_error(r, c, key, "http://x/v1/responses");
  };
  auto e = classify(401, R"({"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}})");
  CHECK(e.code == "unauthorized");
  CHECK(e.retry == RetryKind::none);
  CHECK_THAT(std::string(e.what()), Catch::Contains("TEST_KEY"));
  CHECK_THAT(std::string(e.what()), !Catch::Contains("secret"));
  CHECK(classify(403, "forbidden").code == "unauthorized");
  CHECK(classify(400, R"({"error":{"message":"x","code":"context_length_exceeded"}})").code ==
        "context_window_exceeded");
  CHECK(classify(400, R"({"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 1 > 0"}})")
            .code == "context_window_exceeded");
  CHECK(classify(400, R"({"error":{"code":400,"message":"the request exceeds the available context size","type":"exceed_context_size_error"}})")
            .code == "context_window_exceeded");
  CHECK(classify(429, R"({"error":{"message":"quota","type":"insufficient_quota","code":"insufficient_quota"}})").code ==
        "quota_exceeded");
  auto rl = classify(429, R"({"error":{"message":"Slow down. Please try again in 2s."}})");
  CHECK(rl.code == "rate_limited");
  CHECK(rl.retry == RetryKind::request);
  CHECK(rl.retry_after_ms == 2000);
  CHECK(classify(429, "{}", {{"Retry-After", "7"}}).retry_after_ms == 7000);
  auto s = classify(503, "<html>Service Unavailable</html>");
  CHECK(s.code == "server_error");
  CHECK(s.retry == RetryKind::request);
  CHECK(s.reason == "HTTP 503");
  CHECK(classify(529, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})").retry ==
        RetryKind::request);
  auto nf = classify(404, R"({"error":"model 'nope' not found"})");
  CHECK(nf.code == "bad_request");
  CHECK_THAT(std::string(nf.what()), Catch::Contains("model 'nope' not found"));
  CHECK_THAT(std::string(nf.what()), Catch::Contains("base_url"));
  CHECK(status_for_code("context_window_exceeded") == KEEL_ERR_INVALID_ARGUMENT);
  CHECK(status_for_code("cancelled") == KEEL_ERR_CANCELLED);
}

TEST_CASE("models: presets for well-known models") {
  auto p = model_preset("gpt-5-codex");
  REQUIRE(p);
  CHECK(p->at("context_window").as_int64() == 272000);
  CHECK(model_preset("openai/gpt-4.1-mini")->at("context_window").as_int64() == 1047576);
  CHECK_FALSE(model_preset("some-local-model"));
}

TEST_CASE("url joining") {
  CHECK(join_url("http://h/v1", "responses") == "http://h/v1/responses");
  CHECK(join_url("http://h/v1/", "/responses") == "http://h/v1/responses");
  CHECK(keel::common::build_url("http://h/v1/x", {{"a b", "c&d"}}) == "http://h/v1/x?a%20b=c%26d");
  CHECK_THROWS_AS(keel::common::build_url("ftp://h/x", {}), HttpError);
  CHECK_THROWS_AS(keel::common::build_url("not a url", {}), HttpError);
}

TEST_CASE("http: non-2xx bodies come back whole; 2xx bodies stream in chunks") {
  MockModelServer server;
  server.add_script(R"({"fault": {"type": "http", "status": 418, "message": "I am a teapot"}})");
  HttpRequest req;
  req.url = server.url() + "/v1/chat/completions";
  req.body = R"({"model":"m"})";
  std::size_t chunks = 0;
  auto r = keel::common::http_stream(req, [&](std::string_view) {
    ++chunks;
    return true;
  });
  CHECK(r.status == 418);
  CHECK(chunks == 0);
  CHECK_THAT(r.body, Catch::Contains("I am a teapot"));
  CHECK(r.header("content-type") == "application/json");

  server.add_script(R"({"text": "streaming in many small writes", "chunk_size": 2, "chunk_delay_ms": 5})");
  std::string body;
  r = keel::common::http_stream(req, [&](std::string_view c) {
    ++chunks;
    body += c;
    return true;
  });
  CHECK(r.status == 200);
  CHECK(chunks > 5);  // delivered as it arrived, not at the end
  CHECK_THAT(body, Catch::Contains("data: [DONE]"));
}

TEST_CASE("http: idle timeout, refused connection, cancellation") {
  MockModelServer server;
  HttpRequest req;
  req.url = server.url() + "/v1/responses";
  req.body = "{}";
  req.idle_timeout = std::chrono::milliseconds(200);

  server.add_script(R"({"text": "x", "fault": {"type": "stall", "stall_ms": 5000}})");
  Stopwatch sw;
  try {
    keel::common::http_stream(req, [](std::string_view) { return true; });
    FAIL("expected a timeout");
  } catch (const HttpError& e) {
    CHECK(e.kind() == HttpError::Kind::timeout);
    CHECK(e.phase() == HttpError::Phase::body);
  }
  CHECK(sw.ms() < 2000);

  // Cancellation while blocked in a read: the watcher shuts the socket down.
  server.add_script(R"({"text": "x", "fault": {"type": "stall", "stall_ms": 5000}})");
  req.idle_timeout = std::chrono::milliseconds(10000);
  std::atomic<bool> cancel{false};
  req.cancelled = [&] { return cancel.load(); };
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    cancel = true;
  });
  Stopwatch sw2;
  try {
    keel::common::http_stream(req, [](std::string_view) { return true; });
    FAIL("expected cancellation");
  } catch (const HttpError& e) {
    CHECK(e.kind() == HttpError::Kind::cancelled);
  }
  t.join();
  CHECK(sw2.ms() < 1000);

  req.cancelled = {};
  server.stop();
  try {
    keel::common::http_stream(req, [](std::string_view) { return true; });
    FAIL("expected a connection error");
  } catch (const HttpError& e) {
    CHECK(e.kind() == HttpError::Kind::connect);
    CHECK_THAT(std::string(e.what()), Catch::Contains("could not connect"));
  }
}

TEST_CASE("http: a GET for JSON") {
  MockModelServer server;
  HttpRequest req;
  req.method = "GET";
  req.url = server.url() + "/v1/models";
  auto r = keel::common::http_fetch(req);
  CHECK(r.status == 200);
  CHECK(bj::parse(r.body).at("data").at(0).at("id").as_string() == "mock-model");
}
