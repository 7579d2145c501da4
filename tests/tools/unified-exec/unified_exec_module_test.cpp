// The unified-exec module (exec_command / write_stdin), loaded from its built file and driven
// through the C ABI.
#include "proc_files.hpp"
#include "abi_test_host.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using keel::test::AbiTestHost;
using keel::test::CallResult;
using keel::test::TempDir;

namespace {

struct Options {
  std::string cwd = fs::temp_directory_path().string();
  std::string session = "s1";
  std::string sandbox = "danger-full-access";
};

// The request a kernel sends for one tool call.
std::string request(const std::string& tool, const json::object& args, const Options& o = {}) {
  return json::serialize(json::object{{"call_id", "call_1"},
                                      {"name", tool},
                                      {"arguments", json::serialize(args)},
                                      {"cwd", o.cwd},
                                      {"sandbox", json::object{{"mode", o.sandbox}}},
                                      {"session_id", o.session},
                                      {"turn_id", "t1"}});
}

// One reply in Codex's unified-exec shape:
//   Chunk ID / Wall time / Process exited with code N | Process running with session ID K /
//   [Original token count] / [Note: ...] / Output: / body
struct Reply {
  int status = -1;
  json::object payload;
  std::vector<json::object> emits;
  std::optional<int> exit_code, session_id;
  std::optional<long> original_tokens;
  double wall = -1;
  std::string notes, body;

  std::string output() const { return std::string(payload.at("output").as_string()); }
  bool success() const { return payload.at("success").as_bool(); }
  const json::object& item() const { return payload.at("item").as_object(); }
  pid_t pid() const { return static_cast<pid_t>(item().at("pid").to_number<std::int64_t>()); }
};

Reply parse(const CallResult& r, bool expect_header = true) {
  REQUIRE(r.reply_count == 1);
  REQUIRE(r.emits_after_reply == 0);
  Reply t;
  t.status = r.status;
  t.payload = json::parse(r.payload).as_object();
  for (const auto& e : r.emits) t.emits.push_back(json::parse(e).as_object());
  const std::string out = t.output();
  if (!expect_header || out.rfind("Chunk ID: ", 0) != 0) return t;  // e.g. "Unknown session id"
  auto at = out.find("Output:\n");
  INFO(out);
  REQUIRE(at != std::string::npos);
  static const std::regex header(
      R"(Chunk ID: [0-9a-f]{6}\nWall time: (\d+\.\d{4}) seconds\n(?:Process exited with code (-?\d+)\n)?)"
      R"((?:Process running with session ID (\d+)\n)?(?:Original token count: (\d+)\n)?((?:Note: [^\n]*\n)*))");
  std::smatch m;
  const std::string head = out.substr(0, at);
  REQUIRE(std::regex_match(head, m, header));
  t.wall = std::stod(m[1]);
  if (m[2].matched) t.exit_code = std::stoi(m[2]);
  if (m[3].matched) t.session_id = std::stoi(m[3]);
  if (m[4].matched) t.original_tokens = std::stol(m[4]);
  t.notes = m[5];
  t.body = out.substr(at + 8);
  return t;
}

// Login shells are slow to start on some machines (profile scripts); tests that are not about
// login use `-c`.
Reply exec(AbiTestHost& host, json::object args, const Options& o = {}) {
  if (!args.contains("login")) args["login"] = false;
  return parse(host.call("exec_command", "call", request("exec_command", args, o)));
}

Reply write(AbiTestHost& host, int id, const std::string& chars, int yield_ms = 250, const Options& o = {}) {
  return parse(host.call("write_stdin", "call",
                         request("write_stdin", json::object{{"session_id", id}, {"chars", chars}, {"yield_time_ms", yield_ms}}, o)));
}

// Polls a session (empty writes) until `needle` shows up or the process exits; returns
// everything read. `last` receives the last reply.
std::string read_until(AbiTestHost& host, int id, const std::string& needle, Reply* last = nullptr,
                       std::chrono::milliseconds within = 15s) {
  std::string seen;
  auto until = Clock::now() + within;
  while (Clock::now() < until) {
    Reply r = write(host, id, "", 500);
    seen += r.body;
    if (last) *last = r;
    if (seen.find(needle) != std::string::npos || r.exit_code || !r.success()) break;
  }
  return seen;
}

// ---- processes, via /proc (zombies do not count: PID 1 here does not reap orphans) --------

using keel::test::pid_alive;  // /proc read with read(2): processes vanish mid-scan (proc_files.hpp)
using keel::test::proc_stat;

// Live processes in the terminal session (or process group) `sid`.
std::vector<pid_t> live_in_session(pid_t sid) {
  std::vector<pid_t> live;
  std::error_code ec;
  for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto s = proc_stat(static_cast<pid_t>(std::stol(name)));
    if (s && s->state != 'Z' && s->state != 'X' && (s->session == sid || s->pgrp == sid))
      live.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return live;
}

bool session_dies(pid_t sid, std::chrono::milliseconds within = 3s) {
  auto until = Clock::now() + within;
  while (!live_in_session(sid).empty()) {
    if (Clock::now() > until) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

bool eventually(const std::function<bool()>& f, std::chrono::milliseconds within = 5s) {
  auto until = Clock::now() + within;
  while (!f()) {
    if (Clock::now() > until) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

TEST_CASE("the module describes two mutating tools", "[unified_exec]") {
  AbiTestHost host(KEEL_UNIFIED_EXEC_MODULE_PATH);
  REQUIRE(host.module().capability_count == 2);
  for (const char* name : {"exec_command", "write_stdin"}) {
    const auto* cap = host.capability(name);
    REQUIRE(cap);
    CHECK(cap->kind == KEEL_CAP_TOOL);
    CHECK((cap->flags & KEEL_FLAG_MUTATING) != 0);
    CHECK((cap->flags & KEEL_FLAG_PARALLEL_SAFE) == 0);
    auto schema = json::parse(cap->schema_json).as_object();
    CHECK(schema.at("type").as_string() == "object");
  }
  auto exec_props = json::parse(host.capability("exec_command")->schema_json).as_object().at("properties").as_object();
  for (const char* p : {"cmd", "workdir", "yield_time_ms", "max_output_tokens", "shell", "login"}) CHECK(exec_props.contains(p));
  auto write_props = json::parse(host.capability("write_stdin")->schema_json).as_object().at("properties").as_object();
  for (const char* p : {"session_id", "chars", "yield_time_ms", "max_output_tokens"}) CHECK(write_props.contains(p));
}

TEST_CASE("a command that exits within its yield reports its exit code and output", "[unified_exec]") {
  AbiTestHost host(KEEL_UNIFIED_EXEC_MODULE_PATH);
  host.start();

  auto t0 = Clock::now();
  auto r = exec(host, {{"cmd", "printf 'hello\\nworld\\n'"}});
  CHECK(seconds_since(t0) < 5);  // returned as soon as it exited, not after the 10 s yield
  CHECK(r.status == KEEL_OK);
  CHECK(r.success());
  REQUIRE(r.exit_code);
  CHECK(*r.exit_code == 0);
  CHECK_FALSE(r.session_id);
  CHECK(r.body == "hello\nworld\n");  // the terminal's \r\n comes back as \n
  CHECK(r.wall >= 0);
  CHECK(r.item().at("type").as_string() == "command_execution");
  CHECK(r.item().at("command").as_string() == "printf 'hello\\nworld\\n'");
  CHECK(r.item().at("exit_code").as_int64() == 0);
  CHECK(r.item().at("status").as_string() == "completed");
  CHECK_THAT(std::string(r.item().at("aggregated_output").as_string()), Catch::Contains("world"));
  // Progress streams as output.delta events while it runs.
  std::string streamed;
  for (const auto& e : r.emits)
    if (e.at("type").as_string() == "output.delta") streamed += e.at("delta").as_string();
  CHECK_THAT(streamed, Catch::Contains("hello"));

  auto failed = exec(host, {{"cmd", "echo oops; exit 3"}});
  CHECK_FALSE(failed.success());
  REQUIRE(failed.exit_code);
  CHECK(*failed.exit_code == 3);
  CHECK(failed.body == "oops\n");
  CHECK(failed.item().at("status").as_string() == "failed");
}

TEST_CASE("the process runs in a pseudo-terminal that is its controlling terminal", "[unified_exec][pty]") {
  AbiTestHost host(KEEL_UNIFIED_EXEC_MODULE_PATH);
  host.start();
  auto r = exec(host, {{"cmd", "test -t 0 && test -t 1 && echo stdin-and-stdout-are-a-tty; stty size; "
                              "exec 3<>/dev/tty && echo controlling-terminal-ok; echo TERM=$TERM; "
                              "test \"$(ps -o sid= -p $$ | tr -d ' ')\" = $$ && echo session-leader"}});
  INFO(r.output());
  REQUIRE(r.exit_code);
  CHECK(*r.exit_code == 0);
  CHECK_THAT(r.body, Catch::Contains("stdin-and-stdout-are-a-tty"));
  CHECK_THAT(r.body, Catch::Contains("24 80"));
  CHECK_THAT(r.body, Catch::Contains("controlling-terminal-ok"));
  CHECK_THAT(r.body, Catch::Contains("TERM=dumb"));
  if (fs::exists("/bin/ps") || fs::exists("/usr/bin/ps")) CHECK_THAT(r.body, Catch::Contains("session-leader"));
}

TEST_CASE("a PTY session drives python3 -i", "[unified_exec][python]") {
  AbiTestHost host(KEEL_UNIFIED_EXEC_MODULE_PATH);
  host.start();

  auto start = exec(host, {{"cmd", "python3 -i"}, {"yield_time_ms", 1000}});
  INFO(start.output());
  REQUIRE(start.success());
  REQUIRE(start.session_id);
  CHECK_FALSE(start.exit_code);
  const int id = *start.session_id;
  CHECK(start.item().at("status").as_string() == "in_progress");
  CHECK(start.item().at("exit_code").is_null());
  CHECK(start.item().at("session_id").as_int64() == id);
  std::string seen = start.body;
  if (seen.find(">>> ") == std::string::npos) seen += read_until(host, id, ">>> ");
  CHECK_THAT(seen, Catch::Contains(">>> "));

  auto answer = write(host, id, "print(6*7)\n", 1000);
  REQUIRE(answer.session_id);
  CHECK(*answer.session_id == id);
  std::string text = answer.body;
  if (!std::regex_search(text, std::regex(R"((^|\n)42\n)"))) text += read_until(host, id, "42\n");
  INFO(text);
  CHECK(std::regex_search(text, std::regex(R"((^|\n)42\n)")));  // its own line, not the echoed input
  CHECK_THAT(text, Catch::Contains("print(6*7)"));                // the terminal echoes what was typed

  Reply bye = write(host, id, "exit()\n", 5000);
  if (!bye.exit_code) read_until(host, id, "\x01never\x01", &bye);
  INFO(bye.output());
  REQUIRE(bye.exit_code);
  CHECK(*bye.exit_code == 0);
  CHECK_FALSE(bye.session_id);
  CHECK(bye.success());
  CHECK(bye.item().at("status").as_string() == "completed");

  // Its final output was returned: the session is gone.
  auto gone = write(host, id, "", 250);
  CHECK_FALSE(gone.success());
  CHECK_THAT(gone.output(), Catch::Contains("Unknown session id " + std::to_string(id)));
}

TEST_CASE("a session outlives its yield and is polled with empty input", "[unified_exec]") {
  AbiTestHost host(KEEL_UNIFIED_EXEC_MODULE_PATH);
  host.start();

  auto t0 = Clock::now();
  auto r = exec(host, {{"cmd", "echo started; sleep 1; echo done-$((6*7))"}, {"yield_time_ms", 250}});
  CHECK(seconds_since(t0) < 0.9);
  REQUIRE(r.session_id);
  CHECK(r.success());
  CHECK(r.body == "started\n");
  CHECK(r.wall >= 0.25);

  t0 = Clock::now();
  auto polled = write(host, *r.session_id, "", 5000);
  INFO(polled.output());
  CHECK(seconds_since(t0) < 3);  // returned when the process exited, not after 5 s
  REQUIRE(polled.exit_code);
  CHECK(*polled.exit_code == 0);
  CHECK(polled.body == "done-42\n");
  CHECK(polled.item().at("stdin").as_string() == "");

  auto gone = write(host, *r.session_id, "");
  CHECK_FALSE(gone.success());
  CHECK_THAT(gone.output(), Catch::Contains("Unknown session id"));
}

TEST_CASE("Ctrl-C typed into the terminal interrupts the process", "[unified_exec][pty]") {
  AbiTestHost host(KEEL_UNIFIED_EXEC_MODULE_PATH);
  host.start();
  auto r = exec(host, {{"cmd", "sleep 100"}, {"yield_time_ms", 300}});
  REQUIRE(r.session_id);
  auto t0 = Clock::now();
  auto stopped = write(host, *r.session_id, "\x03", 5000);
  INFO(stopped.output());
  CHECK(seconds_since(t0) < 3);
  REQUIRE(stopped.exit_code);
  CHECK(*stopped.exit_code == 128 + SIGINT);
  CHECK_FALSE(stopped.success());
}

TEST_CASE("unknown and malformed session ids are clear errors", "[unified_exec][errors]") {
  AbiTestHost host(KEEL_UNIFIED_EXEC_MODULE_PATH);
  host.start();

  auto unknown = write(host, 9999, "ls\n");
  CHECK(unknown.status == KEEL_OK);
  CHECK_FALSE(unknown.success());
  CHECK_THAT(unknown.output(), Catch::Contains("Unknown session id 9999"));
  CHECK_THAT(unknown.output(), Catch::Contains("exec_command"));

  auto bad = [&](const json::object& args, const std::string& expect) {
    auto r = parse(host.call("write_stdin", "call", request("write_stdin", args)), false);
    CHECK(r.status == KEEL_OK);
    CHECK_FALSE(r.success());
    CHECK_THAT(r.output(), Catch::Contains(expect));
  };
  bad({{"chars", "x"}}, "session_id");
  bad({{"session_id", "abc"}}, "session_id");
  bad({{"session_id", true}}, "session_id");
  bad({{"session_id", 1}, {"chars", 5}}, "chars");

  // A session belongs to the kernel session that started it.
  auto mine = exec(host, {{"cmd", "sleep 100"}, {"yield_time_ms", 250}});
  REQUIRE(mine.session_id);
  Options other;
  other.session = "someone-else";
  auto theirs = write(host, *mine.session_id, "", 250, other);
  CHECK_FALSE(theirs.success());
  CHECK_THAT(theirs.output(), Catch::Contains("Unknown session id"));
  // ... and a numeric string works for the owner.
  auto again = parse(host.call("write_stdin", "call",
                               request("write_stdin", {{"session_id", std::to_string(*mine.session_id)}, {"chars", ""}})));
  CHECK(again.success());
  CHECK(again.session_id == mine.session_id);
}

TEST_CASE("bad exec_command arguments are an unsuccessful output", "[unified_exec][errors]") {
  AbiTestHost host(KEEL_UNIFIED_EXEC_MODULE_PATH);
  host.start();
  auto bad = [&](const std::string& arguments, const std::string& expect) {
    json::object req{{"call_id", "c"}, {"name", "exec_command"}, {"arguments", arguments}, {"cwd", "/"},
                     {"sandbox", json::object{{"mode", "danger-full-access"}}}, {"session_id", "s1"}};
    auto r = parse(host.call("exec_command", "call", json::serialize(req)), false);
    CHECK(r.status == KEEL_OK);
    CHECK_FALSE(r.success());
    CHECK_THAT(r.output(), Catch::Contains(expect));
  };
  bad("{}", "cmd");
  bad(R"({"cmd": ["ls"]})", "cmd");
  bad(R"({"cmd": "  "})", "cmd");
  bad(R"({"cmd": "ls", "yield_time_ms": "soon"})", "yield_time_ms");
  bad(R"({"cmd": "ls", "login": "yes"})", "login");
  bad(R"({"cmd": "ls", "shell": "/no/such/shell"})", "shell");
  bad("not json", "parse");
}

TEST_CASE("workdir is relative to the request's cwd; a missing one is refused", "[unified_exec]") {
  TempDir dir{"keel-unified-exec-test"};
  fs::create_directories(dir.path() / "sub");
  AbiTestHost host(KEEL_UNIFIED_EXEC_MODULE_PATH);
  host.start();
  Options o;
  o.cwd = dir.path().string();
  auto r = exec(host, {{"cmd", "pwd"}, {"workdir", "sub"}}, o);
  CHECK(r.body == (dir.path() / "sub").string() + "\n");
  auto plain = exec(host, {{"cmd", "pwd"}}, o);
  CHECK(plain.body == dir.path().string() + "\n");
  auto missing = exec(host, {{"cmd", "pwd"}, {"workdir", "nope"}}, o);
  CHECK_FALSE(missing.success());
  CHECK_THAT(missing.body, Catch::Contains("does not exist"));
}

TEST_CASE("shell and login choose how cmd is run", "[unified_exec]") {
  AbiTestHost host(KEEL_UNIFIED_EXEC_MODULE_PATH);
  host.start();
  auto r = exec(host, {{"cmd", "echo $0; shopt -q login_shell && echo login || echo not-login"}, {"shell", "bash"}, {"login", false}});
  CHECK_THAT(r.body, Catch::Contains("bash"));
  CHECK_THAT(r.body, Catch::Contains("not-login"));
  auto l = exec(host, {{"cmd", "shopt -q login_shell && echo login || echo not-login"}, {"shell", "bash"}, {"login", true}});
  CHECK(l.body == "login\n");
}

TEST_CASE("yield_time_ms is clamped to at least 250 ms", "[unified_exec]") {
  AbiTestHost host(KEEL_UNIFIED_EXEC_MODULE_PATH);
  host.start();
  auto t0 = Clock::now();
  auto r = exec(host, {{"cmd", "sleep 5"}, {"yield_time_ms", 1}});
  CHECK(seconds_since(t0) >= 0.24);
  CHECK(seconds_since(t0) < 2);
  CHECK(r.session_id);
}

TEST_CASE("output is capped to about max_output_tokens * 4 bytes, in the middle", "[unified_exec][truncate]") {
  AbiTestHost host(KEEL_UNIFIED_EXEC_MODULE_PATH);
  host.start();
  auto r = exec(host, {{"cmd", "seq 1 20000"}, {"max_output_tokens", 100}});
  INFO(r.output());
  REQUIRE(r.exit_code);
  CHECK(*r.exit_code == 0);
  REQUIRE(r.original_tokens);
  CHECK(*r.original_tokens == (108894 + 3) / 4);  // `seq 1 20000` prints 108894 bytes
  CHECK(r.body.size() < 400 + 100);              // the budget plus the truncation note
  CHECK_THAT(r.body, Catch::StartsWith("1\n2\n"));
  CHECK_THAT(r.body, Catch::EndsWith("19999\n20000\n"));
  CHECK_THAT(r.body, Catch::Contains("truncated"));

  auto small = exec(host, {{"cmd", "echo short"}, {"max_output_tokens", 100}});
  CHECK_FALSE(small.original_tokens);
  CHECK(small.body == "short\n");
}

TEST_CASE("unread output is kept in a bounded head + tail buffer", "[unified_exec][truncate]") {
  AbiTestHost host(KEEL_UNIFIED_EXEC_MODULE_PATH);
  host.start(R"({"buffer_max_bytes": 65536})");
  auto r = exec(host, {{"cmd", "echo first-line; sleep 0.3; head -c 3000000 /dev/zero | tr '\\0' x; echo; echo last-line; sleep 0.5"},
                       {"yield_time_ms", 250}});
  REQUIRE(r.session_id);
  std::this_thread::sleep_for(1500ms);  // 3 MB arrive while nobody polls
  auto polled = write(host, *r.session_id, "", 5000, {});
  INFO(polled.output().substr(0, 300));
  REQUIRE(polled.exit_code);
  REQUIRE(polled.original_tokens);
  CHECK(*polled.original_tokens > 3000000 / 4);  // every byte was counted...
  CHECK(polled.body.size() < 45000);              // ...the model gets its budget (10000 tokens)
  CHECK_THAT(polled.body, Catch::EndsWith("last-line\n"));
  CHECK_THAT(polled.body, Catch::Contains("truncated"));
}

TEST_CASE("at most 64 live sessions: the least recently used idle one is closed", "[unified_exec][cap]") {
  AbiTestHost host(KEEL_UNIFIED_EXEC_MODULE_PATH);
  host.start();

  std::vector<std::shared_ptr<keel::test::PendingCall>> starting;
  for (int i = 0; i < 64; ++i)
    starting.push_back(host.begin("exec_command", "call",
                                  request("exec_command", {{"cmd", "exec sleep 1000"}, {"yield_time_ms", 250}, {"login", false}})));
  std::map<int, pid_t> pids;  // session id -> process
  for (auto& c : starting) {
    REQUIRE(c->wait(30s));
    auto r = parse(c->result());
    REQUIRE(r.session_id);
    pids[*r.session_id] = r.pid();
  }
  REQUIRE(pids.size() == 64);
  for (auto& [id, pid] : pids) CHECK(pid_alive(pid));

  // Touch one of the oldest so it becomes recently used; it must not be the one closed.
  const int touched = pids.begin()->first;
  CHECK(write(host, touched, "").session_id == touched);

  auto extra = exec(host, {{"cmd", "echo sixty-five"}});
  INFO(extra.output());
  CHECK(extra.body == "sixty-five\n");
  std::smatch m;
  REQUIRE(std::regex_search(extra.notes, m, std::regex(R"(Note: 64 interactive sessions were open, so session (\d+) )")));
  const int closed = std::stoi(m[1]);
  REQUIRE(pids.count(closed));
  CHECK(closed != touched);
  CHECK(session_dies(pids[closed]));
  auto gone = write(host, closed, "");
  CHECK_THAT(gone.output(), Catch::Contains("Unknown session id"));

  // The one that exited is gone, so a 64th live one fits; a 65th closes another. Every other
  // session survives.
  auto live = exec(host, {{"cmd", "exec sleep 1000"}, {"yield_time_ms", 250}});
  REQUIRE(live.session_id);
  CHECK(live.notes.empty());
  auto live2 = exec(host, {{"cmd", "exec sleep 1000"}, {"yield_time_ms", 250}});
  REQUIRE(live2.session_id);
  REQUIRE(std::regex_search(live2.notes, m, std::regex(R"(so session (\d+) )")));
  const int closed2 = std::stoi(m[1]);
  CHECK(closed2 != closed);
  CHECK(closed2 != touched);
  CHECK(session_dies(pids[closed2]));
  int alive = 0;
  for (auto& [id, pid] : pids) alive += pid_alive(pid) ? 1 : 0;
  CHECK(alive == 62);

  host.stop();
  for (auto& [id, pid] : pids) CHECK(session_dies(pid));
  CHECK(session_dies(live.pid()));
  CHECK(session_dies(live2.pid()));
}

TEST_CASE("when every session that could be closed is busy, a new one is refused", "[unified_exec][cap]") {
  AbiTestHost host(KEEL_UNIFIED_EXEC_MODULE_PATH);
  host.start(R"({"max_sessions": 1})");
  auto first = exec(host, {{"cmd", "sleep 100"}, {"yield_time_ms", 250}});
  REQUIRE(first.session_id);
  auto polling = host.begin("write_stdin", "call",
                            request("write_stdin", {{"session_id", *first.session_id}, {"chars", ""}, {"yield_time_ms", 3000}}));
  std::this_thread::sleep_for(300ms);
  auto refused = exec(host, {{"cmd", "echo never-runs"}});
  CHECK_FALSE(refused.success());
  CHECK_THAT(refused.body, Catch::Contains("cannot start another interactive session"));
  CHECK_THAT(refused.body, Catch::Contains("1 are open"));
  REQUIRE(polling->wait(10s));
  CHECK(parse(polling->result()).session_id == first.session_id);

  // Idle again: now it is the one closed (max_sessions 1 protects none).
  auto next = exec(host, {{"cmd", "echo runs"}});
  CHECK(next.body == "runs\n");
  CHECK_THAT(next.notes, Catch::Contains("so session " + std::to_string(*first.session_id)));
  CHECK(session_dies(first.pid()));
}

TEST_CASE("module stop kills every session's processes", "[unified_exec][stop]") {
  std::vector<pid_t> sids;
  {
    AbiTestHost host(KEEL_UNIFIED_EXEC_MODULE_PATH);
    host.start(R"({"kill_grace_ms": 300})");
    const char* commands[] = {
        "sleep 1000 & sleep 1000",                   // a background grandchild in the group
        "trap '' TERM HUP INT; sleep 1000; echo x",  // ignores the polite signals: needs SIGKILL
        "python3 -i",                                 // a REPL
        "set -m; sleep 1000 & wait",                  // job control: a process group of its own
    };
    for (const char* cmd : commands) {
      auto r = exec(host, {{"cmd", cmd}, {"yield_time_ms", 400}});
      INFO(cmd << "\n" << r.output());
      REQUIRE(r.session_id);
      sids.push_back(r.pid());
    }
    for (pid_t sid : sids) CHECK(!live_in_session(sid).empty());
    // The job-control sleep really is in another group of the same terminal session.
    CHECK(eventually([&] {
      for (pid_t p : live_in_session(sids[3]))
        if (auto s = proc_stat(p); s && s->pgrp != sids[3]) return true;
      return false;
    }));
    auto t0 = Clock::now();
    host.stop();
    CHECK(seconds_since(t0) < 5);
  }
  for (pid_t sid : sids) {
    INFO("session " << sid);
    CHECK(session_dies(sid, 2s));
  }
}

TEST_CASE("cancellation: exec_command kills its process, write_stdin only stops waiting", "[unified_exec][cancel]") {
  AbiTestHost host(KEEL_UNIFIED_EXEC_MODULE_PATH);
  host.start();

  auto call = host.begin("exec_command", "call", request("exec_command", {{"cmd", "echo begun; sleep 1000"}, {"yield_time_ms", 30000}, {"login", false}}));
  std::this_thread::sleep_for(500ms);
  auto t0 = Clock::now();
  call->cancel();
  REQUIRE(call->wait(3s));
  CHECK(seconds_since(t0) < 1);
  auto r = parse(call->result());
  CHECK(r.status == KEEL_ERR_CANCELLED);
  CHECK_FALSE(r.success());
  CHECK_FALSE(r.session_id);
  CHECK_THAT(r.notes, Catch::Contains("cancelled"));
  CHECK(r.body == "begun\n");
  CHECK(session_dies(r.pid()));

  auto s = exec(host, {{"cmd", "sleep 1000"}, {"yield_time_ms", 250}});
  REQUIRE(s.session_id);
  auto poll = host.begin("write_stdin", "call",
                         request("write_stdin", {{"session_id", *s.session_id}, {"chars", ""}, {"yield_time_ms", 30000}}));
  std::this_thread::sleep_for(300ms);
  poll->cancel();
  REQUIRE(poll->wait(3s));
  auto p = parse(poll->result());
  CHECK(p.status == KEEL_ERR_CANCELLED);
  CHECK(p.session_id == s.session_id);
  CHECK(pid_alive(s.pid()));
  CHECK(write(host, *s.session_id, "").session_id == s.session_id);
}

TEST_CASE("commands are wrapped by sandbox.prepare unless the sandbox is danger-full-access", "[unified_exec][sandbox]") {
  TempDir dir{"keel-unified-exec-test"};
  AbiTestHost host(KEEL_UNIFIED_EXEC_MODULE_PATH);
  host.start();
  std::mutex mu;
  std::vector<json::object> prepared;
  bool refuse = false;
  host.set_request_handler([&](std::string_view topic, std::string_view payload) -> std::pair<int, std::string> {
    if (topic != "sandbox.prepare") return {KEEL_ERR_NOT_FOUND, R"({"error":{"message":"no such topic"}})"};
    std::lock_guard lock(mu);
    auto req = json::parse(payload).as_object();
    prepared.push_back(req);
    if (refuse) return {KEEL_ERR_DENIED, R"({"error":{"message":"no sandbox for you"}})"};
    json::array argv{"env", "KEEL_SANDBOXED=yes"};
    for (auto& a : req.at("argv").as_array()) argv.push_back(a);
    return {KEEL_OK, json::serialize(json::object{{"argv", argv}, {"env", json::object{{"EXTRA", "from-sandbox"}}}})};
  });
  Options o;
  o.cwd = dir.path().string();
  o.sandbox = "workspace-write";

  auto r = exec(host, {{"cmd", "echo sandboxed=$KEEL_SANDBOXED extra=$EXTRA"}}, o);
  CHECK(r.body == "sandboxed=yes extra=from-sandbox\n");
  {
    std::lock_guard lock(mu);
    REQUIRE(prepared.size() == 1);
    const auto& req = prepared[0];
    CHECK(req.at("policy").as_object().at("mode").as_string() == "workspace-write");
    CHECK(req.at("cwd").as_string() == dir.path().string());
    const auto& argv = req.at("argv").as_array();
    REQUIRE(argv.size() == 3);
    CHECK(argv[1].as_string() == "-c");  // login: false (see exec())
    CHECK(argv[2].as_string() == "echo sandboxed=$KEEL_SANDBOXED extra=$EXTRA");
    refuse = true;
  }

  auto refused = exec(host, {{"cmd", "touch marker"}}, o);
  CHECK_FALSE(refused.success());
  CHECK_THAT(refused.body, Catch::Contains("sandbox error: no sandbox for you"));
  CHECK_FALSE(refused.session_id);
  CHECK_FALSE(refused.exit_code);
  std::this_thread::sleep_for(200ms);
  CHECK_FALSE(fs::exists(dir.path() / "marker"));  // never run unsandboxed

  o.sandbox = "danger-full-access";
  auto direct = exec(host, {{"cmd", "echo sandboxed=${KEEL_SANDBOXED:-no}"}}, o);
  CHECK(direct.body == "sandboxed=no\n");
  std::lock_guard lock(mu);
  CHECK(prepared.size() == 2);
}
