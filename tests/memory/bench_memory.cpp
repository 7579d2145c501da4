// keel-memory-bench: memory-sqlite recall over 100,000 memories, through the module's C ABI.
//
//   keel-memory-bench [COUNT]        (default 100000)
//
// The database is filled with synthetic notes (a Zipf-distributed vocabulary with English
// function words on top, 8–30 words a note), then recalls are timed: typical queries of a few
// mid-frequency words, and queries of the most frequent words (the worst case: long posting
// lists to rank). Target: ≤ 10 ms a recall.
#include "bench.hpp"
#include "memory_test_support.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <set>
#include <sstream>

using namespace keel::test::memory;

namespace {

struct Corpus {
  std::vector<std::string> words;
  std::vector<double> cdf;
  std::mt19937 rng{12345};

  explicit Corpus(std::size_t vocabulary) {
    const char* common[] = {"the", "a", "to", "is", "in", "and", "of", "for", "with", "on", "uses", "run", "when", "be"};
    for (auto* w : common) words.emplace_back(w);
    const char* syl[] = {"ba", "ko", "ri", "tem", "lo", "sin", "gra", "pu", "ve", "dor", "mi", "fe", "za", "qui", "nol", "tra"};
    std::mt19937 g(7);
    while (words.size() < vocabulary) {
      std::string w;
      int n = 2 + static_cast<int>(g() % 3);
      for (int i = 0; i < n; ++i) w += syl[g() % 16];
      words.push_back(w);
    }
    double sum = 0;
    for (std::size_t i = 0; i < words.size(); ++i) cdf.push_back(sum += 1.0 / std::pow(static_cast<double>(i + 1), 1.05));
    for (auto& c : cdf) c /= sum;
  }
  const std::string& word() {
    double u = std::uniform_real_distribution<double>(0, 1)(rng);
    auto i = static_cast<std::size_t>(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
    return words[std::min(i, words.size() - 1)];
  }
  std::string note() {
    int n = 8 + static_cast<int>(rng() % 23);
    std::string s;
    for (int i = 0; i < n; ++i) s += (i ? " " : "") + word();
    return s + ".";
  }
  // Words of a given frequency band (rank lo..hi).
  std::string pick(std::size_t lo, std::size_t hi) { return words[lo + rng() % (hi - lo)]; }
};

void fill(const fs::path& db, Corpus& corpus, int count) {
  sqlite3* h = nullptr;
  if (sqlite3_open(db.c_str(), &h) != SQLITE_OK) throw std::runtime_error("open failed");
  sqlite3_exec(h, "BEGIN", nullptr, nullptr, nullptr);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(h,
                     "INSERT INTO memories(text, session_id, turn_id, call_id, created_at) "
                     "VALUES (?1, ?2, ?3, ?4, '2025-01-01T00:00:00.000Z')",
                     -1, &st, nullptr);
  for (int i = 0; i < count; ++i) {
    std::string text = corpus.note(), session = "bench-" + std::to_string(i / 50), turn = "t" + std::to_string(i % 50);
    sqlite3_bind_text(st, 1, text.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, session.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, turn.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, "call", -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) throw std::runtime_error(sqlite3_errmsg(h));
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  sqlite3_exec(h, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(h);
}

// The exact bm25 top `k` over every matching note (what recall approximates when a query's
// words match more notes than its ranking budget).
std::vector<std::int64_t> exact_top(sqlite3* h, const std::string& query, int k) {
  static const std::set<std::string> stop = {"how", "do", "we", "the", "with"};
  std::string match, word;
  std::istringstream in(query);
  while (in >> word)
    if (!stop.contains(word)) match += (match.empty() ? "\"" : " OR \"") + word + "\"";
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(h, "SELECT rowid FROM memories_fts WHERE memories_fts MATCH ?1 ORDER BY rank LIMIT ?2", -1, &st, nullptr);
  sqlite3_bind_text(st, 1, match.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int(st, 2, k);
  std::vector<std::int64_t> out;
  while (sqlite3_step(st) == SQLITE_ROW) out.push_back(sqlite3_column_int64(st, 0));
  sqlite3_finalize(st);
  return out;
}

struct Stats {
  double median, p95, max;
};

Stats time_each(const std::vector<std::string>& queries, const std::function<void(const std::string&)>& fn) {
  std::vector<double> t;
  for (auto& q : queries) {
    auto a = std::chrono::steady_clock::now();
    fn(q);
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t[t.size() * 95 / 100], t.back()};
}

}  // namespace

int main(int argc, char** argv) {
  try {
    int count = argc > 1 ? std::stoi(argv[1]) : 100000;
    TempDir dir("keel-memory-bench");
    auto db = dir.path() / "memory.db";
    keel::test::AbiTestHost host(KEEL_MEMORY_SQLITE_MODULE);
    host.start(json::serialize(json::object{{"db_path", db.string()}}));

    Corpus corpus(20000);
    auto t0 = std::chrono::steady_clock::now();
    fill(db, corpus, count);
    double fill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto total = call_ok(host, "sqlite", "count", json::object{}).at("count").as_int64();
    std::printf("memory-sqlite: %lld memories (filled in %.1f s), database %.1f MiB\n", static_cast<long long>(total),
                fill_s,
                static_cast<double>(fs::file_size(db) + fs::file_size(dir.path() / "memory.db-wal")) / 1048576.0);

    std::vector<std::string> typical, frequent;
    for (int i = 0; i < 200; ++i) {
      typical.push_back("how do we " + corpus.pick(30, 3000) + " the " + corpus.pick(30, 3000) + " with " + corpus.pick(100, 8000));
      frequent.push_back(corpus.pick(14, 24) + " " + corpus.pick(14, 24) + " " + corpus.pick(24, 60));
    }
    int turn = 0;
    auto tool_recall = [&](const std::string& q) {
      auto r = call_json(host, "memory", "call",
                         tool_request(json::object{{"action", "recall"}, {"query", q}, {"limit", 5}}, "bench", "turn-" + std::to_string(++turn)));
      if (!r.ok() || !r.body.at("success").as_bool()) throw std::runtime_error("recall failed: " + r.raw);
    };
    auto api_search = [&](const std::string& q) { call_ok(host, "sqlite", "search", json::object{{"query", q}, {"limit", 5}}); };

    for (int i = 0; i < 20; ++i) tool_recall(typical[static_cast<std::size_t>(i)]);  // warm the page cache
    auto row = [&](const std::string& name, Stats s) {
      keel::bench::print({name + " (median)", s.median, "ms", "<= 10"});
      keel::bench::print({name + " (p95)", s.p95, "ms", "<= 10"});
      keel::bench::print({name + " (max)", s.max, "ms", "-"});
    };
    std::string n = std::to_string(count / 1000) + "k";
    row("memory recall tool, typical query, " + n + " memories", time_each(typical, tool_recall));
    row("memory recall tool, most frequent words, " + n + " memories", time_each(frequent, tool_recall));
    row("memory.sqlite.search (no trace), typical, " + n, time_each(typical, api_search));

    // How close the budgeted ranking comes to exact bm25: shared results in the top 5.
    sqlite3* h = nullptr;
    sqlite3_open(db.c_str(), &h);
    auto agreement = [&](const std::vector<std::string>& queries) {
      double shared = 0, possible = 0;
      for (auto& q : queries) {
        auto exact = exact_top(h, q, 5);
        std::set<std::int64_t> got;
        auto reply = call_ok(host, "sqlite", "search", json::object{{"query", q}, {"limit", 5}});
        for (auto& m : reply.at("memories").as_array())
          got.insert(m.at("id").as_int64());
        for (auto id : exact) shared += got.contains(id);
        possible += static_cast<double>(exact.size());
      }
      return possible > 0 ? 100.0 * shared / possible : 100.0;
    };
    keel::bench::print({"recall top-5 agreement with exact bm25, typical", agreement(typical), "%", "-"});
    keel::bench::print({"recall top-5 agreement with exact bm25, most frequent words", agreement(frequent), "%", "-"});
    sqlite3_close(h);

    std::vector<std::string> notes;
    for (int i = 0; i < 200; ++i) notes.push_back(corpus.note() + " #" + std::to_string(i));
    auto remember = [&](const std::string& text) {
      call_ok(host, "memory", "call", tool_request(json::object{{"action", "remember"}, {"text", text}}));
    };
    keel::bench::print({"memory remember tool, " + n + " memories (median)", time_each(notes, remember).median, "ms", "-"});
    keel::bench::print({"memory.sqlite.last_n(20) (median)",
                        time_each(notes, [&](const std::string&) { call_ok(host, "sqlite", "last_n", json::object{{"n", 20}}); }).median,
                        "ms", "-"});
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "keel-memory-bench: %s\n", e.what());
    return 1;
  }
}
