// The replay provider: answers each model request with the next response of a script,
// streamed as deltas like a real provider. Configure it as
//   model_provider = "replay"
//   [model_providers.replay]
//   script = "demo.jsonl"          # relative to the working directory
// or run `keel exec --replay demo.jsonl ...`.
#include "script.hpp"

#include <keel/sdk/module.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <filesystem>
#include <map>
#include <mutex>

namespace {
namespace json = boost::json;

std::string str(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string{};
}

class ReplayProvider : public keel::sdk::Module {
 public:
  ReplayProvider(keel::sdk::Host&, const json::object& config) : config_(config) {}

  void handle(keel::sdk::Call call) override {
    if (call.method() != "stream") return (void)call.error(KEEL_ERR_NOT_FOUND, "replay has no method '" + std::string(call.method()) + "'");
    auto request = json::parse(call.payload()).as_object();
    json::object provider;
    if (auto* p = request.if_contains("provider"); p && p->is_object()) provider = p->as_object();
    else if (auto* p2 = config_.if_contains("provider"); p2 && p2->is_object()) provider = p2->as_object();
    std::string script_path = str(provider, "script");
    if (script_path.empty())
      return (void)call.error(KEEL_ERR_INVALID_ARGUMENT,
                              "the replay provider needs a script: set model_providers.replay.script or pass --replay FILE");
    std::filesystem::path path(script_path);
    if (path.is_relative()) path = std::filesystem::path(str(config_, "cwd")) / path;

    const keel::replay::Response* response = nullptr;
    std::size_t index = 0, total = 0;
    try {
      std::lock_guard lock(mu_);
      auto& script = scripts_[path.string()];
      if (script.empty()) script = keel::replay::load_script(path);
      index = next_[str(request, "session_id") + "\n" + path.string()]++;
      total = script.size();
      if (index < script.size()) response = &script[index];
    } catch (const std::exception& e) {
      return (void)call.error(KEEL_ERR_INVALID_ARGUMENT, e.what());
    }
    if (!response)
      return (void)call.error(KEEL_ERR_INVALID_ARGUMENT, "replay script " + path.string() + " is exhausted: it has " +
                                                             std::to_string(total) + " responses and the model was asked again");
    json::array input;
    if (auto* in = request.if_contains("input"); in && in->is_array()) input = in->as_array();
    if (response->expect_output_contains) {
      auto out = keel::replay::last_tool_output(input);
      if (!out || out->find(*response->expect_output_contains) == std::string::npos)
        return (void)call.error(KEEL_ERR_INVALID_ARGUMENT,
                                path.filename().string() + ":" + std::to_string(response->line) +
                                    ": expected the last tool output to contain \"" + *response->expect_output_contains +
                                    "\", but it was: " + (out ? *out : std::string("(no tool output)")));
    }
    if (response->error) {
      json::object err = *response->error;
      return (void)call.reply(KEEL_ERR_UNAVAILABLE, json::serialize(json::object{{"error", err}}));
    }
    // Stream text and reasoning in small pieces, as a real model would.
    for (auto& item : response->items) {
      if (call.cancelled()) return (void)call.error(KEEL_ERR_CANCELLED, "cancelled");
      auto& o = item.as_object();
      auto type = str(o, "type");
      auto stream = [&](std::string_view kind, const json::value* parts) {
        if (!parts || !parts->is_array()) return;
        for (auto& part : parts->as_array()) {
          if (!part.is_object()) continue;
          std::string text = str(part.as_object(), "text");
          for (std::size_t i = 0; i < text.size(); i += 24)
            call.emit(json::serialize(json::object{{"type", kind}, {"item_id", str(o, "id")}, {"delta", text.substr(i, 24)}}));
        }
      };
      if (type == "message") stream("output_text.delta", o.if_contains("content"));
      if (type == "reasoning") stream("reasoning.delta", o.if_contains("summary"));
    }
    std::size_t in_bytes = call.payload().size(), out_bytes = json::serialize(response->items).size();
    json::object usage{{"input_tokens", in_bytes / 4}, {"cached_input_tokens", 0}, {"output_tokens", out_bytes / 4},
                       {"reasoning_output_tokens", 0}, {"total_tokens", (in_bytes + out_bytes) / 4}};
    call.ok(json::serialize(json::object{{"items", response->items}, {"usage", usage}}));
  }

 private:
  json::object config_;
  std::mutex mu_;
  std::map<std::string, std::vector<keel::replay::Response>> scripts_;
  std::map<std::string, std::size_t> next_;
};

const keel_capability kCapabilities[] = {
    {KEEL_CAP_PROVIDER, 0, "replay", "Replays scripted model responses (offline)", nullptr},
};

}  // namespace

KEEL_MODULE(ReplayProvider, "replay", "0.1.0", "Replays a JSONL script of model responses", kCapabilities)
