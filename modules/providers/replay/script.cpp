#include "script.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <fstream>
#include <sstream>

namespace keel::replay {
namespace json = boost::json;

namespace {

std::string str(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string{};
}

Response from_shorthand(const json::object& o, int line, const std::string& where) {
  Response r;
  r.line = line;
  int n = 0;
  auto next_id = [&](std::string_view prefix) { return std::string(prefix) + std::to_string(line) + "_" + std::to_string(n++); };
  if (auto* e = o.if_contains("error")) {
    if (!e->is_object()) throw ScriptError(where + ": \"error\" must be an object");
    r.error = e->as_object();
  }
  if (auto* x = o.if_contains("expect"); x && x->is_object()) {
    if (auto* c = x->as_object().if_contains("output_contains"); c && c->is_string())
      r.expect_output_contains = std::string(c->as_string());
  }
  if (auto* items = o.if_contains("items")) {
    if (!items->is_array()) throw ScriptError(where + ": \"items\" must be an array");
    r.items = items->as_array();
    return r;
  }
  if (auto reasoning = str(o, "reasoning"); !reasoning.empty())
    r.items.push_back(json::object{{"type", "reasoning"}, {"id", next_id("rs_")},
                                   {"summary", json::array{json::object{{"type", "summary_text"}, {"text", reasoning}}}}});
  if (auto text = str(o, "text"); !text.empty())
    r.items.push_back(json::object{{"type", "message"}, {"role", "assistant"}, {"id", next_id("msg_")},
                                   {"content", json::array{json::object{{"type", "output_text"}, {"text", text}}}}});
  if (auto* calls = o.if_contains("tool_calls")) {
    if (!calls->is_array()) throw ScriptError(where + ": \"tool_calls\" must be an array");
    for (auto& c : calls->as_array()) {
      if (!c.is_object() || str(c.as_object(), "name").empty())
        throw ScriptError(where + ": each tool call needs a \"name\"");
      auto& call = c.as_object();
      std::string args;
      if (auto* a = call.if_contains("arguments")) args = a->is_string() ? std::string(a->as_string()) : json::serialize(*a);
      else args = "{}";
      std::string id = str(call, "call_id");
      r.items.push_back(json::object{{"type", "function_call"}, {"id", next_id("fc_")}, {"name", str(call, "name")},
                                     {"call_id", id.empty() ? next_id("call_") : id}, {"arguments", args}});
    }
  }
  if (auto* calls = o.if_contains("custom_tool_calls")) {
    if (!calls->is_array()) throw ScriptError(where + ": \"custom_tool_calls\" must be an array");
    for (auto& c : calls->as_array()) {
      if (!c.is_object() || str(c.as_object(), "name").empty())
        throw ScriptError(where + ": each custom tool call needs a \"name\"");
      auto& call = c.as_object();
      std::string id = str(call, "call_id");
      r.items.push_back(json::object{{"type", "custom_tool_call"}, {"id", next_id("ctc_")}, {"name", str(call, "name")},
                                     {"call_id", id.empty() ? next_id("call_") : id}, {"input", str(call, "input")}});
    }
  }
  if (r.items.empty() && !r.error) throw ScriptError(where + ": a response needs text, tool calls, items or an error");
  return r;
}

}  // namespace

std::vector<Response> parse_script(std::string_view text, const std::string& source) {
  std::vector<Response> out;
  std::istringstream in{std::string(text)};
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    std::string where = source + ":" + std::to_string(number);
    boost::system::error_code ec;
    auto v = json::parse(line, ec);
    if (ec) throw ScriptError(where + ": not valid JSON: " + ec.message());
    if (!v.is_object()) throw ScriptError(where + ": each line must be a JSON object");
    out.push_back(from_shorthand(v.as_object(), number, where));
  }
  if (out.empty()) throw ScriptError(source + ": the script has no responses");
  return out;
}

std::vector<Response> load_script(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ScriptError("cannot open replay script " + path.string());
  std::stringstream buf;
  buf << in.rdbuf();
  return parse_script(buf.str(), path.string());
}

std::optional<std::string> last_tool_output(const json::array& input) {
  for (auto it = input.rbegin(); it != input.rend(); ++it) {
    if (!it->is_object()) continue;
    auto type = str(it->as_object(), "type");
    if (type == "function_call_output" || type == "custom_tool_call_output") return str(it->as_object(), "output");
  }
  return std::nullopt;
}

}  // namespace keel::replay
