// A tiny tool module for the start-up benchmark (tests/bench/bench_marketplace.cpp). Its
// module and tool names are fixed-length placeholders that the benchmark patches in copies
// of the library ("bm-00000000042", "bm_00000000042"), so 200 distinct, loadable, signed
// modules come from one build.
#include <keel/sdk/tool.hpp>

namespace {
keel::sdk::ToolResult ping(keel::sdk::ToolContext&) {
  keel::sdk::ToolResult r;
  r.output = "pong";
  return r;
}
}  // namespace

KEEL_TOOL_MODULE("bm-00000000000", "1.0.0", "start-up benchmark module",
                 KEEL_TOOL("bm_00000000000", "Answers pong.", R"({"type":"object","properties":{}})",
                           KEEL_FLAG_PARALLEL_SAFE, ping))
