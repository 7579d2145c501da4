// keel apply-patch module: the `apply_patch` tool over the module ABI, a thin wrapper around
// keel_apply_patch_engine (engine/include/keel/tools/apply_patch.hpp).
//
// One capability, `apply_patch`, flagged KEEL_FLAG_FREEFORM | KEEL_FLAG_MUTATING, whose
// schema_json is the engine's freeform format ({"type":"grammar","syntax":"lark",...}).
//
// Why one capability and not two (`apply_patch` freeform + `apply_patch_json`):
//  - Codex offers the SAME name in one of two shapes, chosen per model; models are trained on
//    the name `apply_patch`, so a second name (`apply_patch_json`) would be a tool no model
//    knows, and offering both at once would put two patch tools in front of the model.
//  - Capability names are unique per kind and flags are static (the descriptor is read before
//    start(), so module config cannot switch the shape).
//  - The JSON function shape already exists where it is needed: wire formats without freeform
//    tools (Chat Completions, Anthropic) present a custom tool as a function taking
//    {"input": "<patch>"} — exactly the engine's kFunctionParametersSchema — and hand the call
//    back as freeform input. And this handler accepts both request forms: `input` (freeform)
//    and `arguments` = {"input": "<patch>"} (the JSON function form), so a kernel that chooses
//    the function shape per model needs nothing more from this module.
//
// Request: {"input": "<patch>"} or {"arguments": "{\"input\": \"<patch>\"}"}, plus "cwd" (the
// directory patch paths are relative to; they may not leave it) and "sandbox".
// Progress: {"type":"item.started","item":{"type":"file_change","changes":[...],"status":"in_progress"}}.
// Reply: {"output": <engine text>, "success": bool, "item": {"type":"file_change","changes":
//   [{"path","kind":"add"|"update"|"delete"}], "status":"completed"|"failed", "diff": "<unified diff>"}}.
// A move is reported as kind "update" of the destination path with "move_from": the source.
//
// Sandbox: a "read-only" sandbox refuses the patch (nothing could be written by a sandboxed
// process either); every other mode writes inside the working directory, which the engine
// already confines patch paths to.
#include <keel/sdk/tool.hpp>
#include <keel/tools/apply_patch.hpp>

#include <boost/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <system_error>

namespace {

namespace json = boost::json;
namespace patch = keel::tools::patch;
using keel::sdk::ToolContext;
using keel::sdk::ToolError;
using keel::sdk::ToolResult;

// The changes a parsed patch announces (before it is applied).
json::array planned_changes(const patch::ParsedPatch& parsed) {
  json::array out;
  for (const auto& a : parsed.actions) {
    json::object c;
    switch (a.kind) {
      case patch::ActionKind::Add:
        c = {{"path", keel::sdk::sanitize_utf8(a.path)}, {"kind", "add"}};
        break;
      case patch::ActionKind::Delete:
        c = {{"path", keel::sdk::sanitize_utf8(a.path)}, {"kind", "delete"}};
        break;
      case patch::ActionKind::Update:
        c = {{"path", keel::sdk::sanitize_utf8(a.move_to.value_or(a.path))}, {"kind", "update"}};
        if (a.move_to) c["move_from"] = keel::sdk::sanitize_utf8(a.path);
        break;
    }
    out.push_back(std::move(c));
  }
  return out;
}

// The changes a successful apply made.
json::array applied_changes(const patch::ApplyResult& result) {
  json::array out;
  for (const auto& ch : result.changes) {
    json::object c{{"path", keel::sdk::sanitize_utf8(ch.path)}};
    switch (ch.kind) {
      case patch::ChangeKind::Add: c["kind"] = "add"; break;
      case patch::ChangeKind::Delete: c["kind"] = "delete"; break;
      case patch::ChangeKind::Update: c["kind"] = "update"; break;
      case patch::ChangeKind::Move:
        c["kind"] = "update";
        if (ch.old_path) c["move_from"] = keel::sdk::sanitize_utf8(*ch.old_path);
        break;
    }
    out.push_back(std::move(c));
  }
  return out;
}

// The patch text: freeform `input`, or the JSON function form's {"input": "..."}.
std::string patch_text(const ToolContext& ctx) {
  if (!ctx.input.empty()) return ctx.input;
  if (const auto* v = ctx.args.if_contains("input")) {
    if (!v->is_string()) throw ToolError("argument 'input' must be a string holding the whole patch");
    return std::string(v->as_string());
  }
  if (const auto* v = ctx.args.if_contains("patch"); v && v->is_string()) return std::string(v->as_string());
  throw ToolError(
      "apply_patch needs the patch text: send the whole patch, from '*** Begin Patch' to '*** End Patch', as the "
      "tool input");
}

std::string sandbox_mode(const ToolContext& ctx) {
  const auto* sb = ctx.request.if_contains("sandbox");
  if (!sb || !sb->is_object()) return {};
  const auto* mode = sb->as_object().if_contains("mode");
  return mode && mode->is_string() ? std::string(mode->as_string()) : std::string{};
}

ToolResult apply_patch_tool(ToolContext& ctx) {
  const std::string text = patch_text(ctx);

  std::filesystem::path workdir = ctx.cwd;
  if (workdir.empty()) {
    std::error_code ec;
    workdir = std::filesystem::current_path(ec);
  }

  // Parse first so the started item can name the files; a malformed patch still gets an
  // item (with no changes) so UIs see the attempt.
  std::optional<patch::ParsedPatch> parsed;
  std::string parse_error;
  try {
    parsed = patch::parse_patch(text);
  } catch (const patch::PatchError& e) {
    parse_error = e.what();
  }
  json::array planned = parsed ? planned_changes(*parsed) : json::array{};
  ctx.progress(json::object{
      {"type", "item.started"},
      {"item", json::object{{"type", "file_change"}, {"changes", planned}, {"status", "in_progress"}}}});

  auto failed = [&](std::string message) {
    ToolResult r;
    r.success = false;
    r.output = keel::sdk::sanitize_utf8(message);
    r.item = json::object{{"type", "file_change"}, {"changes", planned}, {"status", "failed"}, {"diff", ""}};
    return r;
  };

  if (!parsed) return failed(parse_error);
  if (sandbox_mode(ctx) == "read-only")
    return failed("apply_patch refused: the sandbox is read-only, so no file may be changed. Ask the user for "
                  "write access (or to switch to workspace-write) before editing files.");

  patch::ApplyResult result = patch::apply_patch(*parsed, workdir);
  if (!result.success) return failed(result.output);

  ToolResult r;
  r.success = true;
  r.output = keel::sdk::sanitize_utf8(result.output);
  r.item = json::object{{"type", "file_change"},
                        {"changes", applied_changes(result)},
                        {"status", "completed"},
                        {"diff", keel::sdk::sanitize_utf8(result.unified_diff)}};
  return r;
}

// The freeform format is built by the engine at run time (it JSON-escapes the Lark grammar),
// so the tool table is initialised when the library is loaded rather than at compile time;
// everything else is what KEEL_TOOL_MODULE would generate.
const std::string kFreeformFormat = patch::freeform_tool_format_json();

const keel::sdk::ToolSpec kSpecs[] = {
    {"apply_patch", patch::kToolDescription.data(), kFreeformFormat.c_str(), KEEL_FLAG_FREEFORM | KEEL_FLAG_MUTATING,
     &apply_patch_tool},
};
constexpr std::size_t kSpecCount = sizeof(kSpecs) / sizeof(kSpecs[0]);
using ApplyPatchModule = keel::sdk::detail::ToolModule<kSpecs, kSpecCount>;

}  // namespace

extern "C" KEEL_EXPORT const keel_module* keel_module_entry(uint32_t, uint32_t) {
  static const keel_module descriptor = {
      KEEL_ABI_MAJOR,
      KEEL_ABI_MINOR,
      sizeof(keel_module),
      "apply-patch",
      "0.1.0",
      "Edits files with the apply_patch patch language (add, update, move, delete; atomic; confined to the "
      "working directory)",
      keel::sdk::detail::tool_capabilities<kSpecs, kSpecCount>(),
      kSpecCount,
      &keel::sdk::detail::start<ApplyPatchModule>,
      &keel::sdk::detail::handle<ApplyPatchModule>,
      &keel::sdk::detail::stop<ApplyPatchModule>};
  return &descriptor;
}
