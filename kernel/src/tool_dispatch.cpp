// Running the tool calls of one model response: parallel-safe calls concurrently, anything
// that may mutate the workspace one at a time, outputs recorded in the order of the calls.
#include "json_util.hpp"
#include "kernel_impl.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <future>

namespace keel {
namespace json = boost::json;

bool Kernel::Impl::parallel_safe(const std::string& tool) {
  if (!config.bool_or("parallel_tool_calls", true)) return false;
  if (auto c = host->find_capability(KEEL_CAP_TOOL, tool)) return (c->flags & KEEL_FLAG_PARALLEL_SAFE) != 0;
  std::lock_guard lock(tools_mu);
  auto it = inproc_tools.find(tool);
  return it != inproc_tools.end() && it->second.parallel_safe;
}

void Kernel::Impl::run_tool_calls(Session& s, const std::string& turn_id, const std::vector<ToolCall>& calls) {
  std::vector<json::object> outputs(calls.size());
  for (std::size_t i = 0; i < calls.size();) {
    std::size_t end = i + 1;
    if (parallel_safe(calls[i].name))
      while (end < calls.size() && parallel_safe(calls[end].name)) ++end;
    if (end - i == 1) {
      outputs[i] = run_tool_call(s, turn_id, calls[i]);
    } else {
      std::vector<std::future<json::object>> running;
      for (std::size_t k = i; k < end; ++k)
        running.push_back(std::async(std::launch::async, [&, k] { return run_tool_call(s, turn_id, calls[k]); }));
      for (std::size_t k = i; k < end; ++k) outputs[k] = running[k - i].get();
    }
    i = end;
  }
  for (auto& o : outputs) append_history(s, std::move(o));
  // Images a tool attached (view_image) go to the model with the next request.
  std::vector<std::string> images;
  {
    std::lock_guard lock(s.mu);
    images.swap(s.pending_images);
  }
  for (auto& url : images)
    append_history(s, json::object{{"type", "message"}, {"role", "user"},
                                   {"content", json::array{json::object{{"type", "input_image"}, {"image_url", url}}}}});
}

json::object Kernel::Impl::run_tool_call(Session& s, const std::string& turn_id, const ToolCall& call) {
  auto output_item = [&](const std::string& output) {
    return json::object{{"type", call.freeform ? "custom_tool_call_output" : "function_call_output"},
                        {"call_id", call.call_id},
                        {"output", output}};
  };
  auto complete = [&](json::object item, const std::string& output, bool success) {
    if (item.empty() || str_field(item, "type").empty())
      item = json::object{{"type", "tool_call"}, {"tool", call.name}, {"arguments", call.arguments}, {"output", output}};
    item["id"] = call.item_id;
    if (!item.contains("status")) item["status"] = success ? "completed" : "failed";
    publish(s, "item.completed", json::object{{"item", std::move(item)}});
    return output_item(output);
  };

  const std::string server = ModuleHost::server_name(KEEL_CAP_TOOL, call.name);
  if (s.interrupted) return complete({}, "aborted: the user interrupted the turn before this call ran", false);
  if (!bus.has_server(server)) return complete({}, "unknown tool '" + call.name + "'; use one of the tools offered", false);

  auto verdict = authorize(s, call);
  if (!verdict.run) return complete({}, verdict.refusal, false);

  json::object payload{{"call_id", call.call_id}, {"name", call.name}, {"cwd", s.cwd},
                       {"session_id", s.id}, {"turn_id", turn_id}, {"sandbox", sandbox_policy(s, verdict.sandboxed)}};
  payload[call.freeform ? "input" : "arguments"] = call.arguments;
  auto [status, reply] = send_tool_call(s, call, server, payload);

  // on-failure: a command the sandbox blocked may be re-run outside it, if the user agrees.
  auto sandbox_blocked = [](const json::object& r) {
    auto* item = r.if_contains("item");
    auto* b = item && item->is_object() ? item->as_object().if_contains("sandbox_blocked") : nullptr;
    return b && b->is_bool() && b->as_bool();
  };
  if (status == KEEL_OK && sandbox_blocked(reply) && verdict.sandboxed &&
      config.string_or("approval_policy", "on-request") == "on-failure" && !s.interrupted) {
    auto answer = ask_user(s, call, json::array{}, "the sandbox blocked it: " + str_field(reply, "output"));
    if (answer == "approve" || answer == "approve_session" || answer == "approve_rule") {
      payload["sandbox"] = sandbox_policy(s, false);
      std::tie(status, reply) = send_tool_call(s, call, server, payload);
    } else if (answer == "abort") {
      interrupt(s.id);
    }
  }
  if (status != KEEL_OK) {
    std::string message = "tool '" + call.name + "' failed";
    if (auto* e = reply.if_contains("error"); e && e->is_object()) message += ": " + str_field(e->as_object(), "message");
    if (s.interrupted) message = "aborted: the user interrupted the turn";
    return complete({}, message, false);
  }
  std::string output = str_field(reply, "output");
  auto* ok = reply.if_contains("success");
  bool success = !ok || !ok->is_bool() || ok->as_bool();
  if (s.interrupted) output += "\n(aborted: the user interrupted the turn)";
  json::object item;
  if (auto* i = reply.if_contains("item"); i && i->is_object()) item = i->as_object();
  if (auto diff = str_field(item, "diff"); !diff.empty()) {
    std::lock_guard lock(s.mu);
    s.turn_diff += diff;
  }
  if (str_field(item, "type") == "image_attachment") {
    std::lock_guard lock(s.mu);
    s.pending_images.push_back(str_field(item, "data_url"));
    item.erase("data_url");  // events name the image; only the model gets its bytes
  }
  return complete(std::move(item), output, success);
}

std::pair<int, json::object> Kernel::Impl::send_tool_call(Session& s, const ToolCall& call, const std::string& server,
                                                          const json::object& payload) {
  auto on_emit = [&](std::string_view text) {
    auto ev = parse_object(text);
    auto type = str_field(ev, "type");
    if (type == "item.started" || type == "item.updated") {
      auto* item = ev.if_contains("item");
      if (!item || !item->is_object()) return;
      json::object it = item->as_object();
      it["id"] = call.item_id;
      publish(s, type, json::object{{"item", std::move(it)}});
    } else if (type == "output.delta") {
      publish(s, "item.delta",
              json::object{{"item_id", call.item_id}, {"kind", "command_output"}, {"delta", str_field(ev, "delta")}}, true);
    }
  };
  return call_tracked(s, server + ".call", payload, on_emit);
}

}  // namespace keel
