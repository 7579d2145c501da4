// memory-sqlite: long-term memory with citations, in SQLite (see memory_store.hpp).
//
// Tool `memory` (for the model), arguments
//   {"action": "remember", "text": "..."}            → stores a note, cited to this session,
//                                                      turn and call; answers its id
//   {"action": "recall", "query": "...", "limit"?: 5} → best matches (FTS5, bm25) with ids and
//                                                      citations; every result is traced
//   {"action": "forget", "id": 12}                   → deletes the note
//
// Capability memory "sqlite" (for the kernel and the embedding API), methods
//   search {query, limit?, session_id?, turn_id?} → {memories: [...]}  (traced if session_id)
//   last_n {n}                                    → {memories: [...]}  newest first
//   trace  {session_id, turn_id?}                 → {trace: [{memory_id, text, forgotten, query,
//                                                     turn_id, call_id, recalled_at, citation}]}
//   remember {text, session_id?, turn_id?, call_id?, cwd?} → {id, existed}
//   forget {id} → {forgotten: bool}          count {} → {count}
//
// Configuration ([modules.memory-sqlite]): db_path (default $KEEL_HOME/memory.db),
// busy_timeout_ms (default 10000).
#include "memory_store.hpp"

#include <keel/sdk/module.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cstdlib>
#include <filesystem>
#include <memory>

namespace {

namespace json = boost::json;
using keel::memory::Citation;
using keel::memory::Memory;
using keel::memory::MemoryStore;
using keel::memory::StoreError;

std::string str(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string{};
}

std::optional<std::int64_t> integer(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64() && v->as_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) return static_cast<std::int64_t>(v->as_uint64());
  if (v->is_double() && v->as_double() == static_cast<double>(static_cast<std::int64_t>(v->as_double())))
    return static_cast<std::int64_t>(v->as_double());
  if (v->is_string()) {  // models sometimes quote numbers ("12" or "#12")
    std::string s(v->as_string());
    if (!s.empty() && s[0] == '#') s.erase(0, 1);
    char* end = nullptr;
    long long n = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && end && *end == '\0') return n;
  }
  throw StoreError(KEEL_ERR_INVALID_ARGUMENT, "'" + std::string(key) + "' must be an integer");
}

std::filesystem::path db_path(const json::object& config) {
  if (auto p = str(config, "db_path"); !p.empty()) return p;
  if (auto h = str(config, "keel_home"); !h.empty()) return std::filesystem::path(h) / "memory.db";
  if (const char* env = std::getenv("KEEL_HOME"); env && *env) return std::filesystem::path(env) / "memory.db";
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home ? home : ".") / ".keel" / "memory.db";
}

Citation citation_of(const json::object& request) {
  return Citation{str(request, "session_id"), str(request, "turn_id"), str(request, "call_id"), str(request, "cwd")};
}

std::string cite(const Memory& m) {
  std::string out = "saved " + m.created_at.substr(0, 10);
  if (!m.citation.session_id.empty()) out += " in session " + m.citation.session_id;
  if (!m.citation.turn_id.empty()) out += ", turn " + m.citation.turn_id;
  if (!m.citation.call_id.empty()) out += ", call " + m.citation.call_id;
  return out;
}

json::array to_json(const std::vector<Memory>& ms) {
  json::array out;
  for (auto& m : ms) out.push_back(m.to_json());
  return out;
}

const char* kToolSchema = R"json({
  "type": "object",
  "properties": {
    "action": {"type": "string", "enum": ["remember", "recall", "forget"],
               "description": "remember: save a short note for future sessions; recall: search saved notes; forget: delete one by id"},
    "text": {"type": "string", "description": "remember: the note, one short self-contained fact"},
    "query": {"type": "string", "description": "recall: words to search for"},
    "id": {"type": "integer", "description": "forget: the id of the note (from recall)"},
    "limit": {"type": "integer", "description": "recall: at most this many notes (default 5)"}
  },
  "required": ["action"],
  "additionalProperties": false
})json";

class SqliteMemory : public keel::sdk::Module {
 public:
  SqliteMemory(keel::sdk::Host&, const json::object& config)
      : store_(db_path(config), static_cast<int>(integer(config, "busy_timeout_ms").value_or(10000))) {}

  void handle(keel::sdk::Call call) override {
    boost::system::error_code ec;
    auto payload = json::parse(call.payload(), ec);
    if (ec || !payload.is_object())
      return (void)call.error(KEEL_ERR_INVALID_ARGUMENT, "the request payload must be a JSON object");
    auto& request = payload.as_object();
    if (call.capability() == "memory") return tool(call, request);
    if (call.capability() != "sqlite")
      return (void)call.error(KEEL_ERR_NOT_FOUND, "memory-sqlite has no capability '" + std::string(call.capability()) + "'");
    try {
      call.ok(json::serialize(api(call.method(), request)));
    } catch (const StoreError& e) {
      call.error(e.status, e.what());
    }
  }

 private:
  // The embedding API (capability memory "sqlite").
  json::object api(std::string_view method, const json::object& r) {
    if (method == "search") {
      int limit = static_cast<int>(integer(r, "limit").value_or(10));
      auto who = citation_of(r);
      auto found = who.session_id.empty() ? store_.search(str(r, "query"), limit)
                                          : store_.recall(str(r, "query"), limit, who);
      return {{"memories", to_json(found)}};
    }
    if (method == "last_n") return {{"memories", to_json(store_.last_n(static_cast<int>(integer(r, "n").value_or(10))))}};
    if (method == "trace") {
      auto session = str(r, "session_id");
      if (session.empty()) throw StoreError(KEEL_ERR_INVALID_ARGUMENT, "trace needs a session_id");
      return {{"trace", store_.trace(session, str(r, "turn_id"))}};
    }
    if (method == "remember") {
      auto saved = store_.remember(str(r, "text"), citation_of(r));
      return {{"id", saved.id}, {"existed", saved.existed}};
    }
    if (method == "forget") {
      auto id = integer(r, "id");
      if (!id) throw StoreError(KEEL_ERR_INVALID_ARGUMENT, "forget needs an id");
      return {{"forgotten", store_.forget(*id)}};
    }
    if (method == "count") return {{"count", store_.count()}};
    throw StoreError(KEEL_ERR_NOT_FOUND, "memory.sqlite has no method '" + std::string(method) +
                                             "' (search, last_n, trace, remember, forget, count)");
  }

  // The `memory` tool. Mistakes become unsuccessful outputs the model can read and correct.
  void tool(keel::sdk::Call& call, const json::object& request) {
    if (call.method() != "call")
      return (void)call.error(KEEL_ERR_NOT_FOUND, "tools answer the method 'call', not '" + std::string(call.method()) + "'");
    json::object out;
    try {
      out = run_tool(request);
    } catch (const StoreError& e) {
      if (e.status != KEEL_ERR_INVALID_ARGUMENT)
        return (void)call.error(e.status, e.what());  // the tool itself broke (database unavailable)
      out = {{"output", e.what()}, {"success", false}};
    }
    call.ok(json::serialize(out));
  }

  json::object run_tool(const json::object& request) {
    json::object args;
    if (auto* a = request.if_contains("arguments")) {
      if (a->is_string()) {
        boost::system::error_code ec;
        auto parsed = json::parse(a->as_string(), ec);
        if (ec || !parsed.is_object())
          throw StoreError(KEEL_ERR_INVALID_ARGUMENT, "failed to parse function arguments as a JSON object" +
                                                          (ec ? ": " + ec.message() : std::string()));
        args = std::move(parsed.as_object());
      } else if (a->is_object()) {
        args = a->as_object();
      }
    }
    auto action = str(args, "action");
    auto who = citation_of(request);
    if (action == "remember") {
      auto text = str(args, "text");
      auto saved = store_.remember(text, who);
      auto id = std::to_string(saved.id);
      return {{"output", saved.existed ? "Already remembered as memory #" + id + "." : "Remembered as memory #" + id + "."},
              {"success", true},
              {"item", json::object{{"type", "memory"}, {"action", "remember"}, {"id", saved.id}, {"existed", saved.existed}}}};
    }
    if (action == "recall") {
      auto query = str(args, "query");
      int limit = static_cast<int>(std::clamp<std::int64_t>(integer(args, "limit").value_or(5), 1, 50));
      auto found = store_.recall(query, limit, who);
      std::string text;
      if (found.empty()) {
        text = query.empty() ? "No memories saved yet." : "No memories match \"" + query + "\".";
      } else {
        text = query.empty() ? "Most recent memories:\n" : "Memories matching \"" + query + "\", best first:\n";
        for (auto& m : found) text += "#" + std::to_string(m.id) + " " + m.text + "  [" + cite(m) + "]\n";
      }
      return {{"output", text},
              {"success", true},
              {"item", json::object{{"type", "memory"}, {"action", "recall"}, {"query", query}, {"memories", to_json(found)}}}};
    }
    if (action == "forget") {
      auto id = integer(args, "id");
      if (!id) throw StoreError(KEEL_ERR_INVALID_ARGUMENT, "forget needs the 'id' of a memory (recall shows ids)");
      bool gone = store_.forget(*id);
      return {{"output", gone ? "Forgot memory #" + std::to_string(*id) + "." : "There is no memory #" + std::to_string(*id) + "."},
              {"success", gone},
              {"item", json::object{{"type", "memory"}, {"action", "forget"}, {"id", *id}, {"forgotten", gone}}}};
    }
    throw StoreError(KEEL_ERR_INVALID_ARGUMENT,
                     action.empty() ? std::string("missing 'action': one of remember, recall, forget")
                                    : "unknown action '" + action + "': use remember, recall or forget");
  }

  MemoryStore store_;
};

const keel_capability kCapabilities[] = {
    {KEEL_CAP_TOOL, KEEL_FLAG_PARALLEL_SAFE, "memory",
     "Long-term memory across sessions. remember: save a short, self-contained fact worth knowing next time "
     "(project conventions, user preferences, hard-won findings); recall: search saved facts before relying on "
     "assumptions; forget: delete a fact that turned out wrong or stale.",
     kToolSchema},
    {KEEL_CAP_MEMORY, 0, "sqlite", "Long-term memories with citations and a recall trace (SQLite, FTS5)", nullptr},
};

}  // namespace

KEEL_MODULE(SqliteMemory, "memory-sqlite", "0.1.0", "Long-term memory with citations (SQLite, full-text recall)",
            kCapabilities)
