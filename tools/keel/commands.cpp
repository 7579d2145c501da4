#include "commands.hpp"

#include "signal_watch.hpp"

#include <keel/kernel/kernel.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <future>
#include <memory>

#include <filesystem>
#include <iostream>
#include <iterator>
#include <mutex>
#include <set>

namespace keel::cli {
namespace fs = std::filesystem;
namespace json = boost::json;

Config load_config(const Options& o) {
  ConfigSources src;
  if (o.cwd) {
    std::error_code ec;
    if (!fs::is_directory(*o.cwd, ec)) throw UsageError("-C " + *o.cwd + ": not a directory");
    src.cwd = fs::canonical(*o.cwd);
  }
  src.profile = o.profile;
  src.overrides = o.overrides;
  auto check = [](const std::optional<std::string>& v, std::initializer_list<const char*> allowed, const char* flag) {
    if (!v) return;
    for (auto* a : allowed)
      if (*v == a) return;
    std::string list;
    for (auto* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
    throw UsageError(std::string(flag) + " " + *v + ": expected one of " + list);
  };
  check(o.sandbox_mode, {"read-only", "workspace-write", "danger-full-access"}, "--sandbox");
  check(o.approval_policy, {"untrusted", "on-request", "on-failure", "never"}, "--ask-for-approval");
  if (o.sandbox_mode) src.overrides.push_back("sandbox_mode=" + json::serialize(json::value(*o.sandbox_mode)));
  if (o.approval_policy) src.overrides.push_back("approval_policy=" + json::serialize(json::value(*o.approval_policy)));
  if (o.model) src.overrides.push_back("model=" + json::serialize(json::value(*o.model)));
  if (o.provider) src.overrides.push_back("model_provider=" + json::serialize(json::value(*o.provider)));
  if (o.replay) {
    std::error_code ec;
    auto path = fs::absolute(*o.replay);
    if (!fs::is_regular_file(path, ec)) throw UsageError("--replay " + *o.replay + ": no such file");
    src.overrides.push_back("model_provider=\"replay\"");
    src.overrides.push_back("model_providers.replay.script=" + json::serialize(json::value(path.string())));
  }
  return Config::load(src);
}

namespace {

std::string read_prompt(const std::vector<std::string>& words) {
  std::string prompt;
  for (auto& p : words) prompt += (prompt.empty() ? "" : " ") + p;
  if (prompt.empty() || prompt == "-") {
    prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    while (!prompt.empty() && (prompt.back() == '\n' || prompt.back() == '\r')) prompt.pop_back();
  }
  return prompt;
}

// What keel does on Ctrl-C, SIGTERM and SIGHUP while a front end runs (signal_watch.hpp).
// Ctrl-C goes first to the front end (`ui.<name>.interrupt`): an interactive one that answers
// {"handled": true} stops its own turn and carries on. Otherwise keel shuts down: every turn
// of the kernel is interrupted through the kernel's interrupt API, as a user would: the
// provider request and the running tool calls are cancelled (the shell tools kill their
// commands' process groups), the turn ends as "interrupted", the rollout records it, the front
// end shows it and returns (`ui.<name>.shutdown` tells an interactive one to leave its
// prompt). A turn that starts after that (the signal came while the kernel booted) is
// interrupted at once.
class SignalHooks {
 public:
  SignalHooks(Kernel& kernel, SignalWatch& signals, const std::string& ui)
      : kernel_(kernel), signals_(signals), ui_server_(ModuleHost::server_name(KEEL_CAP_UI, ui)) {
    sub_ = kernel_.subscribe("event", [this](const Event& e) { on_event(e); });
    signals_.set_hooks({[this] { return offer_interrupt(); }, [this](int) { interrupt_all(); }});
  }
  ~SignalHooks() {
    signals_.clear_hooks();  // waits for running hooks
    kernel_.unsubscribe(sub_);
  }
  SignalHooks(const SignalHooks&) = delete;
  SignalHooks& operator=(const SignalHooks&) = delete;

 private:
  bool offer_interrupt() {
    if (!kernel_.bus().has_server(ui_server_)) return false;
    auto answer = std::make_shared<std::promise<bool>>();
    auto handled = answer->get_future();
    kernel_.bus().request(ui_server_ + ".interrupt", "{}", nullptr, [answer](int status, std::string_view body) {
      bool h = false;
      if (status == KEEL_OK) {
        boost::system::error_code ec;
        auto v = json::parse(body, ec);
        if (!ec && v.is_object())
          if (auto* f = v.as_object().if_contains("handled"); f && f->is_bool()) h = f->as_bool();
      }
      try {
        answer->set_value(h);
      } catch (const std::future_error&) {  // a second reply
      }
    });
    return handled.wait_for(SignalWatch::kOfferLimit) == std::future_status::ready && handled.get();
  }
  void on_event(const Event& e) {
    if (e.type() != "turn.started") return;
    std::string id(e.session_id());
    bool interrupt_now;
    {
      std::lock_guard lock(mu_);
      sessions_.insert(id);
      interrupt_now = shutting_down_;
    }
    if (interrupt_now) kernel_.interrupt(id);
  }
  void interrupt_all() {
    std::vector<std::string> ids;
    {
      std::lock_guard lock(mu_);
      shutting_down_ = true;
      ids.assign(sessions_.begin(), sessions_.end());
    }
    for (auto& id : ids) kernel_.interrupt(id);  // a session whose turn has ended ignores it
    // An interactive front end would wait at its prompt: tell it to return (exec has no such
    // method and returns anyway once its turn is interrupted).
    if (kernel_.bus().has_server(ui_server_)) kernel_.bus().request(ui_server_ + ".shutdown", "{}", nullptr, nullptr);
  }

  Kernel& kernel_;
  SignalWatch& signals_;
  const std::string ui_server_;
  std::uint64_t sub_ = 0;
  std::mutex mu_;  // guards sessions_ and shutting_down_
  std::set<std::string> sessions_;
  bool shutting_down_ = false;
};

// Runs a front end on a new, resumed or forked session: `exec` (or --ui) for one prompt, or the
// interactive one (`chat`, or --ui / interactive_ui) for a conversation.
int run_session(const Options& o, bool interactive, const std::vector<std::string>& words, const std::string& resume,
                const std::string& fork) {
  std::string prompt;
  if (interactive) {
    for (auto& w : words) prompt += (prompt.empty() ? "" : " ") + w;  // optional; stdin is the conversation
  } else {
    prompt = read_prompt(words);
    if (prompt.empty()) throw UsageError("no prompt (give it as an argument or on stdin)");
  }
  Config config = load_config(o);
  // keel exec is non-interactive: unless configured otherwise, it never stops to ask. An
  // interactive session keeps the configured policy (on-request by default): a person is there.
  if (!interactive && !config.find("approval_policy")) config.root()["approval_policy"] = "never";
  // Before the kernel starts any thread: every thread inherits the blocked signals.
  SignalWatch signals;
  int code = [&] {
    Kernel kernel(std::move(config));
    json::object args{{"prompt", prompt}, {"json", o.json}, {"cwd", kernel.config().cwd().string()}};
    if (o.cwd) args["cwd"] = kernel.config().cwd().string();
    if (!resume.empty()) {
      args["resume"] = resume;
      if (!o.cwd) args.erase("cwd");  // a resumed session keeps its own working directory
    }
    if (!fork.empty()) args["fork"] = fork;
    if (o.output_last_message) args["output_last_message"] = fs::absolute(*o.output_last_message).string();
    const std::string ui = o.ui.value_or(interactive ? kernel.config().string_or("interactive_ui", "chat")
                                                     : kernel.config().string_or("ui", "exec"));
    SignalHooks hooks(kernel, signals, ui);
    return kernel.run_ui(ui, std::move(args));
  }();  // the kernel shuts down here: modules stop, the rollout is complete
  // Shut down by a signal: the conventional status (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP).
  if (int signo = signals.received()) return 128 + signo;
  return code;
}

json::object request_wait(Kernel& kernel, const std::string& topic, const json::object& payload, int& status) {
  std::promise<std::pair<int, std::string>> done;
  auto f = done.get_future();
  kernel.bus().request(topic, json::serialize(payload), nullptr,
                       [&done](int st, std::string_view body) { done.set_value({st, std::string(body)}); });
  auto [st, body] = f.get();
  status = st;
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  return !ec && v.is_object() ? v.as_object() : json::object{};
}

std::string error_of(const json::object& reply) {
  auto* e = reply.if_contains("error");
  if (e && e->is_object())
    if (auto* m = e->as_object().if_contains("message"); m && m->is_string()) return std::string(m->as_string());
  return "no reason given";
}

// The session a resume continues: "last" with --last, else the first word (taken off `words`).
std::string take_resume_target(const Options& o, std::vector<std::string>& words, const std::string& command) {
  if (o.last) return "last";
  if (words.empty()) throw UsageError(command + ": give a session id or --last (see keel sessions)");
  std::string id = words.front();
  words.erase(words.begin());
  return id;
}

}  // namespace

int run_exec(const Options& o) {
  if (!o.positional.empty() && o.positional[0] == "resume") {
    std::vector<std::string> words(o.positional.begin() + 1, o.positional.end());
    std::string id = take_resume_target(o, words, "keel exec resume");
    return run_session(o, false, words, id, "");
  }
  return run_session(o, false, o.positional, "", "");
}

int run_chat(const Options& o) { return run_session(o, true, o.positional, "", ""); }

int run_resume(const Options& o) {
  std::vector<std::string> words = o.positional;
  std::string id = take_resume_target(o, words, "keel resume");
  return run_session(o, true, words, id, "");
}

int run_fork(const Options& o) {
  if (o.positional.empty()) throw UsageError("keel fork: give the id of the session to fork (see keel sessions)");
  std::vector<std::string> words(o.positional.begin() + 1, o.positional.end());
  return run_session(o, false, words, "", o.positional.front());
}

int run_sessions(const Options& o) {
  Kernel kernel(load_config(o));
  auto memory = ModuleHost::server_name(KEEL_CAP_MEMORY, kernel.config().string_or("memory", "jsonl"));
  int status = 0;
  auto reply = request_wait(kernel, memory + ".list", json::object{{"limit", 50}}, status);
  if (status != KEEL_OK) throw std::runtime_error("cannot list sessions: " + error_of(reply));
  auto* list = reply.if_contains("sessions");
  if (o.json) {
    std::cout << json::serialize(list ? *list : json::array{}) << "\n";
    return 0;
  }
  if (!list || !list->is_array() || list->as_array().empty()) std::cout << "no recorded sessions\n";
  auto field = [](const json::object& s, std::string_view k) {
    auto* v = s.if_contains(k);
    return v && v->is_string() ? std::string(v->as_string()) : std::string{};
  };
  for (auto& v : list && list->is_array() ? list->as_array() : json::array{}) {
    if (!v.is_object()) continue;
    auto& s = v.as_object();
    std::string prompt = field(s, "first_prompt");
    if (prompt.size() > 60) prompt = prompt.substr(0, 57) + "...";
    std::cout << field(s, "session_id") << "  " << field(s, "started_at") << "  " << field(s, "cwd") << "\n    "
              << prompt << "\n";
  }
  return 0;
}

int run_execpolicy(const Options& o) {
  if (o.positional.empty() || o.positional[0] != "check" || o.positional.size() < 2)
    throw UsageError("usage: keel execpolicy check [--rules FILE] -- CMD...");
  Kernel kernel(load_config(o));
  auto name = kernel.config().string_or("policy", "exec-policy");
  json::array argv;
  for (std::size_t i = 1; i < o.positional.size(); ++i) argv.push_back(json::value(o.positional[i]));
  json::object q{{"tool", ""}, {"arguments", json::serialize(json::object{{"argv", argv}})},
                 {"approval_mode", kernel.config().string_or("approval_policy", "on-request")},
                 {"sandbox_mode", kernel.config().string_or("sandbox_mode", "workspace-write")},
                 {"cwd", kernel.config().cwd().string()}};
  if (o.rules_file) q["rules_file"] = fs::absolute(*o.rules_file).string();
  int status = 0;
  auto reply = request_wait(kernel, ModuleHost::server_name(KEEL_CAP_POLICY, name) + ".check", q, status);
  if (status != KEEL_OK) throw std::runtime_error(error_of(reply));
  if (o.json) {
    std::cout << json::serialize(reply) << "\n";
    return 0;
  }
  auto field = [&](std::string_view k) {
    auto* v = reply.if_contains(k);
    return v && v->is_string() ? std::string(v->as_string()) : std::string{};
  };
  std::cout << field("decision") << "\n" << "reason: " << field("reason") << "\n";
  if (!field("rule").empty()) std::cout << "rule: " << field("rule") << "\n";
  return 0;
}

int run_modules(const Options& o) {
  Kernel kernel(load_config(o));
  kernel.modules().load_deferred();  // list every module as it really is, used or not
  auto mods = kernel.modules().modules();
  if (o.json) {
    json::array out;
    for (auto& m : mods) {
      const char* state = m.state == ModuleState::loaded ? "loaded" : m.state == ModuleState::refused ? "refused" : "failed";
      out.push_back(json::object{{"name", m.name}, {"version", m.version}, {"kind", m.kind}, {"state", state},
                                 {"reason", m.reason}, {"signer", m.signer}, {"dir", m.dir.string()}});
    }
    std::cout << json::serialize(out) << "\n";
    return 0;
  }
  std::cout << "KEEL_HOME " << kernel.config().keel_home().string() << "\n";
  if (mods.empty()) std::cout << "no modules installed\n";
  for (auto& m : mods) {
    std::cout << (m.state == ModuleState::loaded ? "loaded   " : m.state == ModuleState::refused ? "REFUSED  " : "FAILED   ")
              << m.name << " " << m.version << " (" << m.kind << ")";
    if (m.state == ModuleState::loaded) {
      std::cout << " signed by " << m.signer << ":";
      for (auto& c : m.capabilities) std::cout << " " << ModuleHost::kind_name(c.kind) << "." << c.name;
    } else {
      std::cout << ": " << m.reason;
    }
    std::cout << "\n";
  }
  return 0;
}

}  // namespace keel::cli
