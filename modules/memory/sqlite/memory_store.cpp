#include "memory_store.hpp"

#include <keel/abi.h>

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <set>
#include <thread>

namespace keel::memory {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

std::string iso_utc_now() {
  auto tp = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

// Migration N brings the schema from version N-1 to N. Append; never edit a shipped one.
const char* const kMigrations[] = {
    // 1: memories with citations, their full-text index, and the recall trace.
    R"sql(
CREATE TABLE memories(
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  text        TEXT NOT NULL,
  session_id  TEXT,
  turn_id     TEXT,
  call_id     TEXT,
  cwd         TEXT,
  created_at  TEXT NOT NULL
);
CREATE INDEX memories_text ON memories(text);
CREATE VIRTUAL TABLE memories_fts USING fts5(
  text, content='memories', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2');
CREATE TRIGGER memories_ai AFTER INSERT ON memories BEGIN
  INSERT INTO memories_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER memories_ad AFTER DELETE ON memories BEGIN
  INSERT INTO memories_fts(memories_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER memories_au AFTER UPDATE OF text ON memories BEGIN
  INSERT INTO memories_fts(memories_fts, rowid, text) VALUES ('delete', old.id, old.text);
  INSERT INTO memories_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TABLE recall_trace(
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  memory_id   INTEGER NOT NULL,
  session_id  TEXT,
  turn_id     TEXT,
  call_id     TEXT,
  query       TEXT,
  rank        REAL,
  recalled_at TEXT NOT NULL
);
CREATE INDEX recall_trace_session ON recall_trace(session_id, id);
CREATE INDEX recall_trace_memory ON recall_trace(memory_id);
)sql",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == MemoryStore::kSchemaVersion);

const std::set<std::string, std::less<>> kStopWords = {
    "a",     "about", "an",    "and",   "are",  "as",    "at",   "be",   "by",    "can",  "did",   "do",
    "does",  "for",   "from",  "had",   "has",  "have",  "how",  "i",    "if",    "in",   "into",  "is",
    "it",    "its",   "me",    "my",    "not",  "of",    "on",   "or",   "our",   "so",   "that",  "the",
    "their", "them",  "then",  "there", "they", "this",  "to",   "us",   "was",   "we",   "were",  "what",
    "when",  "where", "which", "who",   "why",  "will",  "with", "you",  "your",  "should", "would", "could"};

std::string_view trim(std::string_view s) {
  auto a = s.find_first_not_of(" \t\r\n");
  if (a == std::string_view::npos) return {};
  auto b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

}  // namespace

json::object Memory::to_json() const {
  auto opt = [](const std::string& s) { return s.empty() ? json::value(nullptr) : json::value(s); };
  json::object o{{"id", id},
                 {"text", text},
                 {"session_id", opt(citation.session_id)},
                 {"turn_id", opt(citation.turn_id)},
                 {"call_id", opt(citation.call_id)},
                 {"created_at", created_at}};
  if (!citation.cwd.empty()) o["cwd"] = citation.cwd;
  if (rank) o["rank"] = *rank;
  return o;
}

// ---------------------------------------------------------------------------------------------
// Statements and transactions

struct MemoryStore::Stmt {
  Stmt(MemoryStore& store, const char* sql) : store(store) {
    int rc = sqlite3_prepare_v2(store.db_, sql, -1, &stmt, nullptr);
    if (rc != SQLITE_OK) store.fail(rc, "prepare");
  }
  ~Stmt() { sqlite3_finalize(stmt); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, std::string_view text) {
    check(sqlite3_bind_text(stmt, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& bind_opt(int i, const std::string& text) {
    check(text.empty() ? sqlite3_bind_null(stmt, i) : sqlite3_bind_text(stmt, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& bind(int i, std::int64_t v) {
    check(sqlite3_bind_int64(stmt, i, v));
    return *this;
  }
  Stmt& bind(int i, double v) {
    check(sqlite3_bind_double(stmt, i, v));
    return *this;
  }
  // true: a row is ready; false: done.
  bool step() {
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    store.fail(rc, "step");
  }
  void reset() {
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
  }
  std::string text(int col) const {
    auto* p = sqlite3_column_text(stmt, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(stmt, col)))
             : std::string{};
  }
  std::int64_t int64(int col) const { return sqlite3_column_int64(stmt, col); }
  double dbl(int col) const { return sqlite3_column_double(stmt, col); }
  bool null(int col) const { return sqlite3_column_type(stmt, col) == SQLITE_NULL; }
  void check(int rc) {
    if (rc != SQLITE_OK) store.fail(rc, "bind");
  }

  MemoryStore& store;
  sqlite3_stmt* stmt = nullptr;
};

// One IMMEDIATE transaction: takes the write lock up front (waiting out other writers), so no
// read-then-write upgrade can fail with SQLITE_BUSY halfway through. Rolls back unless committed.
struct MemoryStore::Tx {
  explicit Tx(MemoryStore& store) : store(store) { store.begin_immediate(); }
  ~Tx() {
    if (!done) sqlite3_exec(store.db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;
  void commit() {
    store.exec("COMMIT");
    done = true;
  }
  MemoryStore& store;
  bool done = false;
};

void MemoryStore::fail(int rc, std::string_view what) const {
  std::string message = "memory database " + path_.string() + ": " + std::string(what) + ": " +
                        (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
  int status = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED ? KEEL_ERR_UNAVAILABLE
               : (rc & 0xff) == SQLITE_CANTOPEN || (rc & 0xff) == SQLITE_READONLY || (rc & 0xff) == SQLITE_FULL ||
                       (rc & 0xff) == SQLITE_IOERR
                   ? KEEL_ERR_UNAVAILABLE
                   : KEEL_ERR_INTERNAL;
  throw StoreError(status, message);
}

void MemoryStore::exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string message = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    int status = (rc & 0xff) == SQLITE_BUSY ? KEEL_ERR_UNAVAILABLE : KEEL_ERR_INTERNAL;
    throw StoreError(status, "memory database " + path_.string() + ": " + message);
  }
}

void MemoryStore::begin_immediate() {
  // The busy handler already waits busy_timeout_ms for the lock; a few cases (a WAL being
  // recovered by another process) answer SQLITE_BUSY at once, so retry until the deadline.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(busy_timeout_ms_);
  for (;;) {
    int rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    if (rc == SQLITE_OK) return;
    if ((rc & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() >= deadline) fail(rc, "begin");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// ---------------------------------------------------------------------------------------------
// Opening and migrating

MemoryStore::MemoryStore(const fs::path& db_path, int busy_timeout_ms) : path_(db_path), busy_timeout_ms_(busy_timeout_ms) {
  std::error_code ec;
  if (path_.has_parent_path()) fs::create_directories(path_.parent_path(), ec);
  int rc = sqlite3_open_v2(path_.c_str(), &db_,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = "cannot open the memory database " + path_.string() + ": " +
                          (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
    sqlite3_close(db_);
    db_ = nullptr;
    throw StoreError(KEEL_ERR_UNAVAILABLE, message);
  }
  try {
    sqlite3_busy_timeout(db_, busy_timeout_ms_);
    sqlite3_extended_result_codes(db_, 1);
    // Keep the -wal and -shm files when the last connection closes: every keel start opens the
    // database, and re-creating both files each time cost 1-3 ms of start-up here.
    int persist_wal = 1;
    sqlite3_file_control(db_, "main", SQLITE_FCNTL_PERSIST_WAL, &persist_wal);
    // WAL: readers never block the writer and the writer never blocks readers. Switching needs
    // a moment alone with the file; another process opening at the same time may hold it.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(busy_timeout_ms_);
    for (;;) {
      Stmt wal(*this, "PRAGMA journal_mode=WAL");
      int step = sqlite3_step(wal.stmt);
      if (step == SQLITE_ROW) {
        if (wal.text(0) != "wal")
          throw StoreError(KEEL_ERR_UNAVAILABLE, "memory database " + path_.string() + ": cannot use WAL mode (" +
                                                     wal.text(0) + ")");
        break;
      }
      if ((step & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() >= deadline) fail(step, "journal_mode");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    exec("PRAGMA synchronous=NORMAL");  // in WAL: durable across process crashes, fsync at checkpoints
    exec("PRAGMA foreign_keys=ON");
    migrate();
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

MemoryStore::~MemoryStore() {
  if (db_) sqlite3_close(db_);
}

void MemoryStore::migrate() {
  Tx tx(*this);
  exec("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)");
  int version = 0;
  {
    Stmt q(*this, "SELECT version FROM schema_version LIMIT 1");
    if (q.step()) version = static_cast<int>(q.int64(0));
    else exec("INSERT INTO schema_version(version) VALUES (0)");
  }
  if (version > kSchemaVersion)
    throw StoreError(KEEL_ERR_UNAVAILABLE, "memory database " + path_.string() + " has schema version " +
                                               std::to_string(version) + ", newer than this keel understands (" +
                                               std::to_string(kSchemaVersion) + "); upgrade keel");
  for (int v = version; v < kSchemaVersion; ++v) {
    exec(kMigrations[v]);
    Stmt up(*this, "UPDATE schema_version SET version = ?1");
    up.bind(1, static_cast<std::int64_t>(v + 1));
    up.step();
  }
  tx.commit();
}

int MemoryStore::schema_version() {
  std::lock_guard lock(mu_);
  Stmt q(*this, "SELECT version FROM schema_version LIMIT 1");
  return q.step() ? static_cast<int>(q.int64(0)) : 0;
}

// ---------------------------------------------------------------------------------------------
// Queries

std::vector<std::string> MemoryStore::fts_terms(std::string_view text) {
  std::vector<std::string> words, stop;
  std::set<std::string> seen;
  std::string word;
  auto flush = [&] {
    if (word.empty()) return;
    if (seen.insert(word).second) (kStopWords.contains(word) ? stop : words).push_back(word);
    word.clear();
  };
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c >= 0x80) word.push_back(ch);
    else if (c >= 'A' && c <= 'Z') word.push_back(static_cast<char>(c - 'A' + 'a'));
    else flush();
  }
  flush();
  if (words.empty()) words = std::move(stop);  // a query made only of stop words still means something
  if (words.size() > 16) words.resize(16);
  for (auto& w : words) w = "\"" + w + "\"";  // words hold no quote, so none needs doubling
  return words;
}

namespace {
std::string joined(const std::vector<std::string>& terms, std::string_view op) {
  std::string out;
  for (auto& t : terms) {
    if (!out.empty()) out.append(" ").append(op).append(" ");
    out += t;
  }
  return out;
}
}  // namespace

std::vector<Memory> MemoryStore::recent_locked(int limit) {
  Stmt q(*this, "SELECT id, text, session_id, turn_id, call_id, cwd, created_at FROM memories ORDER BY id DESC LIMIT ?1");
  q.bind(1, static_cast<std::int64_t>(limit));
  std::vector<Memory> out;
  while (q.step())
    out.push_back(Memory{q.int64(0), q.text(1), {q.text(2), q.text(3), q.text(4), q.text(5)}, q.text(6), std::nullopt});
  return out;
}

std::int64_t MemoryStore::matches_capped(const std::string& match, std::int64_t cap) {
  Stmt q(*this, "SELECT count(*) FROM (SELECT rowid FROM memories_fts WHERE memories_fts MATCH ?1 LIMIT ?2)");
  q.bind(1, match).bind(2, cap);
  return q.step() ? q.int64(0) : 0;
}

std::vector<Memory> MemoryStore::ranked(const std::string& match, int limit, std::int64_t window) {
  // FTS5 ranks (bm25, with collection-wide statistics) and cuts to the limit in the inner query;
  // only those rows are joined back to their notes.
  const char* exact =
      "SELECT m.id, m.text, m.session_id, m.turn_id, m.call_id, m.cwd, m.created_at, f.rank "
      "FROM (SELECT rowid, rank FROM memories_fts WHERE memories_fts MATCH ?1 ORDER BY rank LIMIT ?2) AS f "
      "JOIN memories AS m ON m.id = f.rowid ORDER BY f.rank";
  const char* newest =
      "SELECT m.id, m.text, m.session_id, m.turn_id, m.call_id, m.cwd, m.created_at, f.rank "
      "FROM (SELECT rowid, rank FROM (SELECT rowid, rank FROM memories_fts WHERE memories_fts MATCH ?1 "
      "                               ORDER BY rowid DESC LIMIT ?3) ORDER BY rank LIMIT ?2) AS f "
      "JOIN memories AS m ON m.id = f.rowid ORDER BY f.rank";
  Stmt q(*this, window > 0 ? newest : exact);
  q.bind(1, match).bind(2, static_cast<std::int64_t>(limit));
  if (window > 0) q.bind(3, window);
  std::vector<Memory> out;
  while (q.step())
    out.push_back(Memory{q.int64(0), q.text(1), {q.text(2), q.text(3), q.text(4), q.text(5)}, q.text(6), q.dbl(7)});
  return out;
}

// Recall: bm25 over the notes matching any word of the query. Ranking is the cost (about 1 µs
// a candidate), so when the words match more than kRankBudget notes in all, the candidates are
// chosen instead of ranking everything:
//   1. notes holding every word (exactly ranked if the rarest word fits the budget, else the
//      newest budget's worth of them);
//   2. then notes holding the selective words: the rarest words whose matches fit the budget
//      together (the words that carry most of bm25's weight anyway);
//   3. if that is still short of the limit, the newest budget's worth of matches of any word.
std::vector<Memory> MemoryStore::search_locked(std::string_view query, int limit) {
  limit = std::clamp(limit, 1, 1000);
  auto words = fts_terms(query);
  if (words.empty()) return recent_locked(limit);

  struct Term {
    std::string match;
    std::int64_t df;
  };
  std::vector<Term> terms;
  std::int64_t total = 0;
  for (auto& w : words) {
    auto df = matches_capped(w, kRankBudget + 1);
    if (df > 0) terms.push_back({w, df});
    total += df;
  }
  if (terms.empty()) return {};
  auto matches = [&](std::size_t n) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < n; ++i) out.push_back(terms[i].match);
    return out;
  };
  if (total <= kRankBudget) return ranked(joined(matches(terms.size()), "OR"), limit);

  std::stable_sort(terms.begin(), terms.end(), [](const Term& a, const Term& b) { return a.df < b.df; });
  std::vector<Memory> out;
  std::set<std::int64_t> seen;
  auto add = [&](std::vector<Memory> found) {
    for (auto& m : found)
      if (out.size() < static_cast<std::size_t>(limit) && seen.insert(m.id).second) out.push_back(std::move(m));
  };
  if (terms.size() > 1) {
    auto all = joined(matches(terms.size()), "AND");
    add(terms[0].df <= kRankBudget ? ranked(all, limit) : ranked(all, limit, kRankBudget));
  }
  if (out.size() < static_cast<std::size_t>(limit)) {
    std::size_t selective = 0;
    for (std::int64_t sum = 0; selective < terms.size() && sum + terms[selective].df <= kRankBudget; ++selective)
      sum += terms[selective].df;
    int want = limit + static_cast<int>(out.size());  // room for the ones already found
    if (selective > 0) add(ranked(joined(matches(selective), "OR"), want));
    // Still short (the selective words are rare): the newest matches of any word fill up.
    if (out.size() < static_cast<std::size_t>(limit))
      add(ranked(joined(matches(terms.size()), "OR"), limit + static_cast<int>(out.size()), kRankBudget));
  }
  return out;
}

std::vector<Memory> MemoryStore::search(std::string_view query, int limit) {
  std::lock_guard lock(mu_);
  return search_locked(query, limit);
}

std::vector<Memory> MemoryStore::recall(std::string_view query, int limit, const Citation& who) {
  std::lock_guard lock(mu_);
  auto found = search_locked(query, limit);
  if (found.empty()) return found;
  Tx tx(*this);
  Stmt ins(*this,
           "INSERT INTO recall_trace(memory_id, session_id, turn_id, call_id, query, rank, recalled_at) "
           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  std::string now = iso_utc_now();
  for (auto& m : found) {
    ins.bind(1, m.id).bind_opt(2, who.session_id).bind_opt(3, who.turn_id).bind_opt(4, who.call_id).bind(5, query);
    if (m.rank) ins.bind(6, *m.rank);
    ins.bind(7, now);
    ins.step();
    ins.reset();
  }
  tx.commit();
  return found;
}

MemoryStore::Remembered MemoryStore::remember(std::string_view text, const Citation& source) {
  text = trim(text);
  if (text.empty()) throw StoreError(KEEL_ERR_INVALID_ARGUMENT, "a memory needs some text");
  if (text.size() > kMaxTextBytes)
    throw StoreError(KEEL_ERR_INVALID_ARGUMENT, "a memory is a short note: at most " + std::to_string(kMaxTextBytes) +
                                                    " bytes (this one has " + std::to_string(text.size()) + ")");
  std::lock_guard lock(mu_);
  Tx tx(*this);
  Remembered out{0, false};
  {
    Stmt q(*this, "SELECT id FROM memories WHERE text = ?1 LIMIT 1");
    q.bind(1, text);
    if (q.step()) out = {q.int64(0), true};
  }
  if (!out.existed) {
    Stmt ins(*this,
             "INSERT INTO memories(text, session_id, turn_id, call_id, cwd, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    ins.bind(1, text).bind_opt(2, source.session_id).bind_opt(3, source.turn_id).bind_opt(4, source.call_id);
    ins.bind_opt(5, source.cwd).bind(6, iso_utc_now());
    ins.step();
    out.id = sqlite3_last_insert_rowid(db_);
  }
  tx.commit();
  return out;
}

bool MemoryStore::forget(std::int64_t id) {
  std::lock_guard lock(mu_);
  Tx tx(*this);
  Stmt del(*this, "DELETE FROM memories WHERE id = ?1");
  del.bind(1, id);
  del.step();
  bool gone = sqlite3_changes(db_) > 0;
  tx.commit();
  return gone;
}

std::vector<Memory> MemoryStore::last_n(int n) {
  std::lock_guard lock(mu_);
  return recent_locked(std::clamp(n, 1, 1000));
}

std::int64_t MemoryStore::count() {
  std::lock_guard lock(mu_);
  Stmt q(*this, "SELECT count(*) FROM memories");
  return q.step() ? q.int64(0) : 0;
}

json::array MemoryStore::trace(std::string_view session_id, std::string_view turn_id) {
  std::lock_guard lock(mu_);
  Stmt q(*this,
         "SELECT t.memory_id, m.text, t.session_id, t.turn_id, t.call_id, t.query, t.rank, t.recalled_at, "
         "       m.session_id, m.turn_id, m.call_id, m.created_at, m.id IS NULL "
         "FROM recall_trace AS t LEFT JOIN memories AS m ON m.id = t.memory_id "
         "WHERE t.session_id = ?1 AND (?2 = '' OR t.turn_id = ?2) ORDER BY t.id");
  q.bind(1, session_id).bind(2, turn_id);
  json::array out;
  auto opt = [&](int col) { return q.null(col) ? json::value(nullptr) : json::value(q.text(col)); };
  while (q.step()) {
    bool forgotten = q.int64(12) != 0;
    json::object row{{"memory_id", q.int64(0)},
                     {"text", opt(1)},
                     {"forgotten", forgotten},
                     {"session_id", opt(2)},
                     {"turn_id", opt(3)},
                     {"call_id", opt(4)},
                     {"query", opt(5)},
                     {"rank", q.null(6) ? json::value(nullptr) : json::value(q.dbl(6))},
                     {"recalled_at", q.text(7)}};
    if (!forgotten)
      row["citation"] = json::object{{"session_id", opt(8)}, {"turn_id", opt(9)}, {"call_id", opt(10)},
                                     {"created_at", opt(11)}};
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace keel::memory
