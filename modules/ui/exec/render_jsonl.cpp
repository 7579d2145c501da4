#include "renderer.hpp"

#include <boost/json/serialize.hpp>

namespace keel::exec_ui {
namespace {
namespace json = boost::json;

std::int64_t num(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_int64() ? v->as_int64() : v && v->is_uint64() ? static_cast<std::int64_t>(v->as_uint64()) : 0;
}

class JsonlRenderer : public Renderer {
 public:
  explicit JsonlRenderer(std::FILE* out) : out_(out) {}

  void thread_started(const std::string& session_id, const json::object&) override {
    line(json::object{{"type", "thread.started"}, {"thread_id", session_id}});
  }

  void event(const json::object& ev) override {
    auto type = field(ev, "type");
    if (type == "turn.started") {
      line(json::object{{"type", "turn.started"}});
    } else if (type == "item.started" || type == "item.updated" || type == "item.completed") {
      if (auto* item = ev.if_contains("item")) line(json::object{{"type", type}, {"item", *item}});
    } else if (type == "turn.completed") {
      json::object usage;
      if (auto* u = ev.if_contains("usage"); u && u->is_object()) usage = u->as_object();
      line(json::object{{"type", "turn.completed"},
                        {"usage", json::object{{"input_tokens", num(usage, "input_tokens")},
                                               {"cached_input_tokens", num(usage, "cached_input_tokens")},
                                               {"output_tokens", num(usage, "output_tokens")},
                                               {"reasoning_output_tokens", num(usage, "reasoning_output_tokens")}}}});
    } else if (type == "turn.failed") {
      json::object error;
      if (auto* e = ev.if_contains("error"); e && e->is_object()) error = e->as_object();
      line(json::object{{"type", "turn.failed"}, {"error", error}});
    } else if (type == "provider.retry") {
      line(json::object{{"type", "error"},
                        {"message", "Reconnecting... " + std::to_string(num(ev, "attempt")) + "/" +
                                        std::to_string(num(ev, "max_attempts")) + " (" + field(ev, "reason") + ")"}});
    } else if (type == "error") {
      line(json::object{{"type", "error"}, {"message", field(ev, "message")}});
    }
  }

  void fatal(const std::string& message) override { line(json::object{{"type", "error"}, {"message", message}}); }

 private:
  void line(const json::object& o) {
    std::string text = json::serialize(o);
    text.push_back('\n');
    std::fwrite(text.data(), 1, text.size(), out_);
    std::fflush(out_);
  }
  std::FILE* out_;
};

}  // namespace

std::unique_ptr<Renderer> make_jsonl_renderer(std::FILE* out) { return std::make_unique<JsonlRenderer>(out); }

}  // namespace keel::exec_ui
