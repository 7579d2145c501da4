// The landlock sandbox: a command becomes
//
//   keel-landlock-exec --policy '{"writable_roots": [...], "protected_paths": [...],
//                                 "network_access": false, "mount_namespace": true}' -- argv...
//
// The helper (tools/keel-landlock, installed next to the keel binary) restricts itself with
// Landlock and seccomp and then execs the command, so the restrictions hold for it and for
// every descendant. This module only computes the effective policy: writable roots (the
// workspace, writable_roots, /tmp, $TMPDIR, /dev/shm), the protected paths inside them and
// the network switch.
//
// Configuration (all optional): "helper" (path of keel-landlock-exec; default: next to the
// running executable), "mount_namespace" (default true: protect .git & co. with a private
// read-only bind mount where the kernel lets us, which keeps the workspace root itself fully
// writable; false: Landlock rules only, see the helper for what that costs), "probe"
// (default true: run `keel-landlock-exec --check` once at start).
#include <keel/common/process.hpp>
#include <keel/sandbox/module.hpp>

#include <boost/json/serialize.hpp>

#include <linux/landlock.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using keel::sandbox::Mode;
using keel::sandbox::Plan;
using keel::sandbox::PrepareRequest;

int landlock_abi() {
  long v = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return v < 0 ? -errno : static_cast<int>(v);
}

json::array to_array(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

class LandlockSandbox : public keel::sandbox::SandboxModule {
 public:
  LandlockSandbox(keel::sdk::Host& host, const json::object& config) : SandboxModule(host, config, "landlock") {
    mount_namespace_ = config_.bool_or("mount_namespace", true);
    abi_ = landlock_abi();
    if (abi_ < 1) {
      int err = -abi_;
      set_unavailable(err == ENOSYS       ? "this kernel does not support Landlock (Linux 5.13 or later with "
                                            "CONFIG_SECURITY_LANDLOCK is needed); choose sandbox = \"bwrap\""
                      : err == EOPNOTSUPP ? "Landlock is built into this kernel but not enabled; add \"landlock\" to "
                                            "the lsm= kernel boot parameter, or choose sandbox = \"bwrap\""
                                          : std::string("Landlock is unavailable: ") + std::strerror(err));
      return;
    }
    helper_ = config_.string_or("helper", "");
    if (helper_.empty()) {
      std::error_code ec;
      fs::path self = fs::read_symlink("/proc/self/exe", ec);
      helper_ = (self.parent_path() / "keel-landlock-exec").string();
    }
    if (::access(helper_.c_str(), X_OK) != 0) {
      set_unavailable("its helper " + helper_ + " is missing or not executable (" + std::strerror(errno) +
                      "); it is installed next to the keel binary, or set modules.landlock.helper");
      return;
    }
    if (config_.bool_or("probe", true)) check_in_background([helper = helper_] {
      keel::common::ProcessOptions opts;
      opts.argv = {helper, "--check"};
      opts.timeout = std::chrono::seconds(10);
      auto res = keel::common::run_process(opts);
      CheckOutcome outcome;
      if (!res.spawned || res.exit_code != 0) {
        std::string why = res.spawned ? res.output() : res.error;
        while (!why.empty() && why.back() == '\n') why.pop_back();
        outcome.unavailable = "its helper " + helper + " failed its start-up check (exit " +
                              std::to_string(res.exit_code) + "): " + why;
      }
      outcome.details["probe"] = outcome.unavailable ? "failed" : "ok";
      return outcome;
    });
  }

 protected:
  json::object details() const override {
    return {{"landlock_abi", abi_}, {"helper", helper_}, {"mount_namespace", mount_namespace_}};
  }

  std::vector<std::string> wrap(const PrepareRequest& request, const Plan& plan) override {
    std::vector<std::string> writable = plan.writable;
    // bwrap gives a private /dev; here the host's shared memory is the temp dir it stands for.
    if (plan.mode == Mode::WorkspaceWrite && fs::is_directory("/dev/shm")) writable.push_back("/dev/shm");
    json::object policy{{"writable_roots", to_array(writable)},
                        {"protected_paths", to_array(plan.protected_paths)},
                        {"network_access", plan.network},
                        {"mount_namespace", mount_namespace_}};
    std::vector<std::string> argv{helper_, "--policy", json::serialize(policy), "--"};
    argv.insert(argv.end(), request.argv.begin(), request.argv.end());
    return argv;
  }

 private:
  int abi_ = 0;
  std::string helper_;
  bool mount_namespace_ = true;
};

const keel_capability kCapabilities[] = {
    {KEEL_CAP_SANDBOX, 0, "landlock",
     "Landlock + seccomp: read everywhere, write only in the workspace and temp dirs, no network sockets", nullptr}};

}  // namespace

KEEL_MODULE(LandlockSandbox, "landlock", "0.1.0", "Sandboxes commands with Landlock and seccomp", kCapabilities)
