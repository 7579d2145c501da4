// keel::sandbox::SandboxModule — the `sandbox` capability behind the keel ABI, shared by the
// none, bwrap and landlock modules. A backend says whether it can run here and how to wrap one
// command; this class parses requests and answers the methods:
//
//   prepare  {"argv","cwd","workdir"?,"env"?,"policy"} -> {"argv","env","sandbox","mode"}
//   explain  {"argv","exit_code","output","policy"?,"cwd"?,"workdir"?} -> {"blocked","reason"}
//   status   {} -> {"sandbox","available","reason"?,"details"}
//
// A backend that cannot run here never falls back to running a command unsandboxed: prepare
// fails with KEEL_ERR_UNAVAILABLE and the reason (danger-full-access excepted, which asks for
// no sandbox at all).
#pragma once

#include <keel/sandbox/policy.hpp>
#include <keel/sdk/module.hpp>

#include <boost/json/object.hpp>

#include <optional>
#include <functional>
#include <future>
#include <string>

namespace keel::sandbox {

class SandboxModule : public keel::sdk::Module {
 public:
  SandboxModule(keel::sdk::Host& host, const boost::json::object& config, std::string backend);

  void handle(keel::sdk::Call call) override;
  ~SandboxModule() override;

 protected:
  // Why this backend cannot sandbox anything here (nullopt: it can). Computed once by the
  // derived constructor through set_unavailable(); start() logs it.
  const std::optional<std::string>& unavailable() const { return unavailable_; }
  void set_unavailable(std::string reason);
  // What a background availability check found: why the backend cannot run here (nullopt:
  // it can), and facts for `status`.
  struct CheckOutcome {
    std::optional<std::string> unavailable;
    boost::json::object details;
  };
  // Runs a slow availability check (spawning a probe) off the start-up path; requests wait
  // for it before they read unavailable(). The check may still be running while the derived
  // object is destroyed (a module stopped right after start), so it must own everything it
  // uses: capture by value, never `this`. This class applies its outcome.
  void check_in_background(std::function<CheckOutcome()> check);
  // Extra facts for `status` (binary path, Landlock ABI, ...).
  virtual boost::json::object details() const { return {}; }
  // The wrapped argv for a request whose mode is read-only or workspace-write.
  virtual std::vector<std::string> wrap(const PrepareRequest& request, const Plan& plan) = 0;

  keel::sdk::Host& host_;
  ModuleConfig config_;
  std::string backend_;

 private:
  std::optional<std::string> unavailable_;
  boost::json::object check_details_;
  std::shared_future<void> checked_;
};

}  // namespace keel::sandbox
