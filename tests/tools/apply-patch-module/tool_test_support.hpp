// Helpers for driving tool modules through their C ABI in tests: build the request a kernel
// sends for one tool call, parse the reply, and keep a throwaway directory.
#pragma once

#include "abi_test_host.hpp"

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

struct TempDir {
  fs::path path;
  explicit TempDir(const char* prefix = "keel-tools-test") {
    std::string tmpl = (fs::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path = fs::canonical(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  fs::path operator/(const std::string& rel) const { return path / rel; }
  void write(const std::string& rel, const std::string& contents) const {
    auto p = path / rel;
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << contents;
  }
  std::string read(const std::string& rel) const {
    std::ifstream in(path / rel, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + rel);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  bool exists(const std::string& rel) const { return fs::exists(fs::symlink_status(path / rel)); }
};

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
