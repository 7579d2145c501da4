#include <keel/providers/items.hpp>
#include <keel/providers/json.hpp>
#include <keel/providers/models.hpp>
#include <keel/providers/openai_chat.hpp>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <map>

namespace keel::providers::openai_chat {

namespace bj = boost::json;

ProviderDefaults defaults() { return {"OpenAI", "https://api.openai.com/v1", "chat"}; }

namespace {

// A user message's content: plain text, or parts when it holds images.
bj::value user_content(const bj::object& item) {
  auto* c = json::arr(item, "content");
  bool images = false;
  if (c)
    for (const auto& p : *c)
      if (auto* po = p.if_object(); po && json::str(*po, "type") == "input_image") images = true;
  if (!images) return bj::string(content_text(item));
  bj::array parts;
  for (const auto& p : *c) {
    auto* po = p.if_object();
    if (!po) continue;
    auto type = json::str(*po, "type");
    if (type == "input_image") {
      bj::object url;
      url["url"] = json::str(*po, "image_url");
      bj::object part;
      part["type"] = "image_url";
      part["image_url"] = std::move(url);
      parts.push_back(std::move(part));
    } else if (auto text = json::str(*po, "text"); !text.empty()) {
      bj::object part;
      part["type"] = "text";
      part["text"] = text;
      parts.push_back(std::move(part));
    }
  }
  return parts;
}

}  // namespace

bj::object build_request(const bj::object& request, const ProviderConfig& config) {
  bj::object body;
  body["model"] = model_of(request, config);

  bj::array messages;
  std::string system(json::str(request, "instructions"));
  bool conversation_started = false;
  // Index of the assistant message tool calls may still be appended to, or -1.
  long open_assistant = -1;

  auto push = [&](bj::object m) {
    messages.push_back(std::move(m));
    conversation_started = true;
  };
  auto push_tool_call = [&](std::string_view call_id, std::string_view name, std::string arguments) {
    bj::object fn;
    fn["name"] = name;
    fn["arguments"] = std::move(arguments);
    bj::object call;
    call["id"] = call_id;
    call["type"] = "function";
    call["function"] = std::move(fn);
    if (open_assistant < 0) {
      bj::object m;
      m["role"] = "assistant";
      m["content"] = nullptr;
      m["tool_calls"] = bj::array();
      push(std::move(m));
      open_assistant = static_cast<long>(messages.size()) - 1;
    }
    auto& m = messages[static_cast<std::size_t>(open_assistant)].as_object();
    if (!m.contains("tool_calls")) m["tool_calls"] = bj::array();
    m["tool_calls"].as_array().push_back(std::move(call));
  };

  if (auto* items = json::arr(request, "input")) {
    for (const auto& v : *items) {
      auto* item = v.if_object();
      if (!item) continue;
      auto type = json::str(*item, "type");
      if (type.empty() && item->contains("role")) type = "message";
      if (type == "message") {
        auto role = json::str(*item, "role");
        if (role == "developer" || role == "system") {
          std::string text = content_text(*item);
          if (!conversation_started) {
            if (!system.empty() && !text.empty()) system += "\n\n";
            system += text;
          } else {
            bj::object m;
            m["role"] = "user";
            m["content"] = std::move(text);
            push(std::move(m));
            open_assistant = -1;
          }
        } else if (role == "assistant") {
          bj::object m;
          m["role"] = "assistant";
          m["content"] = content_text(*item);
          push(std::move(m));
          open_assistant = static_cast<long>(messages.size()) - 1;
        } else {
          bj::object m;
          m["role"] = "user";
          m["content"] = user_content(*item);
          push(std::move(m));
          open_assistant = -1;
        }
      } else if (type == "function_call") {
        push_tool_call(json::str(*item, "call_id"), json::str(*item, "name"),
                       resendable_arguments(json::str(*item, "arguments")));
      } else if (type == "custom_tool_call") {
        push_tool_call(json::str(*item, "call_id"), json::str(*item, "name"),
                       freeform_arguments(json::str(*item, "input")));
      } else if (type == "function_call_output" || type == "custom_tool_call_output") {
        bj::object m;
        m["role"] = "tool";
        m["tool_call_id"] = json::str(*item, "call_id");
        m["content"] = output_text(item->if_contains("output"));
        push(std::move(m));
        open_assistant = -1;
      }
      // reasoning and unknown items are not part of a chat conversation.
    }
  }
  if (!system.empty()) {
    bj::object m;
    m["role"] = "system";
    m["content"] = std::move(system);
    messages.insert(messages.begin(), std::move(m));
  }
  body["messages"] = std::move(messages);

  bj::array tools;
  if (auto* ts = json::arr(request, "tools")) {
    for (const auto& v : *ts) {
      auto* t = v.if_object();
      if (!t) continue;
      auto type = json::str(*t, "type");
      bj::object fn;
      fn["name"] = json::str(*t, "name");
      if (type.empty() || type == "function") {
        fn["description"] = json::str(*t, "description");
        fn["parameters"] = function_parameters(*t);
      } else if (type == "custom") {
        fn["description"] = freeform_description(*t);
        fn["parameters"] = freeform_schema();
      } else {
        continue;  // hosted tools (web_search, ...) have no chat equivalent
      }
      bj::object tool;
      tool["type"] = "function";
      tool["function"] = std::move(fn);
      tools.push_back(std::move(tool));
    }
  }
  if (!tools.empty()) {
    body["tools"] = std::move(tools);
    body["tool_choice"] = "auto";
    if (auto p = json::boolean(request, "parallel_tool_calls")) body["parallel_tool_calls"] = *p;
  }
  if (auto effort = json::str(request, "reasoning_effort"); !effort.empty()) body["reasoning_effort"] = effort;
  if (auto n = json::num(request, "max_output_tokens")) body["max_tokens"] = *n;
  body["stream"] = true;
  bj::object so;
  so["include_usage"] = true;
  body["stream_options"] = std::move(so);
  return body;
}

namespace {

class Decoder final : public StreamDecoder {
 public:
  Decoder(const EmitFn& emit, std::string label, std::set<std::string> custom)
      : emit_(emit), label_(std::move(label)), custom_(std::move(custom)),
        message_id_(random_id("msg")), reasoning_id_(random_id("rs")) {}

  void on_event(const common::SseEvent& ev) override {
    std::string_view data = ev.data;
    while (!data.empty() && (data.back() == ' ' || data.back() == '\n')) data.remove_suffix(1);
    if (data == "[DONE]") {
      done_ = true;
      return;
    }
    bj::object o = parse_event_json(ev);
    if (auto* e = o.if_contains("error"); e && !e->is_null()) {
      std::string code, type, message;
      if (auto* eo = e->if_object()) {
        message = json::str(*eo, "message");
        type = json::str(*eo, "type");
        if (auto* c = eo->if_contains("code"); c && c->is_string()) code = c->get_string();
      } else if (e->is_string()) {
        message = e->get_string();
      }
      if (message.empty()) message = json::snippet(ev.data, 300);
      throw classify_api_error(code, type, message, label_ + " reported an error in the stream: ", "server_error",
                               RetryKind::stream);
    }
    if (response_id_.empty())
      if (auto id = json::str(o, "id"); !id.empty()) response_id_ = id;
    if (auto* u = json::obj(o, "usage")) usage_ = convert_usage(*u);

    auto* choices = json::arr(o, "choices");
    if (!choices || choices->empty()) return;
    auto* choice = (*choices)[0].if_object();
    if (!choice) return;
    if (auto* delta = json::obj(*choice, "delta")) on_delta(*delta);
    if (auto* fr = choice->if_contains("finish_reason"); fr && fr->is_string()) finish_reason_ = fr->get_string();
  }

  bool done() const override { return done_; }
  bool complete_at_eof() const override { return done_ || !finish_reason_.empty(); }

  bj::object result() override {
    bj::array items;
    auto add = [&](bj::object item) {
      bj::object d;
      d["type"] = "item.done";
      d["item"] = item;
      emit_(d);
      items.push_back(std::move(item));
    };
    if (!reasoning_.empty()) {
      bj::object part;
      part["type"] = "summary_text";
      part["text"] = reasoning_;
      bj::object item;
      item["type"] = "reasoning";
      item["id"] = reasoning_id_;
      item["summary"] = bj::array{std::move(part)};
      add(std::move(item));
    }
    if (!text_.empty()) {
      bj::object part;
      part["type"] = "output_text";
      part["text"] = text_;
      bj::object item;
      item["type"] = "message";
      item["role"] = "assistant";
      item["id"] = message_id_;
      item["content"] = bj::array{std::move(part)};
      add(std::move(item));
    }
    for (auto& [index, call] : calls_) {
      bj::object item;
      item["id"] = call.item_id;
      item["call_id"] = call.call_id;
      item["name"] = call.name;
      if (custom_.count(call.name)) {
        item["type"] = "custom_tool_call";
        item["input"] = freeform_input(call.arguments);
      } else {
        item["type"] = "function_call";
        item["arguments"] = call.arguments.empty() ? std::string("{}") : call.arguments;
      }
      add(std::move(item));
    }
    bj::object out;
    out["items"] = std::move(items);
    out["usage"] = usage_.empty() ? make_usage(0, 0, 0, 0) : usage_;
    if (!response_id_.empty()) out["response_id"] = response_id_;
    if (!finish_reason_.empty()) out["finish_reason"] = finish_reason_;
    return out;
  }

 private:
  struct Call {
    std::string item_id, call_id, name, arguments;
    bool id_generated = false;
  };

  void on_delta(const bj::object& delta) {
    if (auto text = json::str(delta, "content"); !text.empty()) {
      text_ += text;
      emit("output_text.delta", message_id_, text);
    }
    auto reasoning = json::str(delta, "reasoning_content");
    if (reasoning.empty()) reasoning = json::str(delta, "reasoning");
    if (!reasoning.empty()) {
      reasoning_ += reasoning;
      emit("reasoning.delta", reasoning_id_, reasoning);
    }
    auto* tcs = json::arr(delta, "tool_calls");
    if (!tcs) return;
    std::int64_t position = 0;
    for (const auto& tv : *tcs) {
      auto* tc = tv.if_object();
      if (!tc) continue;
      std::int64_t index = json::num(*tc, "index").value_or(position);
      ++position;
      auto [it, fresh] = calls_.try_emplace(index);
      Call& call = it->second;
      if (fresh) call.item_id = random_id("fc");
      if (auto id = json::str(*tc, "id"); !id.empty() && (call.call_id.empty() || call.id_generated)) {
        call.call_id = id;
        call.id_generated = false;
      }
      std::string piece;
      if (auto* fn = json::obj(*tc, "function")) {
        if (auto name = json::str(*fn, "name"); !name.empty() && call.name.empty()) call.name = name;
        if (auto* args = fn->if_contains("arguments")) {
          if (args->is_string()) piece = args->get_string();
          else if (!args->is_null()) piece = bj::serialize(*args);  // some servers send an object
        }
      }
      if (call.call_id.empty()) {  // servers that never name their calls
        call.call_id = random_id("call");
        call.id_generated = true;
      }
      if (!piece.empty()) {
        call.arguments += piece;
        bj::object d;
        d["type"] = "tool_input.delta";
        d["item_id"] = call.item_id;
        d["call_id"] = call.call_id;
        d["name"] = call.name;
        d["delta"] = piece;
        emit_(d);
      }
    }
  }

  void emit(const char* type, const std::string& item_id, std::string_view delta) {
    bj::object d;
    d["type"] = type;
    d["item_id"] = item_id;
    d["delta"] = delta;
    emit_(d);
  }

  static bj::object convert_usage(const bj::object& u) {
    std::int64_t in = json::num(u, "prompt_tokens").value_or(0);
    std::int64_t out = json::num(u, "completion_tokens").value_or(0);
    std::int64_t cached = 0, reasoning = 0;
    if (auto* d = json::obj(u, "prompt_tokens_details")) cached = json::num(*d, "cached_tokens").value_or(0);
    if (auto* d = json::obj(u, "completion_tokens_details")) reasoning = json::num(*d, "reasoning_tokens").value_or(0);
    return make_usage(in, cached, out, reasoning, json::num(u, "total_tokens").value_or(in + out));
  }

  const EmitFn& emit_;
  std::string label_;
  std::set<std::string> custom_;
  std::string message_id_, reasoning_id_;
  std::string text_, reasoning_;
  std::map<std::int64_t, Call> calls_;
  bj::object usage_;
  std::string response_id_, finish_reason_;
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

std::unique_ptr<StreamDecoder> make_decoder(const EmitFn& emit, std::string provider_label,
                                            std::set<std::string> custom_tools) {
  return std::make_unique<Decoder>(emit, std::move(provider_label), std::move(custom_tools));
}

Reply stream(const ProviderConfig& config, const bj::object& request, const EmitFn& emit, const CancelFn& cancelled) {
  return guarded([&] {
    ApiKey key = resolve_api_key(config);
    StreamSpec spec;
    spec.url = join_url(config.base_url, "chat/completions");
    spec.headers = headers_for(config, key, true);
    spec.body = bj::serialize(build_request(request, config));
    std::string label = config.label();
    std::set<std::string> custom = custom_tool_names(request);
    spec.make_decoder = [label, custom](const EmitFn& e) { return make_decoder(e, label, custom); };
    return run_stream(config, spec, emit, cancelled, key);
  });
}

Reply models(const ProviderConfig& config, const CancelFn& cancelled) {
  return guarded([&] {
    ApiKey key = resolve_api_key(config);
    return fetch_models(config, join_url(config.base_url, "models"), headers_for(config, key, false), cancelled, key);
  });
}

}  // namespace keel::providers::openai_chat
