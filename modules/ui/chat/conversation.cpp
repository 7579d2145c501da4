#include "conversation.hpp"

#include <keel/common/truncate.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace keel::chat {
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

json::object parse(std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  return !ec && v.is_object() ? std::move(v.as_object()) : json::object{};
}

std::string error_message(const json::object& reply, const std::string& fallback) {
  auto m = field(object_field(reply, "error"), "message");
  return m.empty() ? fallback : m;
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// How a command is shown in a question: words as a shell would need them quoted.
std::string shell_words(const json::array& argv) {
  std::string out;
  for (auto& a : argv) {
    if (!a.is_string()) continue;
    std::string w(a.as_string());
    bool plain = !w.empty() && w.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                                   "-_./=:,+@%") == std::string::npos;
    if (!out.empty()) out += ' ';
    w = keel::common::printable_for_terminal(w);  // a control character shows as ^X, never acts
    if (plain) {
      out += w;
      continue;
    }
    out += '\'';
    for (char c : w) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += '\'';
  }
  return out;
}

// Lines closer together than this are pasted, not typed.
constexpr int kPasteGapMs = 25;

const char* kHelp =
    "  /help      this list\n"
    "  /status    session, model, working directory and tokens used\n"
    "  /diff      the changes the last turn made to files\n"
    "  /compact   summarize the conversation so far to free context\n"
    "  /new       start a new session\n"
    "  /quit      leave (also Ctrl-D, or Ctrl-C twice at the prompt)\n"
    "  Ctrl-C while the agent works stops the turn.\n";

}  // namespace

Conversation::Conversation(keel::sdk::Host& host, Terminal& term, json::object args)
    : host_(host), term_(term), args_(std::move(args)), renderer_(term) {}

Conversation::~Conversation() { end_session(); }

bool Conversation::start_session(const std::string& resume, const std::string& fork) {
  end_session();
  auto started = host_.request_wait(
      "kernel.session.start",
      json::serialize(json::object{{"cwd", field(args_, "cwd")}, {"model", field(args_, "model")},
                                   {"provider", field(args_, "provider")}, {"ui", "chat"},
                                   {"resume", resume}, {"fork", fork}}));
  auto info = parse(started.payload);
  if (!started.ok()) {
    term_.write(term_.red("error: " + error_message(info, "could not start a session")) + "\n");
    return false;
  }
  session_id_ = field(info, "session_id");
  session_info_ = info;
  tokens_in_ = tokens_out_ = 0;
  subscription_ = host_.subscribe("event", [this](std::string_view, std::string_view text) {
    auto ev = parse(text);
    if (field(ev, "session_id") != session_id_) return;
    renderer_.event(ev);
    auto type = field(ev, "type");
    if (type == "turn.completed" || type == "turn.failed") {
      auto usage = object_field(ev, "usage");
      std::lock_guard lock(mu_);
      tokens_in_ += int_field(usage, "input_tokens");
      tokens_out_ += int_field(usage, "output_tokens");
      turn_event_seen_ = true;
      changed_.notify_all();
    }
  });
  std::string what = !resume.empty() ? "resumed session " : !fork.empty() ? "forked into session " : "session ";
  term_.write(term_.bold("keel") + term_.dim(" · " + what + session_id_ + " · model " + field(info, "model") +
                                             " · provider " + field(info, "provider")) +
              "\n" + term_.dim("workdir " + field(info, "cwd") + " · /help for commands, Ctrl-D to leave") + "\n");
  if (!resume.empty() || !fork.empty()) {
    auto history = parse(host_.request_wait("kernel.session.history",
                                            json::serialize(json::object{{"session_id", session_id_}}))
                             .payload);
    std::size_t messages = 0;
    if (auto* items = history.if_contains("items"); items && items->is_array())
      for (auto& i : items->as_array())
        if (i.is_object() && field(i.as_object(), "type") == "message") ++messages;
    term_.write(term_.dim(std::to_string(messages) + " earlier messages are in the context") + "\n");
  }
  return true;
}

void Conversation::end_session() {
  if (subscription_) host_.unsubscribe(subscription_);
  subscription_ = 0;
}

int Conversation::run() {
  if (!start_session(field(args_, "resume"), field(args_, "fork"))) return 1;
  if (auto first = trim(field(args_, "prompt")); !first.empty()) {
    term_.write(term_.cyan("› ") + first + "\n");
    run_turn(first);
  }
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (shutting_down_) break;
    }
    auto in = term_.read_line("\n" + term_.cyan("› "), [this] {
      std::lock_guard lock(mu_);
      return idle_interrupts_ > 0 || shutting_down_;
    });
    if (in.kind == Terminal::Input::end_of_input) break;
    if (in.kind == Terminal::Input::abandoned) {
      {
        std::lock_guard lock(mu_);
        if (shutting_down_) break;
      }
      if (idle_interrupted()) break;
      continue;
    }
    std::string message = in.text;
    // A paste of several lines is one message, not one turn per line.
    while (term_.more_input_within(kPasteGapMs)) {
      auto more = term_.read_line("", nullptr);
      if (more.kind != Terminal::Input::line) break;
      message += "\n" + more.text;
    }
    auto line = trim(message);
    if (line.empty()) continue;
    if (line.front() == '/') {
      if (!command(line)) break;
      continue;
    }
    run_turn(line);
  }
  term_.write("\n");
  return 0;
}

// A first Ctrl-C at the prompt only warns; a second within two seconds leaves.
bool Conversation::idle_interrupted() {
  static constexpr auto kWindow = std::chrono::seconds(2);
  auto now = Clock::now();
  int count;
  {
    std::lock_guard lock(mu_);
    count = std::exchange(idle_interrupts_, 0);
  }
  bool quit = count > 1 || (last_idle_interrupt_ != Clock::time_point{} && now - last_idle_interrupt_ < kWindow);
  last_idle_interrupt_ = now;
  if (!quit) term_.write("\n" + term_.dim("(Ctrl-C again to leave, or Ctrl-D)"));
  return quit;
}

void Conversation::run_turn(const std::string& text) {
  {
    std::lock_guard lock(mu_);
    turn_running_ = true;
    stop_requested_ = {};
    turn_replied_ = false;
    turn_event_seen_ = false;
    turn_result_ = {};
  }
  host_.request("kernel.turn.submit", json::serialize(json::object{{"session_id", session_id_}, {"text", text}}), {},
                [this](int status, std::string_view payload) {
                  auto result = parse(payload);
                  std::lock_guard lock(mu_);
                  if (status != KEEL_OK) {
                    result["status"] = "failed";
                    turn_event_seen_ = true;  // a refused submit renders no turn events
                    result["refused"] = error_message(result, "the turn could not run");
                  }
                  turn_result_ = std::move(result);
                  turn_replied_ = true;
                  changed_.notify_all();
                });
  for (;;) {
    std::unique_lock lock(mu_);
    changed_.wait(lock, [&] { return (turn_replied_ && turn_event_seen_) || !approvals_.empty(); });
    if (!approvals_.empty()) {
      auto call = approvals_.front();
      approvals_.pop_front();
      lock.unlock();
      answer(call);
      continue;
    }
    turn_running_ = false;
    auto refused = field(turn_result_, "refused");
    lock.unlock();
    if (!refused.empty()) term_.write(term_.red("error: " + refused) + "\n");
    return;
  }
}

void Conversation::approve(keel::sdk::Call call) {
  std::lock_guard lock(mu_);
  if (!turn_running_) {
    call.ok(R"({"decision":"deny"})");  // nobody is there to ask
    return;
  }
  approvals_.push_back(std::move(call));
  changed_.notify_all();
}

void Conversation::answer(keel::sdk::Call call) {
  auto ask = parse(call.payload());
  json::array argv;
  if (auto* a = ask.if_contains("argv"); a && a->is_array()) argv = a->as_array();
  std::string what = argv.empty() ? "use the tool " + field(ask, "tool") : "run " + shell_words(argv);
  std::string question = "\n" + term_.bold("  ? keel wants to " + what) + "\n";
  if (argv.empty())
    if (auto arguments = field(ask, "arguments"); !arguments.empty())
      question += keel::common::clip_lines_for_display(arguments, 16, "    ");
  if (auto why = field(ask, "reason"); !why.empty()) question += term_.dim("    " + why) + "\n";
  question += "    [y] yes   [a] yes, for this session   [r] yes, always (add a rule)\n"
              "    [n] no, tell the agent   [x] no, and stop the turn\n";
  term_.discard_typeahead();  // what was typed before the question is not its answer
  term_.write(question);
  for (;;) {
    auto in = term_.read_line("  allow? ", [&] { return call.cancelled(); });
    if (in.kind == Terminal::Input::abandoned) {
      term_.write("\n" + term_.dim("  (the question was withdrawn: the turn was stopped)") + "\n");
      return;
    }
    std::string a = in.kind == Terminal::Input::end_of_input ? "x" : trim(in.text);
    const char* decision = a == "y" || a == "yes"      ? "approve"
                           : a == "a"                  ? "approve_session"
                           : a == "r"                  ? "approve_rule"
                           : a == "n" || a == "no"     ? "deny"
                           : a == "x"                  ? "abort"
                                                       : nullptr;
    if (!decision) {
      term_.write(term_.dim("  answer y, a, r, n or x") + "\n");
      continue;
    }
    call.ok(json::serialize(json::object{{"decision", decision}}));
    return;
  }
}

void Conversation::shutdown() {
  std::lock_guard lock(mu_);
  shutting_down_ = true;
  changed_.notify_all();
}

bool Conversation::interrupt() {
  static constexpr auto kStuck = std::chrono::seconds(2);
  std::unique_lock lock(mu_);
  if (!turn_running_) {
    ++idle_interrupts_;
    return true;
  }
  auto now = Clock::now();
  if (stop_requested_ != Clock::time_point{} && now - stop_requested_ > kStuck) return false;
  if (stop_requested_ == Clock::time_point{}) stop_requested_ = now;
  lock.unlock();
  term_.write("\n" + term_.dim("  stopping…") + "\n");
  host_.request("kernel.turn.interrupt", json::serialize(json::object{{"session_id", session_id_}}), {}, {});
  return true;
}

bool Conversation::command(const std::string& line) {
  auto space = line.find(' ');
  std::string name = line.substr(0, space);
  if (name == "/quit" || name == "/exit") return false;
  if (name == "/help") {
    term_.write(kHelp);
  } else if (name == "/status") {
    std::lock_guard lock(mu_);
    term_.write("  session  " + session_id_ + "\n  model    " + field(session_info_, "model") + " (" +
                field(session_info_, "provider") + ")\n  workdir  " + field(session_info_, "cwd") + "\n  tokens   " +
                std::to_string(tokens_in_) + " in, " + std::to_string(tokens_out_) + " out\n");
  } else if (name == "/diff") {
    auto diff = renderer_.last_diff();
    term_.write(diff.empty() ? term_.dim("  no file changes yet") + "\n" : diff + (diff.back() == '\n' ? "" : "\n"));
  } else if (name == "/compact") {
    term_.write(term_.dim("  compacting…") + "\n");
    auto r = host_.request_wait("kernel.turn.compact", json::serialize(json::object{{"session_id", session_id_}}));
    if (!r.ok()) term_.write(term_.red("error: " + error_message(parse(r.payload), "compaction failed")) + "\n");
  } else if (name == "/new") {
    start_session("", "");
  } else {
    term_.write(term_.red("unknown command " + name) + term_.dim(" (/help lists them)") + "\n");
  }
  return true;
}

}  // namespace keel::chat
