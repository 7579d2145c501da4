// Round-trip harness overhead per tool call in a full session (target ≤ 5 ms per call,
// excluding the command's own run time), against the loopback mock model server:
//
//   the mock server (in-process, tests/mock-model-server) is scripted with 50 responses that
//   each call one trivial tool, then a final answer; a real Kernel (temporary KEEL_HOME with
//   the signed first-party modules) runs ONE turn through the embedding API with provider
//   `openai-responses` pointed at the server, so the turn makes 51 model requests and 50 tool
//   calls, each through policy check, dispatch, history, events and the rollout.
//
//   overhead per call = (turn wall time − model time − tool run time) / 50
//
// Model time: every provider request of the turn goes through a timing relay on the bus (the
// provider entry names the relay as its module; the relay forwards to the real
// openai-responses module), so it is the whole provider round trip as the kernel sees it —
// mock server, loopback HTTP and the provider module's SSE parsing. The "gross" rows subtract
// only the tool run time, so they include all of that too. Tool run time: update_plan's is
// part of the overhead (it is a few µs, see `dispatch`); for `shell` `true` it is the median of
// running `true` with keel_process, measured just before.
#include "bench_kernel.hpp"

#include <keel/common/process.hpp>
#include <keel/testing/mock_model_server.hpp>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <mutex>

namespace keel::bench {

namespace {

namespace json = boost::json;

constexpr int kCalls = 50;
constexpr int kRuns = 5;

struct Variant {
  std::string label;
  std::string tool;
  json::object arguments;
  std::vector<std::string> overrides;
  double tool_ms = 0;  // the command's own run time, per call
};

struct TurnTiming {
  double wall_ms = 0, model_ms = 0;
  int model_requests = 0;
};

class TimedProvider {
 public:
  // Serves "provider.<relay>" on the bus, forwarding every method to "provider.<target>".
  TimedProvider(Bus& bus, const std::string& relay, const std::string& target)
      : bus_(bus), name_(ModuleHost::server_name(KEEL_CAP_PROVIDER, relay)),
        target_(ModuleHost::server_name(KEEL_CAP_PROVIDER, target)) {
    bus_.serve(name_, [this](const RequestPtr& req) {
      auto start = Clock::now();
      RequestPtr fwd = req;
      bus_.request(
          target_ + "." + req->method(), req->payload(), [fwd](std::string_view ev) { fwd->emit(ev); },
          [this, fwd, start](int status, std::string_view body) {
            {
              std::lock_guard lock(mu_);
              total_ms_ += ms_since(start);
              ++requests_;
            }
            fwd->reply(status, body);
          });
    });
  }
  ~TimedProvider() { bus_.unserve(name_); }
  void reset() {
    std::lock_guard lock(mu_);
    total_ms_ = 0;
    requests_ = 0;
  }
  std::pair<double, int> totals() {
    std::lock_guard lock(mu_);
    return {total_ms_, requests_};
  }

 private:
  Bus& bus_;
  std::string name_, target_;
  std::mutex mu_;
  double total_ms_ = 0;
  int requests_ = 0;
};

std::size_t count_outputs(Kernel& k, const std::string& session) {
  std::size_t n = 0;
  for (auto& v : k.history(session))
    if (v.is_object())
      if (auto* t = v.as_object().if_contains("type"); t && t->is_string() && t->as_string() == "function_call_output")
        ++n;
  return n;
}

void run_variant(const Variant& v) {
  testing::MockModelServer server;
  BenchHome h("harness");
  const std::string url = server.url() + "/v1";
  std::vector<std::string> overrides{
      "model_provider=\"bench\"",
      "model=\"mock-model\"",
      "model_providers.bench.name=\"Bench (mock server)\"",
      "model_providers.bench.base_url=" + toml_string(url),
      "model_providers.bench.wire_api=\"responses\"",
      "model_providers.bench.module=\"bench-timed\"",  // the timing relay below
      // The real module is not the configured one, so it gets its own settings here.
      "modules.openai-responses.base_url=" + toml_string(url),
      "sandbox_mode=\"danger-full-access\"",
      "approval_policy=\"never\"",
  };
  overrides.insert(overrides.end(), v.overrides.begin(), v.overrides.end());
  Kernel k(h.config(overrides));
  require_module(k, "openai-responses");
  TimedProvider relay(k.bus(), "bench-timed", "openai-responses");
  // Like a front end would: something subscribed to the session's events.
  std::atomic<std::uint64_t> events{0};
  auto sub = k.subscribe("event", [&events](const Event&) { events.fetch_add(1, std::memory_order_relaxed); });

  std::vector<double> net, gross, model_per_request;
  for (int run = -1; run < kRuns; ++run) {  // run -1 warms up
    for (int i = 0; i < kCalls; ++i) {
      json::object call{{"name", v.tool},
                        {"call_id", "call_" + std::to_string(run + 1) + "_" + std::to_string(i)},
                        {"arguments", v.arguments}};
      server.add_response(json::object{{"tool_calls", json::array{call}}});
    }
    server.add_response(json::object{{"text", "done"}});
    relay.reset();
    auto session = k.start_session();
    auto start = Clock::now();
    auto result = k.submit(session, "Run the tool " + std::to_string(kCalls) + " times.").get();
    double wall = ms_since(start);
    auto [model_ms, requests] = relay.totals();
    auto outputs = count_outputs(k, session);
    if (!result.ok() || outputs != kCalls || requests != kCalls + 1 || server.pending() != 0)
      throw std::runtime_error(v.label + ": the turn did not go as scripted (status " + result.status + ", " +
                               result.error + "; " + std::to_string(outputs) + " tool outputs, " +
                               std::to_string(requests) + " model requests, " + std::to_string(server.pending()) +
                               " responses left)");
    if (run < 0) continue;
    net.push_back((wall - model_ms - kCalls * v.tool_ms) / kCalls);
    gross.push_back((wall - kCalls * v.tool_ms) / kCalls);
    model_per_request.push_back(model_ms / requests);
  }
  k.unsubscribe(sub);
  print({"harness per call, " + v.label + " (excl. model)", stats(net).median, "ms", "<= 5"});
  print({"  gross per call, " + v.label + " (incl. model)", stats(gross).median, "ms", "<= 5"});
  print({"  model round trip per request, " + v.label, stats(model_per_request).median, "ms", ""});
}

}  // namespace

void harness() {
  try {
    // The command's own run time: `true` spawned with keel_process, as the shell tool does.
    common::ProcessOptions p;
    p.argv = {"true"};
    for (int i = 0; i < 5; ++i) common::run_process(p);
    double true_ms = median_ms(51, [&] { common::run_process(p); });

    json::object plan{{"plan", json::array{json::object{{"step", "measure"}, {"status", "in_progress"}}}}};
    json::object truth{{"command", json::array{"true"}}};
    run_variant({"update_plan, rollout (jsonl)", "update_plan", plan, {}, 0});
    run_variant({"update_plan, no rollout", "update_plan", plan, {"memory=\"off\""}, 0});
    run_variant({"shell `true`, rollout (jsonl)", "shell", truth, {}, true_ms});
    print({"  (`true` own run time, subtracted per shell call)", true_ms, "ms", ""});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "keel-bench harness: %s\n", e.what());
    note(std::string("harness not measured: ") + e.what());
  }
}

}  // namespace keel::bench
