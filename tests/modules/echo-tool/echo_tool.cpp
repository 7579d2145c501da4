// echo-tool: a test tool module written with the SDK like any third-party tool.
//
//   echo        {"text", "sleep_ms"?}  parallel-safe; replies with the text
//   slow_write  {"path", "text"}       mutating; sleeps ~200 ms, then writes `text` to `path`
//                                      (relative to the call's cwd)
//
// Both reply with a JSON object carrying start_us/end_us (steady clock, microseconds) so a
// test in the same process can tell whether two calls overlapped.
#include <keel/sdk/tool.hpp>

#include <boost/json/serialize.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

namespace {

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string timed(std::string_view tool, const std::string& text, std::int64_t start) {
  return boost::json::serialize(
      boost::json::object{{"tool", tool}, {"text", text}, {"start_us", start}, {"end_us", now_us()}});
}

keel::sdk::ToolResult ok(std::string output) {
  keel::sdk::ToolResult r;  // fields set by name: ToolResult may grow
  r.output = std::move(output);
  return r;
}

keel::sdk::ToolResult echo(keel::sdk::ToolContext& ctx) {
  auto start = now_us();
  std::string text = ctx.string_arg("text");
  auto ms = ctx.int_arg_or("sleep_ms", 0);
  if (ms < 0 || ms > 10'000) throw keel::sdk::ToolError("sleep_ms must be between 0 and 10000");
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ok(timed("echo", text, start));
}

keel::sdk::ToolResult slow_write(keel::sdk::ToolContext& ctx) {
  auto start = now_us();
  std::filesystem::path path = ctx.string_arg("path");
  std::string text = ctx.string_arg("text");
  if (path.is_relative()) path = std::filesystem::path(ctx.cwd) / path;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << text;
  if (!out.flush()) throw keel::sdk::ToolError("cannot write " + path.string());
  return ok(timed("slow_write", text, start));
}

}  // namespace

KEEL_TOOL_MODULE("echo-tool", "1.0.0", "Test tools: echo (parallel-safe) and slow_write (mutating)",
                 KEEL_TOOL("echo", "Echoes `text` back, optionally after sleeping `sleep_ms` milliseconds.",
                           R"({"type":"object","properties":{"text":{"type":"string"},"sleep_ms":{"type":"integer"}},"required":["text"],"additionalProperties":false})",
                           KEEL_FLAG_PARALLEL_SAFE, echo),
                 KEEL_TOOL("slow_write", "Appends `text` to the file `path` after ~200 ms.",
                           R"({"type":"object","properties":{"path":{"type":"string"},"text":{"type":"string"}},"required":["path","text"],"additionalProperties":false})",
                           KEEL_FLAG_MUTATING, slow_write))
