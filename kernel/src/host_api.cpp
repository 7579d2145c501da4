// The function table handed to every module: the only way a module reaches the kernel.
// Every entry is noexcept in effect — nothing thrown here may unwind into module code.
#include "host_api.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <mutex>
#include <unordered_set>

namespace keel {
namespace {

std::string_view view(keel_str s) { return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view{}; }
keel_str str(std::string_view s) { return keel_str{s.data(), s.size()}; }

HostContext* ctx(keel_host* h) { return reinterpret_cast<HostContext*>(h); }

void host_log(keel_host* h, int level, keel_str message) {
  try {
    auto* c = ctx(h);
    c->impl->log(static_cast<keel_log_level>(level), c->module->name + ": " + std::string(view(message)));
  } catch (...) {
  }
}

void host_publish(keel_host* h, keel_str topic, keel_str event_json) {
  try {
    auto* c = ctx(h);
    boost::system::error_code ec;
    auto value = boost::json::parse(view(event_json), ec);
    if (ec || !value.is_object()) {
      c->impl->log(KEEL_LOG_WARN, c->module->name + " published an event that is not a JSON object; dropped");
      return;
    }
    auto& obj = value.as_object();
    auto* type = obj.if_contains("type");
    bool delta = type && type->is_string() && std::string_view(type->as_string()).ends_with(".delta");
    c->impl->bus.publish(std::string(view(topic)), std::move(obj), delta);
  } catch (...) {
  }
}

uint64_t host_subscribe(keel_host* h, keel_str prefix, keel_event_fn fn, void* user) {
  try {
    auto* c = ctx(h);
    auto id = c->impl->bus.subscribe(std::string(view(prefix)), [fn, user](const Event& e) {
      fn(user, str(e.topic()), str(e.json()));
    });
    std::lock_guard lock(c->module->mu);
    c->module->subscriptions.insert(id);
    return id;
  } catch (...) {
    return 0;
  }
}

void host_unsubscribe(keel_host* h, uint64_t id) {
  try {
    auto* c = ctx(h);
    {
      std::lock_guard lock(c->module->mu);
      if (!c->module->subscriptions.erase(id)) return;  // not this module's
    }
    c->impl->bus.unsubscribe(id);
  } catch (...) {
  }
}

uint64_t host_request(keel_host* h, keel_str topic, keel_str payload, keel_emit_fn on_emit, keel_reply_fn on_reply,
                      void* user) {
  try {
    auto* c = ctx(h);
    Request::EmitFn emit;
    if (on_emit) emit = [on_emit, user](std::string_view ev) { on_emit(user, str(ev)); };
    return c->impl->bus.request(view(topic), std::string(view(payload)), std::move(emit),
                                [on_reply, user](int status, std::string_view body) {
                                  if (on_reply) on_reply(user, status, str(body));
                                });
  } catch (const std::exception& e) {
    std::string body = R"({"error":{"message":"host could not send the request"}})";
    if (on_reply) on_reply(user, KEEL_ERR_INTERNAL, str(body));
    return 0;
  }
}

void host_cancel(keel_host* h, uint64_t request_id) {
  try {
    ctx(h)->impl->bus.cancel(request_id);
  } catch (...) {
  }
}

// Live calls, process-wide: emit/reply/is_cancelled get only the call handle, and a module
// that replies twice (or late) must find nothing rather than freed memory.
std::mutex g_calls_mu;
std::unordered_set<CallBox*> g_live_calls;

CallBox* find_call(keel_call* call) {
  auto* box = reinterpret_cast<CallBox*>(call);
  std::lock_guard lock(g_calls_mu);
  return g_live_calls.count(box) ? box : nullptr;
}

void host_emit(keel_call* call, keel_str event_json) {
  try {
    RequestPtr req;
    if (auto* box = find_call(call)) req = box->request;
    if (req) req->emit(view(event_json));
  } catch (...) {
  }
}

void host_reply(keel_call* call, int status, keel_str payload) {
  CallBox* box = nullptr;
  {
    std::lock_guard lock(g_calls_mu);
    auto it = g_live_calls.find(reinterpret_cast<CallBox*>(call));
    if (it == g_live_calls.end()) return;  // already answered: ignore
    box = *it;
    g_live_calls.erase(it);
  }
  try {
    box->request->reply(status, view(payload));
  } catch (...) {
  }
  --box->module->in_flight;
  delete box;
}

int host_is_cancelled(keel_call* call) {
  RequestPtr req;
  {
    std::lock_guard lock(g_calls_mu);
    auto it = g_live_calls.find(reinterpret_cast<CallBox*>(call));
    if (it == g_live_calls.end()) return 1;
    req = (*it)->request;
  }
  return req->cancelled() ? 1 : 0;
}

const keel_host_api kHostApi = {KEEL_ABI_MAJOR,  KEEL_ABI_MINOR, sizeof(keel_host_api), host_log,
                                host_publish,    host_subscribe, host_unsubscribe,      host_request,
                                host_cancel,     host_emit,      host_reply,            host_is_cancelled};

}  // namespace

const keel_host_api& host_api() { return kHostApi; }

void register_call(CallBox* box) {
  std::lock_guard lock(g_calls_mu);
  g_live_calls.insert(box);
}

}  // namespace keel
