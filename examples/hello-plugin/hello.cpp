// hello: one tool, `greet`, that answers with a greeting. Everything else a module needs
// (the ABI entry point, argument parsing, error handling at the boundary) comes from the SDK.
#include <keel/sdk/tool.hpp>

namespace {

keel::sdk::ToolResult greet(keel::sdk::ToolContext& ctx) {
  std::string name = ctx.string_arg("name");
  if (name.empty()) throw keel::sdk::ToolError("'name' must not be empty");
  std::string greeting = ctx.string_arg_or("greeting", "Hello");
  keel::sdk::ToolResult result;
  result.output = greeting + ", " + name + "! (from the hello plugin 1.0.0)";
  return result;
}

}  // namespace

KEEL_TOOL_MODULE("hello", "1.0.0", "Greets people by name",
                 KEEL_TOOL("greet", "Greets a person by name. Optional `greeting` replaces \"Hello\".",
                           R"({"type":"object","properties":{"name":{"type":"string"},"greeting":{"type":"string"}},"required":["name"],"additionalProperties":false})",
                           KEEL_FLAG_PARALLEL_SAFE, greet))
