// Tools in a few lines. A tool is a function from a ToolContext to a ToolResult:
//
//   static keel::sdk::ToolResult greet(keel::sdk::ToolContext& ctx) {
//     return {"Hello, " + ctx.string_arg("name")};
//   }
//   KEEL_TOOL_MODULE("hello", "1.0.0", "Greets people",
//     KEEL_TOOL("greet", "Greets a person by name",
//               R"({"type":"object","properties":{"name":{"type":"string"}},"required":["name"]})",
//               KEEL_FLAG_PARALLEL_SAFE, greet))
//
// The request payload (method "call") is
//   {"call_id", "name", "arguments": "<the model's JSON text>" | "input": "<freeform text>",
//    "cwd", "sandbox": {...}, "session_id"}
// and the reply is {"output": "<text for the model>", "success": bool, "item"?: {...}}.
// Arguments that are not valid JSON, or a handler that throws, become an unsuccessful output
// the model can read and correct — never a crash.
#pragma once

#include <keel/sdk/module.hpp>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace keel::sdk {

// Thrown by handlers for bad arguments; the message goes back to the model.
struct ToolError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ToolContext {
  Host& host;
  const Call& call;
  const boost::json::object& config;  // this module's configuration
  boost::json::object request;        // the whole request payload
  boost::json::object args;           // parsed arguments (JSON tools)
  std::string input;                  // freeform input (custom tools)
  std::string cwd;

  std::string string_arg(std::string_view key) const {
    auto* v = args.if_contains(key);
    if (!v || !v->is_string()) throw ToolError("missing required string argument '" + std::string(key) + "'");
    return std::string(v->as_string());
  }
  std::string string_arg_or(std::string_view key, std::string fallback) const {
    auto* v = args.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : fallback;
  }
  std::int64_t int_arg_or(std::string_view key, std::int64_t fallback) const {
    auto* v = args.if_contains(key);
    if (!v) return fallback;
    if (v->is_int64()) return v->as_int64();
    if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
    if (v->is_double()) {
      double d = v->as_double();
      if (!(d >= -9.2e18 && d <= 9.2e18)) throw ToolError("argument '" + std::string(key) + "' is out of range");
      return static_cast<std::int64_t>(d);
    }
    throw ToolError("argument '" + std::string(key) + "' must be a number");
  }
  // Streams a progress event (e.g. output as it arrives) to whoever asked.
  void progress(const boost::json::object& event) const { call.emit(boost::json::serialize(event)); }
};

struct ToolResult {
  std::string output;
  bool success = true;
  boost::json::object item;  // optional structured item for UIs (e.g. command_execution)
  int status = KEEL_OK;      // e.g. KEEL_ERR_CANCELLED when the call was interrupted
};

using ToolFn = ToolResult (*)(ToolContext&);

struct ToolSpec {
  const char* name;
  const char* description;
  const char* schema_json;
  std::uint32_t flags;
  ToolFn fn;
};

namespace detail {

inline std::string tool_reply(const ToolResult& r) {
  boost::json::object out{{"output", sanitize_utf8(r.output)}, {"success", r.success}};
  if (!r.item.empty()) out["item"] = r.item;
  return boost::json::serialize(out);
}

template <const ToolSpec* Specs, std::size_t N>
class ToolModule : public Module {
 public:
  ToolModule(Host& host, const boost::json::object& config) : host_(host), config_(config) {}

  void handle(Call call) override {
    const ToolSpec* spec = nullptr;
    for (std::size_t i = 0; i < N; ++i)
      if (call.capability() == Specs[i].name) spec = &Specs[i];
    if (call.method() != "call") {
      call.error(KEEL_ERR_NOT_FOUND, "tools answer the method 'call', not '" + std::string(call.method()) + "'");
      return;
    }
    if (!spec) {
      call.error(KEEL_ERR_NOT_FOUND, "no tool named '" + std::string(call.capability()) + "' in this module");
      return;
    }
    ToolResult result;
    try {
      auto req = boost::json::parse(call.payload());
      ToolContext ctx{host_, call, config_, req.is_object() ? req.as_object() : boost::json::object{}, {}, {}, {}};
      if (auto* cwd = ctx.request.if_contains("cwd"); cwd && cwd->is_string()) ctx.cwd = cwd->as_string();
      if (auto* in = ctx.request.if_contains("input"); in && in->is_string()) ctx.input = in->as_string();
      if (auto* a = ctx.request.if_contains("arguments")) {
        if (a->is_string()) {
          std::string_view text = a->as_string();
          if (text.find_first_not_of(" \t\r\n") != std::string_view::npos) {
            boost::system::error_code ec;
            auto parsed = boost::json::parse(text, ec);
            if (ec || !parsed.is_object())
              throw ToolError("failed to parse function arguments as a JSON object: " +
                              (ec ? ec.message() : std::string("not an object")));
            ctx.args = std::move(parsed.as_object());
          }
        } else if (a->is_object()) {
          ctx.args = a->as_object();
        }
      }
      result = spec->fn(ctx);
    } catch (const std::exception& e) {
      result = ToolResult{e.what(), false, {}};
    }
    call.reply(result.status, tool_reply(result));
  }

 private:
  Host& host_;
  boost::json::object config_;
};

template <const ToolSpec* Specs, std::size_t N>
const keel_capability* tool_capabilities() {
  static const auto caps = [] {
    std::vector<keel_capability> v;
    for (std::size_t i = 0; i < N; ++i)
      v.push_back({KEEL_CAP_TOOL, Specs[i].flags, Specs[i].name, Specs[i].description, Specs[i].schema_json});
    return v;
  }();
  return caps.data();
}

}  // namespace detail
}  // namespace keel::sdk

#define KEEL_TOOL(NAME, DESCRIPTION, SCHEMA, FLAGS, FN) keel::sdk::ToolSpec{NAME, DESCRIPTION, SCHEMA, FLAGS, FN}

#define KEEL_TOOL_MODULE(NAME, VERSION, DESCRIPTION, ...)                                                   \
  namespace {                                                                                               \
  constexpr keel::sdk::ToolSpec keel_tool_specs[] = {__VA_ARGS__};                                          \
  constexpr std::size_t keel_tool_count = sizeof(keel_tool_specs) / sizeof(keel_tool_specs[0]);              \
  using KeelToolModule = keel::sdk::detail::ToolModule<keel_tool_specs, keel_tool_count>;                   \
  }                                                                                                         \
  extern "C" KEEL_EXPORT const keel_module* keel_module_entry(uint32_t, uint32_t) {                         \
    static const keel_module descriptor = {                                                                 \
        KEEL_ABI_MAJOR, KEEL_ABI_MINOR, sizeof(keel_module), NAME, VERSION, DESCRIPTION,                    \
        keel::sdk::detail::tool_capabilities<keel_tool_specs, keel_tool_count>(), keel_tool_count,          \
        &keel::sdk::detail::start<KeelToolModule>, &keel::sdk::detail::handle<KeelToolModule>,              \
        &keel::sdk::detail::stop<KeelToolModule>};                                                          \
    return &descriptor;                                                                                     \
  }
