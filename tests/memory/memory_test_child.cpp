// The child process of the memory tests: loads a memory module through its C ABI, like a keel
// process would, and does one job the parent then checks (or kills it in the middle of).
//
//   jsonl-crash  MODULE KEEL_HOME SESSION   appends a few items, starts a tool call (no
//                                           output), prints "ready", then appends events until
//                                           it is killed
//   jsonl-stream MODULE KEEL_HOME SESSION   appends items "item N" forever, printing "ack N"
//                                           after each reply
//   sqlite-insert MODULE DB TAG COUNT GO    waits for the file GO, then remembers COUNT notes
//                                           through the memory tool; exit 0 if all succeeded
#include "memory_test_support.hpp"

#include <cstdio>
#include <iostream>
#include <thread>

namespace json = boost::json;
using namespace keel::test::memory;

namespace {

void say(const std::string& line) {
  std::string text = line + "\n";
  if (::write(STDOUT_FILENO, text.data(), text.size()) < 0) std::_Exit(3);
}

json::object message(const std::string& role, const std::string& text) {
  return {{"type", "message"},
          {"role", role},
          {"content", json::array{json::object{{"type", role == "user" ? "input_text" : "output_text"}, {"text", text}}}}};
}

void append_item(keel::test::AbiTestHost& host, const std::string& session, const json::object& item) {
  call_ok(host, "jsonl", "append", json::object{{"session_id", session}, {"record", json::object{{"type", "item"}, {"item", item}}}});
}

int jsonl_crash(const std::string& module, const std::string& home, const std::string& session) {
  keel::test::AbiTestHost host(module);
  host.start(json::serialize(json::object{{"keel_home", home}}));
  auto opened = call_ok(host, "jsonl", "open",
                        json::object{{"session_id", session}, {"cwd", "/work/project"}, {"model", "replay"},
                                     {"provider", "replay"}, {"keel_version", "0.1.0"}});
  append_item(host, session, message("user", "run the tests"));
  append_item(host, session, json::object{{"type", "reasoning"}, {"summary", json::array{json::object{{"type", "summary_text"}, {"text", "Running ctest."}}}}});
  append_item(host, session, json::object{{"type", "function_call"}, {"call_id", "call_1"}, {"name", "shell"}, {"arguments", R"({"command":["ls"]})"}});
  append_item(host, session, json::object{{"type", "function_call_output"}, {"call_id", "call_1"}, {"output", "CMakeLists.txt\nsrc\n"}});
  append_item(host, session, message("assistant", "Now the long test run."));
  append_item(host, session, json::object{{"type", "function_call"}, {"call_id", "call_2"}, {"name", "shell"}, {"arguments", R"({"command":["ctest"]})"}});
  say("ready " + std::string(opened.at("path").as_string()));
  // The tool is "running": the process keeps writing progress events until it is killed.
  for (std::uint64_t n = 0;; ++n)
    call_ok(host, "jsonl", "append",
            json::object{{"session_id", session}, {"record", json::object{{"type", "event"}, {"event", "output.delta"}, {"n", n}, {"delta", std::string(200, 'x')}}}});
}

int jsonl_stream(const std::string& module, const std::string& home, const std::string& session) {
  keel::test::AbiTestHost host(module);
  host.start(json::serialize(json::object{{"keel_home", home}}));
  call_ok(host, "jsonl", "open", json::object{{"session_id", session}, {"cwd", "/work/project"}, {"model", "m"}});
  for (std::uint64_t n = 0;; ++n) {
    append_item(host, session, message("assistant", "item " + std::to_string(n) + " " + std::string(n % 300, 'y')));
    say("ack " + std::to_string(n));
  }
}

int sqlite_insert(const std::string& module, const std::string& db, const std::string& tag, int count,
                  const std::string& go) {
  keel::test::AbiTestHost host(module);
  host.start(json::serialize(json::object{{"db_path", db}}));
  say("ready");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(go)) {
    if (std::chrono::steady_clock::now() > deadline) return 4;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  int failures = 0;
  for (int i = 0; i < count; ++i) {
    auto args = json::object{{"action", "remember"}, {"text", tag + " note number " + std::to_string(i) + " about concurrency"}};
    auto r = call_json(host, "memory", "call", tool_request(args, "session-" + tag, "turn-" + std::to_string(i), "call-" + std::to_string(i)));
    if (!r.ok() || !r.body.at("success").as_bool()) {
      ++failures;
      std::cerr << "remember failed: " << r.raw << "\n";
    }
  }
  say("done " + std::to_string(failures));
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<std::string> a(argv + 1, argv + argc);
    if (a.size() == 4 && a[0] == "jsonl-crash") return jsonl_crash(a[1], a[2], a[3]);
    if (a.size() == 4 && a[0] == "jsonl-stream") return jsonl_stream(a[1], a[2], a[3]);
    if (a.size() == 6 && a[0] == "sqlite-insert") return sqlite_insert(a[1], a[2], a[3], std::stoi(a[4]), a[5]);
    std::cerr << "usage: see memory_test_child.cpp\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "memory_test_child: " << e.what() << "\n";
    return 1;
  }
}
