// memory-sqlite through its C ABI, on a real SQLite database in a throwaway directory, with
// real child processes writing to it at once.
#include "memory_test_support.hpp"

#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <atomic>
#include <thread>

using namespace keel::test::memory;
using keel::test::AbiTestHost;

namespace {

const char* kModule = KEEL_MEMORY_SQLITE_MODULE;
const char* kChild = KEEL_MEMORY_TEST_CHILD;

std::string config_for(const fs::path& db) { return json::serialize(json::object{{"db_path", db.string()}}); }

struct ToolOut {
  bool success;
  std::string output;
  json::object item;
};

ToolOut tool(AbiTestHost& host, const json::object& args, const std::string& session = "s1",
             const std::string& turn = "t1", const std::string& call = "call_1") {
  auto r = call_ok(host, "memory", "call", tool_request(args, session, turn, call));
  ToolOut out{r.at("success").as_bool(), std::string(r.at("output").as_string()), {}};
  if (auto* i = r.if_contains("item"); i && i->is_object()) out.item = i->as_object();
  return out;
}

std::int64_t remember(AbiTestHost& host, const std::string& text, const std::string& session = "s1",
                      const std::string& turn = "t1", const std::string& call = "call_1") {
  auto out = tool(host, json::object{{"action", "remember"}, {"text", text}}, session, turn, call);
  REQUIRE(out.success);
  return out.item.at("id").as_int64();
}

// Plain SQLite, to look at the database the way another program would.
struct Db {
  sqlite3* db = nullptr;
  explicit Db(const fs::path& path) {
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK)
      throw std::runtime_error("cannot open " + path.string());
    sqlite3_busy_timeout(db, 5000);
  }
  ~Db() { sqlite3_close(db); }
  std::string text(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
      throw std::runtime_error(std::string("prepare: ") + sqlite3_errmsg(db));
    std::string out;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_text(st, 0)) out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    else if (rc != SQLITE_ROW && rc != SQLITE_DONE) out = std::string("error: ") + sqlite3_errmsg(db);
    sqlite3_finalize(st);
    return out;
  }
  long long number(const std::string& sql) { return std::stoll(text(sql)); }
  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error(m);
    }
  }
};

}  // namespace

TEST_CASE("memory-sqlite: remember, recall and forget through the tool", "[memory][sqlite]") {
  TempDir dir{"keel-memory-test"};
  AbiTestHost host(kModule);
  auto* cap = host.capability("memory");
  REQUIRE(cap);
  CHECK(cap->kind == KEEL_CAP_TOOL);
  REQUIRE(cap->schema_json);
  auto schema = json::parse(cap->schema_json).as_object();
  CHECK(schema.at("properties").at("action").at("enum") == json::array{"remember", "recall", "forget"});
  REQUIRE(host.capability("sqlite"));
  CHECK(host.capability("sqlite")->kind == KEEL_CAP_MEMORY);
  host.start(config_for(dir.path() / "memory.db"));

  auto build = tool(host, json::object{{"action", "remember"}, {"text", "This project builds with CMake and Ninja; run tests with ctest."}},
                    "sess-A", "turn-1", "call-7");
  REQUIRE(build.success);
  CHECK(build.output.find("Remembered as memory #") == 0);
  auto build_id = build.item.at("id").as_int64();
  auto style = remember(host, "The user prefers tabs over spaces in C files.", "sess-A", "turn-2", "call-9");
  auto db = remember(host, "Database migrations live in db/migrations and run at startup.", "sess-B", "turn-1", "call-1");
  CHECK(build_id != style);
  CHECK(style != db);

  // The same note again is not stored twice.
  auto again = tool(host, json::object{{"action", "remember"}, {"text", "  The user prefers tabs over spaces in C files.\n"}});
  CHECK(again.success);
  CHECK(again.output == "Already remembered as memory #" + std::to_string(style) + ".");

  // Recall ranks by relevance (bm25) and cites where each note came from.
  auto found = tool(host, json::object{{"action", "recall"}, {"query", "how do I build and test the project?"}}, "sess-C", "turn-5", "call-3");
  REQUIRE(found.success);
  auto& memories = found.item.at("memories").as_array();
  REQUIRE(!memories.empty());
  CHECK(memories[0].at("id") == build_id);
  CHECK(memories[0].at("session_id") == "sess-A");
  CHECK(memories[0].at("turn_id") == "turn-1");
  CHECK(memories[0].at("call_id") == "call-7");
  CHECK(memories[0].at("text") == "This project builds with CMake and Ninja; run tests with ctest.");
  CHECK(found.output.find("#" + std::to_string(build_id) + " This project builds with CMake") != std::string::npos);
  CHECK(found.output.find("session sess-A, turn turn-1, call call-7") != std::string::npos);
  // Stemming: "migration" finds "migrations"; case does not matter.
  auto mig = tool(host, json::object{{"action", "recall"}, {"query", "MIGRATION"}});
  REQUIRE(mig.item.at("memories").as_array().size() == 1);
  CHECK(mig.item.at("memories").as_array()[0].at("id") == db);
  // limit
  auto many = tool(host, json::object{{"action", "recall"}, {"query", "project user database"}, {"limit", 2}});
  CHECK(many.item.at("memories").as_array().size() == 2);
  // Nothing matches: a plain answer, not an error.
  auto none = tool(host, json::object{{"action", "recall"}, {"query", "kubernetes"}});
  CHECK(none.success);
  CHECK(none.output == "No memories match \"kubernetes\".");
  // No query: the most recent notes.
  auto recent = tool(host, json::object{{"action", "recall"}});
  CHECK(recent.item.at("memories").as_array()[0].at("id") == db);

  // Forget deletes by id; it is gone from recall; forgetting it again says so.
  auto gone = tool(host, json::object{{"action", "forget"}, {"id", style}});
  CHECK(gone.success);
  CHECK(gone.output == "Forgot memory #" + std::to_string(style) + ".");
  CHECK(tool(host, json::object{{"action", "recall"}, {"query", "tabs spaces"}}).item.at("memories").as_array().empty());
  auto twice = tool(host, json::object{{"action", "forget"}, {"id", style}});
  CHECK(!twice.success);
  CHECK(twice.output == "There is no memory #" + std::to_string(style) + ".");
  // Models sometimes send the id as a string.
  CHECK(tool(host, json::object{{"action", "forget"}, {"id", "#" + std::to_string(db)}}).success);
}

TEST_CASE("memory-sqlite: bad tool arguments become outputs the model can act on", "[memory][sqlite]") {
  TempDir dir{"keel-memory-test"};
  AbiTestHost host(kModule);
  host.start(config_for(dir.path() / "memory.db"));
  auto fails = [&](const json::object& args, const std::string& says) {
    auto out = tool(host, args);
    INFO(out.output);
    CHECK(!out.success);
    CHECK(out.output.find(says) != std::string::npos);
  };
  fails(json::object{}, "missing 'action'");
  fails(json::object{{"action", "ponder"}}, "unknown action 'ponder'");
  fails(json::object{{"action", "remember"}}, "needs some text");
  fails(json::object{{"action", "remember"}, {"text", "   "}}, "needs some text");
  fails(json::object{{"action", "remember"}, {"text", std::string(5000, 'a')}}, "short note");
  fails(json::object{{"action", "forget"}}, "needs the 'id'");
  fails(json::object{{"action", "forget"}, {"id", "twelve"}}, "must be an integer");
  fails(json::object{{"action", "recall"}, {"query", "x"}, {"limit", "lots"}}, "must be an integer");

  auto bad_json = call_ok(host, "memory", "call", json::object{{"call_id", "c"}, {"arguments", "{not json"}, {"session_id", "s"}});
  CHECK(!bad_json.at("success").as_bool());
  CHECK(std::string(bad_json.at("output").as_string()).find("failed to parse function arguments") != std::string::npos);

  // FTS5 query syntax in the model's words never leaks into an error.
  remember(host, "C++ code uses clang-format with the Google style.");
  for (std::string q : {"\"C++\" AND (NOT", "*", "NEAR(a b", "col:val", "-x +y ^z", "'; DROP TABLE memories; --", "\xC3\xA9t\xC3\xA9"}) {
    auto out = tool(host, json::object{{"action", "recall"}, {"query", q}});
    INFO(q << " → " << out.output);
    CHECK(out.success);
  }
  auto cpp = tool(host, json::object{{"action", "recall"}, {"query", "\"C++\" AND (NOT format"}});
  CHECK(cpp.item.at("memories").as_array().size() == 1);

  // Unknown capability or method: a clear error status.
  CHECK(host.call("memory", "stream", "{}").status == KEEL_ERR_NOT_FOUND);
  CHECK(host.call("sqlite", "frobnicate", "{}").status == KEEL_ERR_NOT_FOUND);
  CHECK(host.call("sqlite", "search", "not json").status == KEEL_ERR_INVALID_ARGUMENT);
}

TEST_CASE("memory-sqlite: every recall is traced, so a user can see why the agent believed something",
          "[memory][sqlite]") {
  TempDir dir{"keel-memory-test"};
  AbiTestHost host(kModule);
  host.start(config_for(dir.path() / "memory.db"));
  auto a = remember(host, "The staging server is staging.example.com on port 8443.", "old-session", "t9", "call-1");
  auto b = remember(host, "Deploys go through the release branch, never main.", "old-session", "t9", "call-2");

  tool(host, json::object{{"action", "recall"}, {"query", "staging server port"}, {"limit", 1}}, "sess-now", "turn-1", "c1");
  tool(host, json::object{{"action", "recall"}, {"query", "deploy release"}}, "sess-now", "turn-2", "c2");
  tool(host, json::object{{"action", "recall"}, {"query", "nothing matches this"}}, "sess-now", "turn-3", "c3");
  tool(host, json::object{{"action", "recall"}, {"query", "staging"}}, "other-session", "turn-1", "c1");

  auto trace = call_ok(host, "sqlite", "trace", json::object{{"session_id", "sess-now"}}).at("trace").as_array();
  REQUIRE(trace.size() == 2);
  CHECK(trace[0].at("memory_id") == a);
  CHECK(trace[0].at("turn_id") == "turn-1");
  CHECK(trace[0].at("call_id") == "c1");
  CHECK(trace[0].at("query") == "staging server port");
  CHECK(trace[0].at("text") == "The staging server is staging.example.com on port 8443.");
  CHECK(trace[0].at("forgotten") == false);
  CHECK(trace[0].at("citation").at("session_id") == "old-session");
  CHECK(trace[0].at("citation").at("call_id") == "call-1");
  CHECK(trace[0].at("recalled_at").is_string());
  CHECK(trace[0].at("rank").is_double());
  CHECK(trace[1].at("memory_id") == b);
  CHECK(trace[1].at("turn_id") == "turn-2");

  auto turn2 = call_ok(host, "sqlite", "trace", json::object{{"session_id", "sess-now"}, {"turn_id", "turn-2"}}).at("trace").as_array();
  REQUIRE(turn2.size() == 1);
  CHECK(turn2[0].at("memory_id") == b);

  // A forgotten memory leaves its trace (which id was used, when, for what query), not its text.
  tool(host, json::object{{"action", "forget"}, {"id", a}});
  trace = call_ok(host, "sqlite", "trace", json::object{{"session_id", "sess-now"}}).at("trace").as_array();
  CHECK(trace[0].at("forgotten") == true);
  CHECK(trace[0].at("text").is_null());
  CHECK(trace[0].at("memory_id") == a);

  // The rows are in the recall_trace table for anyone to query.
  Db raw(dir.path() / "memory.db");
  CHECK(raw.number("SELECT count(*) FROM recall_trace") == 3);
  CHECK(raw.number("SELECT count(*) FROM recall_trace WHERE session_id = 'other-session'") == 1);
  CHECK(call_json(host, "sqlite", "trace", json::object{}).status == KEEL_ERR_INVALID_ARGUMENT);
}

TEST_CASE("memory-sqlite: the embedding API (search, last_n, remember, forget, count)", "[memory][sqlite]") {
  TempDir dir{"keel-memory-test"};
  AbiTestHost host(kModule);
  host.start(config_for(dir.path() / "memory.db"));
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 12; ++i)
    ids.push_back(call_ok(host, "sqlite", "remember",
                          json::object{{"text", "note " + std::to_string(i) + (i % 3 == 0 ? " about widgets" : " about gadgets")},
                                       {"session_id", "api"}})
                      .at("id")
                      .as_int64());
  CHECK(call_ok(host, "sqlite", "count", json::object{}).at("count") == 12);

  auto last = call_ok(host, "sqlite", "last_n", json::object{{"n", 3}}).at("memories").as_array();
  REQUIRE(last.size() == 3);
  CHECK(last[0].at("id") == ids[11]);
  CHECK(last[1].at("id") == ids[10]);
  CHECK(last[2].at("id") == ids[9]);
  CHECK(last[0].at("created_at").is_string());

  auto widgets = call_ok(host, "sqlite", "search", json::object{{"query", "widgets"}, {"limit", 10}}).at("memories").as_array();
  CHECK(widgets.size() == 4);
  for (auto& m : widgets) CHECK(std::string(m.at("text").as_string()).find("widgets") != std::string::npos);
  // search without a session is not traced; with one it is.
  Db raw(dir.path() / "memory.db");
  CHECK(raw.number("SELECT count(*) FROM recall_trace") == 0);
  call_ok(host, "sqlite", "search", json::object{{"query", "widgets"}, {"limit", 2}, {"session_id", "emb"}, {"turn_id", "t"}});
  CHECK(raw.number("SELECT count(*) FROM recall_trace WHERE session_id = 'emb'") == 2);

  CHECK(call_ok(host, "sqlite", "forget", json::object{{"id", ids[0]}}).at("forgotten") == true);
  CHECK(call_ok(host, "sqlite", "forget", json::object{{"id", ids[0]}}).at("forgotten") == false);
  CHECK(call_ok(host, "sqlite", "count", json::object{}).at("count") == 11);
  // The full-text index follows deletes.
  CHECK(raw.number("SELECT count(*) FROM memories_fts WHERE memories_fts MATCH 'widgets'") == 3);
}

TEST_CASE("memory-sqlite: WAL mode, schema version, reopening keeps everything", "[memory][sqlite]") {
  TempDir dir{"keel-memory-test"};
  auto path = dir.path() / "nested" / "dir" / "memory.db";  // created on demand
  std::int64_t id;
  {
    AbiTestHost host(kModule);
    host.start(config_for(path));
    id = remember(host, "Persisted across restarts.");
  }
  {
    Db raw(path);
    CHECK(raw.text("PRAGMA journal_mode") == "wal");
    CHECK(raw.number("SELECT version FROM schema_version") == 1);
    CHECK(raw.number("SELECT count(*) FROM schema_version") == 1);
    CHECK(raw.text("INSERT INTO memories_fts(memories_fts) VALUES('integrity-check')").empty());
  }
  {
    AbiTestHost host(kModule);  // a second start migrates nothing and loses nothing
    host.start(config_for(path));
    auto found = call_ok(host, "sqlite", "search", json::object{{"query", "restarts"}}).at("memories").as_array();
    REQUIRE(found.size() == 1);
    CHECK(found[0].at("id") == id);
  }
  // keel_home places the database at $KEEL_HOME/memory.db.
  {
    AbiTestHost host(kModule);
    host.start(json::serialize(json::object{{"keel_home", (dir.path() / "home").string()}}));
    remember(host, "in the home");
  }
  CHECK(fs::exists(dir.path() / "home" / "memory.db"));

  // A database from a newer keel is refused with a clear message, not damaged.
  {
    Db raw(path);
    raw.exec("UPDATE schema_version SET version = 99");
  }
  AbiTestHost newer(kModule);
  try {
    newer.start(config_for(path));
    FAIL("start should have failed");
  } catch (const std::exception& e) {
    CHECK(std::string(e.what()).find("schema version 99") != std::string::npos);
  }
  Db raw(path);
  CHECK(raw.number("SELECT count(*) FROM memories") == 1);

  // An unusable path is a start error naming it.
  AbiTestHost bad(kModule);
  fs::create_directories(dir.path() / "a-directory.db");
  CHECK_THROWS_WITH(bad.start(config_for(dir.path() / "a-directory.db")), Catch::Contains("a-directory.db"));
}

TEST_CASE("memory-sqlite: two processes writing one database at once lose nothing", "[memory][sqlite][processes]") {
  TempDir dir{"keel-memory-test"};
  auto db = dir.path() / "memory.db";
  auto go = dir.path() / "go";
  const int kEach = 1000;
  Child a({kChild, "sqlite-insert", kModule, db.string(), "alpha", std::to_string(kEach), go.string()});
  Child b({kChild, "sqlite-insert", kModule, db.string(), "bravo", std::to_string(kEach), go.string()});
  REQUIRE(a.read_line() == std::optional<std::string>("ready"));
  REQUIRE(b.read_line() == std::optional<std::string>("ready"));
  { std::ofstream(go) << "go"; }  // both start writing at the same moment
  CHECK(a.read_line(std::chrono::seconds(120)) == std::optional<std::string>("done 0"));
  CHECK(b.read_line(std::chrono::seconds(120)) == std::optional<std::string>("done 0"));
  int sa = a.wait(), sb = b.wait();
  CHECK((WIFEXITED(sa) && WEXITSTATUS(sa) == 0));
  CHECK((WIFEXITED(sb) && WEXITSTATUS(sb) == 0));

  AbiTestHost host(kModule);
  host.start(config_for(db));
  CHECK(call_ok(host, "sqlite", "count", json::object{}).at("count") == 2 * kEach);
  Db raw(db);
  CHECK(raw.number("SELECT count(*) FROM memories WHERE session_id = 'session-alpha'") == kEach);
  CHECK(raw.number("SELECT count(*) FROM memories WHERE session_id = 'session-bravo'") == kEach);
  CHECK(raw.number("SELECT count(DISTINCT text) FROM memories") == 2 * kEach);
  CHECK(raw.number("SELECT count(*) FROM memories_fts WHERE memories_fts MATCH 'alpha'") == kEach);
  CHECK(raw.number("SELECT count(*) FROM memories_fts WHERE memories_fts MATCH 'bravo'") == kEach);
  CHECK(raw.text("INSERT INTO memories_fts(memories_fts) VALUES('integrity-check')").empty());
  CHECK(raw.text("PRAGMA integrity_check") == "ok");
}

TEST_CASE("memory-sqlite: threads and two connections in one process lose nothing", "[memory][sqlite]") {
  TempDir dir{"keel-memory-test"};
  auto db = dir.path() / "memory.db";
  AbiTestHost one(kModule), two(kModule);  // two module instances: two connections
  one.start(config_for(db));
  two.start(config_for(db));
  const int kThreads = 4, kEach = 150;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      auto& host = t % 2 ? two : one;
      for (int i = 0; i < kEach; ++i) {
        auto r = call_json(host, "memory", "call",
                           tool_request(json::object{{"action", "remember"}, {"text", "thread " + std::to_string(t) + " note " + std::to_string(i)}}));
        if (!r.ok() || !r.body.at("success").as_bool()) ++failures;
        // Readers run alongside the writers.
        auto q = call_json(host, "memory", "call", tool_request(json::object{{"action", "recall"}, {"query", "thread note"}}));
        if (!q.ok() || !q.body.at("success").as_bool()) ++failures;
      }
    });
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  CHECK(call_ok(one, "sqlite", "count", json::object{}).at("count") == kThreads * kEach);
  CHECK(call_ok(two, "sqlite", "count", json::object{}).at("count") == kThreads * kEach);
}

TEST_CASE("memory-sqlite: recall stays relevant when the words match more notes than it ranks",
          "[memory][sqlite]") {
  TempDir dir{"keel-memory-test"};
  auto db = dir.path() / "memory.db";
  AbiTestHost host(kModule);
  host.start(config_for(db));
  auto both = remember(host, "The widget factory paints a zebra stripe on every widget.");
  auto rare = remember(host, "A zebra crossing is in front of the office.");
  {
    // Far more notes with a common word than recall ranks one by one.
    Db raw(db);
    raw.exec("BEGIN");
    for (int i = 0; i < 8000; ++i)
      raw.exec("INSERT INTO memories(text, created_at) VALUES ('common widget note number " + std::to_string(i) +
               "', '2025-01-01T00:00:00.000Z')");
    raw.exec("COMMIT");
  }
  // Notes holding every word come first, then those with the rare word, then the rest.
  auto found = tool(host, json::object{{"action", "recall"}, {"query", "zebra widget"}, {"limit", 5}});
  auto& memories = found.item.at("memories").as_array();
  REQUIRE(memories.size() == 5);
  CHECK(memories[0].at("id") == both);
  CHECK(memories[1].at("id") == rare);
  // One very common word alone: still an answer (the newest matches, ranked), quickly.
  auto common = tool(host, json::object{{"action", "recall"}, {"query", "widget"}, {"limit", 3}});
  REQUIRE(common.item.at("memories").as_array().size() == 3);
  for (auto& m : common.item.at("memories").as_array())
    CHECK(std::string(m.at("text").as_string()).find("widget") != std::string::npos);
  // A word nobody wrote: nothing, not noise.
  CHECK(tool(host, json::object{{"action", "recall"}, {"query", "okapi"}}).item.at("memories").as_array().empty());
}
