// The exec-policy module. Methods of capability "exec-policy":
//   check    {tool, arguments, cwd, approval_mode, sandbox_mode}
//            → {decision: allow|ask|forbid, reason, rule?, sandboxed, argv?, applies}
//   add_rule {argv, justification?} → {rule, file}   ("approve and add a rule")
//   reload   {} → {rules}
// Rules come from $KEEL_HOME/rules/*.rules, then <cwd>/.keel/rules/*.rules. A rules file
// that does not load makes start() fail with its file:line, so a wrong rule is never ignored.
#include <keel/policy/decide.hpp>
#include <keel/policy/rules.hpp>
#include <keel/policy/shell_parse.hpp>
#include <keel/sdk/module.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <filesystem>
#include <mutex>

namespace {
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace keel::policy;

std::string str(const json::object& o, std::string_view key, std::string fallback = {}) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : fallback;
}

std::vector<std::string> string_array(const json::value* v) {
  std::vector<std::string> out;
  if (v && v->is_array())
    for (auto& e : v->as_array())
      if (e.is_string()) out.emplace_back(e.as_string());
  return out;
}

class ExecPolicy : public keel::sdk::Module {
 public:
  ExecPolicy(keel::sdk::Host&, const json::object& config)
      : home_(str(config, "keel_home")), cwd_(str(config, "cwd")) {
    rules_ = load_rules();
  }

  void handle(keel::sdk::Call call) override {
    auto req = json::parse(call.payload()).as_object();
    if (call.method() == "check") return (void)call.ok(json::serialize(check(req)));
    if (call.method() == "add_rule") {
      auto argv = string_array(req.if_contains("argv"));
      if (argv.empty()) return (void)call.error(KEEL_ERR_INVALID_ARGUMENT, "add_rule needs a non-empty argv prefix");
      fs::path file = home_ / "rules" / "default.rules";
      auto text = append_allow_rule(file, argv, str(req, "justification"));
      std::lock_guard lock(mu_);
      rules_ = load_rules();
      return (void)call.ok(json::serialize(json::object{{"rule", text}, {"file", file.string()}}));
    }
    if (call.method() == "reload") {
      std::lock_guard lock(mu_);
      rules_ = load_rules();
      return (void)call.ok(json::serialize(json::object{{"rules", rules_.size()}}));
    }
    call.error(KEEL_ERR_NOT_FOUND, "exec-policy has no method '" + std::string(call.method()) + "'");
  }

 private:
  RuleSet load_rules() const {
    RuleSet set;
    set.add_dir(home_ / "rules");  // throws RulesError naming file:line
    if (!cwd_.empty()) set.add_dir(fs::path(cwd_) / ".keel" / "rules");
    return set;
  }

  // The command a tool call would run, if the tool runs commands.
  static std::optional<std::vector<std::string>> command_of(const std::string& tool, const json::object& args) {
    if (auto* argv = args.if_contains("argv"); tool.empty() && argv) return string_array(argv);  // a bare command
    if (tool == "shell" || tool == "container.exec") {
      auto argv = string_array(args.if_contains("command"));
      if (!argv.empty()) return argv;
      return std::nullopt;
    }
    if (tool == "shell_command" || tool == "exec_command") {
      auto script = str(args, tool == "exec_command" ? "cmd" : "command");
      if (script.empty()) return std::nullopt;
      return std::vector<std::string>{"bash", "-lc", script};
    }
    return std::nullopt;
  }

  json::object check(const json::object& req) {
    std::string tool = str(req, "tool");
    json::object args;
    if (auto* a = req.if_contains("arguments"); a && a->is_string() && !a->as_string().empty()) {
      boost::system::error_code ec;
      auto v = json::parse(a->as_string(), ec);
      if (!ec && v.is_object()) args = std::move(v.as_object());
    }
    auto approval = parse_approval_mode(str(req, "approval_mode", "on-request")).value_or(ApprovalMode::on_request);
    auto sandbox = parse_sandbox_mode(str(req, "sandbox_mode", "workspace-write")).value_or(SandboxMode::workspace_write);
    auto argv = command_of(tool, args);
    if (!argv) {
      // Not a command. Edits are confined to the workspace by the tools themselves; in
      // untrusted mode every change to the workspace is still shown to the user first.
      bool edit = tool == "apply_patch" || tool == "apply_patch_json";
      if (edit && approval == ApprovalMode::untrusted)
        return {{"decision", "ask"}, {"reason", "untrusted mode: file changes need approval"}, {"sandboxed", true}, {"applies", true}};
      return {{"decision", "allow"}, {"reason", "not a command"}, {"sandboxed", true}, {"applies", false}};
    }
    auto* esc = args.if_contains("with_escalated_permissions");
    bool escalated = esc && esc->is_bool() && esc->as_bool();
    std::lock_guard lock(mu_);
    std::optional<RuleSet> other;  // `keel execpolicy check --rules FILE`
    if (auto file = str(req, "rules_file"); !file.empty()) other = RuleSet::from_file(file);
    auto d = decide(*argv, DecideContext{approval, sandbox, escalated, other ? &*other : &rules_});
    json::array argv_json;
    for (auto& a : *argv) argv_json.push_back(json::value(a));
    json::object out{{"decision", to_string(d.decision)}, {"reason", d.reason}, {"sandboxed", d.run_sandboxed},
                     {"argv", argv_json}, {"applies", true}};
    if (d.rule) out["rule"] = d.rule->location() + " " + d.rule->pattern;
    return out;
  }

  fs::path home_;
  std::string cwd_;
  std::mutex mu_;
  RuleSet rules_;
};

const keel_capability kCapabilities[] = {
    {KEEL_CAP_POLICY, 0, "exec-policy", "Exec policy: rules, known-safe commands, approval modes", nullptr},
};

}  // namespace

KEEL_MODULE(ExecPolicy, "exec-policy", "0.1.0", "Exec policy and approvals", kCapabilities)
