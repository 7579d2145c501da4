// Approvals through full sessions (issue 5): a UI test double on the bus ("ui.testui")
// answering the kernel's approval requests with each decision, a UI that never answers, and
// the real `keel exec` with its approval and sandbox flags; `keel execpolicy check`.
#include "session_support.hpp"

using namespace keel;
using namespace keel::session_test;

namespace {

std::string touch_call(const std::string& call_id, const std::string& file) {
  json::object args{{"command", json::array{"touch", json::value(file)}}};
  return json::serialize(json::object{{"name", "shell"}, {"call_id", call_id}, {"arguments", args}});
}

std::string calls(std::initializer_list<std::string> list) {
  std::string out = "{\"tool_calls\":[";
  bool first = true;
  for (auto& c : list) {
    out += (first ? "" : ",") + c;
    first = false;
  }
  return out + "]}";
}

std::string answer_expecting(const std::string& text, const std::string& expect) {
  return json::serialize(json::object{{"text", text}, {"expect", json::object{{"output_contains", expect}}}});
}

// The front end under test: answers "approve" requests with whatever `decide` says ("" holds
// the request unanswered), and records every question.
struct TestUi {
  Kernel& kernel;
  std::mutex mu;
  std::vector<json::object> asks;
  std::vector<RequestPtr> held;
  std::function<std::string(const json::object&)> decide;

  TestUi(Kernel& k, std::function<std::string(const json::object&)> d) : kernel(k), decide(std::move(d)) {
    kernel.bus().serve("ui.testui", [this](const RequestPtr& req) {
      if (req->method() != "approve") {
        req->reply(KEEL_ERR_NOT_FOUND, R"({"error":{"message":"testui answers approve only"}})");
        return;
      }
      auto ask = parse_object(req->payload());
      std::string decision;
      {
        std::lock_guard lock(mu);
        asks.push_back(ask);
        decision = decide(ask);
        if (decision.empty()) {
          held.push_back(req);
          return;
        }
      }
      req->reply(KEEL_OK, json::serialize(json::object{{"decision", decision}}));
    });
  }
  ~TestUi() {
    kernel.bus().unserve("ui.testui");
    std::lock_guard lock(mu);
    held.clear();
  }
  std::size_t count() {
    std::lock_guard lock(mu);
    return asks.size();
  }
  std::vector<json::object> snapshot() {
    std::lock_guard lock(mu);
    return asks;
  }
};

std::vector<std::string> argv_of(const json::object& ask) {
  std::vector<std::string> out;
  if (auto* a = ask.if_contains("argv"); a && a->is_array())
    for (auto& v : a->as_array())
      if (v.is_string()) out.emplace_back(v.as_string());
  return out;
}

const std::vector<std::string> kUntrusted = {"approval_policy=\"untrusted\""};

SessionOptions with_ui() {
  SessionOptions o;
  o.ui = "testui";
  return o;
}

}  // namespace

TEST_CASE("approve: the command runs after the UI says yes, once", "[session][approvals]") {
  Scratch s("approve");
  auto script = s.script("approve.jsonl", {calls({touch_call("call_1", "approved.txt")}),
                                           answer_expecting("ran it", "Exit code: 0")});
  Kernel kernel(s.config(script, kUntrusted));
  TestUi ui(kernel, [](const json::object&) { return "approve"; });
  Recording rec(kernel);
  auto session = kernel.start_session(with_ui());
  auto r = wait_turn(kernel.submit(session, "touch a file"));
  kernel.bus().drain();
  INFO("error: " << r.error << "\nevents:\n" << rec->text());
  CHECK(r.ok());
  CHECK(fs::exists(s.ws / "approved.txt"));
  auto asks = ui.snapshot();
  REQUIRE(asks.size() == 1);
  CHECK(str(asks[0], "session_id") == session);
  CHECK(str(asks[0], "call_id") == "call_1");
  CHECK(argv_of(asks[0]) == std::vector<std::string>{"touch", "approved.txt"});
  CHECK(!str(asks[0], "reason").empty());
  CHECK(rec->of_type("approval.requested").size() == 1);
}

TEST_CASE("approve_session: the same command is not asked about again in the session", "[session][approvals]") {
  Scratch s("approve-session");
  auto script = s.script("session.jsonl", {calls({touch_call("call_1", "s.txt")}), calls({touch_call("call_2", "s.txt")}),
                                           calls({touch_call("call_3", "other.txt")}),
                                           answer_expecting("done", "Exit code: 0")});
  Kernel kernel(s.config(script, kUntrusted));
  TestUi ui(kernel, [](const json::object& ask) { return argv_of(ask).at(1) == "s.txt" ? "approve_session" : "approve"; });
  auto session = kernel.start_session(with_ui());
  auto r = wait_turn(kernel.submit(session, "touch twice"));
  INFO(r.error);
  CHECK(r.ok());
  auto history = kernel.history(session);
  INFO(dump(history));
  CHECK(contains(output_of(history, "call_1").value_or(""), "Exit code: 0"));
  CHECK(contains(output_of(history, "call_2").value_or(""), "Exit code: 0"));
  CHECK(contains(output_of(history, "call_3").value_or(""), "Exit code: 0"));
  // Asked for s.txt once, and for the other command (not covered by that approval) once.
  auto asks = ui.snapshot();
  REQUIRE(asks.size() == 2);
  CHECK(str(asks[0], "call_id") == "call_1");
  CHECK(str(asks[1], "call_id") == "call_3");

  // A new session asks again.
  auto script2 = s.script("session2.jsonl", {calls({touch_call("call_4", "s.txt")}), R"({"text":"ok"})"});
  Kernel kernel2(s.config(script2, kUntrusted));
  TestUi ui2(kernel2, [](const json::object&) { return "approve"; });
  auto session2 = kernel2.start_session(with_ui());
  CHECK(wait_turn(kernel2.submit(session2, "again")).ok());
  CHECK(ui2.count() == 1);
}

TEST_CASE("approve_rule: a rule is appended to $KEEL_HOME/rules/default.rules and later checks pass without asking",
          "[session][approvals]") {
  Scratch s("approve-rule");
  auto script = s.script("rule.jsonl", {calls({touch_call("call_1", "r.txt")}), calls({touch_call("call_2", "r.txt")}),
                                        answer_expecting("done", "Exit code: 0")});
  {
    Kernel kernel(s.config(script, kUntrusted));
    TestUi ui(kernel, [](const json::object&) { return "approve_rule"; });
    auto session = kernel.start_session(with_ui());
    auto r = wait_turn(kernel.submit(session, "touch with a rule"));
    INFO(r.error);
    CHECK(r.ok());
    auto history = kernel.history(session);
    INFO(dump(history));
    CHECK(contains(output_of(history, "call_1").value_or(""), "Exit code: 0"));
    CHECK(contains(output_of(history, "call_2").value_or(""), "Exit code: 0"));
    CHECK(ui.count() == 1);
  }
  auto rules = read_file(s.home / "rules" / "default.rules");
  INFO("default.rules:\n" << rules);
  CHECK(contains(rules, "prefix_rule("));
  CHECK(contains(rules, "\"touch\""));
  CHECK(contains(rules, "\"r.txt\""));
  CHECK(contains(rules, "allow"));

  // A later session (a new kernel, rules loaded from the file) is not asked either.
  auto script2 = s.script("rule2.jsonl", {calls({touch_call("call_3", "r.txt")}), answer_expecting("ok", "Exit code: 0")});
  Kernel kernel2(s.config(script2, kUntrusted));
  TestUi ui2(kernel2, [](const json::object&) { return "deny"; });
  auto session2 = kernel2.start_session(with_ui());
  auto r2 = wait_turn(kernel2.submit(session2, "again"));
  INFO(r2.error);
  CHECK(r2.ok());
  CHECK(ui2.count() == 0);

  // And `keel execpolicy check` names the rule.
  auto check = run_keel(s, {"execpolicy", "check", "--", "touch", "r.txt"});
  INFO(check.describe());
  CHECK(check.exit_code == 0);
  CHECK(lines_of(check.out).at(0) == "allow");
  CHECK(contains(check.out, "default.rules"));
}

TEST_CASE("deny: the command does not run and the model reads that it was denied", "[session][approvals]") {
  Scratch s("deny");
  auto script = s.script("deny.jsonl", {calls({touch_call("call_1", "denied.txt")}), answer_expecting("understood", "denied")});
  Kernel kernel(s.config(script, kUntrusted));
  TestUi ui(kernel, [](const json::object&) { return "deny"; });
  auto session = kernel.start_session(with_ui());
  auto r = wait_turn(kernel.submit(session, "touch it"));
  INFO(r.error);
  CHECK(r.ok());
  CHECK(r.last_agent_message == "understood");
  CHECK_FALSE(fs::exists(s.ws / "denied.txt"));
  CHECK(ui.count() == 1);
  auto out = output_of(kernel.history(session), "call_1");
  REQUIRE(out);
  CHECK(contains(*out, "denied"));
}

TEST_CASE("abort: the turn ends as interrupted and the command does not run", "[session][approvals]") {
  Scratch s("abort");
  auto script = s.script("abort.jsonl", {calls({touch_call("call_1", "aborted.txt"), touch_call("call_2", "second.txt")}),
                                         R"({"text":"never said"})", R"({"text":"next turn"})"});
  Kernel kernel(s.config(script, kUntrusted));
  TestUi ui(kernel, [](const json::object&) { return "abort"; });
  Recording rec(kernel);
  auto session = kernel.start_session(with_ui());
  auto r = wait_turn(kernel.submit(session, "touch it"));
  kernel.bus().drain();
  INFO("error: " << r.error << "\nevents:\n" << rec->text());
  CHECK(r.status == "interrupted");
  CHECK(r.last_agent_message.empty());
  CHECK_FALSE(fs::exists(s.ws / "aborted.txt"));
  CHECK_FALSE(fs::exists(s.ws / "second.txt"));
  CHECK(ui.count() == 1);  // the second call is not asked about: the turn is over
  auto history = kernel.history(session);
  INFO(dump(history));
  CHECK(contains(output_of(history, "call_1").value_or(""), "abort"));
  CHECK(output_of(history, "call_2").has_value());  // every call has an output
  CHECK(items_of(history, "message", "assistant").empty());
}

TEST_CASE("a UI that never answers: the call is denied after approval_timeout_ms", "[session][approvals]") {
  Scratch s("timeout");
  auto script = s.script("timeout.jsonl", {calls({touch_call("call_1", "late.txt")}), answer_expecting("gave up", "denied")});
  Kernel kernel(s.config(script, {"approval_policy=\"untrusted\"", "approval_timeout_ms=300"}));
  TestUi ui(kernel, [](const json::object&) { return std::string(); });  // silence
  Recording rec(kernel);
  auto session = kernel.start_session(with_ui());
  auto t0 = Clock::now();
  auto r = wait_turn(kernel.submit(session, "touch it"), 20s);
  auto elapsed = Clock::now() - t0;
  kernel.bus().drain();
  INFO("error: " << r.error << "\nevents:\n" << rec->text());
  CHECK(r.ok());
  CHECK(elapsed >= 300ms);
  CHECK(elapsed < 5s);
  CHECK_FALSE(fs::exists(s.ws / "late.txt"));
  CHECK(ui.count() == 1);
  CHECK(contains(output_of(kernel.history(session), "call_1").value_or(""), "denied"));
  auto resolved = rec->of_type("approval.resolved");
  REQUIRE(resolved.size() == 1);
  CHECK(str(resolved[0], "decision") == "deny");
}

// ---- keel exec flags --------------------------------------------------------------------

namespace {

std::string shell_call(const std::string& call_id, const std::string& script) {
  json::object args{{"command", json::array{"bash", "-c", json::value(script)}}};
  return json::serialize(json::object{{"name", "shell"}, {"call_id", call_id}, {"arguments", args}});
}

// The command items `keel exec --json` printed as completed.
std::vector<json::object> completed_items(const std::string& out, const std::string& type) {
  std::vector<json::object> items;
  for (auto& e : jsonl(out))
    if (str(e, "type") == "item.completed" && e.contains("item") && str(e.at("item").as_object(), "type") == type)
      items.push_back(e.at("item").as_object());
  return items;
}

}  // namespace

TEST_CASE("keel exec -a untrusted: exec denies, the command is not run and the model is told", "[session][approvals][cli]") {
  Scratch s("exec-untrusted");
  auto script = s.script("untrusted.jsonl",
                         {calls({touch_call("call_1", "untrusted.txt")}), answer_expecting("it was denied", "denied")});
  auto r = run_keel(s, {"exec", "--json", "-a", "untrusted", "--replay", script.string(), "touch a file"});
  INFO(r.describe());
  CHECK(r.exit_code == 0);  // the turn completed: the script's expect saw "denied"
  CHECK_FALSE(fs::exists(s.ws / "untrusted.txt"));
  CHECK(completed_items(r.out, "command_execution").empty());
  CHECK(contains(r.out, "denied"));
  auto messages = completed_items(r.out, "agent_message");
  REQUIRE(messages.size() == 1);
  CHECK(str(messages[0], "text") == "it was denied");
}

TEST_CASE("keel exec --full-auto runs the command in the sandbox", "[session][approvals][cli]") {
  Scratch s("exec-full-auto");
  auto target = s.outside / "full-auto.txt";
  auto script = s.script("full-auto.jsonl",
                         {calls({shell_call("call_1", "touch inside.txt; echo x > " + target.string() + "; echo after")}),
                          answer_expecting("done", "after")});
  auto r = run_keel(s, {"exec", "--json", "--full-auto", "--replay", script.string(), "write two files"});
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  CHECK(fs::exists(s.ws / "inside.txt"));
  CHECK_FALSE(fs::exists(target));
  auto cmds = completed_items(r.out, "command_execution");
  REQUIRE(cmds.size() == 1);
  CHECK(contains(str(cmds[0], "aggregated_output"), "Read-only file system"));
}

TEST_CASE("keel exec --dangerously-bypass-approvals-and-sandbox runs the command unsandboxed", "[session][approvals][cli]") {
  Scratch s("exec-bypass");
  auto target = s.outside / "bypass.txt";
  auto script = s.script("bypass.jsonl",
                         {calls({shell_call("call_1", "touch inside.txt && echo x > " + target.string() + " && echo wrote")}),
                          answer_expecting("done", "wrote")});
  auto r = run_keel(s, {"exec", "--json", "--dangerously-bypass-approvals-and-sandbox", "--replay", script.string(),
                        "write two files"});
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  CHECK(fs::exists(s.ws / "inside.txt"));
  CHECK(fs::exists(target));
}

TEST_CASE("keel execpolicy check prints the decision and the rule that made it", "[session][approvals][cli]") {
  Scratch s("execpolicy");
  auto safe = run_keel(s, {"execpolicy", "check", "--", "git", "status"});
  INFO(safe.describe());
  CHECK(safe.exit_code == 0);
  REQUIRE(!lines_of(safe.out).empty());
  CHECK(lines_of(safe.out).at(0) == "allow");

  auto rules = s.base / "no-push.rules";
  write_file(rules, "prefix_rule(pattern=[\"git\", \"push\"], decision=\"forbidden\", "
                    "justification=\"pushing is for humans\", match=[[\"git\", \"push\", \"origin\"]])\n");
  auto forbidden = run_keel(s, {"execpolicy", "check", "--rules", rules.string(), "--", "git", "push", "origin", "main"});
  INFO(forbidden.describe());
  CHECK(forbidden.exit_code == 0);
  REQUIRE(!lines_of(forbidden.out).empty());
  CHECK(contains(lines_of(forbidden.out).at(0), "forbid"));
  CHECK(contains(forbidden.out, "rule: "));
  CHECK(contains(forbidden.out, "no-push.rules"));
  CHECK(contains(forbidden.out, "git"));
  CHECK(contains(forbidden.out, "push"));
  // Without the rules file the same command is not forbidden.
  auto plain = run_keel(s, {"execpolicy", "check", "--", "git", "push", "origin", "main"});
  INFO(plain.describe());
  CHECK_FALSE(contains(plain.out, "forbid"));
}

// Regression: an interrupt used to leave the turn waiting for the person's answer until
// approval_timeout_ms (five minutes by default), then recorded the call as denied.
TEST_CASE("an interrupt while an approval is pending ends the turn promptly",
          "[session][approvals][interrupt]") {
  Scratch s("approval-interrupt");
  auto script = s.script("pending.jsonl", {calls({touch_call("call_1", "pending.txt")}), R"({"text":"never said"})",
                                           R"({"text":"next turn"})"});
  // The bound keeps the test short should the interrupt not reach the pending question.
  Kernel kernel(s.config(script, {"approval_policy=\"untrusted\"", "approval_timeout_ms=8000"}));
  TestUi ui(kernel, [](const json::object&) { return std::string(); });  // the person is away
  Recording rec(kernel);
  auto session = kernel.start_session(with_ui());
  auto future = kernel.submit(session, "touch it");
  REQUIRE(rec->wait_for([](const json::object& e) { return str(e, "type") == "approval.requested"; }));
  auto t0 = Clock::now();
  kernel.interrupt(session);
  REQUIRE(future.wait_for(15s) == std::future_status::ready);
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  auto r = future.get();
  std::this_thread::sleep_for(50ms);
  kernel.bus().drain();
  INFO("elapsed " << elapsed.count() << " ms\nevents:\n" << rec->text());
  CHECK(r.status == "interrupted");
  CHECK(elapsed < 1500ms);
  CHECK_FALSE(fs::exists(s.ws / "pending.txt"));
  {
    // The front end learns that the question is void.
    std::lock_guard lock(ui.mu);
    REQUIRE(ui.held.size() == 1);
    CHECK(ui.held[0]->cancelled());
  }
  // Recorded as aborted by the interrupt, like any call the interrupt stopped; not as denied.
  auto out = output_of(kernel.history(session), "call_1");
  REQUIRE(out);
  CHECK(contains(*out, "aborted"));
  CHECK(contains(*out, "interrupted"));
  CHECK_FALSE(contains(*out, "denied"));
  auto resolved = rec->of_type("approval.resolved");
  REQUIRE(resolved.size() == 1);
  CHECK(str(resolved[0], "decision") == "abort");
  auto failed = rec->of_type("turn.failed");
  REQUIRE(failed.size() == 1);
  CHECK(str(failed[0], "status") == "interrupted");
  CHECK(rec->of_type("turn.completed").empty());

  // A late answer changes nothing, and the session goes on.
  {
    std::lock_guard lock(ui.mu);
    ui.held[0]->reply(KEEL_OK, R"({"decision":"approve"})");
  }
  CHECK_FALSE(fs::exists(s.ws / "pending.txt"));
  auto next = wait_turn(kernel.submit(session, "and now?"));
  INFO(next.error);
  CHECK(next.ok());
  CHECK(next.last_agent_message == "never said");
}

TEST_CASE("a kernel destroyed while an approval is pending ends the turn at once", "[session][approvals][interrupt]") {
  Scratch s("approval-shutdown");
  auto script = s.script("pending.jsonl", {calls({touch_call("call_1", "shutdown.txt")}), R"({"text":"never said"})"});
  // Outlives the kernel, as a front end that holds the question may: its late answer must
  // not reach a kernel that is gone.
  std::vector<RequestPtr> held;
  std::mutex held_mu;
  auto kernel = std::make_unique<Kernel>(s.config(script, {"approval_policy=\"untrusted\"", "approval_timeout_ms=8000"}));
  kernel->bus().serve("ui.testui", [&](const RequestPtr& req) {
    std::lock_guard lock(held_mu);
    held.push_back(req);
  });
  std::atomic<bool> asked{false};
  auto sub = kernel->subscribe("event", [&](const Event& e) { asked = asked || e.type() == "approval.requested"; });
  auto session = kernel->start_session(with_ui());
  auto future = kernel->submit(session, "touch it");
  REQUIRE(eventually([&] { return asked.load(); }, 10s));
  kernel->unsubscribe(sub);
  auto t0 = Clock::now();
  auto destroyed = std::async(std::launch::async, [&] { kernel.reset(); });
  REQUIRE(destroyed.wait_for(15s) == std::future_status::ready);
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  INFO("elapsed " << elapsed.count() << " ms");
  CHECK(elapsed < 1500ms);
  REQUIRE(future.wait_for(0s) == std::future_status::ready);
  CHECK(future.get().status == "interrupted");
  CHECK_FALSE(fs::exists(s.ws / "shutdown.txt"));
  std::lock_guard lock(held_mu);
  REQUIRE(held.size() == 1);
  CHECK(held[0]->cancelled());
  held[0]->reply(KEEL_OK, R"({"decision":"approve"})");  // too late, and harmless
  held.clear();
}

TEST_CASE("untrusted mode: apply_patch asks first; approved it applies, denied nothing changes", "[session][approvals]") {
  Scratch s("approve-patch");
  write_file(s.ws / "a.txt", "one\n");
  auto patch = [](const std::string& file) {
    return "*** Begin Patch\n*** Update File: a.txt\n@@\n-one\n+two\n*** Add File: " + file + "\n+new\n*** End Patch";
  };
  auto custom = [](const std::string& call_id, const std::string& input) {
    return json::serialize(json::object{
        {"custom_tool_calls", json::array{json::object{{"name", "apply_patch"}, {"call_id", call_id}, {"input", input}}}}});
  };
  auto script = s.script("patch.jsonl", {custom("call_denied", patch("denied.txt")), answer_expecting("was denied", "denied"),
                                         custom("call_ok", patch("approved.txt")), answer_expecting("applied", "a.txt")});
  Kernel kernel(s.config(script, kUntrusted));
  TestUi ui(kernel, [](const json::object& ask) { return str(ask, "call_id") == "call_denied" ? "deny" : "approve"; });
  auto session = kernel.start_session(with_ui());
  auto r1 = wait_turn(kernel.submit(session, "patch it"));
  INFO(r1.error);
  CHECK(r1.ok());
  CHECK(read_file(s.ws / "a.txt") == "one\n");
  CHECK_FALSE(fs::exists(s.ws / "denied.txt"));
  auto r2 = wait_turn(kernel.submit(session, "patch it, please"));
  INFO(r2.error);
  CHECK(r2.ok());
  CHECK(read_file(s.ws / "a.txt") == "two\n");
  CHECK(fs::exists(s.ws / "approved.txt"));
  auto asks = ui.snapshot();
  REQUIRE(asks.size() == 2);
  CHECK(str(asks[0], "tool") == "apply_patch");
}

TEST_CASE("on-failure: a command the sandbox blocked is offered to run again without it", "[session][approvals]") {
  Scratch s("on-failure");
  auto target = s.outside / "on-failure.txt";
  auto write_outside = [&](const std::string& call_id) {
    json::object args{{"command", json::array{"bash", "-c", json::value("echo escaped > " + target.string())}}};
    return calls({json::serialize(json::object{{"name", "shell"}, {"call_id", call_id}, {"arguments", args}})});
  };
  auto script = s.script("on-failure.jsonl", {write_outside("call_denied"), answer_expecting("still blocked", "sandbox"),
                                              write_outside("call_approved"), answer_expecting("done", "Exit code: 0")});
  Kernel kernel(s.config(script, {"approval_policy=\"on-failure\""}));
  TestUi ui(kernel, [](const json::object& ask) { return str(ask, "call_id") == "call_denied" ? "deny" : "approve"; });
  auto session = kernel.start_session(with_ui());
  auto r1 = wait_turn(kernel.submit(session, "write outside"));
  INFO(r1.error);
  CHECK(r1.ok());
  CHECK_FALSE(fs::exists(target));
  auto r2 = wait_turn(kernel.submit(session, "write outside, I will approve"));
  INFO(r2.error);
  CHECK(r2.ok());
  CHECK(read_file(target) == "escaped\n");
  auto asks = ui.snapshot();
  REQUIRE(asks.size() == 2);  // asked only after the sandbox blocked each
  CHECK(contains(str(asks[0], "reason"), "sandbox"));
}

TEST_CASE("on-failure: abort instead of a re-run ends the turn as interrupted", "[session][approvals][interrupt]") {
  Scratch s("on-failure-abort");
  auto target = s.outside / "on-failure-abort.txt";
  json::object args{{"command", json::array{"bash", "-c", json::value("echo escaped > " + target.string())}}};
  auto call = json::serialize(json::object{{"name", "shell"}, {"call_id", "call_1"}, {"arguments", args}});
  auto script = s.script("abort.jsonl", {calls({call}), R"({"text":"never said"})"});
  Kernel kernel(s.config(script, {"approval_policy=\"on-failure\""}));
  TestUi ui(kernel, [](const json::object&) { return "abort"; });
  auto session = kernel.start_session(with_ui());
  auto r = wait_turn(kernel.submit(session, "write outside"));
  INFO(r.error);
  CHECK(r.status == "interrupted");
  CHECK_FALSE(fs::exists(target));
  CHECK(ui.count() == 1);
  auto out = output_of(kernel.history(session), "call_1");
  REQUIRE(out);
  CHECK(contains(*out, "aborted"));
}
