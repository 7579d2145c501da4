// Long-term memory in SQLite: short notes with citations, full-text recall (FTS5, bm25), and
// a trace of every recall so a user can see why the agent believed something.
//
// The database ($KEEL_HOME/memory.db) runs in WAL mode with a busy timeout, and every write is
// one IMMEDIATE transaction, so several keel processes can share it and lose nothing. The
// schema carries its version in `schema_version` and is migrated forward on open.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace keel::memory {

struct StoreError : std::runtime_error {
  StoreError(int status, const std::string& message) : std::runtime_error(message), status(status) {}
  int status;  // keel_status
};

// Where a memory came from, or who recalled it.
struct Citation {
  std::string session_id, turn_id, call_id, cwd;
};

struct Memory {
  std::int64_t id = 0;
  std::string text;
  Citation citation;
  std::string created_at;
  std::optional<double> rank;  // bm25 (lower is better) for search results
  boost::json::object to_json() const;
};

class MemoryStore {
 public:
  static constexpr int kSchemaVersion = 1;
  static constexpr std::size_t kMaxTextBytes = 4000;

  explicit MemoryStore(const std::filesystem::path& db_path, int busy_timeout_ms = 10000);
  ~MemoryStore();
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  struct Remembered {
    std::int64_t id;
    bool existed;  // the very same note was already stored
  };
  Remembered remember(std::string_view text, const Citation& source);

  // Full-text search, best first. An empty (or wordless) query answers the most recent notes.
  std::vector<Memory> search(std::string_view query, int limit);
  // search() whose every result is recorded in recall_trace for `who`.
  std::vector<Memory> recall(std::string_view query, int limit, const Citation& who);

  bool forget(std::int64_t id);
  std::vector<Memory> last_n(int n);
  // The recalls made in a session (optionally one turn), oldest first.
  boost::json::array trace(std::string_view session_id, std::string_view turn_id = {});
  std::int64_t count();
  int schema_version();

  // The FTS5 terms of free text: words quoted (no query syntax can leak through), common
  // English stop words dropped (unless nothing else is left), at most 16.
  static std::vector<std::string> fts_terms(std::string_view text);

  // Ranking costs about a microsecond per matching note, so a recall ranks at most this many
  // candidates (see search_locked for how they are chosen when a query matches more).
  static constexpr std::int64_t kRankBudget = 6000;

 private:
  struct Stmt;
  struct Tx;
  void exec(const char* sql);
  void begin_immediate();
  void migrate();
  std::vector<Memory> search_locked(std::string_view query, int limit);
  std::vector<Memory> recent_locked(int limit);
  std::int64_t matches_capped(const std::string& match, std::int64_t cap);
  // bm25-ranked notes matching `match`; with `window`, only the newest `window` matches are ranked.
  std::vector<Memory> ranked(const std::string& match, int limit, std::int64_t window = 0);
  [[noreturn]] void fail(int rc, std::string_view what) const;

  std::filesystem::path path_;
  int busy_timeout_ms_;
  sqlite3* db_ = nullptr;
  std::mutex mu_;
};

}  // namespace keel::memory
