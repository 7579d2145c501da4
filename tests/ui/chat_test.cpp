// The interactive front end (modules/ui/chat) in a real terminal: replayed sessions typed
// into `keel` through tmux, approvals answered with keys, Ctrl-C and Ctrl-D.
#include "tmux_pane.hpp"

#include <boost/json.hpp>

#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

using namespace keel::ui_test;
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

// A KEEL_HOME holding the build's signed modules and key, a workspace and a $HOME, in a
// fresh directory that is removed afterwards.
struct Scratch {
  fs::path root, home, ws;
  Scratch() {
    std::string tmpl = (fs::temp_directory_path() / "keel-ui-test-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    root = tmpl;
    home = root / "keel-home";
    ws = root / "ws";
    fs::create_directories(ws);
    fs::create_directories(root / "user");
    fs::create_directories(home);
    const fs::path build_home = fs::path(KEEL_BINARY_DIR) / "keel-home";
    fs::copy(build_home / "modules", home / "modules", fs::copy_options::recursive);
    fs::copy(build_home / "trusted_keys", home / "trusted_keys", fs::copy_options::recursive);
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  fs::path script(const std::string& name, const std::vector<std::string>& responses) const {
    fs::path p = root / name;
    std::ofstream out(p);
    for (auto& r : responses) out << r << "\n";
    return p;
  }
  std::vector<std::string> env() const {
    return {"KEEL_HOME=" + home.string(), "HOME=" + (root / "user").string(), "TERM=xterm-256color", "NO_COLOR=1"};
  }
  // `keel chat` on a replay script, plus any extra arguments.
  std::vector<std::string> keel(const fs::path& script, std::vector<std::string> extra = {},
                                const std::string& command = "chat") const {
    std::vector<std::string> argv{KEEL_EXE};
    if (!command.empty()) argv.push_back(command);
    for (std::string a : {"-C", ws.c_str(), "--replay", script.c_str()}) argv.push_back(a);
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }
};

std::string shell_call(const std::string& call_id, const std::vector<std::string>& command) {
  json::array argv;
  for (auto& c : command) argv.emplace_back(c);
  return json::serialize(json::object{{"name", "shell"}, {"call_id", call_id}, {"arguments", json::object{{"command", argv}}}});
}

std::string calls(const std::string& text, const std::string& call) {
  return "{\"text\":" + json::serialize(json::value(text)) + ",\"tool_calls\":[" + call + "]}";
}

std::string answer(const std::string& text, const std::string& expect = "") {
  json::object o{{"text", text}};
  if (!expect.empty()) o["expect"] = json::object{{"output_contains", expect}};
  return json::serialize(o);
}

}  // namespace

TEST_CASE("chat: a conversation typed at the prompt, with tools, slash commands and /quit", "[ui][chat]") {
  Scratch s;
  auto script = s.script("talk.jsonl", {calls("I will write hello.txt.", shell_call("c1", {"bash", "-c", "echo hi-there > hello.txt && cat hello.txt"})),
                                        answer("Wrote hello.txt; it says hi-there.", "hi-there"),
                                        answer("A second answer, to a typed prompt.")});
  TmuxPane pane(s.env(), s.keel(script, {"write hello.txt"}));
  pane.expect("Wrote hello.txt; it says hi-there.");
  CHECK(pane.count("› write hello.txt") == 1);                 // the first prompt, echoed
  pane.expect("echo hi-there > hello.txt");           // the command, shown with its status
  CHECK(pane.count("(exit 0)") == 1);
  CHECK(fs::exists(s.ws / "hello.txt"));
  pane.expect("tokens:");

  pane.line("and now something else");
  pane.expect("A second answer, to a typed prompt.");

  pane.line("/status");
  pane.expect("workdir  " + fs::canonical(s.ws).string());
  CHECK(pane.count("  session  ") == 1);
  pane.line("/frobnicate");
  pane.expect("unknown command /frobnicate");
  pane.line("/quit");
  pane.expect("KEEL-EXIT=0");
}

TEST_CASE("chat: approvals are asked in the terminal and the answers hold", "[ui][chat][approvals]") {
  Scratch s;
  auto script = s.script("approve.jsonl", {calls("Touching a.", shell_call("c1", {"touch", "a.txt"})),
                                           answer("a is there.", "Exit code: 0"),
                                           calls("Touching b.", shell_call("c2", {"touch", "b.txt"})),
                                           answer("Understood, b was refused.", "denied")});
  TmuxPane pane(s.env(), s.keel(script, {"-a", "untrusted", "make a"}));
  pane.expect("keel wants to run touch a.txt");
  CHECK_FALSE(fs::exists(s.ws / "a.txt"));  // nothing runs before the answer
  pane.line("maybe");
  pane.expect("answer y, a, r, n or x");
  pane.line("y");
  pane.expect("a is there.");
  CHECK(fs::exists(s.ws / "a.txt"));

  pane.line("make b");
  pane.expect("keel wants to run touch b.txt");
  pane.line("n");
  pane.expect("Understood, b was refused.");
  CHECK_FALSE(fs::exists(s.ws / "b.txt"));
  pane.ctrl_d();
  pane.expect("KEEL-EXIT=0");
}

TEST_CASE("chat: plain `keel` at a terminal is a conversation; Ctrl-D at the prompt leaves", "[ui][chat]") {
  Scratch s;
  auto script = s.script("none.jsonl", {answer("unused")});
  TmuxPane pane(s.env(), s.keel(script, {}, ""));
  pane.expect("/help for commands");
  pane.ctrl_d();
  pane.expect("KEEL-EXIT=0");
}

TEST_CASE("chat: Ctrl-C stops a running command and the conversation goes on", "[ui][chat][interrupt]") {
  Scratch s;
  auto script = s.script("long.jsonl", {calls("Waiting a while.", shell_call("c1", {"bash", "-c", "echo started; sleep 61.25"})),
                                        answer("Still here after the interrupt.")});
  TmuxPane pane(s.env(), s.keel(script, {"-s", "danger-full-access", "wait"}));
  pane.expect("Waiting a while.");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the command is running
  auto started = std::chrono::steady_clock::now();
  pane.ctrl_c();
  pane.expect("■ interrupted", std::chrono::seconds(10));
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
  CHECK(run_capture("pgrep -f '[s]leep 61.25' || true").empty());  // the command is gone
  CHECK(pane.count("KEEL-EXIT") == 0);                         // keel is not
  pane.line("are you there?");
  pane.expect("Still here after the interrupt.");
  // Twice at an idle prompt: leave.
  pane.ctrl_c();
  pane.expect("Ctrl-C again to leave");
  pane.ctrl_c();
  pane.expect("KEEL-EXIT=0");
}

TEST_CASE("chat: keel resume --last continues the newest session with its history", "[ui][chat][resume]") {
  Scratch s;
  std::string id;
  {
    auto first = s.script("first.jsonl", {answer("The codeword is PAPAYA.")});
    TmuxPane pane(s.env(), s.keel(first, {"remember a codeword"}));
    pane.expect("The codeword is PAPAYA.");
    pane.line("/status");
    pane.expect("  session  ");
    auto screen = pane.screen();
    auto at = screen.find("  session  ") + std::string("  session  ").size();
    id = screen.substr(at, screen.find('\n', at) - at);
    pane.line("/quit");
    pane.expect("KEEL-EXIT=0");
  }
  REQUIRE(id.size() >= 32);
  auto second = s.script("second.jsonl", {answer("It was PAPAYA.", "")});
  TmuxPane pane(s.env(), s.keel(second, {"--last"}, "resume"));
  pane.expect("resumed session " + id);
  pane.expect("earlier messages are in the context");
  pane.line("what was the codeword?");
  pane.expect("It was PAPAYA.");
  pane.ctrl_d();
  pane.expect("KEEL-EXIT=0");
}

TEST_CASE("chat: SIGTERM at the prompt ends keel at once with 143", "[ui][chat][signals]") {
  Scratch s;
  auto script = s.script("none.jsonl", {answer("unused")});
  TmuxPane pane(s.env(), s.keel(script));
  pane.expect("/help for commands");
  auto started = std::chrono::steady_clock::now();
  REQUIRE(pane.signal_program(SIGTERM));
  pane.expect("KEEL-EXIT=143", std::chrono::seconds(10));
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(3));  // not the 5 s fallback
}

TEST_CASE("chat: a pasted block of lines is one message", "[ui][chat][paste]") {
  Scratch s;
  auto script = s.script("paste.jsonl", {answer("One message received."), answer("A SECOND TURN RAN.")});
  TmuxPane pane(s.env(), s.keel(script));
  pane.expect("/help for commands");
  pane.paste("Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: boom\n");
  pane.expect("One message received.");
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  CHECK(pane.count("A SECOND TURN RAN.") == 0);
  pane.ctrl_d();
  pane.expect("KEEL-EXIT=0");
}

TEST_CASE("chat: escape sequences from the model are shown, never obeyed", "[ui][chat][security]") {
  Scratch s;
  // Clear the screen, move home, and overwrite the line: would hide what was said before.
  auto script = s.script("esc.jsonl", {answer("before\u001b[2J\u001b[Hafter\rOVERWRITE")});
  TmuxPane pane(s.env(), s.keel(script, {"say something"}));
  pane.expect("before^[[2J^[[Hafter^MOVERWRITE");
  CHECK(pane.count("› say something") == 1);  // the screen was not cleared
  pane.ctrl_d();
  pane.expect("KEEL-EXIT=0");
}
