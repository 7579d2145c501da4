#include <keel/providers/items.hpp>
#include <keel/providers/json.hpp>
#include <keel/providers/models.hpp>
#include <keel/providers/openai_responses.hpp>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <map>

namespace keel::providers::openai_responses {

namespace bj = boost::json;

ProviderDefaults defaults() { return {"OpenAI", "https://api.openai.com/v1", "responses"}; }

bj::object build_request(const bj::object& request, const ProviderConfig& config) {
  bj::object body;
  body["model"] = model_of(request, config);
  if (auto ins = json::str(request, "instructions"); !ins.empty()) body["instructions"] = ins;

  bj::array input;
  if (auto* items = json::arr(request, "input")) {
    for (const auto& v : *items) {
      if (!v.is_object()) continue;
      bj::object item = v.get_object();
      if (json::str(item, "type") == "reasoning") {
        // With store:false a reasoning item can only be replayed with its encrypted content.
        if (json::str(item, "encrypted_content").empty()) continue;
      } else {
        item.erase("id");
      }
      input.push_back(std::move(item));
    }
  }
  body["input"] = std::move(input);

  bj::array tools;
  if (auto* ts = json::arr(request, "tools")) {
    for (const auto& v : *ts) {
      if (!v.is_object()) continue;
      bj::object tool = v.get_object();
      auto type = json::str(tool, "type");
      if (type.empty() || type == "function") {
        tool["type"] = "function";
        if (!tool.contains("parameters")) tool["parameters"] = function_parameters(tool);
        if (!tool.contains("strict")) tool["strict"] = false;
      }
      tools.push_back(std::move(tool));
    }
  }
  body["tools"] = std::move(tools);
  body["tool_choice"] = "auto";
  body["parallel_tool_calls"] = json::boolean(request, "parallel_tool_calls").value_or(false);
  if (auto effort = json::str(request, "reasoning_effort"); !effort.empty()) {
    bj::object reasoning;
    reasoning["effort"] = effort;
    auto summary = json::str(request, "reasoning_summary");
    reasoning["summary"] = summary.empty() ? std::string_view("auto") : summary;
    body["reasoning"] = std::move(reasoning);
    body["include"] = bj::array{"reasoning.encrypted_content"};
  } else {
    body["include"] = bj::array();
  }
  if (auto n = json::num(request, "max_output_tokens")) body["max_output_tokens"] = *n;
  body["store"] = false;
  body["stream"] = true;
  if (auto sid = json::str(request, "session_id"); !sid.empty()) body["prompt_cache_key"] = sid;
  return body;
}

namespace {

class Decoder final : public StreamDecoder {
 public:
  Decoder(const EmitFn& emit, std::string label) : emit_(emit), label_(std::move(label)) {}

  void on_event(const common::SseEvent& ev) override {
    bj::object o = parse_event_json(ev);
    std::string type(json::str(o, "type"));
    if (type.empty()) type = ev.event;

    if (type == "response.created" || type == "response.in_progress") {
      if (auto* r = json::obj(o, "response")) remember_id(*r);
    } else if (type == "response.output_item.added") {
      if (auto* item = json::obj(o, "item")) {
        auto t = json::str(*item, "type");
        if (t == "function_call" || t == "custom_tool_call")
          calls_[std::string(json::str(*item, "id"))] = {std::string(json::str(*item, "call_id")),
                                                         std::string(json::str(*item, "name"))};
      }
    } else if (type == "response.output_text.delta") {
      emit_delta("output_text.delta", o);
    } else if (type == "response.reasoning_summary_text.delta" || type == "response.reasoning_text.delta") {
      emit_delta("reasoning.delta", o);
    } else if (type == "response.function_call_arguments.delta" || type == "response.custom_tool_call_input.delta") {
      std::string item_id(json::str(o, "item_id"));
      bj::object d;
      d["type"] = "tool_input.delta";
      d["item_id"] = item_id;
      if (auto it = calls_.find(item_id); it != calls_.end()) {
        d["call_id"] = it->second.first;
        d["name"] = it->second.second;
      }
      d["delta"] = json::str(o, "delta");
      emit_(d);
    } else if (type == "response.output_item.done") {
      if (auto* item = json::obj(o, "item")) {
        bj::object it = *item;
        if (json::str(it, "type") == "function_call" && !it.contains("arguments")) it["arguments"] = "";
        bj::object done;
        done["type"] = "item.done";
        done["item"] = it;
        emit_(done);
        items_.push_back(std::move(it));
      }
    } else if (type == "response.completed") {
      if (auto* r = json::obj(o, "response")) {
        remember_id(*r);
        if (auto* u = json::obj(*r, "usage")) usage_ = convert_usage(*u);
      }
      done_ = true;
    } else if (type == "response.incomplete") {
      std::string reason = "unknown";
      if (auto* r = json::obj(o, "response"))
        if (auto* d = json::obj(*r, "incomplete_details"))
          if (auto s = json::str(*d, "reason"); !s.empty()) reason = s;
      throw ProviderError("stream_error", label_ + " returned an incomplete response (reason: " + reason + ")");
    } else if (type == "response.failed") {
      const bj::object* err = nullptr;
      if (auto* r = json::obj(o, "response")) err = json::obj(*r, "error");
      fail(err);
    } else if (type == "error") {
      fail(json::obj(o, "error") ? json::obj(o, "error") : &o);
    }
    // Anything else (content_part.*, output_text.done, ...) carries nothing new.
  }

  bool done() const override { return done_; }

  bj::object result() override {
    bj::object out;
    out["items"] = std::move(items_);
    out["usage"] = usage_.empty() ? make_usage(0, 0, 0, 0) : usage_;
    if (!response_id_.empty()) out["response_id"] = response_id_;
    return out;
  }

 private:
  void remember_id(const bj::object& response) {
    if (auto id = json::str(response, "id"); !id.empty()) response_id_ = id;
  }

  void emit_delta(const char* type, const bj::object& o) {
    bj::object d;
    d["type"] = type;
    d["item_id"] = json::str(o, "item_id");
    d["delta"] = json::str(o, "delta");
    emit_(d);
  }

  [[noreturn]] void fail(const bj::object* err) {
    std::string code, type, message;
    if (err) {
      code = json::str(*err, "code");
      type = json::str(*err, "type");
      message = json::str(*err, "message");
    }
    if (message.empty()) message = "no details given";
    throw classify_api_error(code, type, message, label_ + " reported an error in the stream: ", "server_error",
                             RetryKind::stream);
  }

  static bj::object convert_usage(const bj::object& u) {
    std::int64_t in = json::num(u, "input_tokens").value_or(0);
    std::int64_t out = json::num(u, "output_tokens").value_or(0);
    std::int64_t cached = 0, reasoning = 0;
    if (auto* d = json::obj(u, "input_tokens_details")) cached = json::num(*d, "cached_tokens").value_or(0);
    if (auto* d = json::obj(u, "output_tokens_details")) reasoning = json::num(*d, "reasoning_tokens").value_or(0);
    return make_usage(in, cached, out, reasoning, json::num(u, "total_tokens").value_or(in + out));
  }

  const EmitFn& emit_;
  std::string label_;
  std::map<std::string, std::pair<std::string, std::string>> calls_;  // item id → call id, name
  bj::array items_;
  bj::object usage_;
  std::string response_id_;
  bool done_ = false;
};

common::HttpHeaders headers_for(const ProviderConfig& config, const ApiKey& key, bool streaming) {
  common::HttpHeaders h;
  if (!key.value.empty()) h.emplace_back("Authorization", "Bearer " + key.value);
  if (streaming) h.emplace_back("Accept", "text/event-stream");
  for (auto& kv : configured_headers(config)) h.push_back(std::move(kv));
  return h;
}

}  // namespace

std::unique_ptr<StreamDecoder> make_decoder(const EmitFn& emit, std::string provider_label) {
  return std::make_unique<Decoder>(emit, std::move(provider_label));
}

Reply stream(const ProviderConfig& config, const bj::object& request, const EmitFn& emit, const CancelFn& cancelled) {
  return guarded([&] {
    ApiKey key = resolve_api_key(config);
    StreamSpec spec;
    spec.url = join_url(config.base_url, "responses");
    spec.headers = headers_for(config, key, true);
    spec.body = bj::serialize(build_request(request, config));
    std::string label = config.label();
    spec.make_decoder = [label](const EmitFn& e) { return make_decoder(e, label); };
    return run_stream(config, spec, emit, cancelled, key);
  });
}

Reply models(const ProviderConfig& config, const CancelFn& cancelled) {
  return guarded([&] {
    ApiKey key = resolve_api_key(config);
    return fetch_models(config, join_url(config.base_url, "models"), headers_for(config, key, false), cancelled, key);
  });
}

}  // namespace keel::providers::openai_responses
