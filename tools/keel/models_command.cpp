// `keel models`: asks the provider module serving the chosen model provider for its models
// (`provider.<module>.models`, docs/protocols.md), caches the answer in
// $KEEL_HOME/cache/models-<provider>.json for 24 hours, applies [models.<id>] overrides from
// the configuration and prints one line per model (or JSON with --json).
#include "models_command.hpp"

#include "commands.hpp"

#include <keel/kernel/providers.hpp>

#include <keel/kernel/kernel.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <iterator>
#include <optional>
#include <set>
#include <sstream>
#include <unistd.h>

namespace keel::cli {
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

constexpr std::int64_t kCacheTtlSeconds = 24 * 60 * 60;
constexpr auto kRequestTimeout = std::chrono::seconds(120);

// The metadata fields of a model, in display order (docs/protocols.md, provider `models`).
constexpr const char* kFields[] = {"context_window", "max_output_tokens", "supports_parallel_tool_calls",
                                   "supports_reasoning_effort", "supports_images"};

std::string str(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string{};
}

std::optional<std::int64_t> integer(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  if (v->is_double()) return static_cast<std::int64_t>(v->as_double());
  return std::nullopt;
}

json::object parse_object(std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  return !ec && v.is_object() ? std::move(v.as_object()) : json::object{};
}

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

using Provider = ProviderChoice;

// ---- cache ---------------------------------------------------------------------------------

fs::path cache_file(const Config& config, const std::string& provider_id) {
  std::string name;
  for (char c : provider_id)
    name += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
  return config.keel_home() / "cache" / ("models-" + name + ".json");
}

struct Listing {
  json::array models;
  std::int64_t fetched_at = 0;
  std::string source;  // "endpoint", "cache", "stale cache", "config"
};

// The cached listing when it belongs to this provider and base URL; nullopt otherwise.
std::optional<Listing> read_cache(const fs::path& file, const Provider& p) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  auto o = parse_object(text);
  auto* models = o.if_contains("models");
  auto fetched = integer(o, "fetched_at");
  if (!models || !models->is_array() || !fetched) return std::nullopt;
  if (str(o, "provider") != p.id || str(o, "base_url") != str(p.entry, "base_url") || str(o, "module") != p.module)
    return std::nullopt;
  return Listing{models->as_array(), *fetched, "cache"};
}

void write_cache(const fs::path& file, const Provider& p, const Listing& l) {
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  json::object o{{"provider", p.id},
                 {"module", p.module},
                 {"base_url", str(p.entry, "base_url")},
                 {"fetched_at", l.fetched_at},
                 {"models", l.models}};
  // Written next to the target and renamed over it: readers never see half a file.
  fs::path tmp = file;
  tmp += ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << json::serialize(o) << "\n";
    if (!out.flush()) {
      std::cerr << "keel: warning: could not write the models cache " << file.string() << "\n";
      fs::remove(tmp, ec);
      return;
    }
  }
  fs::rename(tmp, file, ec);
  if (ec) {
    std::cerr << "keel: warning: could not write the models cache " << file.string() << ": " << ec.message() << "\n";
    fs::remove(tmp, ec);
  }
}

// ---- asking the provider module -----------------------------------------------------------

struct Fetched {
  int status = KEEL_OK;
  json::object reply;
};

Fetched fetch(Kernel& kernel, const Provider& p, const std::string& model) {
  auto server = ModuleHost::server_name(KEEL_CAP_PROVIDER, p.module);
  if (!kernel.bus().has_server(server))
    return {KEEL_ERR_UNAVAILABLE,
            json::object{{"error", json::object{{"message", "model provider '" + p.id + "' needs the module '" + p.module +
                                                                 "', which is not loaded (see `keel modules`)"}}}}};
  auto done = std::make_shared<std::promise<std::pair<int, std::string>>>();
  auto reply = done->get_future();
  json::object payload{{"provider", p.entry}, {"model", model}};
  auto id = kernel.bus().request(server + ".models", json::serialize(payload), nullptr,
                                 [done](int status, std::string_view body) {
                                   try {
                                     done->set_value({status, std::string(body)});
                                   } catch (const std::future_error&) {  // a second reply
                                   }
                                 });
  if (reply.wait_for(kRequestTimeout) != std::future_status::ready) {
    kernel.bus().cancel(id);
    if (reply.wait_for(std::chrono::seconds(5)) != std::future_status::ready)
      return {KEEL_ERR_TIMEOUT, json::object{{"error", json::object{{"message", "the provider module did not answer"}}}}};
  }
  auto [status, body] = reply.get();
  return {status, parse_object(body)};
}

std::string error_message(const json::object& reply) {
  if (auto* e = reply.if_contains("error"); e && e->is_object()) {
    auto m = str(e->as_object(), "message");
    if (!m.empty()) return m;
  }
  return "the provider module failed";
}

// ---- configuration overrides ----------------------------------------------------------------

// [models.<id>] tables: { "<id>": {context_window = N, ...} }.
const json::object* model_overrides(const Config& config) {
  auto it = config.root().find("models");
  return it != config.root().end() && it->value().is_object() ? &it->value().as_object() : nullptr;
}

void apply_overrides(json::object& model, const json::object& table) {
  for (const char* key : kFields)
    if (auto* v = table.if_contains(key)) {
      bool number = std::string_view(key) == "context_window" || std::string_view(key) == "max_output_tokens";
      if (number ? (v->is_int64() || v->is_uint64()) : v->is_bool()) model[key] = *v;
      else
        std::cerr << "keel: warning: models." << str(model, "id") << "." << key << " should be "
                  << (number ? "an integer" : "true or false") << "; ignored\n";
    }
}

// The listing with overrides applied; models only named in the configuration are added.
json::array merged(const Config& config, const json::array& listed, const std::string& current_model) {
  json::array out;
  std::set<std::string> seen;
  const json::object* overrides = model_overrides(config);
  auto finish = [&](json::object m) {
    auto id = str(m, "id");
    if (overrides)
      if (auto* t = overrides->if_contains(id); t && t->is_object()) apply_overrides(m, t->as_object());
    // Codex's top-level keys describe the configured model.
    if (id == current_model) {
      if (auto n = integer(config.root(), "model_context_window")) m["context_window"] = *n;
      if (auto n = integer(config.root(), "model_max_output_tokens")) m["max_output_tokens"] = *n;
    }
    seen.insert(id);
    out.push_back(std::move(m));
  };
  for (auto& v : listed)
    if (v.is_object() && !str(v.as_object(), "id").empty()) finish(v.as_object());
  if (overrides)
    for (auto& [id, t] : *overrides)
      if (t.is_object() && !seen.count(std::string(id))) finish(json::object{{"id", id}, {"source", "config"}});
  return out;
}

// ---- output -----------------------------------------------------------------------------------

std::string cell(const json::object& m, const char* key) {
  auto* v = m.if_contains(key);
  if (!v) return "-";
  if (v->is_bool()) return v->as_bool() ? "yes" : "no";
  if (auto n = integer(m, key)) return std::to_string(*n);
  return "-";
}

std::string format_time(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

void print_table(const Provider& p, const Listing& l, const json::array& models, const std::string& current) {
  std::cout << "provider " << p.id << " (" << p.module;
  if (auto url = str(p.entry, "base_url"); !url.empty()) std::cout << ", " << url;
  std::cout << ")";
  if (l.fetched_at) {
    std::cout << ": " << models.size() << " model" << (models.size() == 1 ? "" : "s") << ", fetched "
              << format_time(l.fetched_at);
    if (l.source != "endpoint") std::cout << " (" << l.source << ")";
  }
  std::cout << "\n";
  std::size_t width = 5;
  for (auto& v : models) width = std::max(width, str(v.as_object(), "id").size() + 2);
  auto row = [&](const std::string& id, const std::vector<std::string>& cells) {
    std::string line = id;
    line.resize(width + 2, ' ');
    static constexpr std::size_t widths[] = {9, 9, 10, 11, 6};
    for (std::size_t i = 0; i < cells.size(); ++i) {
      std::string c = cells[i];
      c.resize(std::max(c.size() + 1, widths[i] + 1), ' ');
      line += c;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  };
  row("  MODEL", {"CONTEXT", "MAX OUT", "PARALLEL", "REASONING", "IMAGES"});
  for (auto& v : models) {
    auto& m = v.as_object();
    std::vector<std::string> cells;
    for (const char* k : kFields) cells.push_back(cell(m, k));
    row((str(m, "id") == current ? "* " : "  ") + str(m, "id"), cells);
  }
}

}  // namespace

int run_models(const Options& o) {
  bool refresh = false;
  for (auto& a : o.positional) {
    if (a == "refresh" || a == "--refresh") refresh = true;
    else throw UsageError("keel models: unexpected argument '" + a + "' (usage: keel models [--provider NAME] [--json] [refresh])");
  }
  Config config = load_config(o);
  const std::string provider_id = config.string_or("model_provider", "openai");
  Provider p = resolve_provider(config, provider_id);
  std::string model = config.string_or("model", "");
  if (model.empty()) model = str(p.entry, "default_model");

  const fs::path cache = cache_file(config, p.id);
  std::optional<Listing> cached = read_cache(cache, p);
  const std::int64_t now = now_seconds();
  Listing listing;
  bool fresh_cache = cached && !refresh && cached->fetched_at <= now + 60 && now - cached->fetched_at < kCacheTtlSeconds;
  if (fresh_cache) {
    listing = *cached;
  } else {
    Kernel kernel(std::move(config));
    Fetched f = fetch(kernel, p, model);
    config = kernel.config();
    auto* models = f.reply.if_contains("models");
    if (f.status == KEEL_OK && models && models->is_array()) {
      listing = Listing{models->as_array(), now, "endpoint"};
      write_cache(cache, p, listing);
    } else if (cached) {
      std::cerr << "keel: warning: could not refresh the models of provider '" << p.id
                << "': " << error_message(f.reply) << "; showing the list fetched " << format_time(cached->fetched_at)
                << "\n";
      listing = *cached;
      listing.source = "stale cache";
    } else if (f.status == KEEL_ERR_NOT_FOUND) {
      // The module has no models endpoint (replay, some third-party modules): only what the
      // configuration says.
      std::cerr << "keel: model provider '" << p.id << "' (" << p.module
                << ") cannot list its models; showing the configured ones\n";
      listing.source = "config";
      if (!model.empty()) listing.models.push_back(json::object{{"id", model}, {"source", "config"}});
    } else {
      std::cerr << "keel: cannot list the models of provider '" << p.id << "': " << error_message(f.reply) << "\n";
      return 1;
    }
  }

  json::array models = merged(config, listing.models, model);
  if (o.json) {
    json::object out{{"provider", p.id},           {"module", p.module},   {"base_url", str(p.entry, "base_url")},
                     {"source", listing.source},   {"model", model},       {"fetched_at", listing.fetched_at},
                     {"cache_file", cache.string()}, {"models", models}};
    std::cout << json::serialize(out) << "\n";
    return 0;
  }
  print_table(p, listing, models, model);
  return 0;
}

}  // namespace keel::cli
