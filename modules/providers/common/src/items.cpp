#include <keel/providers/errors.hpp>
#include <keel/providers/items.hpp>
#include <keel/providers/json.hpp>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

namespace keel::providers {

std::string model_of(const boost::json::object& request, const ProviderConfig& config) {
  if (auto m = json::str(request, "model"); !m.empty()) return std::string(m);
  if (!config.model.empty()) return config.model;
  throw ProviderError("bad_request", "no model given: the request has no \"model\" and the provider config none");
}

std::string content_text(const boost::json::object& item) {
  auto* c = item.if_contains("content");
  if (!c) return {};
  if (c->is_string()) return std::string(c->get_string());
  std::string out;
  if (auto* parts = c->if_array()) {
    for (const auto& p : *parts) {
      if (!p.is_object()) continue;
      const auto& po = p.get_object();
      auto type = json::str(po, "type");
      if (type == "input_text" || type == "output_text" || type == "text" || type == "summary_text" ||
          type == "reasoning_text")
        out += json::str(po, "text");
    }
  }
  return out;
}

std::string output_text(const boost::json::value* output) {
  if (!output || output->is_null()) return {};
  if (output->is_string()) return std::string(output->get_string());
  if (auto* o = output->if_object()) {
    if (auto* c = o->if_contains("content")) return output_text(c);
    return boost::json::serialize(*o);
  }
  if (auto* a = output->if_array()) {
    std::string out;
    for (const auto& p : *a) {
      if (p.is_string()) out += p.get_string();
      else if (auto* po = p.if_object()) out += json::str(*po, "text");
    }
    return out;
  }
  return boost::json::serialize(*output);
}

std::set<std::string> custom_tool_names(const boost::json::object& request) {
  std::set<std::string> names;
  if (auto* tools = json::arr(request, "tools"))
    for (const auto& t : *tools)
      if (auto* to = t.if_object(); to && json::str(*to, "type") == "custom")
        names.emplace(json::str(*to, "name"));
  return names;
}

std::string freeform_description(const boost::json::object& tool) {
  std::string d(json::str(tool, "description"));
  if (auto* fmt = json::obj(tool, "format")) {
    auto def = json::str(*fmt, "definition");
    if (!def.empty()) {
      auto syntax = json::str(*fmt, "syntax");
      d += "\n\nPut the whole input in the \"input\" string; it must follow this ";
      d += syntax.empty() ? std::string("grammar") : std::string(syntax) + " grammar";
      d += ":\n";
      d += def;
    }
  }
  return d;
}

boost::json::object freeform_schema() {
  boost::json::object input;
  input["type"] = "string";
  input["description"] = "The tool's freeform input text.";
  boost::json::object props;
  props["input"] = std::move(input);
  boost::json::object schema;
  schema["type"] = "object";
  schema["properties"] = std::move(props);
  schema["required"] = boost::json::array{"input"};
  return schema;
}

std::string freeform_input(std::string_view arguments) {
  if (auto v = json::try_parse(arguments); v && v->is_object())
    if (auto* in = v->get_object().if_contains("input"); in && in->is_string()) return std::string(in->get_string());
  return std::string(arguments);
}

std::string freeform_arguments(std::string_view input) {
  boost::json::object o;
  o["input"] = input;
  return boost::json::serialize(o);
}

std::string resendable_arguments(std::string_view arguments) {
  if (arguments.empty()) return "{}";
  if (auto v = json::try_parse(arguments); v && v->is_object()) return std::string(arguments);
  boost::json::object o;
  o["invalid_json"] = arguments;
  return boost::json::serialize(o);
}

boost::json::value function_parameters(const boost::json::object& tool) {
  if (auto* p = tool.if_contains("parameters"); p && p->is_object()) return *p;
  boost::json::object schema;
  schema["type"] = "object";
  schema["properties"] = boost::json::object();
  return schema;
}

}  // namespace keel::providers
