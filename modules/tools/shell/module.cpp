// keel shell module: the `shell` and `shell_command` tools, shaped like Codex CLI's.
//
//   shell          {"command": ["bash","-lc","..."], "workdir"?, "timeout_ms"?}
//   shell_command  {"command": "<script>", "workdir"?, "timeout_ms"?, "login"?: true}
//
// The model reads
//   Exit code: N
//   Wall time: S seconds
//   Output:
//   <stdout and stderr interleaved, truncated in the middle>
// and UIs get a `command_execution` item plus `output.delta` progress events while it runs.
//
// Module configuration (all optional): max_output_bytes (10240) and max_output_lines (256)
// for the model's text; item_max_bytes (65536) and item_max_lines (2000) for the item's
// aggregated_output; capture_max_bytes (1 MiB) kept in memory per stream; default_timeout_ms
// (10000); max_timeout_ms (none); env (object of variables to set for every command).
#include <keel/common/process.hpp>
#include <keel/common/truncate.hpp>
#include <keel/sdk/sandbox.hpp>
#include <keel/sdk/tool.hpp>
#include <keel/tools/apply_patch.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace {

namespace json = boost::json;
namespace sb = keel::sdk::sandbox;
using keel::common::OutputStream;
using keel::sdk::ToolContext;
using keel::sdk::ToolError;
using keel::sdk::ToolResult;

// Like Codex: at most this many output.delta events per call; the final reply has it all.
constexpr std::size_t kMaxDeltasPerCall = 10'000;
constexpr std::int64_t kDefaultTimeoutMs = 10'000;

std::int64_t config_int(const json::object& config, std::string_view key, std::int64_t fallback) {
  const auto* v = config.if_contains(key);
  if (!v) return fallback;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  if (v->is_double()) return static_cast<std::int64_t>(v->as_double());
  return fallback;
}

std::size_t config_size(const json::object& config, std::string_view key, std::size_t fallback) {
  auto v = config_int(config, key, static_cast<std::int64_t>(fallback));
  return v > 0 ? static_cast<std::size_t>(v) : fallback;
}

// The directory to run in: `workdir` (absolute, or relative to the request's cwd) or the cwd.
std::string resolve_workdir(const ToolContext& ctx) {
  namespace fs = std::filesystem;
  fs::path base = ctx.cwd;
  if (base.empty()) {
    std::error_code ec;
    base = fs::current_path(ec);
  }
  const auto* w = ctx.args.if_contains("workdir");
  if (!w || w->is_null()) return base.string();
  if (!w->is_string()) throw ToolError("argument 'workdir' must be a string (a directory path)");
  fs::path p(std::string(w->as_string()));
  if (p.empty()) return base.string();
  if (p.is_relative()) p = base / p;
  return p.lexically_normal().string();
}

std::chrono::milliseconds resolve_timeout(const ToolContext& ctx) {
  std::int64_t fallback = config_int(ctx.config, "default_timeout_ms", kDefaultTimeoutMs);
  const auto* v = ctx.args.if_contains("timeout_ms");
  std::int64_t ms = fallback;
  if (v && !v->is_null()) {
    bool positive = (v->is_int64() && v->as_int64() > 0) || v->is_uint64() ||
                    (v->is_double() && v->as_double() >= 1 && v->as_double() < 9.0e15);
    if (!positive) throw ToolError("argument 'timeout_ms' must be a positive number of milliseconds");
    ms = v->is_int64() ? v->as_int64()
         : v->is_uint64() ? static_cast<std::int64_t>(std::min<std::uint64_t>(v->as_uint64(), INT64_MAX))
                          : static_cast<std::int64_t>(v->as_double());
  }
  if (ms <= 0) ms = kDefaultTimeoutMs;  // a nonsensical default_timeout_ms in the config
  std::int64_t max = config_int(ctx.config, "max_timeout_ms", 0);
  if (max > 0 && ms > max) ms = max;
  return std::chrono::milliseconds(ms);
}

std::string format_seconds(double seconds) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", seconds);
  return buf;
}

// Streams output.delta events, never splitting a UTF-8 sequence across two events.
class DeltaStreamer {
 public:
  explicit DeltaStreamer(const ToolContext& ctx) : ctx_(ctx) {}

  void chunk(OutputStream which, std::string_view data) {
    std::string& carry = which == OutputStream::Stdout ? carry_out_ : carry_err_;
    carry.append(data);
    std::size_t n = keel::common::utf8_complete_prefix(carry);
    if (n == 0) return;
    send(which, std::string_view(carry).substr(0, n));
    carry.erase(0, n);
  }
  void flush() {
    if (!carry_out_.empty()) send(OutputStream::Stdout, carry_out_);
    if (!carry_err_.empty()) send(OutputStream::Stderr, carry_err_);
    carry_out_.clear();
    carry_err_.clear();
  }

 private:
  void send(OutputStream which, std::string_view text) {
    if (sent_ >= kMaxDeltasPerCall) return;
    ++sent_;
    // Built by hand: json_quote replaces invalid UTF-8, so the event is always valid JSON.
    ctx_.call.emit(std::string(R"({"type":"output.delta","stream":")") +
                   (which == OutputStream::Stdout ? "stdout" : "stderr") + R"(","delta":)" +
                   keel::sdk::json_quote(text) + "}");
  }

  const ToolContext& ctx_;
  std::string carry_out_, carry_err_;
  std::size_t sent_ = 0;
};

// Makes `text` valid UTF-8 (bad bytes become U+FFFD) so it can go into a JSON string as is.
std::string valid_utf8(std::string_view text) {
  auto quoted = keel::sdk::json_quote(text);
  // Unquote what json_quote produced: parse it back as a JSON string.
  return std::string(json::parse(quoted).as_string());
}

// The reply to an interrupted call: KEEL_ERR_CANCELLED (the SDK's ToolResult cannot carry the
// error object, so reply directly; the helper's own reply then finds the call answered).
void reply_cancelled(ToolContext& ctx, const ToolResult& result) {
  json::object payload{{"error", json::object{{"message", "command cancelled"}, {"code", "cancelled"}}},
                       {"output", result.output},
                       {"success", false},
                       {"item", result.item}};
  ctx.call.reply(KEEL_ERR_CANCELLED, json::serialize(payload));
}

ToolResult run_command(ToolContext& ctx, std::vector<std::string> argv) {
  keel::common::ProcessOptions opts;
  opts.argv = std::move(argv);
  opts.cwd = resolve_workdir(ctx);
  opts.timeout = resolve_timeout(ctx);
  opts.max_output_bytes = config_size(ctx.config, "capture_max_bytes", 1024 * 1024);
  if (const auto* env = ctx.config.if_contains("env"); env && env->is_object())
    for (const auto& [k, v] : env->as_object())
      if (v.is_string()) opts.env[std::string(k)] = std::string(v.as_string());

  const std::string display = valid_utf8(keel::common::shell_join(opts.argv));
  // Sandboxing: the active sandbox module wraps the command (keel/sdk/sandbox.hpp). When it
  // refuses or cannot be reached, that is the tool's (failed) output: a command that asked for
  // a sandbox never runs without one.
  const json::object* sandbox = sb::policy_of(ctx.request);
  sb::Command unwrapped;
  if (sandbox) {
    // With the variables it sets: a TMPDIR configured for commands is theirs to write in.
    unwrapped = sb::Command{opts.argv, ctx.cwd, opts.cwd, opts.env, *sandbox};
    sb::Prepared prepared = sb::prepare(ctx.host, unwrapped, sb::Wait::on(ctx.call));
    if (!prepared) {
      ToolResult r;
      r.success = false;
      r.output = valid_utf8("sandbox error: " + prepared.error + "\nThe command was not run.");
      r.item = json::object{{"type", "command_execution"}, {"command", display}, {"aggregated_output", r.output},
                            {"exit_code", -1}, {"status", "failed"}};
      if (prepared.status == KEEL_ERR_CANCELLED) reply_cancelled(ctx, r);
      return r;
    }
    opts.argv = std::move(prepared.argv);
    for (auto& [k, v] : prepared.env) opts.env[k] = std::move(v);
  }
  // UIs show the command while it runs (Codex's exec --json does the same: in_progress first).
  ctx.call.emit(json::serialize(json::object{
      {"type", "item.started"},
      {"item", json::object{{"type", "command_execution"}, {"command", display}, {"aggregated_output", ""},
                            {"exit_code", nullptr}, {"status", "in_progress"}}}}));
  DeltaStreamer streamer(ctx);
  opts.on_output = [&](OutputStream which, std::string_view data) { streamer.chunk(which, data); };
  opts.cancelled = [&] { return ctx.call.cancelled(); };

  keel::common::ProcessResult res = keel::common::run_process(opts);
  streamer.flush();

  const auto& agg = res.aggregated;
  auto cut = [&](const keel::common::TruncateOptions& o) {
    return valid_utf8(keel::common::truncate_middle(agg.head(), agg.tail(), agg.dropped_bytes(),
                                                    agg.dropped_lines(), o));
  };
  keel::common::TruncateOptions model_opts{config_size(ctx.config, "max_output_bytes", keel::common::kDefaultTruncateBytes),
                                           config_size(ctx.config, "max_output_lines", keel::common::kDefaultTruncateLines)};
  keel::common::TruncateOptions item_opts{config_size(ctx.config, "item_max_bytes", 64 * 1024),
                                          config_size(ctx.config, "item_max_lines", 2000)};

  std::string prefix;
  if (!res.spawned) prefix = res.error + "\n";
  if (res.timed_out) prefix += "command timed out after " + std::to_string(opts.timeout->count()) + " ms\n";
  if (res.cancelled) prefix += "command cancelled\n";
  prefix = valid_utf8(prefix);

  // Like Codex (and timeout(1)), a timed-out command reports exit code 124.
  int exit_code = res.timed_out ? 124 : res.exit_code;
  bool ok = exit_code == 0 && !res.timed_out && !res.cancelled;

  ToolResult result;
  result.success = ok;
  result.output = "Exit code: " + std::to_string(exit_code) + "\nWall time: " + format_seconds(res.wall_seconds()) +
                  " seconds\nOutput:\n" + prefix + cut(model_opts);
  result.item = json::object{{"type", "command_execution"},
                             {"command", display},
                             {"aggregated_output", prefix + cut(item_opts)},
                             {"exit_code", exit_code},
                             {"status", ok ? "completed" : "failed"}};
  // After a failed sandboxed run: if the sandbox says it blocked the command, say why.
  if (sandbox && !ok && !res.cancelled && !res.timed_out) {
    sb::Explanation why = sb::explain(ctx.host, unwrapped, exit_code, cut(item_opts), sb::Wait::on(ctx.call));
    if (why.blocked) {
      result.output += "\n" + valid_utf8(why.reason);
      result.item["sandbox_blocked"] = true;
      result.item["sandbox_reason"] = valid_utf8(why.reason);
    }
  }

  if (res.cancelled) reply_cancelled(ctx, result);
  return result;
}

// ---------------------------------------------------------------------------------------------
// apply_patch interception. Models often send a patch as a shell command,
//   bash -lc "apply_patch <<'EOF'\n*** Begin Patch ... *** End Patch\nEOF"   (optionally `cd DIR && ...`),
// and there is no apply_patch program to run. Such a command is never run: the patch is
// applied with the apply_patch engine (the apply-patch module's), exactly as the apply_patch
// tool would, and its output plus a file_change item are the reply.
//   - Paths are relative to the command's directory (`workdir`, else the request's cwd); a
//     `cd DIR` must stay inside it, and the patch's paths are rebased onto it (so `cd sub` +
//     `x.txt` reports and diffs `sub/x.txt`) and confined to it by the engine.
//   - A read-only sandbox refuses; workspace-write only writes inside the request's cwd or
//     the sandbox's writable_roots (the checks a sandboxed process would have met).
// ---------------------------------------------------------------------------------------------
bool path_inside(const std::filesystem::path& parent, const std::filesystem::path& child) {
  std::error_code ec1, ec2;
  auto p = std::filesystem::weakly_canonical(parent, ec1), c = std::filesystem::weakly_canonical(child, ec2);
  if (ec1 || ec2) return false;
  auto rel = c.lexically_relative(p);
  return !rel.empty() && *rel.begin() != "..";
}

std::optional<ToolResult> intercept_apply_patch(const ToolContext& ctx, const std::vector<std::string>& argv) {
  namespace fs = std::filesystem;
  namespace patch = keel::tools::patch;
  auto heredoc = patch::extract_patch_from_command(argv);
  if (!heredoc) return std::nullopt;

  json::array changes;
  auto reply = [&](bool ok, std::string_view output, std::string_view diff) {
    ToolResult r;
    r.success = ok;
    r.output = valid_utf8(output);
    r.item = json::object{{"type", "file_change"}, {"changes", changes}, {"status", ok ? "completed" : "failed"},
                          {"diff", valid_utf8(diff)}};
    return r;
  };

  const fs::path base = resolve_workdir(ctx);
  fs::path rebase;  // the `cd` directory relative to base
  if (heredoc->workdir) {
    fs::path target = fs::path(*heredoc->workdir).is_absolute() ? fs::path(*heredoc->workdir) : base / *heredoc->workdir;
    std::error_code ec;
    if (!fs::is_directory(target, ec)) return reply(false, "apply_patch: cd: " + *heredoc->workdir + ": No such directory", "");
    if (!path_inside(base, target))
      return reply(false, "apply_patch: refusing `cd " + *heredoc->workdir + "`: it leaves the working directory", "");
    rebase = fs::weakly_canonical(target, ec).lexically_relative(fs::weakly_canonical(base, ec));
    if (rebase == ".") rebase.clear();
  }

  const json::object* sandbox = nullptr;
  if (const auto* sb = ctx.request.if_contains("sandbox"); sb && sb->is_object()) sandbox = &sb->as_object();
  const auto* mode = sandbox ? sandbox->if_contains("mode") : nullptr;
  const std::string sandbox_mode = mode && mode->is_string() ? std::string(mode->as_string()) : "";
  if (sandbox_mode == "read-only")
    return reply(false, "apply_patch refused: the sandbox is read-only, so no file may be changed", "");
  if (sandbox_mode == "workspace-write") {
    bool writable = !ctx.cwd.empty() && path_inside(ctx.cwd, base);
    if (const auto* roots = sandbox->if_contains("writable_roots"); roots && roots->is_array())
      for (const auto& r : roots->as_array())
        writable = writable || (r.is_string() && path_inside(std::string(r.as_string()), base));
    if (!writable)
      return reply(false, "apply_patch refused: " + base.string() + " is outside the sandbox's writable roots", "");
  }

  patch::ParsedPatch parsed;
  try {
    parsed = patch::parse_patch(heredoc->patch);
  } catch (const patch::PatchError& e) {
    return reply(false, e.what(), "");
  }
  auto rebased = [&](const std::string& p) {
    return rebase.empty() || fs::path(p).is_absolute() ? p : (rebase / p).lexically_normal().generic_string();
  };
  for (auto& a : parsed.actions) {
    a.path = rebased(a.path);
    if (a.move_to) a.move_to = rebased(*a.move_to);
  }

  patch::ApplyResult applied = patch::apply_patch(parsed, base);
  for (const auto& c : applied.changes) {
    json::object change{{"path", valid_utf8(c.path)},
                        {"kind", c.kind == patch::ChangeKind::Add      ? "add"
                                 : c.kind == patch::ChangeKind::Delete ? "delete"
                                                                       : "update"}};
    if (c.old_path) change["move_from"] = valid_utf8(*c.old_path);
    changes.push_back(std::move(change));
  }
  return reply(applied.success, applied.output, applied.unified_diff);
}

ToolResult shell_tool(ToolContext& ctx) {
  const auto* c = ctx.args.if_contains("command");
  if (!c) throw ToolError(R"(missing required argument 'command' (an array of strings, e.g. ["bash","-lc","ls"]))");
  if (!c->is_array())
    throw ToolError(R"(argument 'command' must be an array of strings, e.g. ["bash","-lc","ls"] (use shell_command to run a script string))");
  std::vector<std::string> argv;
  for (const auto& v : c->as_array()) {
    if (!v.is_string()) throw ToolError("argument 'command' must contain only strings");
    argv.emplace_back(v.as_string());
  }
  if (argv.empty() || argv[0].empty()) throw ToolError("argument 'command' must not be empty");
  if (auto patched = intercept_apply_patch(ctx, argv)) return std::move(*patched);  // never run
  return run_command(ctx, std::move(argv));
}

// The user's shell: $SHELL when it is an executable, else bash, else /bin/sh.
std::string user_shell() {
  if (const char* s = std::getenv("SHELL"); s && *s) {
    if (auto found = keel::common::find_on_path(s)) return *found;
  }
  if (auto bash = keel::common::find_on_path("bash")) return *bash;
  return "/bin/sh";
}

ToolResult shell_command_tool(ToolContext& ctx) {
  const auto* c = ctx.args.if_contains("command");
  if (!c) throw ToolError("missing required argument 'command' (the script to run, a string)");
  if (!c->is_string()) throw ToolError("argument 'command' must be a string (the script to run)");
  bool login = true;
  if (const auto* l = ctx.args.if_contains("login"); l && !l->is_null()) {
    if (!l->is_bool()) throw ToolError("argument 'login' must be true or false");
    login = l->as_bool();
  }
  // An apply_patch heredoc script is applied, never run (see intercept_apply_patch).
  if (auto patched = intercept_apply_patch(ctx, {"bash", "-lc", std::string(c->as_string())})) return std::move(*patched);
  return run_command(ctx, {user_shell(), login ? "-lc" : "-c", std::string(c->as_string())});
}

constexpr const char* kShellSchema = R"({
  "type": "object",
  "properties": {
    "command": {"type": "array", "items": {"type": "string"},
                "description": "The command to execute, as an argv, e.g. [\"bash\", \"-lc\", \"ls -la\"]."},
    "workdir": {"type": "string", "description": "The working directory to execute the command in (absolute, or relative to the session's working directory)."},
    "timeout_ms": {"type": "number", "description": "The timeout for the command in milliseconds (default 10000)."}
  },
  "required": ["command"],
  "additionalProperties": false
})";

constexpr const char* kShellCommandSchema = R"({
  "type": "object",
  "properties": {
    "command": {"type": "string", "description": "The shell script to execute in the user's default shell."},
    "workdir": {"type": "string", "description": "The working directory to execute the command in (absolute, or relative to the session's working directory)."},
    "timeout_ms": {"type": "number", "description": "The timeout for the command in milliseconds (default 10000)."},
    "login": {"type": "boolean", "description": "Run as a login shell (-lc, the default) or not (-c)."}
  },
  "required": ["command"],
  "additionalProperties": false
})";

}  // namespace

KEEL_TOOL_MODULE("shell", "0.1.0", "Runs commands: an argv (shell) or a script in the user's shell (shell_command)",
                 KEEL_TOOL("shell",
                           "Runs a command (an argv) and returns its exit code, wall time and output. "
                           "Always set `workdir` rather than using `cd`.",
                           kShellSchema, KEEL_FLAG_MUTATING, shell_tool),
                 KEEL_TOOL("shell_command",
                           "Runs a shell script in the user's default shell and returns its exit code, wall time and "
                           "output. Always set `workdir` rather than using `cd`.",
                           kShellCommandSchema, KEEL_FLAG_MUTATING, shell_command_tool))
