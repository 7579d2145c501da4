// The bwrap sandbox: a command becomes
//
//   bwrap --ro-bind / / --dev /dev --proc /proc
//         --bind <writable root> <writable root> ...      (workspace-write only)
//         --ro-bind <protected> <protected> ...           (.git, .keel, keel's home inside them)
//         [--unshare-net] --unshare-pid --die-with-parent --new-session --cap-drop ALL
//         --chdir <workdir> -- argv...
//
// Writes anywhere else fail with EROFS; with --unshare-net the command has a loopback of its
// own and nothing else (children inherit the namespaces, so a child of a child is no better
// off). --new-session keeps it away from the user's terminal (no TIOCSTI), --die-with-parent
// and the PID namespace take every descendant down with it. --cap-drop ALL matters when keel
// runs as root: bwrap keeps root's capabilities by default, and with CAP_SYS_ADMIN a command
// could simply unmount the read-only binds (or remount / read-write). Not root: a no-op.
//
// Configuration (all optional): "bwrap" (path of the binary; default: found on PATH at
// start), "path" (the PATH to search instead of the environment's), "probe" (default true:
// run `bwrap ... true` once at start so a kernel that forbids the namespaces is reported at
// start-up, not at the first command).
#include <keel/common/process.hpp>
#include <keel/sandbox/module.hpp>

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <vector>

namespace {

namespace json = boost::json;
using keel::sandbox::Plan;
using keel::sandbox::PrepareRequest;

class BwrapSandbox : public keel::sandbox::SandboxModule {
 public:
  BwrapSandbox(keel::sdk::Host& host, const json::object& config) : SandboxModule(host, config, "bwrap") {
    std::string explicit_path = config_.string_or("bwrap", "");
    std::string search = config_.string_or("path", "");
    std::optional<std::string> found = !explicit_path.empty() ? keel::common::find_on_path(explicit_path)
                                       : search.empty()       ? keel::common::find_on_path("bwrap")
                                                              : keel::common::find_on_path("bwrap", search);
    if (!found) {
      set_unavailable(explicit_path.empty()
                          ? "bubblewrap (bwrap) was not found on PATH; install it (Debian/Ubuntu: apt install "
                            "bubblewrap) or choose sandbox = \"landlock\""
                          : "the configured bwrap binary '" + explicit_path + "' is not an executable file");
      return;
    }
    bwrap_ = *found;
    if (config_.bool_or("probe", true)) check_in_background([bwrap = bwrap_] { return probe(bwrap); });
  }

 protected:
  json::object details() const override { return {{"bwrap", bwrap_}, {"probe", "not run"}}; }

  std::vector<std::string> wrap(const PrepareRequest& request, const Plan& plan) override {
    std::vector<std::string> argv{bwrap_, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"};
    bool root_writable = false;
    for (const auto& w : plan.writable) {
      argv.insert(argv.end(), {"--bind", w, w});
      root_writable = root_writable || w == "/";
    }
    // A writable "/" re-binds the host's /dev and /proc; put the private ones back on top.
    if (root_writable) argv.insert(argv.end(), {"--dev", "/dev", "--proc", "/proc"});
    for (const auto& p : plan.protected_paths) argv.insert(argv.end(), {"--ro-bind", p, p});
    if (!plan.network) argv.push_back("--unshare-net");
    argv.insert(argv.end(), {"--unshare-pid", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--chdir",
                             request.workdir, "--"});
    argv.insert(argv.end(), request.argv.begin(), request.argv.end());
    return argv;
  }

 private:
  // One sandboxed `true` with the namespaces a real command gets. Runs on the background
  // check's thread: it uses only its argument.
  static CheckOutcome probe(const std::string& bwrap) {
    keel::common::ProcessOptions opts;
    std::string truth = keel::common::find_on_path("true").value_or("/bin/true");
    opts.argv = {bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-net", "--unshare-pid",
                 "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--", truth};
    opts.timeout = std::chrono::seconds(10);
    auto res = keel::common::run_process(opts);
    CheckOutcome outcome;
    if (res.spawned && res.exit_code == 0) {
      outcome.details["probe"] = "ok";
      return outcome;
    }
    std::string why = res.spawned ? res.output() : res.error;
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    outcome.details["probe"] = why;
    outcome.unavailable = "bubblewrap at " + bwrap + " cannot create its namespaces here (`bwrap --unshare-net " +
                          "--unshare-pid ... true` exited " + std::to_string(res.exit_code) + ": " + why +
                          "). Unprivileged user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone, "
                          "user.max_user_namespaces, or AppArmor's kernel.apparmor_restrict_unprivileged_userns); "
                          "enable them or choose sandbox = \"landlock\"";
    return outcome;
  }

  std::string bwrap_;
};

const keel_capability kCapabilities[] = {
    {KEEL_CAP_SANDBOX, 0, "bwrap", "bubblewrap: read-only root, writable workspace, private /dev, /proc, PIDs and network",
     nullptr}};

}  // namespace

KEEL_MODULE(BwrapSandbox, "bwrap", "0.1.0", "Sandboxes commands with bubblewrap", kCapabilities)
