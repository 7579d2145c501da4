// memory-jsonl through its C ABI: real rollout files under a throwaway KEEL_HOME, and real
// child processes killed with SIGKILL.
#include "memory_test_support.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>

#include <regex>
#include <set>
#include <thread>

using namespace keel::test::memory;
using keel::test::AbiTestHost;

namespace {

const char* kModule = KEEL_MEMORY_JSONL_MODULE;
const char* kChild = KEEL_MEMORY_TEST_CHILD;

std::string config_for(const TempDir& home, bool fsync = false) {
  return json::serialize(json::object{{"keel_home", home.path().string()}, {"fsync", fsync}});
}

json::object message(const std::string& role, const std::string& text) {
  return {{"type", "message"},
          {"role", role},
          {"content", json::array{json::object{{"type", role == "user" ? "input_text" : "output_text"}, {"text", text}}}}};
}

json::object open_request(const std::string& id, const std::string& cwd = "/work/project") {
  return {{"session_id", id}, {"cwd", cwd}, {"model", "gpt-5"}, {"provider", "openai"}, {"keel_version", "0.1.0"}};
}

void append(AbiTestHost& host, const std::string& id, const json::object& record) {
  call_ok(host, "jsonl", "append", json::object{{"session_id", id}, {"record", record}});
}

void append_item(AbiTestHost& host, const std::string& id, const json::object& item) {
  append(host, id, json::object{{"type", "item"}, {"item", item}});
}

// Every kind of history item, including awkward text.
json::array sample_items() {
  return json::array{
      message("user", "fix the failing test — ünïcödé, \"quotes\", back\\slash, tab\t and newline\n"),
      json::object{{"type", "reasoning"},
                   {"summary", json::array{json::object{{"type", "summary_text"}, {"text", "Look at the test first."}}}}},
      json::object{{"type", "function_call"}, {"call_id", "call_a"}, {"name", "shell"}, {"arguments", R"({"command":["ctest"]})"}},
      json::object{{"type", "function_call_output"}, {"call_id", "call_a"}, {"output", "1 test failed\n"}},
      json::object{{"type", "custom_tool_call"}, {"call_id", "call_b"}, {"name", "apply_patch"},
                   {"input", "*** Begin Patch\n*** Update File: a.c\n@@\n-x\n+y\n*** End Patch\n"}},
      json::object{{"type", "custom_tool_call_output"}, {"call_id", "call_b"}, {"output", "Success. Updated: a.c"}},
      json::object{{"type", "message"},
                   {"role", "user"},
                   {"content", json::array{json::object{{"type", "input_text"}, {"text", "and this screenshot"}},
                                           json::object{{"type", "input_image"}, {"image_url", "data:image/png;base64,iVBORw0KGgo="}}}}},
      message("assistant", "Fixed: the test passes now."),
  };
}

json::array strings(const json::object& o, const char* key) { return o.at(key).as_array(); }

bool any_contains(const json::array& warnings, const std::string& needle) {
  for (auto& w : warnings)
    if (w.is_string() && std::string(w.as_string()).find(needle) != std::string::npos) return true;
  return false;
}

std::vector<fs::path> rollout_files(const TempDir& home) {
  std::vector<fs::path> out;
  if (!fs::exists(home.path() / "sessions")) return out;
  for (auto& e : fs::recursive_directory_iterator(home.path() / "sessions"))
    if (e.is_regular_file()) out.push_back(e.path());
  return out;
}

}  // namespace

TEST_CASE("memory-jsonl: open, append and load round-trip every item", "[memory][jsonl]") {
  TempDir home{"keel-memory-test"};
  AbiTestHost host(kModule);
  REQUIRE(host.capability("jsonl") != nullptr);
  REQUIRE(host.capability("jsonl")->kind == KEEL_CAP_MEMORY);
  host.start(config_for(home));

  auto opened = call_ok(host, "jsonl", "open", open_request("sess-1"));
  fs::path path = std::string(opened.at("path").as_string());
  REQUIRE(fs::exists(path));
  // $KEEL_HOME/sessions/YYYY/MM/DD/rollout-YYYY-MM-DDThh-mm-ss-<id>.jsonl
  auto rel = fs::relative(path, home.path() / "sessions").string();
  CHECK(std::regex_match(rel, std::regex(R"(\d{4}/\d{2}/\d{2}/rollout-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-sess-1\.jsonl)")));
  auto day = path.parent_path().filename().string(), stamp = path.filename().string().substr(8, 10);
  CHECK(stamp.substr(8, 2) == day);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);  // sessions hold private conversations

  // The first line is the session metadata, already on disk.
  auto first = json::parse(lines_of(read_file(path)).at(0)).as_object();
  CHECK(first.at("type") == "session_meta");
  CHECK(first.at("session_id") == "sess-1");
  CHECK(first.at("cwd") == "/work/project");
  CHECK(first.at("model") == "gpt-5");
  CHECK(first.at("provider") == "openai");
  CHECK(first.at("keel_version") == "0.1.0");
  CHECK(first.at("timestamp").is_string());
  CHECK(first.at("started_at").is_string());

  auto items = sample_items();
  append(host, "sess-1", json::object{{"type", "turn_context"}, {"cwd", "/work/project"}, {"model", "gpt-5"}, {"approval_policy", "on-request"}});
  std::size_t written = 1;
  for (auto& item : items) {
    append_item(host, "sess-1", item.as_object());
    ++written;
    // Written before the reply: the line is in the file now, not at some later flush.
    CHECK(lines_of(read_file(path)).size() == written + 1);
    append(host, "sess-1", json::object{{"type", "event"}, {"event", json::object{{"type", "item.completed"}}}});
    ++written;
  }

  // Every line is one JSON object with a timestamp.
  for (auto& line : lines_of(read_file(path))) {
    auto v = json::parse(line);
    REQUIRE(v.is_object());
    CHECK(v.as_object().at("timestamp").is_string());
  }

  auto loaded = call_ok(host, "jsonl", "load", json::object{{"session_id", "sess-1"}});
  CHECK(loaded.at("path") == json::value(path.string()));
  CHECK(strings(loaded, "warnings").empty());
  CHECK(loaded.at("session").at("session_id") == "sess-1");
  CHECK(loaded.at("session").at("cwd") == "/work/project");
  CHECK(loaded.at("turn_context").at("approval_policy") == "on-request");
  auto& got = loaded.at("items").as_array();
  REQUIRE(got.size() == items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    INFO("item " << i);
    CHECK(json::serialize(got[i]) == json::serialize(items[i]));
    CHECK(got[i] == items[i]);
  }

  // fsync = true writes the same thing (and flushes each record).
  TempDir home2{"keel-memory-test"};
  AbiTestHost synced(kModule);
  synced.start(config_for(home2, true));
  call_ok(synced, "jsonl", "open", open_request("sess-fsync"));
  for (auto& item : items) append_item(synced, "sess-fsync", item.as_object());
  CHECK(call_ok(synced, "jsonl", "load", json::object{{"session_id", "sess-fsync"}}).at("items") == items);
}

TEST_CASE("memory-jsonl: a compaction record replaces the history before it", "[memory][jsonl]") {
  TempDir home{"keel-memory-test"};
  AbiTestHost host(kModule);
  host.start(config_for(home));
  call_ok(host, "jsonl", "open", open_request("sess-c"));
  for (int i = 0; i < 5; ++i) append_item(host, "sess-c", message(i % 2 ? "assistant" : "user", "old " + std::to_string(i)));
  json::array replacement{message("user", "old 0"), message("user", "old 4"),
                          message("user", "Summary of the conversation so far: the user asked for X.")};
  append(host, "sess-c",
         json::object{{"type", "compaction"}, {"summary", "the user asked for X."}, {"replacement_history", replacement}});
  append_item(host, "sess-c", message("assistant", "new 1"));
  append_item(host, "sess-c", message("user", "new 2"));

  auto loaded = call_ok(host, "jsonl", "load", json::object{{"session_id", "sess-c"}});
  json::array expected = replacement;
  expected.push_back(message("assistant", "new 1"));
  expected.push_back(message("user", "new 2"));
  CHECK(loaded.at("items") == expected);
  CHECK(strings(loaded, "warnings").empty());

  // A second compaction replaces everything again, including the first one's history.
  json::array second{message("user", "Summary 2")};
  append(host, "sess-c", json::object{{"type", "compaction"}, {"summary", "2"}, {"replacement_history", second}});
  append_item(host, "sess-c", message("assistant", "after"));
  loaded = call_ok(host, "jsonl", "load", json::object{{"session_id", "sess-c"}});
  CHECK(loaded.at("items") == json::array{message("user", "Summary 2"), message("assistant", "after")});
}

TEST_CASE("memory-jsonl: a torn last line loads with a warning", "[memory][jsonl]") {
  TempDir home{"keel-memory-test"};
  fs::path path;
  auto items = sample_items();
  {
    AbiTestHost host(kModule);
    host.start(config_for(home));
    path = std::string(call_ok(host, "jsonl", "open", open_request("sess-t")).at("path").as_string());
    for (int i = 0; i < 3; ++i) append_item(host, "sess-t", items[static_cast<std::size_t>(i)].as_object());
  }
  // Cut the file in the middle of its last line, as a crash during write() would.
  auto size = fs::file_size(path);
  auto last_len = lines_of(read_file(path)).back().size() + 1;
  fs::resize_file(path, size - last_len / 2);

  AbiTestHost host(kModule);
  host.start(config_for(home));
  auto loaded = call_ok(host, "jsonl", "load", json::object{{"session_id", "sess-t"}});
  // The torn line was the function call itself: the rollout never recorded a whole call, so
  // nothing is synthesized for it either.
  CHECK(loaded.at("items") == json::array{items[0], items[1]});
  auto& warnings = loaded.at("warnings").as_array();
  CHECK(any_contains(warnings, "torn last line"));
}

TEST_CASE("memory-jsonl: a torn last line is skipped and later appends stay readable", "[memory][jsonl]") {
  TempDir home{"keel-memory-test"};
  fs::path path;
  {
    AbiTestHost host(kModule);
    host.start(config_for(home));
    path = std::string(call_ok(host, "jsonl", "open", open_request("sess-t2")).at("path").as_string());
    append_item(host, "sess-t2", message("user", "one"));
    append_item(host, "sess-t2", message("assistant", "two"));
    append_item(host, "sess-t2", message("user", "three, the torn one"));
  }
  auto size = fs::file_size(path);
  fs::resize_file(path, size - 10);  // mid-line, no newline at the end any more

  AbiTestHost host(kModule);
  host.start(config_for(home));
  auto loaded = call_ok(host, "jsonl", "load", json::object{{"session_id", "sess-t2"}});
  CHECK(loaded.at("items") == json::array{message("user", "one"), message("assistant", "two")});
  REQUIRE(loaded.at("warnings").as_array().size() == 1);
  CHECK(any_contains(loaded.at("warnings").as_array(), ":4: torn last line"));

  // Resume and append: the new record must not be glued onto the fragment.
  auto reopened = call_ok(host, "jsonl", "open", json::object{{"session_id", "sess-t2"}, {"resumed", true}});
  CHECK(reopened.at("path") == json::value(path.string()));
  append_item(host, "sess-t2", message("user", "four"));
  loaded = call_ok(host, "jsonl", "load", json::object{{"session_id", "sess-t2"}});
  CHECK(loaded.at("items") == json::array{message("user", "one"), message("assistant", "two"), message("user", "four")});
  CHECK(any_contains(loaded.at("warnings").as_array(), ":4: not valid JSON"));

  // Garbage in the middle of a file is skipped the same way, never a failed load.
  {
    std::ofstream out(path, std::ios::app | std::ios::binary);
    out << "{\"type\":\"item\",\"item\":\n" << "[1,2]\n" << "\n";
  }
  append_item(host, "sess-t2", message("assistant", "five"));
  loaded = call_ok(host, "jsonl", "load", json::object{{"session_id", "sess-t2"}});
  CHECK(loaded.at("items").as_array().size() == 4);
  CHECK(loaded.at("items").as_array().back() == message("assistant", "five"));
  CHECK(any_contains(loaded.at("warnings").as_array(), "not a rollout record"));
}

TEST_CASE("memory-jsonl: a tool call without output is reported as interrupted", "[memory][jsonl]") {
  TempDir home{"keel-memory-test"};
  AbiTestHost host(kModule);
  host.start(config_for(home));
  call_ok(host, "jsonl", "open", open_request("sess-i"));
  // Two parallel calls, only the second finished; then a custom tool call that never did.
  json::object call_a{{"type", "function_call"}, {"call_id", "a"}, {"name", "shell"}, {"arguments", "{}"}};
  json::object call_b{{"type", "function_call"}, {"call_id", "b"}, {"name", "read_file"}, {"arguments", "{}"}};
  json::object out_b{{"type", "function_call_output"}, {"call_id", "b"}, {"output", "ok"}};
  json::object call_c{{"type", "custom_tool_call"}, {"call_id", "c"}, {"name", "apply_patch"}, {"input", "..."}};
  for (auto* item : {&call_a, &call_b, &out_b, &call_c}) append_item(host, "sess-i", *item);

  auto loaded = call_ok(host, "jsonl", "load", json::object{{"session_id", "sess-i"}});
  json::object out_a{{"type", "function_call_output"}, {"call_id", "a"},
                     {"output", "interrupted: keel stopped before this call finished"}};
  json::object out_c{{"type", "custom_tool_call_output"}, {"call_id", "c"},
                     {"output", "interrupted: keel stopped before this call finished"}};
  CHECK(loaded.at("items") == json::array{call_a, out_a, call_b, out_b, call_c, out_c});
  auto& warnings = loaded.at("warnings").as_array();
  CHECK(warnings.size() == 2);
  CHECK(any_contains(warnings, "tool call a (shell)"));
  CHECK(any_contains(warnings, "tool call c (apply_patch)"));
  // Loading does not write: the rollout still records exactly what happened.
  CHECK(lines_of(read_file(std::string(loaded.at("path").as_string()))).size() == 5);
}

TEST_CASE("memory-jsonl: SIGKILL in the middle of a tool call loses no completed item", "[memory][jsonl][crash]") {
  TempDir home{"keel-memory-test"};
  Child child({kChild, "jsonl-crash", kModule, home.path().string(), "sess-kill"});
  auto ready = child.read_line();
  REQUIRE(ready);
  REQUIRE(ready->starts_with("ready "));
  fs::path path = ready->substr(6);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));  // it is busy appending events now
  child.kill(SIGKILL);
  int status = child.wait();
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGKILL);

  AbiTestHost host(kModule);
  host.start(config_for(home));
  auto loaded = call_ok(host, "jsonl", "load", json::object{{"session_id", "sess-kill"}});
  CHECK(loaded.at("path") == json::value(path.string()));
  CHECK(loaded.at("session").at("cwd") == "/work/project");
  auto& items = loaded.at("items").as_array();
  REQUIRE(items.size() == 7);
  CHECK(items[0] == message("user", "run the tests"));
  CHECK(items[1].at("type") == "reasoning");
  CHECK(items[2].at("call_id") == "call_1");
  CHECK(items[3] == json::object{{"type", "function_call_output"}, {"call_id", "call_1"}, {"output", "CMakeLists.txt\nsrc\n"}});
  CHECK(items[4] == message("assistant", "Now the long test run."));
  CHECK(items[5] == json::object{{"type", "function_call"}, {"call_id", "call_2"}, {"name", "shell"}, {"arguments", R"({"command":["ctest"]})"}});
  CHECK(items[6] == json::object{{"type", "function_call_output"}, {"call_id", "call_2"},
                                 {"output", "interrupted: keel stopped before this call finished"}});
  CHECK(any_contains(loaded.at("warnings").as_array(), "call_2 (shell) has no output; marked as interrupted"));

  // And the session can go on: resume, close the call properly, load the exact history.
  call_ok(host, "jsonl", "open", json::object{{"session_id", "sess-kill"}, {"resumed", true}});
  append_item(host, "sess-kill", message("user", "continue"));
  auto again = call_ok(host, "jsonl", "load", json::object{{"session_id", "sess-kill"}});
  CHECK(again.at("items").as_array().size() == 8);
  CHECK(again.at("items").as_array()[6] == items[6]);
  CHECK(again.at("items").as_array()[7] == message("user", "continue"));
  CHECK(rollout_files(home).size() == 1);
}

TEST_CASE("memory-jsonl: SIGKILL while appending loses nothing already acknowledged", "[memory][jsonl][crash]") {
  for (int round = 0; round < 3; ++round) {
    TempDir home{"keel-memory-test"};
    Child child({kChild, "jsonl-stream", kModule, home.path().string(), "sess-stream"});
    long acked = -1;
    long target = 150 + round * 97;
    while (acked < target) {
      auto line = child.read_line();
      REQUIRE(line);
      REQUIRE(line->starts_with("ack "));
      acked = std::stol(line->substr(4));
    }
    child.kill(SIGKILL);  // mid-stream: probably in the middle of the next append
    child.wait();

    AbiTestHost host(kModule);
    host.start(config_for(home));
    auto loaded = call_ok(host, "jsonl", "load", json::object{{"session_id", "sess-stream"}});
    auto& items = loaded.at("items").as_array();
    INFO("round " << round << ": acknowledged " << acked + 1 << ", loaded " << items.size());
    REQUIRE(static_cast<long>(items.size()) >= acked + 1);
    for (std::size_t n = 0; n < items.size(); ++n) {
      auto text = std::string(items[n].at("content").as_array()[0].at("text").as_string());
      REQUIRE(text.starts_with("item " + std::to_string(n) + " "));
    }
    // At most one line can be torn, and only the last.
    CHECK(loaded.at("warnings").as_array().size() <= 1);
  }
}

TEST_CASE("memory-jsonl: list is newest first, with first prompt, cwd filter and limit", "[memory][jsonl]") {
  TempDir home{"keel-memory-test"};
  // An old session from another day, written by hand (as an older keel would have).
  fs::path old_dir = home.path() / "sessions" / "2020" / "01" / "02";
  fs::create_directories(old_dir);
  {
    std::ofstream out(old_dir / "rollout-2020-01-02T03-04-05-old-1.jsonl");
    out << R"({"timestamp":"2020-01-02T03:04:05.000Z","type":"session_meta","session_id":"old-1","cwd":"/work/a","model":"o3","started_at":"2020-01-02T03:04:05.000Z"})"
        << "\n"
        << R"({"timestamp":"2020-01-02T03:04:06.000Z","type":"item","item":{"type":"message","role":"user","content":[{"type":"input_text","text":"an old question"}]}})"
        << "\n";
  }
  AbiTestHost host(kModule);
  host.start(config_for(home));
  const char* cwds[] = {"/work/a", "/work/b", "/work/a/"};
  for (int i = 0; i < 3; ++i) {
    std::string id = "s" + std::to_string(i);
    call_ok(host, "jsonl", "open", open_request(id, cwds[i]));
    append(host, id, json::object{{"type", "turn_context"}, {"cwd", cwds[i]}});
    append_item(host, id, message("user", "<environment_context>cwd</environment_context>"));
    append_item(host, id, message("user", "prompt " + std::to_string(i)));
    append_item(host, id, message("assistant", "answer " + std::to_string(i)));
    std::this_thread::sleep_for(std::chrono::milliseconds(3));  // distinct start times
  }
  // A session without any prompt yet.
  call_ok(host, "jsonl", "open", open_request("s3", "/work/c"));

  auto ids = [](const json::object& reply) {
    std::vector<std::string> out;
    for (auto& s : reply.at("sessions").as_array()) out.emplace_back(s.at("session_id").as_string());
    return out;
  };
  auto all = call_ok(host, "jsonl", "list", json::object{});
  CHECK(ids(all) == std::vector<std::string>{"s3", "s2", "s1", "s0", "old-1"});
  auto& rows = all.at("sessions").as_array();
  CHECK(rows[1].at("first_prompt") == "prompt 2");
  CHECK(rows[1].at("cwd") == "/work/a/");
  CHECK(rows[1].at("model") == "gpt-5");
  CHECK(rows[1].at("forked_from").is_null());
  CHECK(rows[1].at("started_at").is_string());
  CHECK(fs::exists(std::string(rows[1].at("path").as_string())));
  CHECK(rows[0].at("first_prompt").is_null());
  CHECK(rows[4].at("first_prompt") == "an old question");

  CHECK(ids(call_ok(host, "jsonl", "list", json::object{{"limit", 2}})) == std::vector<std::string>{"s3", "s2"});
  CHECK(ids(call_ok(host, "jsonl", "list", json::object{{"cwd", "/work/a"}})) == std::vector<std::string>{"s2", "s0", "old-1"});
  CHECK(ids(call_ok(host, "jsonl", "list", json::object{{"cwd", "/work/b"}, {"limit", 5}})) == std::vector<std::string>{"s1"});
  CHECK(ids(call_ok(host, "jsonl", "list", json::object{{"cwd", "/nowhere"}})).empty());

  // load {last: true} is the newest session, optionally of one directory.
  CHECK(call_ok(host, "jsonl", "load", json::object{{"last", true}}).at("session").at("session_id") == "s3");
  auto last_b = call_ok(host, "jsonl", "load", json::object{{"last", true}, {"cwd", "/work/b"}});
  CHECK(last_b.at("session").at("session_id") == "s1");
  CHECK(last_b.at("items").as_array().size() == 3);
  auto none = call_json(host, "jsonl", "load", json::object{{"last", true}, {"cwd", "/nowhere"}});
  CHECK(none.status == KEEL_ERR_NOT_FOUND);

  // A unique prefix of an id is enough to find a session (`keel resume 8f3a`).
  CHECK(call_ok(host, "jsonl", "load", json::object{{"session_id", "old"}}).at("session").at("session_id") == "old-1");
  auto ambiguous = call_json(host, "jsonl", "load", json::object{{"session_id", "s"}});
  CHECK(ambiguous.status == KEEL_ERR_INVALID_ARGUMENT);
  CHECK(ambiguous.error_message().find("several") != std::string::npos);

  // An empty KEEL_HOME lists nothing and says so without failing.
  TempDir empty{"keel-memory-test"};
  AbiTestHost fresh(kModule);
  fresh.start(config_for(empty));
  CHECK(call_ok(fresh, "jsonl", "list", json::object{}).at("sessions").as_array().empty());
}

TEST_CASE("memory-jsonl: a resumed session appends to the same file", "[memory][jsonl]") {
  TempDir home{"keel-memory-test"};
  fs::path path;
  auto items = sample_items();
  {
    AbiTestHost first(kModule);  // "yesterday's" keel process
    first.start(config_for(home));
    path = std::string(call_ok(first, "jsonl", "open", open_request("sess-r")).at("path").as_string());
    for (std::size_t i = 0; i < 4; ++i) append_item(first, "sess-r", items[i].as_object());
  }
  AbiTestHost second(kModule);  // today's
  second.start(config_for(home));
  auto loaded = call_ok(second, "jsonl", "load", json::object{{"session_id", "sess-r"}});
  auto reopened = call_ok(second, "jsonl", "open",
                          json::object{{"session_id", "sess-r"}, {"resumed", true}, {"cwd", "/work/project"}});
  CHECK(reopened.at("path") == json::value(path.string()));
  for (std::size_t i = 4; i < items.size(); ++i) append_item(second, "sess-r", items[i].as_object());

  CHECK(rollout_files(home) == std::vector<fs::path>{path});
  auto lines = lines_of(read_file(path));
  CHECK(lines.size() == 1 + items.size());
  int metas = 0;
  for (auto& l : lines) metas += json::parse(l).at("type") == "session_meta";
  CHECK(metas == 1);
  CHECK(call_ok(second, "jsonl", "load", json::object{{"session_id", "sess-r"}}).at("items") == items);

  // Opening it again while it is open hands back the same file.
  CHECK(call_ok(second, "jsonl", "open", json::object{{"session_id", "sess-r"}, {"resumed", true}}).at("path") == json::value(path.string()));
  // close releases it; append then needs a new open.
  call_ok(second, "jsonl", "close", json::object{{"session_id", "sess-r"}});
  CHECK(call_json(second, "jsonl", "append", json::object{{"session_id", "sess-r"}, {"record", json::object{{"type", "event"}}}}).status ==
        KEEL_ERR_NOT_FOUND);
  // Resuming a session that does not exist is a clear error.
  auto missing = call_json(second, "jsonl", "open", json::object{{"session_id", "nope"}, {"resumed", true}});
  CHECK(missing.status == KEEL_ERR_NOT_FOUND);
  CHECK(missing.error_message().find("no session 'nope'") != std::string::npos);
}

TEST_CASE("memory-jsonl: a fork never writes into its parent's file", "[memory][jsonl]") {
  TempDir home{"keel-memory-test"};
  AbiTestHost host(kModule);
  host.start(config_for(home));
  auto items = sample_items();
  auto parent_path = fs::path(std::string(call_ok(host, "jsonl", "open", open_request("parent")).at("path").as_string()));
  for (auto& item : items) append_item(host, "parent", item.as_object());
  const std::string parent_bytes = read_file(parent_path);

  // What the kernel does: load the parent, open a new session forked from it, append it all.
  auto parent = call_ok(host, "jsonl", "load", json::object{{"session_id", "parent"}});
  // Start times have millisecond resolution; sessions started in the same millisecond list in
  // name order, so the child must start in a later one to be the newest below.
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  auto req = open_request("child");
  req["forked_from"] = "parent";
  auto child_path = fs::path(std::string(call_ok(host, "jsonl", "open", req).at("path").as_string()));
  CHECK(child_path != parent_path);
  for (auto& item : parent.at("items").as_array()) append_item(host, "child", item.as_object());
  append_item(host, "child", message("user", "try the other approach"));
  // The parent goes on too, independently.
  append_item(host, "parent", message("user", "parent continues"));

  auto child = call_ok(host, "jsonl", "load", json::object{{"session_id", "child"}});
  CHECK(child.at("session").at("forked_from") == "parent");
  json::array expected = items;
  expected.push_back(message("user", "try the other approach"));
  CHECK(child.at("items") == expected);

  auto after = read_file(parent_path);
  CHECK(after.starts_with(parent_bytes));
  CHECK(lines_of(after).size() == lines_of(parent_bytes).size() + 1);
  CHECK(after.find("try the other approach") == std::string::npos);
  auto reparent = call_ok(host, "jsonl", "load", json::object{{"session_id", "parent"}});
  CHECK(reparent.at("items").as_array().size() == items.size() + 1);
  CHECK(!reparent.at("session").as_object().contains("forked_from"));

  auto listed = call_ok(host, "jsonl", "list", json::object{{"limit", 1}});
  CHECK(listed.at("sessions").as_array()[0].at("session_id") == "child");
  CHECK(listed.at("sessions").as_array()[0].at("forked_from") == "parent");
}

TEST_CASE("memory-jsonl: concurrent appends from many threads keep every line whole", "[memory][jsonl]") {
  TempDir home{"keel-memory-test"};
  AbiTestHost host(kModule);
  host.start(config_for(home));
  const int kSessions = 3, kThreads = 6, kPerThread = 120;
  for (int s = 0; s < kSessions; ++s) call_ok(host, "jsonl", "open", open_request("par-" + std::to_string(s)));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string session = "par-" + std::to_string((t + i) % kSessions);
        auto text = "t" + std::to_string(t) + " i" + std::to_string(i) + " " + std::string(static_cast<std::size_t>(i * 37 % 5000), 'z');
        auto r = call_json(host, "jsonl", "append",
                           json::object{{"session_id", session}, {"record", json::object{{"type", "item"}, {"item", message("user", text)}}}});
        if (!r.ok()) ++failures;
      }
    });
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  std::set<std::string> seen;
  std::size_t total = 0;
  for (int s = 0; s < kSessions; ++s) {
    auto loaded = call_ok(host, "jsonl", "load", json::object{{"session_id", "par-" + std::to_string(s)}});
    CHECK(loaded.at("warnings").as_array().empty());
    for (auto& item : loaded.at("items").as_array()) {
      auto text = std::string(item.at("content").as_array()[0].at("text").as_string());
      seen.insert(text.substr(0, text.find(' ', text.find(' ') + 1)));
      ++total;
    }
  }
  CHECK(total == kThreads * kPerThread);
  CHECK(seen.size() == kThreads * kPerThread);
}

TEST_CASE("memory-jsonl: bad requests get clear errors and break nothing", "[memory][jsonl]") {
  TempDir home{"keel-memory-test"};
  AbiTestHost host(kModule);
  host.start(config_for(home));
  auto status = [&](const std::string& method, const std::string& payload) { return host.call("jsonl", method, payload).status; };

  CHECK(status("open", "not json") == KEEL_ERR_INVALID_ARGUMENT);
  CHECK(status("open", "[1]") == KEEL_ERR_INVALID_ARGUMENT);
  CHECK(status("open", R"({"session_id":"../../etc/passwd"})") == KEEL_ERR_INVALID_ARGUMENT);
  CHECK(status("open", R"({"session_id":""})") == KEEL_ERR_INVALID_ARGUMENT);
  CHECK(status("open", R"({"session_id":"a/b"})") == KEEL_ERR_INVALID_ARGUMENT);
  CHECK(!fs::exists(home.path() / "etc"));
  CHECK(status("append", R"({"session_id":"never-opened","record":{"type":"event"}})") == KEEL_ERR_NOT_FOUND);
  CHECK(status("load", R"({"session_id":"missing"})") == KEEL_ERR_NOT_FOUND);
  CHECK(status("load", R"({})") == KEEL_ERR_INVALID_ARGUMENT);
  CHECK(status("frobnicate", R"({})") == KEEL_ERR_NOT_FOUND);
  CHECK(host.call("other", "open", "{}").status == KEEL_ERR_NOT_FOUND);

  call_ok(host, "jsonl", "open", open_request("ok"));
  CHECK(status("open", json::serialize(open_request("ok"))) == KEEL_ERR_INVALID_ARGUMENT);  // already open
  CHECK(status("append", R"({"session_id":"ok"})") == KEEL_ERR_INVALID_ARGUMENT);
  CHECK(status("append", R"({"session_id":"ok","record":{"no":"type"}})") == KEEL_ERR_INVALID_ARGUMENT);
  CHECK(status("append", R"({"session_id":"ok","record":{"type":"item"}})") == KEEL_ERR_INVALID_ARGUMENT);
  CHECK(status("append", R"({"session_id":"ok","record":{"type":"item","item":{"role":"user"}}})") == KEEL_ERR_INVALID_ARGUMENT);
  CHECK(status("append", R"({"session_id":"ok","record":{"type":"session_meta"}})") == KEEL_ERR_INVALID_ARGUMENT);
  CHECK(status("append", R"({"session_id":"ok","record":{"type":"compaction","replacement_history":"x"}})") == KEEL_ERR_INVALID_ARGUMENT);
  auto r = call_json(host, "jsonl", "append", json::object{{"session_id", "ghost"}, {"record", json::object{{"type", "event"}}}});
  CHECK(r.error_message().find("not open") != std::string::npos);

  // None of that left a mark: the session still loads cleanly with nothing in it.
  auto loaded = call_ok(host, "jsonl", "load", json::object{{"session_id", "ok"}});
  CHECK(loaded.at("items").as_array().empty());
  CHECK(loaded.at("warnings").as_array().empty());
  CHECK(lines_of(read_file(std::string(loaded.at("path").as_string()))).size() == 1);
}
