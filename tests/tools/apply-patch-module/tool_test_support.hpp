// Helpers for driving tool modules through their C ABI in tests: build the request a kernel
// sends for one tool call, parse the reply, and keep a throwaway directory.
#pragma once

#include "abi_test_host.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace keel::test::tools {

namespace json = boost::json;
namespace fs = std::filesystem;

using keel::test::TempDir;

// The request payload the kernel sends for a JSON function tool call.
inline std::string function_request(const std::string& name, const json::value& args, const std::string& cwd,
                                    const std::string& sandbox_mode = "danger-full-access") {
  return json::serialize(json::object{{"call_id", "call_1"},
                                      {"name", name},
                                      {"arguments", json::serialize(args)},
                                      {"cwd", cwd},
                                      {"sandbox", json::object{{"mode", sandbox_mode}}},
                                      {"session_id", "s1"},
                                      {"turn_id", "t1"}});
}

// The request payload for a freeform (custom) tool call.
inline std::string freeform_request(const std::string& name, const std::string& input, const std::string& cwd,
                                    const std::string& sandbox_mode = "danger-full-access") {
  return json::serialize(json::object{{"call_id", "call_1"},
                                      {"name", name},
                                      {"input", input},
                                      {"cwd", cwd},
                                      {"sandbox", json::object{{"mode", sandbox_mode}}},
                                      {"session_id", "s1"},
                                      {"turn_id", "t1"}});
}

struct ToolReply {
  int status = -1;
  json::object payload;
  std::vector<json::object> emits;
  std::string output() const { return std::string(payload.at("output").as_string()); }
  bool success() const { return payload.at("success").as_bool(); }
  bool has_item() const { return payload.contains("item"); }
  const json::object& item() const { return payload.at("item").as_object(); }
};

inline ToolReply parse_reply(const CallResult& r) {
  REQUIRE(r.reply_count == 1);
  REQUIRE(r.emits_after_reply == 0);
  ToolReply t;
  t.status = r.status;
  INFO(r.payload);
  t.payload = json::parse(r.payload).as_object();
  for (const auto& e : r.emits) t.emits.push_back(json::parse(e).as_object());
  return t;
}

inline ToolReply call_tool(AbiTestHost& host, const std::string& tool, const std::string& payload) {
  return parse_reply(host.call(tool, "call", payload));
}

}  // namespace keel::test::tools
