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

// A string field as a person sees it: no escape sequence from a model or a tool reaches the
// terminal.
std::string shown(const json::object& o, std::string_view key) {
  return keel::common::printable_for_terminal(field(o, key));
}

class TextRenderer : public Renderer {
 public:
  TextRenderer(std::FILE* out, std::FILE* err) : out_(out), err_(err), color_(isatty(fileno(err)) != 0),
        out_is_terminal_(isatty(fileno(out)) != 0) {}

  void thread_started(const std::string& session_id, const json::object& info) override {
    print(err_, dim("keel · session " + session_id + " · model " + shown(info, "model") + " · provider " +
                    shown(info, "provider") + "\n" + "workdir " + shown(info, "cwd")) + "\n");
  }

  void event(const json::object& ev) override {
    auto type = field(ev, "type");
    if (type == "item.started") {
      auto item = obj(ev, "item");
      if (field(item, "type") == "command_execution") print(err_, bold("exec ") + shown(item, "command") + "\n");
    } else if (type == "item.completed") {
      auto item = obj(ev, "item");
      auto kind = field(item, "type");
      if (kind == "agent_message") {
        // The answer on stdout is data when redirected (keel exec ... > answer.md): kept as is.
        print(out_, (out_is_terminal_ ? shown(item, "text") : field(item, "text")) + "\n");
      } else if (kind == "reasoning") {
        print(err_, dim("thinking: " + shown(item, "text")) + "\n");
      } else if (kind == "command_execution") {
        auto* code = item.if_contains("exit_code");
        std::string status = code && code->is_int64() ? "exit " + std::to_string(code->as_int64()) : shown(item, "status");
        print(err_, bold("exec ") + shown(item, "command") + dim("  (" + status + ")") + "\n" +
                        clip_lines(shown(item, "aggregated_output")));
      } else if (kind == "file_change") {
        std::string text = bold("patch") + "\n";
        if (auto* ch = item.if_contains("changes"); ch && ch->is_array())
          for (auto& c : ch->as_array())
            if (c.is_object()) text += "  " + shown(c.as_object(), "kind") + " " + shown(c.as_object(), "path") + "\n";
        print(err_, text);
      } else {
        print(err_, bold("tool ") + shown(item, "tool") + dim(" (" + shown(item, "status") + ")") + "\n" +
                        clip_lines(shown(item, "output"), 8));
      }
    } else if (type == "provider.retry") {
      print(err_, dim("reconnecting " + std::to_string(num(ev, "attempt")) + "/" + std::to_string(num(ev, "max_attempts")) +
                      ": " + shown(ev, "reason")) + "\n");
    } else if (type == "turn.completed") {
      auto usage = obj(ev, "usage");
      print(err_, dim("tokens used: " + std::to_string(num(usage, "input_tokens") + num(usage, "output_tokens"))) + "\n");
    } else if (type == "turn.failed" && shown(ev, "status") == "interrupted") {
      print(err_, red("turn interrupted") + "\n");  // Ctrl-C, SIGTERM, an aborted approval: not a failure
    } else if (type == "turn.failed") {
      print(err_, red("turn failed: " + shown(obj(ev, "error"), "message")) + "\n");
    } else if (type == "error") {
      print(err_, red("error: " + shown(ev, "message")) + "\n");
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
  bool out_is_terminal_;
};

}  // namespace

std::unique_ptr<Renderer> make_text_renderer(std::FILE* out, std::FILE* err) {
  return std::make_unique<TextRenderer>(out, err);
}

}  // namespace keel::exec_ui
