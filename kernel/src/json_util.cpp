#include "json_util.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <future>

namespace keel {
namespace json = boost::json;

std::string str_field(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string{};
}

json::object parse_object(std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  return !ec && v.is_object() ? std::move(v.as_object()) : json::object{};
}

std::string error_json(std::string_view message) {
  return json::serialize(json::object{{"error", json::object{{"message", message}}}});
}

std::string error_message(const json::object& reply, std::string_view fallback) {
  if (auto* e = reply.if_contains("error"); e && e->is_object()) {
    auto m = str_field(e->as_object(), "message");
    if (!m.empty()) return m;
  }
  return std::string(fallback);
}

std::pair<int, json::object> call_and_wait(Bus& bus, std::string_view topic, const json::object& payload) {
  std::promise<std::pair<int, std::string>> done;
  auto f = done.get_future();
  bus.request(topic, json::serialize(payload), nullptr,
              [&done](int status, std::string_view body) { done.set_value({status, std::string(body)}); });
  auto [status, body] = f.get();
  return {status, parse_object(body)};
}

}  // namespace keel
