// Tool dispatch overhead, kernel → module → reply (target ≤ 50 µs): a real Kernel over a
// temporary KEEL_HOME with the signed first-party modules, and `tool.<name>.call` requests on
// its bus — the exact request the turn loop sends for a model's tool call — to tools that do
// almost nothing: `update_plan` (plan module), `read_file` of a one-line file (fs module), and
// an in-process tool registered through the embedding API, for comparison. The caller waits
// for each reply the way the kernel does (a promise per call).
#include "bench_kernel.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace keel::bench {

namespace {

namespace json = boost::json;

std::string tool_payload(const std::string& tool, const std::string& arguments, const fs::path& cwd) {
  return json::serialize(json::object{{"call_id", "call_bench"},
                                      {"name", tool},
                                      {"arguments", arguments},
                                      {"cwd", cwd.string()},
                                      {"session_id", "bench-session"},
                                      {"turn_id", "turn_1"},
                                      {"sandbox", json::object{{"mode", "danger-full-access"}}}});
}

void measure(Kernel& k, const std::string& label, const std::string& topic, const std::string& payload,
             const std::string& target = "<= 50") {
  auto once = [&] {
    auto r = call(k.bus(), topic, payload);
    if (r.status != KEEL_OK || r.body.find("\"success\":false") != std::string::npos)
      throw std::runtime_error(topic + " failed (" + std::to_string(r.status) + "): " + r.body);
  };
  for (int i = 0; i < 500; ++i) once();  // warm up: caches, allocator, lazy state
  constexpr int kCalls = 10000;
  std::vector<double> us;
  us.reserve(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    auto a = Clock::now();
    once();
    us.push_back(ms_since(a) * 1000.0);
  }
  auto s = stats(std::move(us));
  print({label + " (median of 10k)", s.median, "us", target});
  print({label + " (p99 of 10k)", s.p99, "us", target});
}

void measure_tool(Kernel& k, const std::string& label, const std::string& tool, const std::string& arguments,
                  const fs::path& cwd) {
  measure(k, "dispatch " + label, ModuleHost::server_name(KEEL_CAP_TOOL, tool) + ".call",
          tool_payload(tool, arguments, cwd));
}

// The policy check the turn loop makes before each call (not part of dispatch proper).
void measure_policy(Kernel& k, const std::string& label, const std::string& tool, const std::string& arguments,
                    const fs::path& cwd) {
  json::object q{{"tool", tool}, {"arguments", arguments}, {"cwd", cwd.string()}, {"approval_mode", "never"},
                 {"sandbox_mode", "danger-full-access"}};
  measure(k, "policy check, " + label + " (exec-policy)", ModuleHost::server_name(KEEL_CAP_POLICY, "exec-policy") + ".check",
          json::serialize(q), "");
}

}  // namespace

void dispatch() {
  try {
    BenchHome h("dispatch");
    write_text(h.work() / "tiny.txt", "hello\n");
    Kernel k(h.config({"sandbox_mode=\"danger-full-access\"", "approval_policy=\"never\""}));
    require_module(k, "plan");
    require_module(k, "fs");
    k.registry().register_tool(InProcessTool{"bench_noop", "Does nothing (benchmark).", R"({"type":"object","properties":{}})",
                                             true, [](const json::object&, const json::object&) { return std::string("ok"); }});

    const std::string plan = R"({"plan":[{"step":"measure","status":"in_progress"}]})";
    measure_tool(k, "update_plan (plan module)", "update_plan", plan, h.work());
    measure_tool(k, "read_file, 1-line file (fs module)", "read_file", R"({"file_path":"tiny.txt"})", h.work());
    measure_tool(k, "in-process tool (embedding API)", "bench_noop", "{}", h.work());
    require_module(k, "exec-policy");
    measure_policy(k, "update_plan", "update_plan", plan, h.work());
    measure_policy(k, "shell `true`", "shell", R"({"command":["true"]})", h.work());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "keel-bench dispatch: %s\n", e.what());
    note(std::string("dispatch not measured: ") + e.what());
  }
}

}  // namespace keel::bench
