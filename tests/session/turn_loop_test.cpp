// The turn loop through a real keel::Kernel (issue 4): interrupts of a running command, input
// typed while a turn runs, tools registered at run time, parallel and serialized tool calls,
// and the per-turn diff. The model is a replay script; the tools are the real first-party
// modules from the build-tree home plus in-process tools registered by the test.
#include "session_support.hpp"

using namespace keel;
using namespace keel::session_test;

namespace {

std::string shell_call(const std::string& call_id, const std::string& script, int timeout_ms = 20000) {
  json::object args{{"command", json::array{"bash", "-c", json::value(script)}}, {"timeout_ms", timeout_ms}};
  return json::serialize(json::object{{"name", "shell"}, {"call_id", call_id}, {"arguments", args}});
}

std::string one_call(const std::string& call) { return "{\"tool_calls\":[" + call + "]}"; }

std::string tool_call(const std::string& name, const std::string& call_id, const json::object& args) {
  return json::serialize(json::object{{"name", name}, {"call_id", call_id}, {"arguments", args}});
}

bool turn_ended(const json::object& e) {
  auto t = str(e, "type");
  return t == "turn.completed" || t == "turn.failed";
}

// A gate an in-process tool waits on, so a test can act while a turn is mid-call.
struct Gate {
  std::promise<void> entered_p;
  std::shared_future<void> entered = entered_p.get_future().share();
  std::promise<void> open_p;
  std::shared_future<void> opened = open_p.get_future().share();
  std::atomic<bool> entered_once{false};
  void enter() {
    if (!entered_once.exchange(true)) entered_p.set_value();
    opened.wait_for(20s);  // never forever
  }
  void open() { open_p.set_value(); }
};

InProcessTool gate_tool(std::shared_ptr<Gate> gate) {
  InProcessTool t;
  t.name = "gate";
  t.description = "Waits until the test opens the gate";
  t.handler = [gate](const json::object&, const json::object&) {
    gate->enter();
    return std::string("gate-open");
  };
  return t;
}

}  // namespace

TEST_CASE("an interrupt during a long shell call ends the turn promptly and kills the command",
          "[session][turn][interrupt]") {
  // With the sandbox (bwrap, the default backend) and without it: the pid file gives the
  // command's process group when there is no pid namespace in between.
  auto mode = GENERATE(std::string("danger-full-access"), std::string("workspace-write"));
  Scratch s("interrupt");
  const std::string marker = "30.0" + std::to_string(::getpid() % 1000) + (mode == "workspace-write" ? "1" : "2");
  const fs::path pidfile = s.ws / "cmd.pid";
  auto script = s.script("interrupt.jsonl",
                         {one_call(shell_call("call_sleep", "echo $$ > cmd.pid; echo started; sleep " + marker + " & wait", 12000)),
                          R"({"text":"after the interrupt"})"});
  Kernel kernel(s.config(script, {"approval_policy=\"never\"", "sandbox_mode=" + jstr(mode)}));
  Recording rec(kernel);
  auto session = kernel.start_session();
  auto future = kernel.submit(session, "sleep for a long time");

  INFO("sandbox mode " << mode);
  REQUIRE(eventually([&] { return !processes_with_arg(marker).empty(); }, 10s));
  pid_t pgid = mode == "danger-full-access" ? static_cast<pid_t>(read_pid(pidfile)) : 0;
  std::this_thread::sleep_for(100ms);

  auto t0 = Clock::now();
  kernel.interrupt(session);
  bool ended = future.wait_for(15s) == std::future_status::ready;
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  bool gone = eventually([&] { return processes_with_arg(marker).empty() && (pgid <= 0 || !pid_group_alive(pgid)); }, 1500ms);
  auto leftovers = processes_with_arg(marker).size();
  // Never leave the command behind, whatever the kernel did.
  reap_group(pgid);
  kill_marked(marker);
  REQUIRE(ended);
  auto result = future.get();
  std::this_thread::sleep_for(50ms);  // see wait_turn
  kernel.bus().drain();

  INFO("events:\n" << rec->text() << "elapsed " << elapsed.count() << " ms");
  CHECK(result.status == "interrupted");
  CHECK(elapsed < 1500ms);
  CHECK(gone);
  CHECK(leftovers == 0);
  CHECK(rec->wait_for(turn_ended, 2s));
  CHECK(rec->of_type("turn.completed").empty());

  // The history records the call and its output, marked as aborted.
  auto history = kernel.history(session);
  INFO("history:\n" << dump(history));
  REQUIRE(items_of(history, "function_call").size() == 1);
  auto out = output_of(history, "call_sleep");
  REQUIRE(out);
  CHECK(contains(*out, "abort"));
  CHECK(items_of(history, "message", "assistant").empty());

  // The session goes on: the next turn gets the next response.
  auto next = wait_turn(kernel.submit(session, "are you there?"));
  INFO(next.error);
  CHECK(next.ok());
  CHECK(next.last_agent_message == "after the interrupt");
}

TEST_CASE("input submitted while a turn runs joins that turn before its next model request", "[session][turn][queue]") {
  Scratch s("queue");
  auto script = s.script("queue.jsonl", {one_call(tool_call("gate", "call_gate", {})),
                                         R"({"text":"joined","expect":{"output_contains":"gate-open"}})"});
  Kernel kernel(s.spy_config(script, {"approval_policy=\"never\""}));
  ProviderSpy spy;
  spy.install(kernel);
  auto gate = std::make_shared<Gate>();
  kernel.registry().register_tool(gate_tool(gate));
  Recording rec(kernel);
  auto session = kernel.start_session();

  auto first = kernel.submit(session, "first message");
  REQUIRE(gate->entered.wait_for(10s) == std::future_status::ready);
  auto second = kernel.submit(session, "second message, typed while the turn ran");
  std::this_thread::sleep_for(50ms);
  gate->open();
  auto r1 = wait_turn(first);
  auto r2 = wait_turn(second);
  kernel.bus().drain();
  INFO("events:\n" << rec->text() << "errors: " << r1.error << " / " << r2.error);
  CHECK(r1.ok());
  CHECK(r2.ok());
  CHECK(r1.last_agent_message == "joined");
  CHECK(r2.last_agent_message == "joined");
  CHECK(rec->of_type("turn.started").size() == 1);  // one turn took both inputs

  auto requests = spy.snapshot();
  REQUIRE(requests.size() == 2);
  auto user_texts = [](const json::array& input) {
    std::vector<std::string> out;
    for (auto& m : items_of(input, "message", "user")) out.push_back(message_text(m));
    return out;
  };
  CHECK(user_texts(ProviderSpy::input(requests[0])) == std::vector<std::string>{"first message"});
  auto second_input = ProviderSpy::input(requests[1]);
  INFO("second request input:\n" << dump(second_input));
  CHECK(user_texts(second_input) ==
        std::vector<std::string>{"first message", "second message, typed while the turn ran"});
  // ...after the call's output, which the model has not seen yet either.
  REQUIRE(second_input.size() == 4);
  CHECK(str(second_input[1].as_object(), "type") == "function_call");
  CHECK(str(second_input[2].as_object(), "type") == "function_call_output");
  CHECK(message_text(second_input[3].as_object()) == "second message, typed while the turn ran");

  auto history = kernel.history(session);
  REQUIRE(history.size() == 5);
  CHECK(message_text(history[4].as_object()) == "joined");
}

TEST_CASE("a tool registered at run time is offered from the next request on and is callable",
          "[session][turn][registry]") {
  Scratch s("registry");
  auto script = s.script("registry.jsonl",
                         {one_call(tool_call("gate", "call_gate", {})),
                          one_call(tool_call("probe", "call_probe", {{"x", "42"}})),
                          R"({"text":"probed","expect":{"output_contains":"probe saw 42"}})",
                          R"({"text":"bye"})"});
  Kernel kernel(s.spy_config(script, {"approval_policy=\"never\""}));
  ProviderSpy spy;
  spy.install(kernel);
  auto gate = std::make_shared<Gate>();
  kernel.registry().register_tool(gate_tool(gate));
  auto session = kernel.start_session();

  std::atomic<int> probe_calls{0};
  auto turn = kernel.submit(session, "use the probe once it exists");
  REQUIRE(gate->entered.wait_for(10s) == std::future_status::ready);
  // Registered while the turn is mid-call: the very next request offers it.
  InProcessTool probe;
  probe.name = "probe";
  probe.description = "Reports its argument";
  probe.schema_json = R"({"type":"object","properties":{"x":{"type":"string"}},"required":["x"]})";
  probe.handler = [&probe_calls](const json::object& args, const json::object& request) {
    ++probe_calls;
    CHECK(str(request, "call_id") == "call_probe");
    return "probe saw " + str(args, "x");
  };
  kernel.registry().register_tool(probe);
  gate->open();
  auto r = wait_turn(turn);
  INFO(r.error);
  CHECK(r.ok());
  CHECK(r.last_agent_message == "probed");
  CHECK(probe_calls == 1);

  auto requests = spy.snapshot();
  REQUIRE(requests.size() == 3);
  CHECK(ProviderSpy::tool_names(requests[0]).count("gate") == 1);
  CHECK(ProviderSpy::tool_names(requests[0]).count("probe") == 0);
  CHECK(ProviderSpy::tool_names(requests[1]).count("probe") == 1);
  CHECK(ProviderSpy::tool_names(requests[2]).count("probe") == 1);
  // Its spec is the one registered.
  for (auto& spec : requests[1].at("tools").as_array())
    if (str(spec.as_object(), "name") == "probe") {
      CHECK(str(spec.as_object(), "type") == "function");
      CHECK(str(spec.as_object(), "description") == "Reports its argument");
      CHECK(spec.as_object().at("parameters").as_object().at("required").as_array().at(0).as_string() == "x");
    }
  CHECK(output_of(kernel.history(session), "call_probe") == std::optional<std::string>("probe saw 42"));

  // Unregistered: no longer offered.
  kernel.registry().unregister_tool("probe");
  auto r2 = wait_turn(kernel.submit(session, "anything else?"));
  CHECK(r2.ok());
  requests = spy.snapshot();
  REQUIRE(requests.size() == 4);
  CHECK(ProviderSpy::tool_names(requests[3]).count("probe") == 0);
}

TEST_CASE("parallel-safe calls overlap, mutating calls run one at a time, outputs stay in call order",
          "[session][turn][parallel]") {
  Scratch s("parallel");
  struct Span {
    Clock::time_point start, end;
  };
  auto mu = std::make_shared<std::mutex>();
  auto spans = std::make_shared<std::map<std::string, Span>>();
  auto make = [&](const std::string& name, bool parallel_safe) {
    InProcessTool t;
    t.name = name;
    t.description = parallel_safe ? "read-only, slow" : "mutating, slow";
    t.parallel_safe = parallel_safe;
    t.schema_json = R"({"type":"object","properties":{"tag":{"type":"string"}}})";
    t.handler = [mu, spans](const json::object& args, const json::object&) {
      auto start = Clock::now();
      std::this_thread::sleep_for(400ms);
      auto tag = str(args, "tag");
      std::lock_guard lock(*mu);
      (*spans)[tag] = Span{start, Clock::now()};
      return "done " + tag;
    };
    return t;
  };
  auto call = [](const std::string& tool, const std::string& tag) {
    return tool_call(tool, "call_" + tag, {{"tag", tag}});
  };
  // Shell (mutating, a real module): two commands that note when they ran.
  auto stamp = [&](const std::string& tag) {
    return shell_call("call_" + tag, "date +%s%N > " + tag + ".start; sleep 0.4; date +%s%N > " + tag + ".end");
  };
  auto script = s.script(
      "parallel.jsonl",
      {"{\"tool_calls\":[" + call("ro", "a") + "," + call("ro", "b") + "," + call("ro", "c") + "," + call("rw", "d") + "," +
           call("rw", "e") + "," + call("ro", "f") + "," +
           tool_call("read_file", "call_rf", {{"file_path", (s.ws / "note.txt").string()}}) + "," + call("ro", "g") + "]}",
       "{\"tool_calls\":[" + stamp("sh1") + "," + stamp("sh2") + "]}",
       R"({"text":"all done"})"});
  write_file(s.ws / "note.txt", "a note\n");
  Kernel kernel(s.config(script, {"approval_policy=\"never\""}));
  kernel.registry().register_tool(make("ro", true));
  kernel.registry().register_tool(make("rw", false));
  auto session = kernel.start_session();
  auto t0 = Clock::now();
  auto r = wait_turn(kernel.submit(session, "run them all"));
  auto total = Clock::now() - t0;
  INFO(r.error);
  REQUIRE(r.ok());

  std::lock_guard lock(*mu);
  REQUIRE(spans->size() == 7);
  auto overlap = [&](const std::string& x, const std::string& y) {
    auto& a = spans->at(x);
    auto& b = spans->at(y);
    return a.start < b.end && b.start < a.end;
  };
  auto before = [&](const std::string& x, const std::string& y) { return spans->at(x).end <= spans->at(y).start; };
  // a, b, c: one run of parallel-safe calls, concurrent.
  CHECK(overlap("a", "b"));
  CHECK(overlap("b", "c"));
  CHECK(overlap("a", "c"));
  // d and e: mutating, alone and in order.
  CHECK(before("a", "d"));
  CHECK(before("b", "d"));
  CHECK(before("c", "d"));
  CHECK(before("d", "e"));
  CHECK(before("e", "f"));
  // f, read_file, g: the next run of parallel-safe calls.
  CHECK(overlap("f", "g"));
  auto span_ms = [](const Span& x) { return std::chrono::duration_cast<std::chrono::milliseconds>(x.end - x.start).count(); };
  auto wall_abc = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::max({spans->at("a").end, spans->at("b").end, spans->at("c").end}) -
                      std::min({spans->at("a").start, spans->at("b").start, spans->at("c").start}))
                      .count();
  INFO("a..c took " << wall_abc << " ms; each " << span_ms(spans->at("a")) << " ms");
  CHECK(wall_abc < 1000);  // three 400 ms calls at once, generously
  CHECK(total >= 400ms * 4 + 800ms);

  // The two shell commands did not overlap.
  auto ns = [&](const std::string& f) { return std::stoll(read_file(s.ws / f)); };
  CHECK(ns("sh1.end") <= ns("sh2.start"));

  // Outputs in the order of the calls.
  auto history = kernel.history(session);
  std::vector<std::string> call_order, output_order;
  for (auto& v : history) {
    auto type = str(v.as_object(), "type");
    if (type == "function_call") call_order.push_back(str(v.as_object(), "call_id"));
    if (type == "function_call_output") output_order.push_back(str(v.as_object(), "call_id"));
  }
  CHECK(call_order == output_order);
  CHECK(output_of(history, "call_a") == std::optional<std::string>("done a"));
  CHECK(contains(output_of(history, "call_rf").value_or(""), "a note"));
}

TEST_CASE("an apply_patch turn publishes turn.diff with a unified diff of its changes", "[session][turn][diff]") {
  Scratch s("diff");
  write_file(s.ws / "greet.txt", "hello\nworld\n");
  std::string patch =
      "*** Begin Patch\n"
      "*** Add File: fresh.txt\n"
      "+fresh line\n"
      "*** Update File: greet.txt\n"
      "@@\n"
      " hello\n"
      "-world\n"
      "+keel\n"
      "*** End Patch";
  auto script = s.script(
      "diff.jsonl",
      {json::serialize(json::object{
           {"custom_tool_calls",
            json::array{json::object{{"name", "apply_patch"}, {"call_id", "call_patch"}, {"input", patch}}}}}),
       R"({"text":"patched","expect":{"output_contains":"greet.txt"}})"});
  Kernel kernel(s.config(script, {"approval_policy=\"never\""}));
  Recording rec(kernel);
  auto session = kernel.start_session();
  auto r = wait_turn(kernel.submit(session, "edit the files"));
  kernel.bus().drain();
  INFO("error: " << r.error << "\nevents:\n" << rec->text());
  REQUIRE(r.ok());
  CHECK(read_file(s.ws / "fresh.txt") == "fresh line\n");
  CHECK(read_file(s.ws / "greet.txt") == "hello\nkeel\n");

  auto diffs = rec->of_type("turn.diff");
  REQUIRE(diffs.size() == 1);
  auto diff = str(diffs[0], "diff");
  INFO("diff:\n" << diff);
  CHECK(contains(diff, "--- "));
  CHECK(contains(diff, "+++ "));
  CHECK(contains(diff, "@@"));
  CHECK(contains(diff, "fresh.txt"));
  CHECK(contains(diff, "+fresh line"));
  CHECK(contains(diff, "greet.txt"));
  CHECK(contains(diff, "-world"));
  CHECK(contains(diff, "+keel"));
  // It comes before the turn's end.
  auto events = rec->snapshot();
  std::size_t diff_at = events.size(), end_at = events.size();
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (str(events[i], "type") == "turn.diff") diff_at = i;
    if (str(events[i], "type") == "turn.completed") end_at = i;
  }
  CHECK(diff_at < end_at);
}

// Regression: a turn submitted the moment the previous one answered used to deadlock
// (the old worker re-locked the session while submit() joined it holding the lock).
TEST_CASE("back-to-back turns: submitting the next turn right after the previous one answered",
          "[session][turn][queue]") {
  Scratch s("back-to-back");
  std::vector<std::string> lines;
  for (int i = 0; i < 30; ++i) lines.push_back("{\"text\":\"answer " + std::to_string(i) + "\"}");
  auto script = s.script("many.jsonl", lines);
  int code = run_forked(
      [&] {
        Kernel kernel(s.config(script, {"approval_policy=\"never\""}));
        auto session = kernel.start_session();
        for (int i = 0; i < 30; ++i) {
          auto f = kernel.submit(session, "turn " + std::to_string(i));
          if (f.wait_for(5s) != std::future_status::ready) ::_exit(10);  // (~Kernel would hang too)
          auto r = f.get();
          if (!r.ok() || r.last_agent_message != "answer " + std::to_string(i)) return 11;
        }
        return 0;
      },
      20s);
  INFO("child exit code " << code << " (-1: it hung and was killed, 10: a turn never answered)");
  CHECK(code == 0);
}

// Ctrl-C at a terminal sends SIGINT to keel's process group; the command keel runs is in a
// session of its own (the process runner spawns it with POSIX_SPAWN_SETSID), so only keel can
// stop it. A service manager sends SIGTERM to keel alone.
// Regression: keel used to install no signal handling, so the signal killed it on the spot
// and the running command was orphaned (with danger-full-access and landlock; only bwrap's
// --die-with-parent took it down). Now the first signal interrupts the turn (the command is
// killed, the rollout records it, the UI shows the interrupted turn) and keel exits with
// 128 + the signal; a second signal kills keel's children and exits at once.
TEST_CASE("keel exec interrupted by SIGINT or SIGTERM stops the running command", "[session][turn][interrupt][cli]") {
  auto sandbox = GENERATE(std::string("danger-full-access"), std::string("landlock"), std::string("bwrap"));
  auto how = GENERATE(std::string("SIGINT"), std::string("SIGTERM"), std::string("SIGINT twice"));
  INFO("sandbox " << sandbox << ", " << how);
  Scratch s("sigint");
  const std::string marker = "30.0" + std::to_string(::getpid() % 1000) + std::to_string(sandbox.size()) +
                             std::to_string(how.size());
  auto script = s.script("sigint.jsonl", {one_call(shell_call("call_sleep", "echo started; sleep " + marker, 20000)),
                                          R"({"text":"never"})"});
  std::vector<std::string> argv{kKeelExe.string(), "exec", "--json", "--replay", script.string()};
  if (sandbox == "danger-full-access") argv.insert(argv.end(), {"-s", "danger-full-access"});
  else argv.insert(argv.end(), {"-c", "sandbox=" + sandbox});
  argv.push_back("sleep a while");
  Child child(argv, {{"KEEL_HOME", s.home.string()}, {"HOME", s.fake_home.string()}}, s.ws, s.base / "io");
  bool running = eventually([&] { return !processes_with_arg(marker).empty(); }, 20s);
  if (how == "SIGTERM") {
    ::kill(child.pid(), SIGTERM);  // what a service manager (or `timeout`) does
  } else {
    ::kill(-child.pid(), SIGINT);  // what the terminal does
    if (how == "SIGINT twice") ::kill(-child.pid(), SIGINT);
  }
  auto r = child.wait(10s);
  bool gone = eventually([&] { return processes_with_arg(marker).empty(); }, 2s);
  kill_marked(marker);
  INFO(r.describe());
  REQUIRE(running);
  CHECK_FALSE(r.timed_out);
  CHECK(gone);
  CHECK(r.exit_code == (how == "SIGTERM" ? 143 : 130));
  if (how == "SIGINT twice") return;  // the second signal may have cut the orderly shutdown short
  // The turn ended as interrupted, as the UI shows it...
  auto events = jsonl(r.out);
  REQUIRE_FALSE(events.empty());
  CHECK(str(events.back(), "type") == "turn.failed");
  CHECK(contains(r.out, "turn interrupted"));
  // ...and the rollout holds the call and its (aborted) output.
  auto files = s.rollouts();
  REQUIRE(files.size() == 1);
  auto items = rollout_items(files[0]);
  auto output = output_of(items, "call_sleep");
  REQUIRE(output);
  CHECK(contains(*output, "interrupted"));
}
