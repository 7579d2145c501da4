// Added latency of each sandbox backend per command versus no sandbox (targets: ≤ 5 ms for
// bwrap, ≤ 1 ms for landlock), through the real modules: one Kernel per backend (temporary
// KEEL_HOME with the signed first-party modules, `sandbox = <backend>`, workspace-write), and
//  - `tool.shell.call` of `true` on its bus, exactly as the turn loop sends it (the shell
//    module asks `sandbox.prepare`, then spawns the wrapped command with keel_process);
//  - the two halves on their own: `sandbox.prepare` over the bus, and the wrapped `true`
//    spawned with keel_process.
// The baseline is the same shell tool call with danger-full-access (no sandbox is asked), and
// `true` spawned with keel_process. Backends: none, bwrap (no network: --unshare-net), bwrap
// with network_access (to show what the network namespace costs), landlock, and landlock with
// Landlock rules only (modules.landlock.mount_namespace = false). Samples are taken in
// interleaved rounds so that load from other work on the machine falls on every configuration
// alike.
#include "bench_kernel.hpp"

#include <keel/common/process.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <map>
#include <memory>

namespace keel::bench {

namespace {

namespace json = boost::json;

constexpr int kRounds = 10, kPerRound = 6;

struct Backend {
  Backend(std::string l, std::string m, std::vector<std::string> o, std::string t, bool net = false)
      : label(std::move(l)), module(std::move(m)), overrides(std::move(o)), target(std::move(t)), network(net) {}
  std::string label, module;
  std::vector<std::string> overrides;
  std::string target;
  bool network;  // the policy allows network access (bwrap: no --unshare-net)
  std::string shell_payload, prepare_payload;
  std::unique_ptr<Kernel> kernel;
  std::string unavailable;
  std::vector<std::string> wrapped;
  std::map<std::string, std::string> env;
  std::vector<double> prepare, spawn, tool;
};

json::object kernel_like_policy(const BenchHome& h, const std::string& mode, bool network) {
  // What Kernel::Impl::sandbox_policy sends for a session in h.work().
  const std::string cwd = h.work().string();
  return json::object{{"mode", mode},
                      {"writable_roots", json::array{json::value(cwd)}},
                      {"network_access", network},
                      {"protected_paths", json::array{json::value(cwd + "/.git"), json::value(cwd + "/.keel"),
                                                      json::value(h.home().string())}}};
}

std::string shell_payload(const BenchHome& h, const json::object& policy) {
  return json::serialize(json::object{{"call_id", "call_bench"},
                                      {"name", "shell"},
                                      {"arguments", R"({"command":["true"]})"},
                                      {"cwd", h.work().string()},
                                      {"session_id", "bench-session"},
                                      {"turn_id", "turn_1"},
                                      {"sandbox", policy}});
}

void shell_call(Kernel& k, const std::string& payload) {
  auto r = call(k.bus(), "tool.shell.call", payload);
  if (r.status != KEEL_OK || r.body.find("\"success\":true") == std::string::npos)
    throw std::runtime_error("shell `true` failed (" + std::to_string(r.status) + "): " + r.body.substr(0, 400));
}

common::ProcessResult spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                            const fs::path& cwd) {
  common::ProcessOptions p;
  p.argv = argv;
  p.cwd = cwd.string();
  p.env = env;
  auto r = common::run_process(p);
  if (r.exit_code != 0) throw std::runtime_error("wrapped `true` exited " + std::to_string(r.exit_code) + ": " + r.output());
  return r;
}

}  // namespace

void sandbox() {
  try {
    BenchHome h("sandbox");
    const std::string truth = common::find_on_path("true").value_or("/bin/true");
    const std::string unsandboxed_payload = shell_payload(h, json::object{{"mode", "danger-full-access"}});

    std::vector<Backend> backends;
    backends.push_back(Backend("none", "none", std::vector<std::string>{"sandbox=\"none\""}, "-"));
    backends.push_back(Backend("bwrap", "bwrap", std::vector<std::string>{"sandbox=\"bwrap\""}, "<= 5"));
    backends.push_back(Backend("bwrap-network-on", "bwrap", std::vector<std::string>{"sandbox=\"bwrap\""}, "<= 5", true));
    backends.push_back(Backend("landlock", "landlock", std::vector<std::string>{"sandbox=\"landlock\""}, "<= 1"));
    backends.push_back(Backend("landlock-rules-only", "landlock",
                               std::vector<std::string>{"sandbox=\"landlock\"", "modules.landlock.mount_namespace=false"}, "<= 1"));
    for (auto& b : backends) {
      auto policy = kernel_like_policy(h, "workspace-write", b.network);
      b.shell_payload = shell_payload(h, policy);
      b.prepare_payload =
          json::serialize(json::object{{"argv", json::array{json::value(truth)}}, {"cwd", h.work().string()},
                                       {"workdir", h.work().string()}, {"env", json::object{}}, {"policy", policy}});
      auto o = b.overrides;
      o.insert(o.end(), {"sandbox_mode=\"workspace-write\"", "approval_policy=\"never\""});
      try {
        b.kernel = std::make_unique<Kernel>(h.config(o));
        require_module(*b.kernel, b.module);
        auto r = call(b.kernel->bus(), "sandbox.prepare", b.prepare_payload);
        if (r.status != KEEL_OK) throw std::runtime_error("sandbox.prepare: " + r.body);
        auto reply = json::parse(r.body).as_object();
        for (auto& a : reply.at("argv").as_array()) b.wrapped.emplace_back(a.as_string());
        if (auto* env = reply.if_contains("env"); env && env->is_object())
          for (auto& [key, val] : env->as_object())
            if (val.is_string()) b.env[std::string(key)] = std::string(val.as_string());
        for (int i = 0; i < 3; ++i) {  // warm up, and prove the backend works here
          spawn(b.wrapped, b.env, h.work());
          shell_call(*b.kernel, b.shell_payload);
        }
      } catch (const std::exception& e) {
        b.unavailable = e.what();
        b.kernel.reset();
      }
    }
    if (!backends[0].kernel) throw std::runtime_error("the `none` sandbox kernel did not start: " + backends[0].unavailable);
    Kernel& plain = *backends[0].kernel;

    std::vector<double> raw, unsandboxed_tool;
    for (int i = 0; i < 3; ++i) shell_call(plain, unsandboxed_payload);
    for (int round = 0; round < kRounds; ++round) {
      for (int i = 0; i < kPerRound; ++i) {
        auto a = Clock::now();
        spawn({truth}, {}, h.work());
        raw.push_back(ms_since(a));
        a = Clock::now();
        shell_call(plain, unsandboxed_payload);
        unsandboxed_tool.push_back(ms_since(a));
      }
      for (auto& b : backends) {
        if (!b.kernel) continue;
        for (int i = 0; i < kPerRound; ++i) {
          auto a = Clock::now();
          auto r = call(b.kernel->bus(), "sandbox.prepare", b.prepare_payload);
          b.prepare.push_back(ms_since(a));
          if (r.status != KEEL_OK) throw std::runtime_error(b.label + ": sandbox.prepare failed: " + r.body);
          a = Clock::now();
          spawn(b.wrapped, b.env, h.work());
          b.spawn.push_back(ms_since(a));
          a = Clock::now();
          shell_call(*b.kernel, b.shell_payload);
          b.tool.push_back(ms_since(a));
        }
      }
    }

    const double raw_ms = stats(raw).median, base_ms = stats(unsandboxed_tool).median;
    print({"`true` spawned with keel_process, no sandbox", raw_ms, "ms", ""});
    print({"shell tool `true`, danger-full-access (no sandbox)", base_ms, "ms", ""});
    for (auto& b : backends) {
      if (!b.kernel) {
        std::fprintf(stderr, "keel-bench sandbox: %s unavailable: %s\n", b.label.c_str(), b.unavailable.c_str());
        note("sandbox " + b.label + " unavailable here (see stderr)");
        continue;
      }
      double tool = stats(b.tool).median, prep = stats(b.prepare).median, sp = stats(b.spawn).median;
      print({"shell tool `true`, sandbox " + b.label, tool, "ms", ""});
      print({"  added per command by " + b.label + " (vs no sandbox)", tool - base_ms, "ms", b.target});
      print({"  sandbox.prepare (" + b.label + ")", prep, "ms", ""});
      print({"  spawn of the wrapped `true` (" + b.label + ")", sp, "ms", ""});
      print({"  ... of which the wrapper (" + b.label + ")", sp - raw_ms, "ms", ""});
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "keel-bench sandbox: %s\n", e.what());
    note(std::string("sandbox not measured: ") + e.what());
  }
}

}  // namespace keel::bench
