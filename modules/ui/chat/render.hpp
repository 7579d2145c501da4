// How the chat front end shows a session's events: the answer streamed as it is written,
// commands and patches as one-line headers with the output clipped, plans as checklists.
#pragma once

#include "terminal.hpp"

#include <boost/json/object.hpp>

#include <mutex>
#include <set>
#include <string>

namespace keel::chat {

// A string field, made safe to print (keel::common::printable_for_terminal); "" if absent.
std::string field(const boost::json::object& o, std::string_view key);
boost::json::object object_field(const boost::json::object& o, std::string_view key);
std::int64_t int_field(const boost::json::object& o, std::string_view key);

class Renderer {
 public:
  explicit Renderer(Terminal& term) : term_(term) {}
  // A kernel event of the session on screen (any thread; events arrive in order).
  void event(const boost::json::object& ev);
  // The diff of the last turn that changed files ("" if none yet).
  std::string last_diff() const;

 private:
  void item_started(const boost::json::object& item);
  void item_completed(const boost::json::object& item);
  void end_stream();

  Terminal& term_;
  mutable std::mutex mu_;
  std::set<std::string> streamed_;  // agent_message items whose text was shown as deltas
  std::string streaming_;           // the item whose deltas are being printed now
  bool line_open_ = false;          // the streamed text has not ended with a newline yet
  std::string last_diff_;
};

}  // namespace keel::chat
