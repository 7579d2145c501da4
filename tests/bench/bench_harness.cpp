// Round-trip harness overhead per tool call in a full session (target ≤ 5 ms per call,
// excluding the command's own run time), against the loopback mock model server:
//
//   the mock server (in-process, tests/mock-model-server) is scripted with 50 responses that
//   each call one trivial tool, then a final answer; a real Kernel (temporary KEEL_HOME with
//   the signed first-party modules) runs ONE turn through the embedding API with provider
//   `openai-responses` pointed at the server, so the turn makes 51 model requests and 50 tool
//   calls, each through policy check, dispatch, history, events and the rollout.
//
//   overhead per call = (turn wall time − model time − tool time) / 50
//
// Both are measured by timing relays on the bus: the provider entry names "bench-timed" as its
// module, a relay serving it forwards to the real openai-responses module; the model calls
// the tool "bench_<tool>", a relay serving it forwards to the real tool. Model time is thus
// the whole provider round trip as the kernel sees it (mock server, loopback HTTP, the
// provider module's SSE parsing); the "gross" rows keep it in. Tool time is the tool call as
// the kernel sees it (for `shell` `true`: the spawn and wait of `true`, which is the
// command's own run time). The brief's alternative — subtracting a baseline of `true` run
// with keel_process — is printed too. Variants: update_plan and shell `true`, each with the
// rollout recorded by memory-jsonl (the default) and without a rollout (memory = "off").
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
constexpr int kRuns = 7;

struct Variant {
  std::string label;
  std::string tool;
  json::object arguments;
  std::vector<std::string> overrides;
};

// Serves `name` on the bus, forwarding every method to `target` and timing each round trip.
class TimedRelay {
 public:
  TimedRelay(Bus& bus, std::string name, std::string target)
      : bus_(bus), name_(std::move(name)), target_(std::move(target)) {
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
  ~TimedRelay() { bus_.unserve(name_); }
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

void run_variant(const Variant& v, double baseline_ms) {
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
  // The model's requests go to provider "bench-timed", relayed to openai-responses; its tool
  // calls go to tool "bench_<tool>", relayed to the real tool — both timed.
  TimedRelay model(k.bus(), ModuleHost::server_name(KEEL_CAP_PROVIDER, "bench-timed"),
                   ModuleHost::server_name(KEEL_CAP_PROVIDER, "openai-responses"));
  const std::string relayed_tool = "bench_" + v.tool;
  TimedRelay tool(k.bus(), ModuleHost::server_name(KEEL_CAP_TOOL, relayed_tool),
                  ModuleHost::server_name(KEEL_CAP_TOOL, v.tool));
  // Like a front end would: something subscribed to the session's events.
  std::atomic<std::uint64_t> events{0};
  auto sub = k.subscribe("event", [&events](const Event&) { events.fetch_add(1, std::memory_order_relaxed); });

  std::vector<double> net, gross, model_per_request, tool_per_call, net_baseline;
  for (int run = -1; run < kRuns; ++run) {  // run -1 warms up
    for (int i = 0; i < kCalls; ++i) {
      json::object tool_call{{"name", relayed_tool},
                             {"call_id", "call_" + std::to_string(run + 1) + "_" + std::to_string(i)},
                             {"arguments", v.arguments}};
      server.add_response(json::object{{"tool_calls", json::array{tool_call}}});
    }
    server.add_response(json::object{{"text", "done"}});
    model.reset();
    tool.reset();
    auto session = k.start_session();
    auto start = Clock::now();
    auto result = k.submit(session, "Run the tool " + std::to_string(kCalls) + " times.").get();
    double wall = ms_since(start);
    auto [model_ms, requests] = model.totals();
    auto [tool_ms, calls] = tool.totals();
    auto outputs = count_outputs(k, session);
    if (!result.ok() || outputs != kCalls || requests != kCalls + 1 || calls != kCalls || server.pending() != 0)
      throw std::runtime_error(v.label + ": the turn did not go as scripted (status " + result.status + ", " +
                               result.error + "; " + std::to_string(outputs) + " tool outputs, " +
                               std::to_string(calls) + " tool calls, " + std::to_string(requests) +
                               " model requests, " + std::to_string(server.pending()) + " responses left)");
    if (run < 0) continue;
    net.push_back((wall - model_ms - tool_ms) / kCalls);
    gross.push_back((wall - tool_ms) / kCalls);
    net_baseline.push_back((wall - model_ms - kCalls * baseline_ms) / kCalls);
    model_per_request.push_back(model_ms / requests);
    tool_per_call.push_back(tool_ms / calls);
  }
  // For comparison: the same tool called directly on this kernel's bus, outside a turn.
  const std::string payload = json::serialize(json::object{{"call_id", "call_direct"},
                                                           {"name", v.tool},
                                                           {"arguments", json::serialize(v.arguments)},
                                                           {"cwd", h.work().string()},
                                                           {"session_id", "bench-direct"},
                                                           {"turn_id", "turn_1"},
                                                           {"sandbox", json::object{{"mode", "danger-full-access"}}}});
  const std::string topic = ModuleHost::server_name(KEEL_CAP_TOOL, v.tool) + ".call";
  double direct = median_ms(51, [&] { call(k.bus(), topic, payload); });
  k.unsubscribe(sub);

  print({"harness per call, " + v.label, stats(net).median, "ms", "<= 5"});
  if (baseline_ms > 0)
    print({"  same, minus keel_process `true` baseline, " + v.label, stats(net_baseline).median, "ms", "<= 5"});
  print({"  gross per call (incl. model), " + v.label, stats(gross).median, "ms", ""});
  print({"  model round trip per request, " + v.label, stats(model_per_request).median, "ms", ""});
  print({"  tool time per call in the turn, " + v.label, stats(tool_per_call).median, "ms", ""});
  print({"  tool time, direct bus call, " + v.label, direct, "ms", ""});
}

}  // namespace

void harness() {
  try {
    // The command's own run time: `true` spawned with keel_process, as the shell tool does.
    common::ProcessOptions p;
    p.argv = {"true"};
    for (int i = 0; i < 5; ++i) common::run_process(p);
    double true_ms = median_ms(51, [&] { common::run_process(p); });
    print({"`true` spawned with keel_process (baseline)", true_ms, "ms", ""});

    json::object plan{{"plan", json::array{json::object{{"step", "measure"}, {"status", "in_progress"}}}}};
    json::object truth{{"command", json::array{"true"}}};
    run_variant({"update_plan, rollout", "update_plan", plan, {}}, 0);
    run_variant({"update_plan, no rollout", "update_plan", plan, {"memory=\"off\""}}, 0);
    run_variant({"shell `true`, rollout", "shell", truth, {}}, true_ms);
    run_variant({"shell `true`, no rollout", "shell", truth, {"memory=\"off\""}}, true_ms);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "keel-bench harness: %s\n", e.what());
    note(std::string("harness not measured: ") + e.what());
  }
}

}  // namespace keel::bench
