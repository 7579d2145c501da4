// Small Boost.JSON helpers shared by the provider libraries (lookups that never throw).
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace keel::providers::json {

namespace bj = boost::json;

// The string at key, or "" when absent or not a string.
std::string_view str(const bj::object& o, std::string_view key);
const bj::object* obj(const bj::object& o, std::string_view key);
const bj::array* arr(const bj::object& o, std::string_view key);
// An integral number at key (doubles are truncated); nullopt when absent or not a number.
std::optional<std::int64_t> num(const bj::object& o, std::string_view key);
std::optional<bool> boolean(const bj::object& o, std::string_view key);

// Parses text as JSON; nullopt (and the reason in *error) when it is not valid JSON.
std::optional<bj::value> try_parse(std::string_view text, std::string* error = nullptr);

// Serialises v.
std::string dump(const bj::value& v);
std::string dump(const bj::object& o);

// The first n bytes of text, for error messages ("..." appended when cut).
std::string snippet(std::string_view text, std::size_t n = 200);

}  // namespace keel::providers::json
