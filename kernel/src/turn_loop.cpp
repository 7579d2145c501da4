// The turn loop: user input → provider request (streamed) → tool calls → outputs appended to
// history → follow-up request → … until the model answers with no tool call.
#include "json_util.hpp"
#include "kernel_impl.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <future>

namespace keel {
namespace json = boost::json;

namespace {

json::object user_message(const std::string& text) {
  return {{"type", "message"}, {"role", "user"},
          {"content", json::array{json::object{{"type", "input_text"}, {"text", text}}}}};
}

std::string message_text(const json::object& item) {
  std::string text;
  if (auto* c = item.if_contains("content"); c && c->is_array())
    for (auto& part : c->as_array())
      if (part.is_object()) text += str_field(part.as_object(), "text");
  return text;
}

void add_usage(json::object& total, const json::object& usage) {
  for (auto& [k, v] : usage)
    if (v.is_int64() || v.is_uint64()) {
      auto* t = total.if_contains(k);
      std::int64_t before = t && t->is_int64() ? t->as_int64() : 0;
      total[k] = before + (v.is_int64() ? v.as_int64() : static_cast<std::int64_t>(v.as_uint64()));
    }
}

}  // namespace

void Kernel::Impl::publish(Session& s, std::string_view type, json::object body, bool coalescable) {
  body["type"] = type;
  body["session_id"] = s.id;
  bus.publish("event", std::move(body), coalescable);
}

std::string Kernel::Impl::next_item_id(Session& s) {
  std::lock_guard lock(s.mu);
  return "item_" + std::to_string(s.next_item++);
}

json::array Kernel::Impl::tool_specs() {
  json::array specs;
  auto add = [&](const std::string& name, const std::string& description, const std::string& schema, bool freeform) {
    boost::system::error_code ec;
    auto parsed = json::parse(schema.empty() ? std::string("{}") : schema, ec);
    if (ec) parsed = json::object{{"type", "object"}, {"properties", json::object{}}};
    if (freeform)
      specs.push_back(json::object{{"type", "custom"}, {"name", name}, {"description", description}, {"format", parsed}});
    else
      specs.push_back(
          json::object{{"type", "function"}, {"name", name}, {"description", description}, {"parameters", parsed}});
  };
  for (auto& c : host->capabilities(KEEL_CAP_TOOL)) add(c.name, c.description, c.schema_json, c.flags & KEEL_FLAG_FREEFORM);
  std::lock_guard lock(tools_mu);
  for (auto& [name, t] : inproc_tools) add(name, t.description, t.schema_json, false);
  return specs;
}

void Kernel::Impl::submit(const std::shared_ptr<Session>& s, std::string text,
                          std::function<void(const TurnResult&)> done) {
  std::thread previous;
  {
    std::lock_guard lock(s->mu);
    s->pending_input.push_back(std::move(text));
    s->waiters.push_back(std::move(done));  // answered when the turn that takes this input ends
    if (s->running) return;                 // joins the running turn
    s->running = true;
    s->interrupted = false;
    previous = std::move(s->worker);
    s->worker = std::thread([this, s] { run_turns(s); });
  }
  // The previous worker has decided to end; it may still be answering its waiters, and may
  // be this very thread (a waiter that submits again).
  if (previous.joinable()) {
    if (previous.get_id() == std::this_thread::get_id()) previous.detach();
    else previous.join();
  }
}

void Kernel::Impl::interrupt(const std::string& session_id) {
  auto s = session(session_id);
  if (!s) return;
  std::set<std::uint64_t> active;
  std::set<std::shared_ptr<PendingAnswer>> pending;
  {
    std::lock_guard lock(s->mu);
    if (!s->running) return;
    s->interrupted = true;
    active = s->active_requests;
    pending = s->pending_answers;
  }
  for (auto& p : pending) p->answer("abort");  // nobody waits for the person any longer
  for (auto id : active) bus.cancel(id);
}

std::pair<int, json::object> Kernel::Impl::call_tracked(Session& s, const std::string& topic, const json::object& payload,
                                                        Request::EmitFn on_emit) {
  std::promise<std::pair<int, std::string>> done;
  auto f = done.get_future();
  auto track = [&](std::uint64_t id) {  // before the server runs: an interrupt must find it
    std::lock_guard lock(s.mu);
    s.active_requests.insert(id);
    if (s.interrupted) bus.cancel(id);
  };
  auto id = bus.request(topic, json::serialize(payload), std::move(on_emit),
                        [&done](int status, std::string_view body) { done.set_value({status, std::string(body)}); },
                        track);
  auto [status, body] = f.get();
  {
    std::lock_guard lock(s.mu);
    s.active_requests.erase(id);
  }
  return {status, parse_object(body)};
}

// Whether the next request would carry a history past the auto-compact limit: the last
// response's tokens plus about one per 4 bytes added since (tool outputs, input typed
// meanwhile). Unknown after a compaction until the next response, so never compacted twice.
bool Kernel::Impl::context_full(Session& s) {
  if (s.auto_compact_limit <= 0) return false;
  std::lock_guard lock(s.mu);
  if (s.context_tokens <= 0) return false;
  std::int64_t tokens = s.context_tokens;
  for (auto i = s.context_items; i < s.history.size(); ++i)
    tokens += static_cast<std::int64_t>(json::serialize(s.history[i]).size() / 4);
  for (auto& text : s.pending_input) tokens += static_cast<std::int64_t>(text.size() / 4);
  return tokens >= s.auto_compact_limit;
}

void Kernel::Impl::run_turns(std::shared_ptr<Session> s) {
  for (;;) {
    TurnResult result = run_turn(*s);
    std::vector<std::function<void(const TurnResult&)>> waiters;
    bool more;
    {
      std::lock_guard lock(s->mu);  // decide and mark in one step: a submit after this starts a new worker
      waiters.swap(s->waiters);
      more = !s->pending_input.empty();
      if (!more) s->running = false;
    }
    for (auto& w : waiters) w(result);
    if (!more) return;
  }
}

TurnResult Kernel::Impl::run_turn(Session& s) {
  TurnResult result{s.id, "completed", "", "", {}};
  std::string turn_id;
  {
    std::lock_guard lock(s.mu);
    turn_id = "turn_" + std::to_string(++s.turns);
  }
  publish(s, "turn.started", json::object{{"turn_id", turn_id}});
  json::object usage;
  const int max_requests = static_cast<int>(config.int_or("max_model_requests_per_turn", 200));
  const std::string provider_server = ModuleHost::server_name(KEEL_CAP_PROVIDER, s.provider.module);

  std::string error_code;
  auto finish = [&](std::string status, std::string error) {
    result.status = std::move(status);
    result.error = std::move(error);
    result.usage = usage;
    {
      std::lock_guard lock(s.mu);
      add_usage(s.total_usage, usage);
    }
    std::string diff;
    {
      std::lock_guard lock(s.mu);
      diff = s.turn_diff;
    }
    if (!diff.empty()) publish(s, "turn.diff", json::object{{"turn_id", turn_id}, {"diff", diff}});
    if (result.status == "completed")
      publish(s, "turn.completed", json::object{{"turn_id", turn_id}, {"usage", usage}});
    else
      publish(s, "turn.failed", json::object{{"turn_id", turn_id}, {"status", result.status},
                                             {"error", error_code.empty() ? json::object{{"message", result.error}}
                                                                          : json::object{{"message", result.error}, {"code", error_code}}},
                                             {"usage", usage}});
    return result;
  };

  auto take_input = [&] {  // input typed while the turn ran joins it before the next request
    std::deque<std::string> texts;
    {
      std::lock_guard lock(s.mu);
      texts.swap(s.pending_input);
    }
    for (auto& t : texts) append_history(s, user_message(t));
  };
  {
    std::lock_guard lock(s.mu);
    s.turn_diff.clear();
  }
  persist(s, json::object{{"type", "turn_context"}, {"turn_id", turn_id}, {"cwd", s.cwd}, {"model", s.model},
                          {"provider", s.provider.id}, {"approval_policy", config.string_or("approval_policy", "on-request")},
                          {"sandbox_mode", config.string_or("sandbox_mode", "workspace-write")}});
  if (!bus.has_server(provider_server)) {
    take_input();
    return finish("failed", "model provider '" + s.provider.id + "' needs the module '" + s.provider.module +
                                "', which is not loaded (see `keel modules`)");
  }

  for (int request_no = 0;; ++request_no) {
    // Past the auto-compact limit after any response (text-only ones too): summarize before
    // the history is sent again, and before new input joins, so that it follows the summary.
    std::string compact_error;
    bool compaction_ok = s.interrupted || !context_full(s) || compact_history(s, usage, compact_error, true);
    take_input();
    if (s.interrupted) return finish("interrupted", "turn interrupted");
    if (!compaction_ok) {
      // Failing the turn would fail every later one the same way: say so and send it whole.
      publish(s, "error", json::object{{"message", compact_error + "; the whole history is sent instead"}});
      std::lock_guard lock(s.mu);
      s.context_tokens = 0;  // not tried again until a response has measured the context anew
    }
    if (request_no >= max_requests)
      return finish("failed", "the model made " + std::to_string(max_requests) + " requests without finishing the turn");

    json::object req{{"model", s.model}, {"instructions", s.instructions}, {"tools", tool_specs()},
                     {"parallel_tool_calls", s.parallel_tool_calls}, {"session_id", s.id}, {"provider", s.provider.entry}};
    if (auto effort = config.string_or("model_reasoning_effort", ""); !effort.empty()) req["reasoning_effort"] = effort;
    {
      std::lock_guard lock(s.mu);
      req["input"] = s.history;
    }

    // Stream the response: deltas become item.* events as they arrive. When the provider
    // retries, the partial attempt is discarded: its items are reset and reused by the next.
    std::map<std::string, std::string> stream_items;          // kind:provider item id → our item id
    std::map<std::string, std::vector<std::string>> orphans;  // kind → ids of a discarded attempt
    std::map<std::string, std::deque<std::string>> streamed;  // kind → ids, in the order they started
    auto on_emit = [&](std::string_view text) {
      auto ev = parse_object(text);
      auto type = str_field(ev, "type");
      if (type == "output_text.delta" || type == "reasoning.delta") {
        std::string kind = type == "output_text.delta" ? "agent_message" : "reasoning";
        auto [it, fresh] = stream_items.try_emplace(type + ":" + str_field(ev, "item_id"));
        if (fresh) {
          auto& spare = orphans[kind];
          if (!spare.empty()) {
            it->second = spare.front();
            spare.erase(spare.begin());
          } else {
            it->second = next_item_id(s);
            publish(s, "item.started", json::object{{"item", json::object{{"id", it->second}, {"type", kind}, {"text", ""}}}});
          }
          streamed[kind].push_back(it->second);
        }
        publish(s, "item.delta", json::object{{"item_id", it->second}, {"kind", kind}, {"delta", str_field(ev, "delta")}},
                true);
      } else if (type == "retry") {
        for (auto& [key, id] : stream_items) {
          std::string kind = key.starts_with("output_text") ? "agent_message" : "reasoning";
          publish(s, "item.updated", json::object{{"item", json::object{{"id", id}, {"type", kind}, {"text", ""}}}});
          orphans[kind].push_back(id);
        }
        stream_items.clear();
        streamed.clear();
        ev.erase("type");
        publish(s, "provider.retry", std::move(ev));
      }
    };
    auto [status, reply] = call_tracked(s, provider_server + ".stream", req, on_emit);
    if (s.interrupted) return finish("interrupted", "turn interrupted");
    if (status != KEEL_OK) {
      if (auto* e = reply.if_contains("error"); e && e->is_object()) error_code = str_field(e->as_object(), "code");
      return finish("failed", error_message(reply, "the model provider failed"));
    }
    if (auto* u = reply.if_contains("usage"); u && u->is_object()) add_usage(usage, u->as_object());

    // Record the response; collect tool calls.
    std::vector<ToolCall> calls;
    json::array items;
    if (auto* v = reply.if_contains("items"); v && v->is_array()) items = v->as_array();
    // A finished item takes the id its stream started under, in order.
    auto streamed_id = [&](const std::string& kind) {
      auto& ids = streamed[kind];
      if (ids.empty()) return next_item_id(s);
      auto id = ids.front();
      ids.pop_front();
      return id;
    };
    for (auto& value : items) {
      if (!value.is_object()) continue;
      auto& item = value.as_object();
      append_history(s, item);
      auto type = str_field(item, "type");
      if (type == "message" && str_field(item, "role") == "assistant") {
        result.last_agent_message = message_text(item);
        std::string id = streamed_id("agent_message");
        publish(s, "item.completed",
                json::object{{"item", json::object{{"id", id}, {"type", "agent_message"}, {"text", result.last_agent_message}}}});
      } else if (type == "reasoning") {
        std::string text;
        if (auto* sum = item.if_contains("summary"); sum && sum->is_array())
          for (auto& part : sum->as_array())
            if (part.is_object()) text += str_field(part.as_object(), "text");
        std::string id = streamed_id("reasoning");
        publish(s, "item.completed", json::object{{"item", json::object{{"id", id}, {"type", "reasoning"}, {"text", text}}}});
      } else if (type == "function_call" || type == "custom_tool_call") {
        bool freeform = type == "custom_tool_call";
        calls.push_back(ToolCall{str_field(item, "call_id"), str_field(item, "name"), next_item_id(s), freeform,
                                 str_field(item, freeform ? "input" : "arguments")});
      }
    }
    // Items a discarded attempt started and the final answer did not reuse end here.
    for (auto& [kind, ids] : streamed) orphans[kind].insert(orphans[kind].end(), ids.begin(), ids.end());
    for (auto& [kind, ids] : orphans)
      for (auto& id : ids)
        publish(s, "item.completed", json::object{{"item", json::object{{"id", id}, {"type", kind}, {"text", ""}}}});
    {
      std::lock_guard lock(s.mu);  // how full the context is now, for the next compaction check
      s.context_tokens = 0;
      if (auto* u = reply.if_contains("usage"); u && u->is_object())
        for (auto key : {"input_tokens", "output_tokens"})
          if (auto* v = u->as_object().if_contains(key); v && v->is_int64()) s.context_tokens += v->as_int64();
      s.context_items = s.history.size();
    }
    if (calls.empty()) {
      std::lock_guard lock(s.mu);
      if (s.pending_input.empty()) break;
      continue;
    }
    run_tool_calls(s, turn_id, calls);
  }
  return finish("completed", "");
}

}  // namespace keel
