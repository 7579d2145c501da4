#include "render.hpp"

#include <keel/common/truncate.hpp>

#include <vector>

namespace keel::chat {
namespace json = boost::json;

std::string field(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  // Everything shown comes from models, tools and modules: no escape sequence gets through.
  return v && v->is_string() ? keel::common::printable_for_terminal(v->as_string()) : std::string{};
}

json::object object_field(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_object() ? v->as_object() : json::object{};
}

std::int64_t int_field(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_int64() ? v->as_int64() : 0;
}

namespace {

// Command output under its header: the head and tail of it, indented.
std::string clip_lines(const std::string& text, std::size_t max_lines) {
  return keel::common::clip_lines_for_display(text, max_lines, "    ");
}

}  // namespace

std::string Renderer::last_diff() const {
  std::lock_guard lock(mu_);
  return last_diff_;
}

void Renderer::end_stream() {
  if (line_open_) term_.write("\n");
  line_open_ = false;
  streaming_.clear();
}

void Renderer::event(const json::object& ev) {
  std::lock_guard lock(mu_);
  auto type = field(ev, "type");
  if (type == "item.delta") {
    if (field(ev, "kind") != "agent_message") return;  // reasoning is shown whole, dimmed
    auto id = field(ev, "item_id");
    if (streaming_ != id) {
      end_stream();
      streaming_ = id;
      streamed_.insert(id);
      term_.write("\n");
    }
    auto delta = field(ev, "delta");
    if (delta.empty()) return;
    term_.write(delta);
    line_open_ = delta.back() != '\n';
  } else if (type == "item.updated") {
    auto item = object_field(ev, "item");
    // A stream cut off and retried: what was shown of it is void.
    if (field(item, "type") == "agent_message" && field(item, "text").empty() && streamed_.count(field(item, "id"))) {
      end_stream();
      streamed_.erase(field(item, "id"));
      term_.write(term_.dim("  (the answer was cut off; it is being sent again)") + "\n");
    }
  } else if (type == "item.started") {
    item_started(object_field(ev, "item"));
  } else if (type == "item.completed") {
    item_completed(object_field(ev, "item"));
  } else if (type == "plan.updated") {
    end_stream();
    std::string text = term_.bold("plan") + "\n";
    if (auto* plan = ev.if_contains("plan"); plan && plan->is_array())
      for (auto& step : plan->as_array()) {
        if (!step.is_object()) continue;
        auto status = field(step.as_object(), "status");
        std::string box = status == "completed" ? "[x]" : status == "in_progress" ? "[~]" : "[ ]";
        text += "  " + box + " " + field(step.as_object(), "step") + "\n";
      }
    term_.write(text);
  } else if (type == "turn.diff") {
    last_diff_ = field(ev, "diff");
  } else if (type == "provider.retry") {
    end_stream();
    term_.write(term_.dim("  reconnecting " + std::to_string(int_field(ev, "attempt")) + "/" +
                          std::to_string(int_field(ev, "max_attempts")) + ": " + field(ev, "reason")) + "\n");
  } else if (type == "context.compacted") {
    end_stream();
    term_.write(term_.dim("  context compacted: " + std::to_string(int_field(ev, "items_before")) + " items → " +
                          std::to_string(int_field(ev, "items_after"))) + "\n");
  } else if (type == "turn.completed") {
    end_stream();
    auto usage = object_field(ev, "usage");
    term_.write(term_.dim("  tokens: " + std::to_string(int_field(usage, "input_tokens")) + " in, " +
                          std::to_string(int_field(usage, "output_tokens")) + " out") + "\n");
  } else if (type == "turn.failed") {
    end_stream();
    if (field(ev, "status") == "interrupted") term_.write(term_.dim("  ■ interrupted") + "\n");
    else term_.write(term_.red("  turn failed: " + field(object_field(ev, "error"), "message")) + "\n");
  } else if (type == "error") {
    end_stream();
    term_.write(term_.red("  error: " + field(ev, "message")) + "\n");
  }
}

void Renderer::item_started(const json::object& item) {
  if (field(item, "type") != "command_execution") return;
  end_stream();
  term_.write(term_.cyan("  ⏵ ") + term_.bold(field(item, "command")) + "\n");
}

void Renderer::item_completed(const json::object& item) {
  auto kind = field(item, "type");
  if (kind == "agent_message") {
    auto id = field(item, "id");
    if (streamed_.erase(id)) {
      end_stream();
      return;
    }
    end_stream();
    term_.write("\n" + field(item, "text") + "\n");
  } else if (kind == "reasoning") {
    end_stream();
    term_.write(term_.dim("  thinking: " + field(item, "text")) + "\n");
  } else if (kind == "command_execution") {
    end_stream();
    auto* code = item.if_contains("exit_code");
    bool ok = code && code->is_int64() && code->as_int64() == 0;
    std::string status = code && code->is_int64() ? "exit " + std::to_string(code->as_int64()) : field(item, "status");
    term_.write("  " + (ok ? term_.green("✓") : term_.red("✗")) + " " + field(item, "command") + term_.dim("  (" + status + ")") +
                "\n" + clip_lines(field(item, "aggregated_output"), 12));
  } else if (kind == "file_change") {
    end_stream();
    std::string text = "  " + term_.bold("patch") + (field(item, "status") == "failed" ? term_.red(" failed") : "") + "\n";
    if (auto* ch = item.if_contains("changes"); ch && ch->is_array())
      for (auto& c : ch->as_array())
        if (c.is_object()) text += "    " + field(c.as_object(), "kind") + " " + field(c.as_object(), "path") + "\n";
    term_.write(text);
  } else if (kind == "todo_list") {
    // Shown from plan.updated.
  } else if (kind == "error") {
    end_stream();
    term_.write(term_.red("  error: " + field(item, "message")) + "\n");
  } else {
    end_stream();
    auto tool = field(item, "tool");
    if (tool.empty()) tool = kind;
    term_.write("  " + term_.bold("tool ") + tool + term_.dim(" (" + field(item, "status") + ")") + "\n" +
                clip_lines(field(item, "output"), 6));
  }
}

}  // namespace keel::chat
