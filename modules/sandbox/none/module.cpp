// The `none` sandbox: every command runs exactly as given, with the user's full access.
// Chosen by `sandbox = "none"` (or used for danger-full-access). It refuses nothing; when a
// stricter mode is asked of it, it says once in the log that nothing is enforced.
#include <keel/sandbox/module.hpp>

#include <atomic>

namespace {

class NoSandbox : public keel::sandbox::SandboxModule {
 public:
  NoSandbox(keel::sdk::Host& host, const boost::json::object& config) : SandboxModule(host, config, "none") {}

 protected:
  std::vector<std::string> wrap(const keel::sandbox::PrepareRequest& request, const keel::sandbox::Plan&) override {
    if (!warned_.exchange(true))
      host_.log(KEEL_LOG_WARN, "sandbox none: a " + std::string(keel::sandbox::mode_name(request.policy.mode)) +
                                   " policy was asked for, but sandbox = \"none\" enforces nothing; commands run "
                                   "with full access");
    return request.argv;
  }

 private:
  std::atomic<bool> warned_{false};
};

const keel_capability kCapabilities[] = {
    {KEEL_CAP_SANDBOX, 0, "none", "No sandbox: commands run as given, with full access", nullptr}};

}  // namespace

KEEL_MODULE(NoSandbox, "none", "0.1.0", "No sandbox: commands run as given", kCapabilities)
