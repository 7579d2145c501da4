// How `keel exec` shows a session: human-readable text, or one JSON event per line in the
// schema of Codex's `exec --json` (so CI scripts written for Codex keep working).
#pragma once

#include <boost/json/object.hpp>

#include <cstdio>
#include <memory>
#include <string>

namespace keel::exec_ui {

class Renderer {
 public:
  virtual ~Renderer() = default;
  virtual void thread_started(const std::string& session_id, const boost::json::object& info) = 0;
  // A kernel event (topic "event") of this session.
  virtual void event(const boost::json::object& ev) = 0;
  virtual void fatal(const std::string& message) = 0;
};

std::unique_ptr<Renderer> make_text_renderer(std::FILE* out, std::FILE* err);
std::unique_ptr<Renderer> make_jsonl_renderer(std::FILE* out);

inline std::string field(const boost::json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string{};
}

}  // namespace keel::exec_ui
