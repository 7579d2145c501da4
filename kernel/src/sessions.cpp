// Session lifecycle: start, resume and fork; project instructions; the rollout (every history
// item is handed to the memory module before the turn goes on); compaction of the history.
#include "json_util.hpp"
#include "kernel_impl.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <fstream>
#include <random>
#include <sstream>

namespace keel {
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

std::string new_session_id() {  // UUID v4 text, as Codex's thread ids look
  std::random_device rd;
  std::uniform_int_distribution<int> d(0, 15);
  static constexpr char hex[] = "0123456789abcdef";
  std::string id = "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx";
  for (auto& c : id) {
    if (c == 'x') c = hex[d(rd)];
    else if (c == 'y') c = hex[8 + d(rd) % 4];
  }
  return id;
}

constexpr const char* kBaseInstructions =
    "You are keel, a coding agent running in the user's terminal. You can run shell commands and edit files "
    "with the tools provided. Work in the current directory, verify your changes by running them, and finish "
    "with a short report of what you did.";

constexpr std::string_view kSummaryPrefix = "Summary of the conversation so far (the history was compacted):\n\n";

constexpr const char* kCompactPrompt =
    "Summarize the conversation so far for another instance of yourself that will continue the work: the "
    "user's goals, what has been done (files changed, commands run and their results), what is left, and any "
    "facts needed to go on. Be concise and complete; answer with the summary only.";

// What is known of a model: [models.<id>] in the configuration, over the listing that
// `keel models` cached for the provider ($KEEL_HOME/cache/models-<provider>.json).
json::object model_metadata(const Config& config, const std::string& provider_id, const std::string& model) {
  json::object meta;
  std::ifstream in(config.keel_home() / "cache" / ("models-" + provider_id + ".json"), std::ios::binary);
  if (in) {
    std::stringstream text;
    text << in.rdbuf();
    auto cache = parse_object(text.str());
    if (auto* models = cache.if_contains("models"); models && models->is_array())
      for (auto& m : models->as_array())
        if (m.is_object() && str_field(m.as_object(), "id") == model) meta = m.as_object();
  }
  if (auto* own = config.find("models"); own && own->is_object())
    if (auto* entry = own->as_object().if_contains(model); entry && entry->is_object()) merge_json(meta, entry->as_object());
  return meta;
}

bool is_summary(const json::object& message) {  // one compact_history wrote
  auto* c = message.if_contains("content");
  if (!c || !c->is_array() || c->as_array().empty() || !c->as_array()[0].is_object()) return false;
  return str_field(c->as_array()[0].as_object(), "text").starts_with(kSummaryPrefix);
}

std::int64_t int_of(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_int64() ? v->as_int64() : 0;
}

}  // namespace

std::string Kernel::Impl::memory_server() const {
  auto name = config.string_or("memory", "jsonl");
  auto server = ModuleHost::server_name(KEEL_CAP_MEMORY, name);
  return bus.has_server(server) ? server : std::string{};
}

void Kernel::Impl::persist(Session& s, json::object record) {
  auto server = memory_server();
  if (server.empty()) return;
  auto [status, reply] = call_and_wait(bus, server + ".append", json::object{{"session_id", s.id}, {"record", std::move(record)}});
  if (status != KEEL_OK) log(KEEL_LOG_WARN, "memory: could not record to the rollout of " + s.id + ": " + error_message(reply));
}

void Kernel::Impl::append_history(Session& s, json::object item) {
  {
    std::lock_guard lock(s.mu);
    s.history.push_back(item);
  }
  persist(s, json::object{{"type", "item"}, {"item", std::move(item)}});
}

std::string Kernel::Impl::project_instructions(const std::string& cwd) const {
  // $KEEL_HOME/AGENTS.md, then AGENTS.md from the project root (the folder with .git) down
  // to the working directory, in that order, capped.
  std::vector<fs::path> files{config.keel_home() / "AGENTS.md"};
  std::vector<fs::path> dirs;
  std::error_code ec;
  fs::path dir = fs::weakly_canonical(cwd, ec);
  for (fs::path d = dir; !d.empty(); d = d.parent_path()) {
    dirs.push_back(d);
    if (fs::exists(d / ".git", ec) || d == d.parent_path()) break;
  }
  if (!dirs.empty() && !fs::exists(dirs.back() / ".git", ec)) dirs = {dir};  // no project root: only cwd
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) files.push_back(*it / "AGENTS.md");

  const auto cap = static_cast<std::size_t>(config.int_or("project_doc_max_bytes", 32 * 1024));
  std::string out;
  for (auto& f : files) {
    if (!fs::is_regular_file(f, ec)) continue;
    std::ifstream in(f, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    std::string part = "\n\n# Instructions from " + f.string() + "\n\n" + text.str();
    if (out.size() + part.size() > cap) {
      out += part.substr(0, cap > out.size() ? cap - out.size() : 0);
      log(KEEL_LOG_WARN, "project instructions truncated at " + std::to_string(cap) + " bytes");
      break;
    }
    out += part;
  }
  return out;
}

std::string Kernel::Impl::start_session(const SessionOptions& o) {
  auto s = std::make_shared<Session>();
  s->cwd = o.cwd.empty() ? config.cwd().string() : o.cwd;
  s->model = o.model.empty() ? config.string_or("model", "") : o.model;
  s->ui = o.ui;
  s->provider = resolve_provider(config, o.provider.empty() ? config.string_or("model_provider", "openai") : o.provider);
  if (s->model.empty()) s->model = str_field(s->provider.entry, "default_model");
  host->ensure_loaded(s->provider.module);
  auto meta = model_metadata(config, s->provider.id, s->model);
  s->context_window = config.int_or("model_context_window", int_of(meta, "context_window"));
  if (auto* p = meta.if_contains("supports_parallel_tool_calls"); p && p->is_bool()) s->parallel_tool_calls = p->as_bool();
  s->auto_compact_limit = config.int_or("model_auto_compact_token_limit", s->context_window * 9 / 10);

  // A sandbox the kernel cannot provide is an error now, never a silent run without one.
  auto mode = config.string_or("sandbox_mode", "workspace-write");
  if (mode != "danger-full-access") {
    auto backend = config.string_or("sandbox", "bwrap");
    if (!bus.has_server(ModuleHost::server_name(KEEL_CAP_SANDBOX, backend))) {
      std::string why = "it is not installed";
      for (auto& m : host->modules())
        if (m.name == backend && m.state != ModuleState::loaded) why = m.reason;
      throw ConfigError("sandbox '" + backend + "' (for sandbox_mode = \"" + mode + "\") is not available: " + why +
                        ". Choose another with -c sandbox=landlock|bwrap, or run with -s danger-full-access.");
    }
  }

  auto memory = memory_server();
  json::array resumed_items;
  std::string source = !o.resume.empty() ? o.resume : o.fork;
  if (!source.empty()) {
    if (memory.empty()) throw ConfigError("resuming or forking needs a memory module (memory = \"jsonl\")");
    json::object q = source == "last" ? json::object{{"last", true}, {"cwd", s->cwd}} : json::object{{"session_id", source}};
    auto [status, reply] = call_and_wait(bus, memory + ".load", q);
    if (status != KEEL_OK) throw ConfigError("cannot load session '" + source + "': " + error_message(reply));
    for (auto& w : reply["warnings"].is_array() ? reply["warnings"].as_array() : json::array{})
      if (w.is_string()) log(KEEL_LOG_WARN, std::string(w.as_string()));
    if (auto* items = reply.if_contains("items"); items && items->is_array()) resumed_items = items->as_array();
    json::object meta = reply["session"].is_object() ? reply["session"].as_object() : json::object{};
    if (!o.resume.empty()) {
      s->id = str_field(meta, "session_id");
      if (auto cwd = str_field(meta, "cwd"); !cwd.empty() && o.cwd.empty()) s->cwd = cwd;
    } else {
      s->forked_from = str_field(meta, "session_id");
    }
  }
  if (s->id.empty()) s->id = new_session_id();
  s->instructions = kBaseInstructions + project_instructions(s->cwd);
  {
    std::lock_guard lock(sessions_mu);
    if (sessions.count(s->id)) throw ConfigError("session " + s->id + " is already open");
    sessions[s->id] = s;
    if (default_session.empty()) default_session = s->id;
  }
  if (!memory.empty()) {
    json::object open{{"session_id", s->id}, {"cwd", s->cwd}, {"model", s->model}, {"provider", s->provider.id},
                      {"keel_version", KEEL_VERSION_STRING}, {"resumed", !o.resume.empty()}};
    if (!s->forked_from.empty()) open["forked_from"] = s->forked_from;
    auto [status, reply] = call_and_wait(bus, memory + ".open", open);
    if (status != KEEL_OK) log(KEEL_LOG_WARN, "memory: this session is not being recorded: " + error_message(reply));
  }
  if (o.resume.empty()) {
    for (auto& item : resumed_items)  // a fork writes its own copy; never into the parent's file
      if (item.is_object()) append_history(*s, item.as_object());
  } else {
    std::lock_guard lock(s->mu);
    s->history = std::move(resumed_items);
  }
  {
    // A resumed or forked history has not been measured by a response yet: estimate it (about
    // one token per 4 bytes), so one past the auto-compact limit is summarized before it is sent.
    std::lock_guard lock(s->mu);
    std::int64_t bytes = 0;
    for (auto& item : s->history) bytes += static_cast<std::int64_t>(json::serialize(item).size());
    s->context_tokens = bytes / 4;
    s->context_items = s->history.size();
  }
  json::object started{{"model", s->model}, {"provider", s->provider.id}, {"cwd", s->cwd}};
  if (!o.resume.empty()) started["resumed"] = true;
  if (!s->forked_from.empty()) started["forked_from"] = s->forked_from;
  publish(*s, "session.started", std::move(started));
  return s->id;
}

// Replaces the history with the recent user messages and a summary the model writes. Within a
// turn an interrupt cancels it; on demand it must not heed the flag an earlier turn left.
bool Kernel::Impl::compact_history(Session& s, json::object& usage, std::string& error, bool in_turn) {
  json::array history;
  {
    std::lock_guard lock(s.mu);
    history = s.history;
  }
  json::array input = history;
  input.push_back(json::object{{"type", "message"}, {"role", "user"},
                               {"content", json::array{json::object{{"type", "input_text"}, {"text", kCompactPrompt}}}}});
  json::object req{{"model", s.model}, {"instructions", s.instructions}, {"input", input}, {"tools", json::array{}},
                   {"parallel_tool_calls", false}, {"session_id", s.id}, {"provider", s.provider.entry}};
  auto topic = ModuleHost::server_name(KEEL_CAP_PROVIDER, s.provider.module) + ".stream";
  auto [status, reply] = in_turn ? call_tracked(s, topic, req) : call_and_wait(bus, topic, req);
  if (status != KEEL_OK) {
    error = "compaction failed: " + error_message(reply);
    return false;
  }
  std::string summary;
  if (auto* items = reply.if_contains("items"); items && items->is_array())
    for (auto& it : items->as_array())
      if (it.is_object() && str_field(it.as_object(), "type") == "message")
        if (auto* c = it.as_object().if_contains("content"); c && c->is_array())
          for (auto& part : c->as_array())
            if (part.is_object()) summary += str_field(part.as_object(), "text");
  if (summary.empty()) {
    error = "compaction failed: the model returned no summary";
    return false;
  }
  if (auto* u = reply.if_contains("usage"); u && u->is_object())
    for (auto& [k, v] : u->as_object())
      if (v.is_int64()) usage[k] = (usage[k].is_int64() ? usage[k].as_int64() : 0) + v.as_int64();

  // Keep the most recent user messages (newest first, within a budget), then the summary.
  const std::size_t budget = static_cast<std::size_t>(config.int_or("compaction_user_message_bytes", 20000));
  std::vector<json::object> kept;
  std::size_t used = 0;
  for (auto it = history.rbegin(); it != history.rend(); ++it) {
    if (!it->is_object()) continue;
    auto& item = it->as_object();
    if (str_field(item, "type") != "message" || str_field(item, "role") != "user") continue;
    if (is_summary(item)) continue;  // not the user's words: the new summary, written from it, replaces it
    auto size = json::serialize(item).size();
    if (used + size > budget) break;
    used += size;
    kept.push_back(item);
  }
  json::array replacement;
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) replacement.push_back(*it);
  replacement.push_back(json::object{
      {"type", "message"}, {"role", "user"},
      {"content", json::array{json::object{{"type", "input_text"},
                                           {"text", std::string(kSummaryPrefix) + summary}}}}});
  std::size_t before = history.size();
  {
    std::lock_guard lock(s.mu);
    // Items appended while the summary was written (none in a turn, but be safe) follow it.
    for (std::size_t i = before; i < s.history.size(); ++i) replacement.push_back(s.history[i]);
    s.history = replacement;
    s.context_tokens = 0;  // unknown until the next response
  }
  persist(s, json::object{{"type", "compaction"}, {"summary", summary}, {"replacement_history", replacement}});
  publish(s, "context.compacted", json::object{{"items_before", before}, {"items_after", replacement.size()}});
  return true;
}

}  // namespace keel
