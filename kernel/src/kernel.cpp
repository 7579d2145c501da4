// Boot and shutdown of a kernel, and the kernel's own topics on the bus.
#include "json_util.hpp"
#include "kernel_impl.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <iostream>
#include <random>

namespace keel {
namespace json = boost::json;

namespace {

json::object turn_result_json(const TurnResult& r) {
  json::object o{{"session_id", r.session_id}, {"status", r.status}, {"last_agent_message", r.last_agent_message},
                 {"usage", r.usage}};
  if (!r.error.empty()) o["error"] = json::object{{"message", r.error}};
  return o;
}

keel_log_level level_from(const std::string& s) {
  if (s == "debug") return KEEL_LOG_DEBUG;
  if (s == "info") return KEEL_LOG_INFO;
  if (s == "error") return KEEL_LOG_ERROR;
  return KEEL_LOG_WARN;
}

}  // namespace

Kernel::Impl::Impl(Config c) : config(std::move(c)) {
  bus.set_error_log([this](std::string_view m) { log(KEEL_LOG_ERROR, m); });
  ModuleHostOptions options;
  options.keel_home = config.keel_home();
  options.allow_legacy_signatures = config.bool_or("security.allow_legacy_signatures", false);
  options.log = [this](keel_log_level l, std::string_view m) { log(l, m); };
  options.module_config = [this](const ModuleInfo& info) { return module_config(info); };
  options.defer = [this](const std::string& name, const std::string& kind) {
    // Tools (and memory, which also offers a tool) always load; of the other kinds only the
    // selected ones do.
    if (kind == "tool" || kind == "memory") return false;
    if (kind == "provider") {
      try {
        return resolve_provider(config, config.string_or("model_provider", "openai")).module != name;
      } catch (const std::exception&) {
        return true;
      }
    }
    if (kind == "ui") return name != config.string_or("ui", "exec");
    if (kind == "sandbox") return name != config.string_or("sandbox", "bwrap") && name != "none";
    if (kind == "policy") return name != config.string_or("policy", "exec-policy");
    return false;
  };
  host = std::make_unique<ModuleHost>(bus, std::move(options));
  host->load_all();
  serve_kernel_topics();
  serve_sandbox();
}

Kernel::Impl::~Impl() {
  std::vector<std::shared_ptr<Session>> all;
  {
    std::lock_guard lock(sessions_mu);
    for (auto& [id, s] : sessions) all.push_back(s);
  }
  for (auto& s : all) interrupt(s->id);
  for (auto& s : all)
    if (s->worker.joinable()) s->worker.join();
  bus.drain();
  for (auto* topic : {"kernel.session", "kernel.turn", "kernel.modules", "sandbox"}) bus.unserve(topic);
  host.reset();  // stops and unloads modules before the bus goes away
}

void Kernel::Impl::log(keel_log_level level, std::string_view message) const {
  static const keel_log_level threshold = [] {
    const char* env = std::getenv("KEEL_LOG");
    return level_from(env ? env : "warn");
  }();
  if (level < threshold) return;
  static std::mutex mu;
  std::lock_guard lock(mu);
  std::cerr << "keel: " << message << "\n";
}

boost::json::object Kernel::Impl::module_config(const ModuleInfo& info) {
  json::object out;
  if (auto* own = config.find("modules." + info.name); own && own->is_object()) out = own->as_object();
  out["keel_home"] = config.keel_home().string();
  out["cwd"] = config.cwd().string();
  if (info.kind == "provider") {
    // Only the provider entry this module will serve: no other provider's secrets.
    try {
      auto choice = resolve_provider(config, config.string_or("model_provider", "openai"));
      if (choice.module == info.name) out["provider"] = choice.entry;
    } catch (const std::exception&) {
    }
    out["model"] = config.string_or("model", "");
  }
  return out;
}

void Kernel::Impl::serve_kernel_topics() {
  bus.serve("kernel.session", [this](const RequestPtr& req) {
    auto p = parse_object(req->payload());
    if (req->method() == "start") {
      SessionOptions o{str_field(p, "cwd"),  str_field(p, "model"),  str_field(p, "provider"),
                       str_field(p, "ui"),   str_field(p, "resume"), str_field(p, "fork")};
      try {
        auto id = start_session(o);
        auto s = session(id);
        req->reply(KEEL_OK, json::serialize(json::object{
                                {"session_id", id}, {"model", s->model}, {"provider", s->provider.id}, {"cwd", s->cwd}}));
      } catch (const std::exception& e) {
        req->reply(KEEL_ERR_INVALID_ARGUMENT, error_json(e.what()));
      }
    } else if (req->method() == "history") {
      auto s = session(str_field(p, "session_id"));
      if (!s) return (void)req->reply(KEEL_ERR_NOT_FOUND, error_json("no such session"));
      std::lock_guard lock(s->mu);
      req->reply(KEEL_OK, json::serialize(json::object{{"items", s->history}}));
    } else {
      req->reply(KEEL_ERR_NOT_FOUND, error_json("kernel.session has no method '" + req->method() + "'"));
    }
  });
  bus.serve("kernel.turn", [this](const RequestPtr& req) {
    auto p = parse_object(req->payload());
    auto id = str_field(p, "session_id");
    if (id.empty()) id = default_session;
    auto s = session(id);
    if (!s) return (void)req->reply(KEEL_ERR_NOT_FOUND, error_json("no session '" + id + "'; start one first"));
    if (req->method() == "submit") {
      submit(s, str_field(p, "text"),
             [req](const TurnResult& r) { req->reply(KEEL_OK, json::serialize(turn_result_json(r))); });
    } else if (req->method() == "compact") {
      std::thread([this, s, req] {
        json::object usage;
        std::string error;
        bool ok = compact_history(*s, usage, error);
        req->reply(ok ? KEEL_OK : KEEL_ERR_UNAVAILABLE,
                   ok ? json::serialize(json::object{{"usage", usage}}) : error_json(error));
      }).detach();
    } else if (req->method() == "interrupt") {
      interrupt(id);
      req->reply(KEEL_OK, "{}");
    } else {
      req->reply(KEEL_ERR_NOT_FOUND, error_json("kernel.turn has no method '" + req->method() + "'"));
    }
  });
  bus.serve("kernel.modules", [this](const RequestPtr& req) {
    json::array mods;
    for (auto& m : host->modules()) {
      json::array caps;
      for (auto& c : m.capabilities)
        caps.push_back(json::object{{"kind", ModuleHost::kind_name(c.kind)}, {"name", c.name}, {"flags", c.flags}});
      const char* state = m.state == ModuleState::loaded    ? "loaded"
                          : m.state == ModuleState::refused ? "refused"
                          : m.state == ModuleState::deferred ? "deferred"
                                                            : "failed";
      mods.push_back(json::object{{"name", m.name},     {"version", m.version},     {"kind", m.kind},
                                  {"state", state},     {"reason", m.reason},       {"signer", m.signer},
                                  {"dir", m.dir.string()}, {"verify_ms", m.verify_ms}, {"load_ms", m.load_ms},
                                  {"capabilities", caps}});
    }
    req->reply(KEEL_OK, json::serialize(json::object{{"modules", mods}}));
  });
}

std::shared_ptr<Session> Kernel::Impl::session(const std::string& id) const {
  std::lock_guard lock(sessions_mu);
  auto it = sessions.find(id);
  return it == sessions.end() ? nullptr : it->second;
}

void Kernel::Impl::register_tool(InProcessTool tool) {
  if (!tool.handler) throw std::invalid_argument("tool '" + tool.name + "' has no handler");
  auto server = ModuleHost::server_name(KEEL_CAP_TOOL, tool.name);
  {
    std::lock_guard lock(tools_mu);
    if (!inproc_tools.count(tool.name) && bus.has_server(server))
      throw std::invalid_argument("a tool named '" + tool.name + "' already exists");
    inproc_tools[tool.name] = tool;
  }
  bus.serve(server, [handler = tool.handler](const RequestPtr& req) {
    auto p = parse_object(req->payload());
    json::object args;
    if (auto* a = p.if_contains("arguments"); a && a->is_string() && !a->as_string().empty()) {
      boost::system::error_code ec;
      auto v = json::parse(a->as_string(), ec);
      if (ec || !v.is_object()) {
        req->reply(KEEL_OK, json::serialize(json::object{{"output", "failed to parse function arguments as a JSON object"},
                                                         {"success", false}}));
        return;
      }
      args = std::move(v.as_object());
    }
    try {
      req->reply(KEEL_OK, json::serialize(json::object{{"output", handler(args, p)}, {"success", true}}));
    } catch (const std::exception& e) {
      req->reply(KEEL_OK, json::serialize(json::object{{"output", e.what()}, {"success", false}}));
    }
  });
}

boost::json::array Kernel::Impl::long_term_memory(const std::string& method, json::object payload) {
  auto server = ModuleHost::server_name(KEEL_CAP_MEMORY, config.string_or("long_term_memory", "sqlite"));
  auto [status, reply] = call_and_wait(bus, server + "." + method, payload);
  if (status != KEEL_OK) throw std::runtime_error("long-term memory: " + error_message(reply));
  auto* m = reply.if_contains("memories");
  return m && m->is_array() ? m->as_array() : json::array{};
}

json::array Kernel::Impl::last_n(int n) { return long_term_memory("last_n", json::object{{"n", n}}); }

json::array Kernel::Impl::search(const std::string& query, int limit) {
  return long_term_memory("search", json::object{{"query", query}, {"limit", limit}});
}

void Kernel::Impl::unregister_tool(const std::string& name) {
  std::lock_guard lock(tools_mu);
  if (inproc_tools.erase(name)) bus.unserve(ModuleHost::server_name(KEEL_CAP_TOOL, name));
}

// ---- public API -------------------------------------------------------------------------

Kernel::Kernel(Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Kernel::~Kernel() = default;

const Config& Kernel::config() const { return impl_->config; }
Bus& Kernel::bus() { return impl_->bus; }
ModuleHost& Kernel::modules() { return *impl_->host; }
ToolRegistry& Kernel::registry() { return *impl_; }
MemoryApi& Kernel::memory() { return *impl_; }

std::string Kernel::start_session(SessionOptions options) { return impl_->start_session(options); }

std::future<TurnResult> Kernel::submit_user_turn(std::string text) {
  std::string id;
  {
    std::lock_guard lock(impl_->sessions_mu);
    id = impl_->default_session;
  }
  if (id.empty()) id = impl_->start_session({});
  return submit(id, std::move(text));
}

std::future<TurnResult> Kernel::submit(const std::string& session_id, std::string text) {
  auto promise = std::make_shared<std::promise<TurnResult>>();
  auto future = promise->get_future();
  auto s = impl_->session(session_id);
  if (!s) {
    promise->set_value(TurnResult{session_id, "failed", "", "no session '" + session_id + "'", {}});
    return future;
  }
  impl_->submit(s, std::move(text), [promise](const TurnResult& r) { promise->set_value(r); });
  return future;
}

void Kernel::interrupt(const std::string& session_id) { impl_->interrupt(session_id); }

std::future<TurnResult> Kernel::compact(const std::string& session_id) {
  return std::async(std::launch::async, [this, session_id] {
    auto s = impl_->session(session_id);
    if (!s) return TurnResult{session_id, "failed", "", "no session '" + session_id + "'", {}};
    TurnResult r{session_id, "completed", "", "", {}};
    if (!impl_->compact_history(*s, r.usage, r.error)) r.status = "failed";
    return r;
  });
}

boost::json::array Kernel::history(const std::string& session_id) const {
  auto s = impl_->session(session_id);
  if (!s) return {};
  std::lock_guard lock(s->mu);
  return s->history;
}

std::uint64_t Kernel::subscribe(std::string topic_prefix, Bus::Handler handler) {
  return impl_->bus.subscribe(std::move(topic_prefix), std::move(handler));
}
void Kernel::unsubscribe(std::uint64_t id) { impl_->bus.unsubscribe(id); }

int Kernel::run_ui(const std::string& name, boost::json::object args) {
  impl_->host->ensure_loaded(name);
  auto server = ModuleHost::server_name(KEEL_CAP_UI, name);
  if (!impl_->bus.has_server(server)) {
    impl_->log(KEEL_LOG_ERROR, "no UI module '" + name + "' is loaded (see `keel modules`)");
    return 2;
  }
  auto [status, reply] = call_and_wait(impl_->bus, server + ".run", json::object{{"args", std::move(args)}});
  if (status != KEEL_OK) {
    impl_->log(KEEL_LOG_ERROR, "UI '" + name + "' failed: " + error_message(reply));
    return 1;
  }
  auto* code = reply.if_contains("exit_code");
  return code && code->is_int64() ? static_cast<int>(code->as_int64()) : 0;
}

}  // namespace keel
