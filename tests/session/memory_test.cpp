// Memory through full sessions (issue 6): resume and fork reproduce the exact history and a
// fork never writes into its parent's rollout; a keel killed with SIGKILL mid-call resumes
// with every completed item and the interrupted call reported; compaction under a tiny
// context window; long-term memory through the `memory` tool and the embedding API;
// `keel sessions` newest first.
#include "session_support.hpp"

using namespace keel;
using namespace keel::session_test;

namespace {

std::string shell_call(const std::string& call_id, const std::string& script) {
  json::object args{{"command", json::array{"bash", "-c", json::value(script)}}, {"timeout_ms", 40000}};
  return json::serialize(json::object{{"name", "shell"}, {"call_id", call_id}, {"arguments", args}});
}

std::string tool_call(const std::string& name, const std::string& call_id, const json::object& args) {
  return json::serialize(json::object{{"name", name}, {"call_id", call_id}, {"arguments", args}});
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

std::string answer(const std::string& text, const std::string& expect = "") {
  json::object o{{"text", text}};
  if (!expect.empty()) o["expect"] = json::object{{"output_contains", expect}};
  return json::serialize(o);
}

// Item-by-item comparison with a readable report.
void check_same_history(const json::array& actual, const json::array& expected) {
  INFO("actual:\n" << dump(actual) << "expected:\n" << dump(expected));
  CHECK(actual.size() == expected.size());
  for (std::size_t i = 0; i < std::min(actual.size(), expected.size()); ++i) {
    INFO("item " << i);
    CHECK(json::serialize(actual[i]) == json::serialize(expected[i]));
    CHECK(actual[i] == expected[i]);
  }
}

json::object session_meta(const fs::path& rollout) {
  for (auto& line : lines_of(read_file(rollout))) {
    auto rec = parse_object(line);
    if (str(rec, "type") == "session_meta") return rec;
  }
  return {};
}

const std::vector<std::string> kNever = {"approval_policy=\"never\""};

}  // namespace

TEST_CASE("resume and fork reproduce the exact history; a fork never writes into its parent's rollout",
          "[session][memory][resume][fork]") {
  Scratch s("resume");
  std::string patch = "*** Begin Patch\n*** Add File: notes.md\n+# notes\n+resume me\n*** End Patch";
  auto script1 = s.script(
      "first.jsonl",
      {R"({"reasoning":"look first","tool_calls":[)" + shell_call("call_a", "echo one") + "]}",
       answer("first turn done", "one"),
       json::serialize(json::object{
           {"custom_tool_calls",
            json::array{json::object{{"name", "apply_patch"}, {"call_id", "call_patch"}, {"input", patch}}}}}),
       calls({shell_call("call_b", "echo two"), shell_call("call_c", "cat notes.md"),
              tool_call("read_file", "call_d", {{"file_path", (s.ws / "notes.md").string()}})}),
       answer("second turn done", "resume me")});
  std::string id;
  json::array original;
  {
    Kernel k(s.config(script1, kNever));
    id = k.start_session();
    auto r1 = wait_turn(k.submit(id, "turn one"));
    INFO(r1.error);
    REQUIRE(r1.ok());
    auto r2 = wait_turn(k.submit(id, "turn two"));
    INFO(r2.error);
    REQUIRE(r2.ok());
    original = k.history(id);
  }
  REQUIRE(original.size() >= 14);
  REQUIRE(s.rollouts().size() == 1);
  auto parent_file = s.rollout_of(id);
  REQUIRE(parent_file);
  // The rollout alone reconstructs it.
  check_same_history(rollout_items(*parent_file), original);

  // Resume: the same id, the same history, and a new turn goes into the same file.
  json::array resumed_history;
  {
    auto script2 = s.script("resumed.jsonl", {answer("resumed answer")});
    Kernel k(s.config(script2, kNever));
    SessionOptions o;
    o.resume = id;
    auto rid = k.start_session(o);
    CHECK(rid == id);
    check_same_history(k.history(rid), original);
    auto r = wait_turn(k.submit(rid, "turn three"));
    INFO(r.error);
    REQUIRE(r.ok());
    resumed_history = k.history(rid);
    REQUIRE(resumed_history.size() == original.size() + 2);
    CHECK(s.rollouts().size() == 1);
  }
  check_same_history(rollout_items(*parent_file), resumed_history);

  // Fork: a new id and file, the same history; its turn leaves the parent's bytes untouched.
  const std::string parent_bytes = read_file(*parent_file);
  std::string fork_id;
  json::array fork_history;
  {
    auto script3 = s.script("forked.jsonl", {calls({shell_call("call_f", "echo forked")}), answer("forked answer", "forked")});
    Kernel k(s.config(script3, kNever));
    SessionOptions o;
    o.fork = id;
    fork_id = k.start_session(o);
    CHECK(fork_id != id);
    check_same_history(k.history(fork_id), resumed_history);
    auto r = wait_turn(k.submit(fork_id, "turn in the fork"));
    INFO(r.error);
    REQUIRE(r.ok());
    fork_history = k.history(fork_id);
    CHECK(fork_history.size() == resumed_history.size() + 4);
  }
  CHECK(read_file(*parent_file) == parent_bytes);
  auto fork_file = s.rollout_of(fork_id);
  REQUIRE(fork_file);
  CHECK(*fork_file != *parent_file);
  CHECK(s.rollouts().size() == 2);
  CHECK(str(session_meta(*fork_file), "forked_from") == id);
  check_same_history(rollout_items(*fork_file), fork_history);

  // A fork of a session that is open in the same kernel does not write into its file either.
  {
    auto script5 = s.script("live.jsonl", {answer("goes on")});
    Kernel k(s.config(script5, kNever));
    SessionOptions o;
    o.resume = fork_id;
    auto parent = k.start_session(o);
    auto fork_file_bytes = read_file(*fork_file);
    SessionOptions f;
    f.fork = parent;
    auto child = k.start_session(f);
    CHECK(child != parent);
    check_same_history(k.history(child), fork_history);
    auto rc = wait_turn(k.submit(child, "child turn"));
    INFO(rc.error);
    CHECK(rc.ok());
    CHECK(read_file(*fork_file) == fork_file_bytes);
    auto rp = wait_turn(k.submit(parent, "parent turn"));
    CHECK(rp.ok());
    CHECK(k.history(parent).size() == fork_history.size() + 2);
    CHECK(k.history(child).size() == fork_history.size() + 2);
    auto child_file = s.rollout_of(child);
    REQUIRE(child_file);
    check_same_history(rollout_items(*child_file), k.history(child));
    check_same_history(rollout_items(*fork_file), k.history(parent));
    // (The replay provider keeps one position per session: both got the script's first answer.)
    CHECK(message_text(k.history(child).back().as_object()) == "goes on");
    CHECK(message_text(k.history(parent).back().as_object()) == "goes on");
    fork_history = k.history(parent);
  }

  // Resuming "last" in this workspace picks the newest session.
  {
    auto script4 = s.script("last.jsonl", {answer("last")});
    Kernel k(s.config(script4, kNever));
    SessionOptions o;
    o.resume = "last";
    auto last = k.start_session(o);
    CHECK(last != id);
    CHECK(last != fork_id);  // the fork of the fork, started after it
    CHECK(k.history(last).size() == fork_history.size());
  }
  CHECK(read_file(*parent_file) == parent_bytes);
}

TEST_CASE("a keel killed with SIGKILL mid-call resumes with every completed item and the call marked interrupted",
          "[session][memory][crash]") {
  Scratch s("crash");
  const std::string marker = "30.0" + std::to_string(::getpid() % 1000) + "7";
  auto script1 = s.script("crash.jsonl", {calls({shell_call("call_before", "echo before-the-crash")}),
                                          R"({"text":"about to sleep","tool_calls":[)" +
                                              shell_call("call_sleep", "echo sleeping; sleep " + marker) + "]}",
                                          answer("never reached")});
  std::string thread_id;
  {
    Child child({kKeelExe.string(), "exec", "--json", "--replay", script1.string(), "crash while sleeping"},
               {{"KEEL_HOME", s.home.string()}, {"HOME", s.fake_home.string()}}, s.ws, s.base / "io");
    bool running = eventually([&] { return !processes_with_arg(marker).empty(); }, 20s);
    // The call is in the rollout before it runs.
    bool recorded = eventually(
        [&] {
          auto files = s.rollouts();
          return files.size() == 1 && contains(read_file(files[0]), "call_sleep");
        },
        5s);
    child.kill9();
    auto r = child.wait(10s);
    kill_marked(marker);  // the command is in its own session: never leave it behind
    INFO(r.describe());
    REQUIRE(running);
    REQUIRE(recorded);
    for (auto& e : jsonl(r.out))
      if (str(e, "type") == "thread.started") thread_id = str(e, "thread_id");
  }
  REQUIRE(!thread_id.empty());
  auto file = s.rollout_of(thread_id);
  REQUIRE(file);
  const auto crashed_items = rollout_items(*file);
  // As if the kill had also cut a record in half: a torn last line is skipped, never fatal.
  {
    std::ofstream torn(*file, std::ios::binary | std::ios::app);
    torn << R"({"timestamp":"2026-01-01T00:00:00.000Z","type":"item","item":{"type":"mess)";
  }

  // keel exec resume --last: the model sees the interrupted call's output.
  auto script2 = s.script("after.jsonl", {answer("resumed after the crash", "interrupted")});
  auto r = run_keel(s, {"exec", "resume", "--last", "--json", "--replay", script2.string(), "what happened?"});
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  std::string resumed_thread;
  for (auto& e : jsonl(r.out))
    if (str(e, "type") == "thread.started") resumed_thread = str(e, "thread_id");
  CHECK(resumed_thread == thread_id);
  CHECK(contains(r.out, "resumed after the crash"));

  // And through the embedding API: every completed item, then the interrupted call closed.
  auto script3 = s.script("api.jsonl", {answer("unused")});
  Kernel k(s.config(script3, kNever));
  SessionOptions o;
  o.resume = thread_id;
  auto id = k.start_session(o);
  auto history = k.history(id);
  INFO("history:\n" << dump(history) << "rollout before resuming:\n" << dump(crashed_items));
  auto users = items_of(history, "message", "user");
  REQUIRE(users.size() == 2);
  CHECK(message_text(users[0]) == "crash while sleeping");
  CHECK(message_text(users[1]) == "what happened?");
  CHECK(contains(output_of(history, "call_before").value_or(""), "before-the-crash"));
  auto calls_made = items_of(history, "function_call");
  REQUIRE(calls_made.size() == 2);
  CHECK(str(calls_made[1], "call_id") == "call_sleep");
  auto interrupted = output_of(history, "call_sleep");
  REQUIRE(interrupted);
  CHECK(contains(*interrupted, "interrupted"));
  // The output directly follows its call, and the assistant's text of that response is kept.
  for (std::size_t i = 0; i + 1 < history.size(); ++i)
    if (str(history[i].as_object(), "call_id") == "call_sleep" && str(history[i].as_object(), "type") == "function_call")
      CHECK(str(history[i + 1].as_object(), "type") == "function_call_output");
  bool kept_text = false;
  for (auto& m : items_of(history, "message", "assistant")) kept_text |= message_text(m) == "about to sleep";
  CHECK(kept_text);
  CHECK(message_text(items_of(history, "message", "assistant").back()) == "resumed after the crash");
}

// Under a window this small every response leaves the history past the limit, so the kernel
// summarizes before every request that follows one: at the start of the second turn (after a
// text-only turn) and again after the tool call.
TEST_CASE("compaction under a tiny context window: the turn completes, the history shrinks, the rollout resumes",
          "[session][memory][compaction]") {
  Scratch s("compact");
  auto script = s.script("compact.jsonl", {answer("hello there"),
                                           answer("SUMMARY: the user greeted"),
                                           calls({shell_call("call_c", "echo compact-me")}),
                                           answer("SUMMARY: the user greeted; echo printed compact-me"),
                                           answer("finished after compaction")});
  std::string id;
  json::array compacted;
  {
    Kernel k(s.spy_config(script, {"approval_policy=\"never\"", "model_context_window=50"}));
    ProviderSpy spy;
    spy.install(k);
    Recording rec(k);
    id = k.start_session();
    auto r1 = wait_turn(k.submit(id, "hi"));
    INFO(r1.error);
    REQUIRE(r1.ok());
    auto before = k.history(id);
    REQUIRE(before.size() == 2);
    auto r2 = wait_turn(k.submit(id, "run something"));
    k.bus().drain();
    INFO("error: " << r2.error << "\nevents:\n" << rec->text());
    REQUIRE(r2.ok());
    CHECK(r2.last_agent_message == "finished after compaction");
    compacted = k.history(id);
    INFO("history after:\n" << dump(compacted));

    auto events = rec->of_type("context.compacted");
    REQUIRE(events.size() == 2);
    auto count = [](const json::object& e, const char* key) { return e.at(key).to_number<std::int64_t>(); };
    CHECK(count(events[0], "items_before") == 2);  // hi, hello there → hi, the summary
    CHECK(count(events[0], "items_after") == 2);
    CHECK(count(events[1], "items_after") < count(events[1], "items_before"));
    // Without compaction it would hold hi, hello there, run something, the call, its output, the answer.
    CHECK(compacted.size() == 4);
    CHECK(items_of(compacted, "function_call").empty());
    std::vector<std::string> users;
    for (auto& m : items_of(compacted, "message", "user")) users.push_back(message_text(m));
    REQUIRE(users.size() == 3);  // the user's two messages, then the newest summary only
    CHECK(users[0] == "hi");
    CHECK(users[1] == "run something");
    CHECK(contains(users[2], "SUMMARY: the user greeted; echo printed compact-me"));
    CHECK(message_text(compacted.back().as_object()) == "finished after compaction");

    auto requests = spy.snapshot();
    REQUIRE(requests.size() == 5);
    CHECK(ProviderSpy::tool_names(requests[1]).empty());  // the summary requests offer no tools
    CHECK(ProviderSpy::tool_names(requests[3]).empty());
    // The second turn's input joined after the summary, as it followed what that replaced.
    auto second = ProviderSpy::input(requests[2]);
    REQUIRE(second.size() == 3);
    CHECK(contains(message_text(second[1].as_object()), "SUMMARY: the user greeted"));
    CHECK(message_text(second[2].as_object()) == "run something");
    // The request after the last compaction carried the compacted history.
    auto last_input = ProviderSpy::input(requests[4]);
    CHECK(items_of(last_input, "function_call").empty());
    CHECK(last_input.size() + 1 == compacted.size());
  }
  auto file = s.rollout_of(id);
  REQUIRE(file);
  CHECK(contains(read_file(*file), "\"type\":\"compaction\""));

  // The rollout resumes to the compacted history, and the session goes on (in a 50-token
  // window even that history is over the limit: it is summarized once more first).
  auto script2 = s.script("after.jsonl", {answer("SUMMARY: resumed"), answer("after resume")});
  Kernel k(s.config(script2, {"approval_policy=\"never\"", "model_context_window=50"}));
  SessionOptions o;
  o.resume = id;
  auto rid = k.start_session(o);
  check_same_history(k.history(rid), compacted);
  auto r = wait_turn(k.submit(rid, "still there?"));
  INFO(r.error);
  CHECK(r.ok());
  CHECK(r.last_agent_message == "after resume");
}

TEST_CASE("compaction on demand through the embedding API", "[session][memory][compaction]") {
  Scratch s("compact-api");
  auto script = s.script("compact.jsonl", {calls({shell_call("call_1", "echo first")}), answer("one", "first"),
                                           answer("SUMMARY: one command ran")});
  Kernel k(s.config(script, kNever));
  Recording rec(k);
  auto id = k.start_session();
  REQUIRE(wait_turn(k.submit(id, "first")).ok());
  REQUIRE(k.history(id).size() == 4);
  auto c = k.compact(id);
  auto r = wait_turn(c);
  INFO(r.error);
  CHECK(r.ok());
  auto h = k.history(id);
  INFO(dump(h));
  CHECK(h.size() == 2);  // the user's message and the summary
  CHECK(items_of(h, "function_call").empty());
  CHECK(contains(message_text(h.back().as_object()), "SUMMARY: one command ran"));
  CHECK(rec->wait_for([](const json::object& e) { return str(e, "type") == "context.compacted"; }, 2s));
}

TEST_CASE("memory-sqlite: remember, recall and forget through the memory tool; the embedding API sees the note",
          "[session][memory][sqlite]") {
  Scratch s("sqlite");
  const std::string note = "The project builds with ninja and ccache";
  auto script = s.script("memory.jsonl",
                         {calls({tool_call("memory", "call_remember", {{"action", "remember"}, {"text", note}})}),
                          R"({"expect":{"output_contains":"Remembered as memory #1"},"tool_calls":[)" +
                              tool_call("memory", "call_recall", {{"action", "recall"}, {"query", "ninja"}}) + "]}",
                          answer("noted", "ninja and ccache"),
                          calls({tool_call("memory", "call_forget", {{"action", "forget"}, {"id", 1}})}),
                          answer("forgotten", "Forgot memory #1")});
  Kernel k(s.config(script, kNever));
  auto id = k.start_session();
  auto r1 = wait_turn(k.submit(id, "remember how we build"));
  INFO(r1.error);
  REQUIRE(r1.ok());
  CHECK(r1.last_agent_message == "noted");

  auto found = k.memory().search("ninja");
  INFO(json::serialize(found));
  REQUIRE(found.size() == 1);
  auto& m = found[0].as_object();
  CHECK(str(m, "text") == note);
  CHECK(m.at("id").to_number<std::int64_t>() == 1);
  CHECK(str(m, "session_id") == id);  // cited to the session that saved it
  CHECK(str(m, "call_id") == "call_remember");
  auto recent = k.memory().last_n(3);
  REQUIRE(recent.size() == 1);
  CHECK(str(recent[0].as_object(), "text") == note);
  CHECK(k.memory().search("unrelated words").empty());
  CHECK(fs::exists(s.home / "memory.db"));

  auto r2 = wait_turn(k.submit(id, "forget it"));
  INFO(r2.error);
  REQUIRE(r2.ok());
  CHECK(k.memory().search("ninja").empty());
  CHECK(k.memory().last_n(3).empty());
}

TEST_CASE("keel sessions lists sessions newest first; keel fork leaves the parent's rollout as it was",
          "[session][memory][cli]") {
  Scratch s("list");
  std::vector<std::string> prompts{"first prompt alpha", "second prompt beta", "third prompt gamma"};
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    auto script = s.script("s" + std::to_string(i) + ".jsonl", {answer("answer " + std::to_string(i))});
    auto r = run_keel(s, {"exec", "--json", "--replay", script.string(), prompts[i]});
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    for (auto& e : jsonl(r.out))
      if (str(e, "type") == "thread.started") ids.push_back(str(e, "thread_id"));
  }
  REQUIRE(ids.size() == 3);

  auto text = run_keel(s, {"sessions"});
  INFO(text.describe());
  REQUIRE(text.exit_code == 0);
  auto at = [&](const std::string& what) { return text.out.find(what); };
  REQUIRE(at("third prompt gamma") != std::string::npos);
  REQUIRE(at("second prompt beta") != std::string::npos);
  REQUIRE(at("first prompt alpha") != std::string::npos);
  CHECK(at("third prompt gamma") < at("second prompt beta"));
  CHECK(at("second prompt beta") < at("first prompt alpha"));
  CHECK(at(ids[2]) < at(ids[1]));
  CHECK(at(ids[1]) < at(ids[0]));
  CHECK(contains(text.out, s.ws.string()));

  auto listed = run_keel(s, {"sessions", "--json"});
  INFO(listed.describe());
  REQUIRE(listed.exit_code == 0);
  boost::system::error_code ec;
  auto arr = json::parse(listed.out, ec);
  REQUIRE(!ec);
  REQUIRE(arr.is_array());
  REQUIRE(arr.as_array().size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    auto& row = arr.as_array()[i].as_object();
    CHECK(str(row, "session_id") == ids[2 - i]);
    CHECK(str(row, "first_prompt") == prompts[2 - i]);
    CHECK(str(row, "cwd") == s.ws.string());
  }

  // keel fork: a new session, listed first, recording where it came from; the parent's bytes stay.
  auto parent = s.rollout_of(ids[0]);
  REQUIRE(parent);
  auto parent_bytes = read_file(*parent);
  auto script = s.script("fork.jsonl", {answer("forked", "")});
  auto forked = run_keel(s, {"fork", ids[0], "--json", "--replay", script.string(), "fork prompt delta"});
  INFO(forked.describe());
  REQUIRE(forked.exit_code == 0);
  CHECK(read_file(*parent) == parent_bytes);
  auto after = run_keel(s, {"sessions", "--json"});
  auto rows = json::parse(after.out, ec);
  REQUIRE(!ec);
  REQUIRE(rows.as_array().size() == 4);
  auto& newest = rows.as_array()[0].as_object();
  CHECK(str(newest, "forked_from") == ids[0]);
  CHECK(str(newest, "session_id") != ids[0]);
}

// Regression: automatic compaction used to be considered only after a response with tool
// calls, so a session of text-only turns grew past the limit until the provider refused it.
TEST_CASE("text-only turns past the auto-compact limit are compacted before the next request",
          "[session][memory][compaction]") {
  Scratch s("compact-text");
  auto script = s.script("text.jsonl", {answer("a long answer that fills the tiny window"),
                                        answer("SUMMARY: one exchange so far"), answer("second answer")});
  Kernel k(s.spy_config(script, {"approval_policy=\"never\"", "model_context_window=50"}));
  ProviderSpy spy;
  spy.install(k);
  Recording rec(k);
  auto id = k.start_session();
  auto r1 = wait_turn(k.submit(id, "first"));
  REQUIRE(r1.ok());
  CHECK(r1.usage.at("input_tokens").to_number<std::int64_t>() > 45);  // past 90 % of 50
  auto r2 = wait_turn(k.submit(id, "second"));
  INFO("error: " << r2.error << "\nevents:\n" << rec->text());
  CHECK(r2.ok());
  CHECK(rec->of_type("context.compacted").size() == 1);
  CHECK(r2.last_agent_message == "second answer");
  auto requests = spy.snapshot();
  REQUIRE(requests.size() == 3);
  CHECK(ProviderSpy::tool_names(requests[1]).empty());  // the summary, before the second request
  auto input = ProviderSpy::input(requests[2]);
  INFO(dump(input));
  CHECK(message_text(input.back().as_object()) == "second");
  bool long_answer_sent = false;
  for (auto& m : items_of(input, "message", "assistant")) long_answer_sent |= contains(message_text(m), "a long answer");
  CHECK_FALSE(long_answer_sent);
}

// A compacted history is not summarized again before a response has measured it, even when
// the request after the compaction fails.
TEST_CASE("one history is compacted once: a failed request after a compaction does not bring another",
          "[session][memory][compaction]") {
  Scratch s("compact-once");
  auto script = s.script("once.jsonl", {answer("a long answer that fills the tiny window"),
                                        answer("SUMMARY: one exchange so far"),
                                        R"({"error":{"code":"server_error","message":"try again"}})",
                                        answer("third answer")});
  Kernel k(s.spy_config(script, {"approval_policy=\"never\"", "model_context_window=50"}));
  ProviderSpy spy;
  spy.install(k);
  Recording rec(k);
  auto id = k.start_session();
  REQUIRE(wait_turn(k.submit(id, "first")).ok());
  auto r2 = wait_turn(k.submit(id, "second"));
  CHECK(r2.status == "failed");
  CHECK(contains(r2.error, "try again"));
  auto r3 = wait_turn(k.submit(id, "third"));
  k.bus().drain();
  INFO("error: " << r3.error << "\nevents:\n" << rec->text());
  CHECK(r3.ok());
  CHECK(r3.last_agent_message == "third answer");
  CHECK(rec->of_type("context.compacted").size() == 1);
  auto requests = spy.snapshot();
  REQUIRE(requests.size() == 4);
  CHECK(ProviderSpy::tool_names(requests[1]).empty());
  CHECK_FALSE(ProviderSpy::tool_names(requests[3]).empty());  // a model request, not another summary
  std::vector<std::string> users;
  for (auto& m : items_of(ProviderSpy::input(requests[3]), "message", "user")) users.push_back(message_text(m));
  INFO(dump(ProviderSpy::input(requests[3])));
  REQUIRE(users.size() == 4);
  CHECK(users[0] == "first");
  CHECK(contains(users[1], "SUMMARY: one exchange so far"));
  CHECK(users[2] == "second");
  CHECK(users[3] == "third");
}

// A resumed history has not been measured by a response: it is estimated, so one past the
// limit is summarized before its first request instead of being sent whole.
TEST_CASE("a resumed history past the auto-compact limit is compacted before its first request",
          "[session][memory][compaction][resume]") {
  Scratch s("compact-resume");
  std::string id;
  {
    auto first = s.script("first.jsonl", {answer("LONG " + std::string(2000, 'x'))});
    Kernel k(s.config(first, kNever));
    id = k.start_session();
    REQUIRE(wait_turn(k.submit(id, "write a lot")).ok());
  }
  auto second = s.script("second.jsonl", {answer("SUMMARY: one long answer so far"), answer("after the resume")});
  Kernel k(s.spy_config(second, {"approval_policy=\"never\"", "model_context_window=200"}));
  ProviderSpy spy;
  spy.install(k);
  Recording rec(k);
  SessionOptions o;
  o.resume = id;
  REQUIRE(k.start_session(o) == id);
  auto r = wait_turn(k.submit(id, "go on"));
  k.bus().drain();
  INFO("error: " << r.error << "\nevents:\n" << rec->text());
  REQUIRE(r.ok());
  CHECK(r.last_agent_message == "after the resume");
  CHECK(rec->of_type("context.compacted").size() == 1);
  auto requests = spy.snapshot();
  REQUIRE(requests.size() == 2);
  CHECK(ProviderSpy::tool_names(requests[0]).empty());  // the summary request
  auto input = json::serialize(ProviderSpy::input(requests[1]));
  CHECK(contains(input, "SUMMARY: one long answer so far"));
  CHECK_FALSE(contains(input, std::string(200, 'x')));  // the long answer itself is gone
}

// A failed automatic compaction is reported and the request goes out with the whole history:
// failing the turn instead would fail every later turn of the session the same way.
TEST_CASE("a failed automatic compaction is reported and the turn goes on", "[session][memory][compaction]") {
  Scratch s("compact-fails");
  auto script = s.script("fails.jsonl", {answer("a long answer that fills the tiny window"),
                                         R"({"error":{"code":"server_error","message":"summarizer down"}})",
                                         answer("second answer, from the whole history")});
  Kernel k(s.spy_config(script, {"approval_policy=\"never\"", "model_context_window=50"}));
  ProviderSpy spy;
  spy.install(k);
  Recording rec(k);
  auto id = k.start_session();
  REQUIRE(wait_turn(k.submit(id, "first")).ok());
  auto r2 = wait_turn(k.submit(id, "second"));
  k.bus().drain();
  INFO("error: " << r2.error << "\nevents:\n" << rec->text());
  CHECK(r2.ok());
  CHECK(r2.last_agent_message == "second answer, from the whole history");
  CHECK(rec->of_type("context.compacted").empty());
  auto errors = rec->of_type("error");
  REQUIRE(errors.size() == 1);
  CHECK(contains(str(errors[0], "message"), "summarizer down"));
  CHECK(contains(str(errors[0], "message"), "whole history"));
  auto requests = spy.snapshot();
  REQUIRE(requests.size() == 3);
  std::vector<std::string> users;
  for (auto& m : items_of(ProviderSpy::input(requests[2]), "message", "user")) users.push_back(message_text(m));
  CHECK(users == std::vector<std::string>{"first", "second"});
}

TEST_CASE("a provider error ends the turn as failed with its code; the session goes on", "[session][memory]") {
  Scratch s("provider-error");
  auto script = s.script("error.jsonl", {R"({"error":{"code":"context_window_exceeded","message":"too long for me"}})",
                                         answer("fine again")});
  Kernel k(s.config(script, kNever));
  Recording rec(k);
  auto id = k.start_session();
  auto r1 = wait_turn(k.submit(id, "a huge prompt"));
  k.bus().drain();
  INFO("events:\n" << rec->text());
  CHECK(r1.status == "failed");
  CHECK(contains(r1.error, "too long for me"));
  auto failed = rec->of_type("turn.failed");
  REQUIRE(failed.size() == 1);
  CHECK(str(failed[0].at("error").as_object(), "code") == "context_window_exceeded");
  // The user's message stays in the history; the next turn works.
  CHECK(items_of(k.history(id), "message", "user").size() == 1);
  auto r2 = wait_turn(k.submit(id, "smaller"));
  INFO(r2.error);
  CHECK(r2.ok());
  CHECK(r2.last_agent_message == "fine again");
}

TEST_CASE("project instructions: $KEEL_HOME/AGENTS.md, then the project root down to the working directory",
          "[session][memory][instructions]") {
  Scratch s("agents");
  write_file(s.home / "AGENTS.md", "HOME-RULE: be brief\n");
  write_file(s.ws / "AGENTS.md", "ROOT-RULE: use ninja\n");
  write_file(s.ws / "sub" / "AGENTS.md", "SUB-RULE: tabs in Makefiles\n");
  write_file(s.ws / "sub" / "deeper" / ".keep", "");
  write_file(s.base / "AGENTS.md", "ABOVE-THE-PROJECT: never read\n");
  auto script = s.script("agents.jsonl", {answer("ok")});
  Kernel k(s.spy_config(script, kNever));
  ProviderSpy spy;
  spy.install(k);
  SessionOptions o;
  o.cwd = (s.ws / "sub" / "deeper").string();
  auto id = k.start_session(o);
  REQUIRE(wait_turn(k.submit(id, "hello")).ok());
  auto requests = spy.snapshot();
  REQUIRE(requests.size() == 1);
  auto instructions = str(requests[0], "instructions");
  INFO(instructions);
  auto home = instructions.find("HOME-RULE"), root = instructions.find("ROOT-RULE"), sub = instructions.find("SUB-RULE");
  REQUIRE(home != std::string::npos);
  REQUIRE(root != std::string::npos);
  REQUIRE(sub != std::string::npos);
  CHECK(home < root);
  CHECK(root < sub);
  CHECK_FALSE(contains(instructions, "ABOVE-THE-PROJECT"));
}
