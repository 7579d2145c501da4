// The `sandbox` capability's request handling, shared by every backend. See
// keel/sandbox/module.hpp.
#include <keel/sandbox/module.hpp>

#include <boost/json/serialize.hpp>

namespace keel::sandbox {

namespace json = boost::json;

SandboxModule::SandboxModule(keel::sdk::Host& host, const json::object& config, std::string backend)
    : host_(host), config_(parse_config(config)), backend_(std::move(backend)) {}

void SandboxModule::set_unavailable(std::string reason) {
  host_.log(KEEL_LOG_ERROR, "sandbox " + backend_ + ": " + reason);
  unavailable_ = std::move(reason);
}

void SandboxModule::check_in_background(std::function<CheckOutcome()> check) {
  // Touches only this base part, which outlives the wait in ~SandboxModule.
  checked_ = std::async(std::launch::async, [this, check = std::move(check)] {
               CheckOutcome outcome = check();
               check_details_ = std::move(outcome.details);
               if (outcome.unavailable) set_unavailable(std::move(*outcome.unavailable));
             }).share();
}

SandboxModule::~SandboxModule() {
  if (checked_.valid()) checked_.wait();
}

void SandboxModule::handle(keel::sdk::Call call) {
  if (checked_.valid()) checked_.wait();
  try {
    if (call.method() == "prepare") {
      PrepareRequest request = parse_prepare(call.payload(), config_);
      if (request.policy.mode == Mode::FullAccess) {
        call.ok(prepare_reply(request.argv, request.env, backend_, request.policy.mode));
        return;
      }
      if (unavailable_) {
        call.error(KEEL_ERR_UNAVAILABLE, "the " + backend_ + " sandbox cannot run here: " + *unavailable_ +
                                             ". The command was not run (keel never runs a command unsandboxed "
                                             "when a sandbox was asked for)");
        return;
      }
      Plan plan = make_plan(request, config_);
      call.ok(prepare_reply(wrap(request, plan), request.env, backend_, request.policy.mode));
    } else if (call.method() == "explain") {
      Explanation e = explain(backend_, call.payload(), config_);
      call.ok(json::serialize(json::object{{"blocked", e.blocked}, {"reason", e.reason}}));
    } else if (call.method() == "status") {
      json::object facts = details();
      for (const auto& [key, value] : check_details_) facts[key] = value;
      json::object out{{"sandbox", backend_}, {"available", !unavailable_}, {"details", std::move(facts)}};
      if (unavailable_) out["reason"] = *unavailable_;
      call.ok(json::serialize(out));
    } else {
      call.error(KEEL_ERR_NOT_FOUND, "the " + backend_ + " sandbox answers prepare, explain and status, not '" +
                                         std::string(call.method()) + "'");
    }
  } catch (const SandboxError& e) {
    call.error(e.status, e.what());
  } catch (const std::exception& e) {
    call.error(KEEL_ERR_INVALID_ARGUMENT, std::string("sandbox ") + backend_ + ": " + e.what());
  }
}

}  // namespace keel::sandbox
