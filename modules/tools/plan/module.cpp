// keel plan module: the `update_plan` tool, shaped like Codex CLI's.
//
//   update_plan {"explanation"?: "...", "plan": [{"step": "...", "status": "pending" |
//                "in_progress" | "completed"}]}
//
// Validates the plan (every step a non-empty string, a known status, at most one step
// in_progress), answers "Plan updated" with a `todo_list` item
// {"type":"todo_list","items":[{"text","completed"}]}, and publishes on topic "event"
// {"type":"plan.updated","session_id","turn_id"?,"call_id"?,"explanation"?,"plan":[...]} so
// front ends can show the plan as it changes. The plan lives in the conversation (the model
// resends the whole list each time); the module keeps no state.
#include <keel/sdk/tool.hpp>

#include <boost/json.hpp>

#include <string>

namespace {

namespace json = boost::json;
using keel::sdk::ToolContext;
using keel::sdk::ToolError;
using keel::sdk::ToolResult;

std::string request_string(const ToolContext& ctx, std::string_view key) {
  const auto* v = ctx.request.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string{};
}

ToolResult update_plan(ToolContext& ctx) {
  const auto* pv = ctx.args.if_contains("plan");
  if (!pv) throw ToolError(R"(missing required argument 'plan' (a list of {"step": "...", "status": "pending"|"in_progress"|"completed"}))");
  if (!pv->is_array()) throw ToolError("argument 'plan' must be a list of steps");

  std::string explanation;
  if (const auto* e = ctx.args.if_contains("explanation"); e && !e->is_null()) {
    if (!e->is_string()) throw ToolError("argument 'explanation' must be a string");
    explanation = keel::sdk::sanitize_utf8(e->as_string());
  }

  json::array plan, items;
  int in_progress = 0;
  std::size_t index = 0;
  for (const auto& v : pv->as_array()) {
    ++index;
    const std::string where = "plan step " + std::to_string(index);
    if (!v.is_object()) throw ToolError(where + R"( must be an object {"step": "...", "status": "..."})");
    const auto& o = v.as_object();
    const auto* step = o.if_contains("step");
    if (!step || !step->is_string() || step->as_string().empty())
      throw ToolError(where + " needs a non-empty 'step' string");
    const auto* status = o.if_contains("status");
    if (!status || !status->is_string()) throw ToolError(where + " needs a 'status': pending, in_progress or completed");
    const std::string s(status->as_string());
    if (s != "pending" && s != "in_progress" && s != "completed")
      throw ToolError(where + " has status '" + keel::sdk::sanitize_utf8(s) + "'; use pending, in_progress or completed");
    if (s == "in_progress" && ++in_progress > 1)
      throw ToolError("at most one step can be in_progress at a time (step " + std::to_string(index) +
                      " is the second); mark the others pending or completed");
    const std::string text = keel::sdk::sanitize_utf8(step->as_string());
    plan.push_back(json::object{{"step", text}, {"status", s}});
    items.push_back(json::object{{"text", text}, {"completed", s == "completed"}});
  }

  json::object event{{"type", "plan.updated"}, {"session_id", request_string(ctx, "session_id")}, {"plan", plan}};
  if (auto turn = request_string(ctx, "turn_id"); !turn.empty()) event["turn_id"] = turn;
  if (auto call = request_string(ctx, "call_id"); !call.empty()) event["call_id"] = call;
  if (!explanation.empty()) event["explanation"] = explanation;
  ctx.host.publish("event", json::serialize(event));

  ToolResult r;
  r.output = "Plan updated";
  r.item = json::object{{"type", "todo_list"}, {"items", std::move(items)}};
  return r;
}

constexpr const char* kUpdatePlanSchema = R"({
  "type": "object",
  "properties": {
    "explanation": {"type": "string", "description": "Optional note on what changed in the plan and why."},
    "plan": {
      "type": "array",
      "description": "The whole list of steps, in order.",
      "items": {
        "type": "object",
        "properties": {
          "step": {"type": "string", "description": "A short description of the step."},
          "status": {"type": "string", "enum": ["pending", "in_progress", "completed"],
                     "description": "One of: pending, in_progress, completed."}
        },
        "required": ["step", "status"],
        "additionalProperties": false
      }
    }
  },
  "required": ["plan"],
  "additionalProperties": false
})";

}  // namespace

// Not parallel-safe: two plan updates in one response must be applied in order.
KEEL_TOOL_MODULE("plan", "0.1.0", "Keeps a visible step-by-step plan for the task (update_plan)",
                 KEEL_TOOL("update_plan",
                           "Updates the task plan.\nProvide an optional explanation and a list of plan items, each "
                           "with a step and status.\nAt most one step can be in_progress at a time.",
                           kUpdatePlanSchema, 0u, update_plan))
