// keel::sdk::sandbox (sdk/include/keel/sdk/sandbox.hpp) against a scripted host: what it
// sends, how it reads good and bad replies, and how it stops waiting (timeout, cancellation)
// without being hurt by a reply that comes afterwards.
#include <keel/sdk/sandbox.hpp>

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace json = boost::json;
namespace sb = keel::sdk::sandbox;
using namespace std::chrono_literals;

namespace {

// The host side: records each request and answers it as the test says, now, later or never.
struct ScriptedHost {
  struct Sent {
    std::string topic;
    json::object payload;
    keel_reply_fn reply = nullptr;
    void* user = nullptr;
  };
  std::mutex mu;
  std::vector<Sent> sent;
  std::vector<std::uint64_t> cancelled;
  // nullopt: keep the request pending (the test may answer it later with answer_pending()).
  std::function<std::optional<std::pair<int, std::string>>(const std::string& topic, const json::object&)> respond;

  keel_host_api api{};
  static ScriptedHost* self(keel_host* h) { return reinterpret_cast<ScriptedHost*>(h); }

  ScriptedHost() {
    api.abi_major = KEEL_ABI_MAJOR;
    api.abi_minor = KEEL_ABI_MINOR;
    api.struct_size = sizeof(keel_host_api);
    api.log = [](keel_host*, int, keel_str) {};
    api.request = [](keel_host* h, keel_str topic, keel_str payload, keel_emit_fn, keel_reply_fn reply,
                     void* user) -> std::uint64_t {
      auto* s = self(h);
      std::string t(topic.ptr, topic.len);
      auto body = json::parse(std::string_view(payload.ptr, payload.len)).as_object();
      std::optional<std::pair<int, std::string>> answer;
      std::uint64_t id;
      {
        std::lock_guard lock(s->mu);
        s->sent.push_back({t, body, reply, user});
        id = s->sent.size();
      }
      if (s->respond) answer = s->respond(t, body);
      if (answer) reply(user, answer->first, keel_str{answer->second.data(), answer->second.size()});
      return id;
    };
    api.cancel = [](keel_host* h, std::uint64_t id) {
      std::lock_guard lock(self(h)->mu);
      self(h)->cancelled.push_back(id);
    };
  }
  keel_host* handle() { return reinterpret_cast<keel_host*>(this); }

  // Answers the oldest request the script left pending.
  void answer_pending(int status, const std::string& body) {
    Sent s;
    {
      std::lock_guard lock(mu);
      s = sent.back();
    }
    s.reply(s.user, status, keel_str{body.data(), body.size()});
  }
};

sb::Command command() {
  return sb::Command{{"touch", "x"}, "/ws", "/ws/sub", {{"TMPDIR", "/tmp/t"}},
                     json::object{{"mode", "workspace-write"}}};
}

}  // namespace

TEST_CASE("sdk sandbox: policy_of asks for a sandbox unless none or full access is requested", "[sdk][sandbox]") {
  CHECK(sb::policy_of(json::object{}) == nullptr);
  CHECK(sb::policy_of(json::object{{"sandbox", "x"}}) == nullptr);
  CHECK(sb::policy_of(json::object{{"sandbox", {{"mode", "danger-full-access"}}}}) == nullptr);
  json::object r{{"sandbox", {{"mode", "read-only"}}}};
  REQUIRE(sb::policy_of(r) != nullptr);
  CHECK(sb::policy_of(r)->at("mode").as_string() == "read-only");
}

TEST_CASE("sdk sandbox: prepare sends the command and reads the wrapped one", "[sdk][sandbox]") {
  ScriptedHost h;
  h.respond = [](const std::string&, const json::object&) -> std::optional<std::pair<int, std::string>> {
    return std::pair{KEEL_OK, std::string(R"({"argv":["bwrap","--","touch","x"],"env":{"A":"1"},"sandbox":"bwrap"})")};
  };
  keel::sdk::Host host(&h.api, h.handle());
  auto p = sb::prepare(host, command());
  REQUIRE(p);
  CHECK(p.argv == std::vector<std::string>{"bwrap", "--", "touch", "x"});
  CHECK(p.env.at("A") == "1");
  CHECK(p.sandbox == "bwrap");
  REQUIRE(h.sent.size() == 1);
  CHECK(h.sent[0].topic == "sandbox.prepare");
  auto& sent = h.sent[0].payload;
  CHECK(sent.at("argv") == json::array{"touch", "x"});
  CHECK(sent.at("cwd") == "/ws");
  CHECK(sent.at("workdir") == "/ws/sub");
  CHECK(sent.at("env").at("TMPDIR") == "/tmp/t");
  CHECK(sent.at("policy").at("mode") == "workspace-write");
}

TEST_CASE("sdk sandbox: refusals and malformed replies never yield a command to run", "[sdk][sandbox]") {
  std::string reply_body;
  int reply_status = KEEL_OK;
  ScriptedHost h;
  h.respond = [&](const std::string&, const json::object&) -> std::optional<std::pair<int, std::string>> {
    return std::pair{reply_status, reply_body};
  };
  keel::sdk::Host host(&h.api, h.handle());
  SECTION("the sandbox refuses, with its message") {
    reply_status = KEEL_ERR_UNAVAILABLE;
    reply_body = R"({"error":{"message":"the bwrap sandbox cannot run here: no userns"}})";
    auto p = sb::prepare(host, command());
    CHECK_FALSE(p);
    CHECK(p.status == KEEL_ERR_UNAVAILABLE);
    CHECK(p.error == "the bwrap sandbox cannot run here: no userns");
    CHECK(p.argv.empty());
  }
  SECTION("an error without a message") {
    reply_status = KEEL_ERR_INTERNAL;
    reply_body = "not json";
    auto p = sb::prepare(host, command());
    CHECK_FALSE(p);
    CHECK(p.error.find("failed with status") != std::string::npos);
  }
  for (std::string bad : {R"({})", R"({"argv":[]})", R"({"argv":["", "x"]})", R"({"argv":["bwrap", 3]})", "[1]"}) {
    DYNAMIC_SECTION("ok but malformed: " << bad) {
      reply_body = bad;
      auto p = sb::prepare(host, command());
      CHECK_FALSE(p);
      CHECK(p.status == KEEL_ERR_INTERNAL);
      CHECK(p.argv.empty());
    }
  }
}

TEST_CASE("sdk sandbox: a silent sandbox times out and its request is cancelled", "[sdk][sandbox]") {
  ScriptedHost h;
  h.respond = [](const std::string&, const json::object&) { return std::optional<std::pair<int, std::string>>{}; };
  keel::sdk::Host host(&h.api, h.handle());
  auto started = std::chrono::steady_clock::now();
  auto p = sb::prepare(host, command(), sb::Wait{150ms, {}});
  auto waited = std::chrono::steady_clock::now() - started;
  CHECK_FALSE(p);
  CHECK(p.status == KEEL_ERR_TIMEOUT);
  CHECK(p.error.find("did not answer") != std::string::npos);
  CHECK(waited >= 150ms);
  REQUIRE(h.cancelled == std::vector<std::uint64_t>{1});
  // The sandbox answers after all: nothing is left waiting for that reply, nothing breaks.
  h.answer_pending(KEEL_OK, R"({"argv":["late"]})");
}

TEST_CASE("sdk sandbox: cancellation of the tool call stops the wait", "[sdk][sandbox]") {
  ScriptedHost h;
  h.respond = [](const std::string&, const json::object&) { return std::optional<std::pair<int, std::string>>{}; };
  keel::sdk::Host host(&h.api, h.handle());
  std::atomic<bool> stop{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(100ms);
    stop = true;
  });
  auto started = std::chrono::steady_clock::now();
  auto p = sb::prepare(host, command(), sb::Wait{10s, [&] { return stop.load(); }});
  canceller.join();
  CHECK(std::chrono::steady_clock::now() - started < 2s);
  CHECK(p.status == KEEL_ERR_CANCELLED);
  CHECK_FALSE(p);
  CHECK(h.cancelled.size() == 1);
  h.answer_pending(KEEL_OK, R"({"argv":["late"]})");
}

TEST_CASE("sdk sandbox: a reply from another thread ends the wait", "[sdk][sandbox]") {
  ScriptedHost h;
  h.respond = [](const std::string&, const json::object&) { return std::optional<std::pair<int, std::string>>{}; };
  keel::sdk::Host host(&h.api, h.handle());
  std::thread replier([&] {
    for (;;) {
      {
        std::lock_guard lock(h.mu);
        if (!h.sent.empty()) break;
      }
      std::this_thread::sleep_for(1ms);
    }
    std::this_thread::sleep_for(20ms);
    h.answer_pending(KEEL_OK, R"({"argv":["landlock-exec","--","touch","x"],"sandbox":"landlock"})");
  });
  auto p = sb::prepare(host, command(), sb::Wait{10s, {}});
  replier.join();
  REQUIRE(p);
  CHECK(p.sandbox == "landlock");
  CHECK(h.cancelled.empty());
}

TEST_CASE("sdk sandbox: explain reports a block only when the sandbox says so", "[sdk][sandbox]") {
  std::string reply_body;
  int reply_status = KEEL_OK;
  ScriptedHost h;
  h.respond = [&](const std::string&, const json::object&) -> std::optional<std::pair<int, std::string>> {
    return std::pair{reply_status, reply_body};
  };
  keel::sdk::Host host(&h.api, h.handle());
  reply_body = R"({"blocked":true,"reason":"blocked by the bwrap sandbox: /etc is read-only"})";
  auto e = sb::explain(host, command(), 1, "touch: cannot touch '/etc/x': Read-only file system\xff");
  CHECK(e.blocked);
  CHECK(e.reason == "blocked by the bwrap sandbox: /etc is read-only");
  auto& sent = h.sent.back().payload;
  CHECK(h.sent.back().topic == "sandbox.explain");
  CHECK(sent.at("exit_code") == 1);
  CHECK(json::serialize(sent).find("Read-only file system") != std::string::npos);  // invalid UTF-8 sanitized, still valid JSON

  for (auto [status, body] : std::vector<std::pair<int, std::string>>{{KEEL_OK, R"({"blocked":false,"reason":""})"},
                                                                      {KEEL_OK, R"({"blocked":true})"},
                                                                      {KEEL_ERR_INTERNAL, R"({"blocked":true,"reason":"x"})"},
                                                                      {KEEL_OK, "garbage"}}) {
    reply_status = status;
    reply_body = body;
    INFO(body);
    CHECK_FALSE(sb::explain(host, command(), 1, "x").blocked);
  }
}
