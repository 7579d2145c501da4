#include "renderer.hpp"

#include <keel/common/truncate.hpp>

#include <boost/json/serialize.hpp>

#include <unistd.h>

namespace keel::exec_ui {
namespace {
namespace json = boost::json;

// Keeps what a person reads short: the head and tail of long command output, indented.
std::string clip_lines(const std::string& text, std::size_t max_lines = 20) {
  return keel::common::clip_lines_for_display(text, max_lines, "  ");
}

class TextRenderer : public Renderer {
 public:
  TextRenderer(std::FILE* out, std::FILE* err) : out_(out), err_(err), color_(isatty(fileno(err)) != 0) {}

  void thread_started(const std::string& session_id, const json::object& info) override {
    print(err_, dim("keel · session " + session_id + " · model " + field(info, "model") + " · provider " +
                    field(info, "provider") + "\n" + "workdir " + field(info, "cwd")) + "\n");
  }

  void event(const json::object& ev) override {
    auto type = field(ev, "type");
    if (type == "item.started") {
      auto item = obj(ev, "item");
      if (field(item, "type") == "command_execution") print(err_, bold("exec ") + field(item, "command") + "\n");
    } else if (type == "item.completed") {
      auto item = obj(ev, "item");
      auto kind = field(item, "type");
      if (kind == "agent_message") {
        print(out_, field(item, "text") + "\n");
      } else if (kind == "reasoning") {
        print(err_, dim("thinking: " + field(item, "text")) + "\n");
      } else if (kind == "command_execution") {
        auto* code = item.if_contains("exit_code");
        std::string status = code && code->is_int64() ? "exit " + std::to_string(code->as_int64()) : field(item, "status");
        print(err_, bold("exec ") + field(item, "command") + dim("  (" + status + ")") + "\n" +
                        clip_lines(field(item, "aggregated_output")));
      } else if (kind == "file_change") {
        std::string text = bold("patch") + "\n";
        if (auto* ch = item.if_contains("changes"); ch && ch->is_array())
          for (auto& c : ch->as_array())
            if (c.is_object()) text += "  " + field(c.as_object(), "kind") + " " + field(c.as_object(), "path") + "\n";
        print(err_, text);
      } else {
        print(err_, bold("tool ") + field(item, "tool") + dim(" (" + field(item, "status") + ")") + "\n" +
                        clip_lines(field(item, "output"), 8));
      }
    } else if (type == "provider.retry") {
      print(err_, dim("reconnecting " + std::to_string(num(ev, "attempt")) + "/" + std::to_string(num(ev, "max_attempts")) +
                      ": " + field(ev, "reason")) + "\n");
    } else if (type == "turn.completed") {
      auto usage = obj(ev, "usage");
      print(err_, dim("tokens used: " + std::to_string(num(usage, "input_tokens") + num(usage, "output_tokens"))) + "\n");
    } else if (type == "turn.failed" && field(ev, "status") == "interrupted") {
      print(err_, red("turn interrupted") + "\n");  // Ctrl-C, SIGTERM, an aborted approval: not a failure
    } else if (type == "turn.failed") {
      print(err_, red("turn failed: " + field(obj(ev, "error"), "message")) + "\n");
    } else if (type == "error") {
      print(err_, red("error: " + field(ev, "message")) + "\n");
    }
  }

  void fatal(const std::string& message) override { print(err_, red("error: " + message) + "\n"); }

 private:
  static json::object obj(const json::object& o, std::string_view key) {
    auto* v = o.if_contains(key);
    return v && v->is_object() ? v->as_object() : json::object{};
  }
  static std::int64_t num(const json::object& o, std::string_view key) {
    auto* v = o.if_contains(key);
    return v && v->is_int64() ? v->as_int64() : 0;
  }
  std::string bold(const std::string& s) const { return color_ ? "\x1b[1m" + s + "\x1b[0m" : s; }
  std::string dim(const std::string& s) const { return color_ ? "\x1b[2m" + s + "\x1b[0m" : s; }
  std::string red(const std::string& s) const { return color_ ? "\x1b[31m" + s + "\x1b[0m" : s; }
  static void print(std::FILE* f, const std::string& s) {
    std::fwrite(s.data(), 1, s.size(), f);
    std::fflush(f);
  }
  std::FILE* out_;
  std::FILE* err_;
  bool color_;
};

}  // namespace

std::unique_ptr<Renderer> make_text_renderer(std::FILE* out, std::FILE* err) {
  return std::make_unique<TextRenderer>(out, err);
}

}  // namespace keel::exec_ui
