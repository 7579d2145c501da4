#include <keel/providers/json.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace keel::providers::json {

std::string_view str(const bj::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v || !v->is_string()) return {};
  const auto& s = v->get_string();
  return {s.data(), s.size()};
}

const bj::object* obj(const bj::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v ? v->if_object() : nullptr;
}

const bj::array* arr(const bj::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v ? v->if_array() : nullptr;
}

std::optional<std::int64_t> num(const bj::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  if (v->is_double()) return static_cast<std::int64_t>(v->get_double());
  return std::nullopt;
}

std::optional<bool> boolean(const bj::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v || !v->is_bool()) return std::nullopt;
  return v->get_bool();
}

std::optional<bj::value> try_parse(std::string_view text, std::string* error) {
  boost::system::error_code ec;
  bj::value v = bj::parse(text, ec);
  if (ec) {
    if (error) *error = ec.message();
    return std::nullopt;
  }
  return v;
}

std::string dump(const bj::value& v) { return bj::serialize(v); }
std::string dump(const bj::object& o) { return bj::serialize(o); }

std::string snippet(std::string_view text, std::size_t n) {
  if (text.size() <= n) return std::string(text);
  // Do not cut a UTF-8 sequence in half.
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return std::string(text.substr(0, n)) + "...";
}

}  // namespace keel::providers::json
