// memory-jsonl: session rollouts (capability kind memory, name "jsonl").
//
//   open   {session_id, cwd, model, provider, keel_version, forked_from?, resumed?, started_at?}
//            → {path, session_id}
//   append {session_id, record: {"type": "item"|"turn_context"|"compaction"|"event", ...}} → {}
//   load   {session_id} | {last: true, cwd?} | {path}
//            → {session, path, items, warnings, turn_context?}
//   list   {limit?, cwd?} → {sessions: [{session_id, path, started_at, cwd, model, provider,
//                                        first_prompt, forked_from}]}   newest first
//   close  {session_id} → {}      (releases the file; open with resumed: true to go on)
//
// Configuration ([modules.memory-jsonl]): keel_home (set by the kernel), fsync = true to
// fsync every record (off by default: a written line already survives kill -9).
#include "rollout.hpp"

#include <keel/sdk/module.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cstdlib>
#include <filesystem>

namespace {

namespace json = boost::json;
using keel::memory::RolloutError;
using keel::memory::RolloutStore;

std::filesystem::path keel_home(const json::object& config) {
  if (auto* h = config.if_contains("keel_home"); h && h->is_string() && !h->as_string().empty())
    return std::string(h->as_string());
  if (const char* env = std::getenv("KEEL_HOME"); env && *env) return env;
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home ? home : ".") / ".keel";
}

bool fsync_enabled(const json::object& config) {
  auto* f = config.if_contains("fsync");
  return f && f->is_bool() && f->as_bool();
}

class JsonlMemory : public keel::sdk::Module {
 public:
  JsonlMemory(keel::sdk::Host&, const json::object& config) : store_(keel_home(config), fsync_enabled(config)) {}

  void handle(keel::sdk::Call call) override {
    if (call.capability() != "jsonl")
      return (void)call.error(KEEL_ERR_NOT_FOUND, "memory-jsonl has no capability '" + std::string(call.capability()) + "'");
    boost::system::error_code ec;
    auto payload = json::parse(call.payload(), ec);
    if (ec || !payload.is_object())
      return (void)call.error(KEEL_ERR_INVALID_ARGUMENT, "the request payload must be a JSON object");
    auto& request = payload.as_object();
    auto method = call.method();
    try {
      json::object reply;
      if (method == "open") reply = store_.open(request);
      else if (method == "append") reply = store_.append(request);
      else if (method == "load") reply = store_.load(request);
      else if (method == "list") reply = store_.list(request);
      else if (method == "close") reply = store_.close(request);
      else
        return (void)call.error(KEEL_ERR_NOT_FOUND, "memory.jsonl has no method '" + std::string(method) +
                                                        "' (open, append, load, list, close)");
      call.ok(json::serialize(reply));
    } catch (const RolloutError& e) {
      call.error(e.status, e.what());
    } catch (const std::filesystem::filesystem_error& e) {
      call.error(KEEL_ERR_UNAVAILABLE, e.what());
    }
  }

 private:
  RolloutStore store_;
};

const keel_capability kCapabilities[] = {
    {KEEL_CAP_MEMORY, 0, "jsonl",
     "Session rollouts: every item, turn context and compaction of a session in a JSONL file under "
     "$KEEL_HOME/sessions, for resume, fork and listing",
     nullptr},
};

}  // namespace

KEEL_MODULE(JsonlMemory, "memory-jsonl", "0.1.0", "Durable session rollouts (JSONL): resume, fork, list", kCapabilities)
