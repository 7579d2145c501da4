// Small JSON helpers the kernel's files share: reading fields leniently, and waiting for the
// reply to a bus request.
#pragma once

#include <keel/kernel/bus.hpp>

#include <boost/json/object.hpp>

#include <string>
#include <string_view>
#include <utility>

namespace keel {

// The string at `key`, or "" when absent or not a string.
std::string str_field(const boost::json::object& o, std::string_view key);
// The object `text` holds, or {} when it is not a JSON object.
boost::json::object parse_object(std::string_view text);
// {"error": {"message": ...}} as text.
std::string error_json(std::string_view message);
// error.message of a reply, or `fallback`.
std::string error_message(const boost::json::object& reply, std::string_view fallback = "no reason given");
// Sends a request and waits for its reply: {status, parsed payload}.
std::pair<int, boost::json::object> call_and_wait(Bus& bus, std::string_view topic, const boost::json::object& payload);

}  // namespace keel
