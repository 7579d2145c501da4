#include <keel/providers/anthropic.hpp>
#include <keel/providers/items.hpp>
#include <keel/providers/json.hpp>
#include <keel/providers/models.hpp>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <map>

namespace keel::providers::anthropic {

namespace bj = boost::json;

ProviderDefaults defaults() { return {"Anthropic", "https://api.anthropic.com", "anthropic"}; }

std::string endpoint(const ProviderConfig& config, std::string_view path) {
  std::string_view base = config.base_url;
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  if (base.size() >= 3 && base.substr(base.size() - 3) == "/v1") return join_url(base, path);
  return join_url(base, "v1/" + std::string(path));
}

namespace {

bj::object text_block(std::string_view text) {
  bj::object b;
  b["type"] = "text";
  b["text"] = text;
  return b;
}

// "data:image/png;base64,AAAA" → a base64 image block; other URLs → a url image block.
bj::object image_block(std::string_view url) {
  bj::object source;
  constexpr std::string_view data_prefix = "data:";
  auto marker = url.find(";base64,");
  if (url.substr(0, data_prefix.size()) == data_prefix && marker != std::string_view::npos) {
    source["type"] = "base64";
    source["media_type"] = url.substr(data_prefix.size(), marker - data_prefix.size());
    source["data"] = url.substr(marker + 8);
  } else {
    source["type"] = "url";
    source["url"] = url;
  }
  bj::object b;
  b["type"] = "image";
  b["source"] = std::move(source);
  return b;
}

}  // namespace

bj::object build_request(const bj::object& request, const ProviderConfig& config) {
  bj::object body;
  body["model"] = model_of(request, config);
  body["max_tokens"] = json::num(request, "max_output_tokens").value_or(config.max_tokens);

  std::string system(json::str(request, "instructions"));
  bj::array messages;
  auto add = [&](std::string_view role, bj::object block) {
    if (!messages.empty()) {
      auto& last = messages.back().as_object();
      if (json::str(last, "role") == role) {
        last["content"].as_array().push_back(std::move(block));
        return;
      }
    }
    bj::object m;
    m["role"] = role;
    m["content"] = bj::array{std::move(block)};
    messages.push_back(std::move(m));
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
          if (messages.empty()) {
            if (!system.empty() && !text.empty()) system += "\n\n";
            system += text;
          } else if (!text.empty()) {
            add("user", text_block(text));
          }
          continue;
        }
        std::string_view wire_role = role == "assistant" ? "assistant" : "user";
        if (auto* c = item->if_contains("content"); c && c->is_string()) {
          if (!c->get_string().empty()) add(wire_role, text_block(c->get_string()));
          continue;
        }
        if (auto* parts = json::arr(*item, "content")) {
          for (const auto& p : *parts) {
            auto* po = p.if_object();
            if (!po) continue;
            auto pt = json::str(*po, "type");
            if (pt == "input_image") {
              add(wire_role, image_block(json::str(*po, "image_url")));
            } else if (auto text = json::str(*po, "text"); !text.empty()) {
              add(wire_role, text_block(text));  // Anthropic rejects empty text blocks
            }
          }
        }
      } else if (type == "function_call" || type == "custom_tool_call") {
        bj::object block;
        block["type"] = "tool_use";
        block["id"] = json::str(*item, "call_id");
        block["name"] = json::str(*item, "name");
        if (type == "custom_tool_call") {
          bj::object input;
          input["input"] = json::str(*item, "input");
          block["input"] = std::move(input);
        } else {
          auto args = json::str(*item, "arguments");
          auto parsed = json::try_parse(args.empty() ? std::string_view("{}") : args);
          if (parsed && parsed->is_object()) {
            block["input"] = std::move(*parsed);
          } else {
            bj::object input;
            input["invalid_json"] = args;
            block["input"] = std::move(input);
          }
        }
        add("assistant", std::move(block));
      } else if (type == "function_call_output" || type == "custom_tool_call_output") {
        bj::object block;
        block["type"] = "tool_result";
        block["tool_use_id"] = json::str(*item, "call_id");
        std::string out = output_text(item->if_contains("output"));
        if (!out.empty()) block["content"] = std::move(out);
        add("user", std::move(block));
      }
      // reasoning items (thinking blocks need their signatures) and unknown items are skipped.
    }
  }
  if (!system.empty()) body["system"] = std::move(system);
  body["messages"] = std::move(messages);

  bj::array tools;
  if (auto* ts = json::arr(request, "tools")) {
    for (const auto& v : *ts) {
      auto* t = v.if_object();
      if (!t) continue;
      auto type = json::str(*t, "type");
      bj::object tool;
      tool["name"] = json::str(*t, "name");
      if (type.empty() || type == "function") {
        tool["description"] = json::str(*t, "description");
        tool["input_schema"] = function_parameters(*t);
      } else if (type == "custom") {
        tool["description"] = freeform_description(*t);
        tool["input_schema"] = freeform_schema();
      } else {
        continue;
      }
      tools.push_back(std::move(tool));
    }
  }
  if (!tools.empty()) {
    body["tools"] = std::move(tools);
    if (json::boolean(request, "parallel_tool_calls") == std::optional<bool>(false)) {
      bj::object choice;
      choice["type"] = "auto";
      choice["disable_parallel_tool_use"] = true;
      body["tool_choice"] = std::move(choice);
    }
  }
  body["stream"] = true;
  return body;
}

namespace {

class Decoder final : public StreamDecoder {
 public:
  Decoder(const EmitFn& emit, std::string label, std::set<std::string> custom)
      : emit_(emit), label_(std::move(label)), custom_(std::move(custom)), prefix_(random_id("msg")) {}

  void on_event(const common::SseEvent& ev) override {
    bj::object o = parse_event_json(ev);
    std::string type(json::str(o, "type"));
    if (type.empty()) type = ev.event;

    if (type == "message_start") {
      if (auto* m = json::obj(o, "message")) {
        if (auto id = json::str(*m, "id"); !id.empty()) response_id_ = prefix_ = id;
        if (auto* u = json::obj(*m, "usage")) read_usage(*u);
      }
    } else if (type == "content_block_start") {
      std::int64_t index = json::num(o, "index").value_or(0);
      Block& b = blocks_[index];
      b.item_id = prefix_ + "_" + std::to_string(index);
      if (auto* cb = json::obj(o, "content_block")) {
        b.type = json::str(*cb, "type");
        b.id = json::str(*cb, "id");
        b.name = json::str(*cb, "name");
        if (auto text = json::str(*cb, "text"); !text.empty()) append(b, text, "output_text.delta");
        if (auto thinking = json::str(*cb, "thinking"); !thinking.empty()) append(b, thinking, "reasoning.delta");
        if (auto* in = json::obj(*cb, "input"); in && !in->empty()) b.start_input = bj::serialize(*in);
      }
    } else if (type == "content_block_delta") {
      std::int64_t index = json::num(o, "index").value_or(0);
      Block& b = blocks_[index];
      if (b.item_id.empty()) b.item_id = prefix_ + "_" + std::to_string(index);
      auto* d = json::obj(o, "delta");
      if (!d) return;
      auto dt = json::str(*d, "type");
      if (dt == "text_delta") {
        if (b.type.empty()) b.type = "text";
        append(b, json::str(*d, "text"), "output_text.delta");
      } else if (dt == "input_json_delta") {
        auto piece = json::str(*d, "partial_json");
        b.json += piece;
        if (!piece.empty()) {
          bj::object e;
          e["type"] = "tool_input.delta";
          e["item_id"] = b.item_id;
          e["call_id"] = b.id;
          e["name"] = b.name;
          e["delta"] = piece;
          emit_(e);
        }
      } else if (dt == "thinking_delta") {
        append(b, json::str(*d, "thinking"), "reasoning.delta");
      } else if (dt == "signature_delta") {
        b.signature += json::str(*d, "signature");
      }
    } else if (type == "content_block_stop") {
      std::int64_t index = json::num(o, "index").value_or(0);
      auto it = blocks_.find(index);
      if (it != blocks_.end()) {
        finish_block(it->second);
        blocks_.erase(it);
      }
    } else if (type == "message_delta") {
      if (auto* d = json::obj(o, "delta"))
        if (auto sr = json::str(*d, "stop_reason"); !sr.empty()) stop_reason_ = sr;
      if (auto* u = json::obj(o, "usage")) read_usage(*u);
    } else if (type == "message_stop") {
      done_ = true;
    } else if (type == "error") {
      const bj::object* err = json::obj(o, "error");
      std::string etype = err ? std::string(json::str(*err, "type")) : std::string();
      std::string message = err ? std::string(json::str(*err, "message")) : std::string();
      if (message.empty()) message = etype.empty() ? json::snippet(ev.data, 300) : etype;
      std::string prefix = label_ + " reported an error in the stream: ";
      if (etype == "overloaded_error" || etype == "api_error") {
        ProviderError e("server_error", prefix + message, RetryKind::stream, etype);
        throw e;
      }
      throw classify_api_error("", etype, message, prefix, "server_error", RetryKind::stream);
    }
    // ping and unknown events carry nothing.
  }

  bool done() const override { return done_; }
  bool complete_at_eof() const override { return done_ || (!stop_reason_.empty() && blocks_.empty()); }

  bj::object result() override {
    bj::object out;
    out["items"] = std::move(items_);
    out["usage"] = make_usage(input_ + cache_read_ + cache_creation_, cache_read_, output_, 0);
    if (!response_id_.empty()) out["response_id"] = response_id_;
    if (!stop_reason_.empty()) out["stop_reason"] = stop_reason_;
    return out;
  }

 private:
  struct Block {
    std::string type, item_id, id, name, text, json, signature, start_input;
  };

  void append(Block& b, std::string_view piece, const char* delta_type) {
    if (piece.empty()) return;
    b.text += piece;
    bj::object e;
    e["type"] = delta_type;
    e["item_id"] = b.item_id;
    e["delta"] = piece;
    emit_(e);
  }

  void finish_block(Block& b) {
    bj::object item;
    if (b.type == "text") {
      if (b.text.empty()) return;
      bj::object part;
      part["type"] = "output_text";
      part["text"] = b.text;
      item["type"] = "message";
      item["role"] = "assistant";
      item["id"] = b.item_id;
      item["content"] = bj::array{std::move(part)};
    } else if (b.type == "tool_use") {
      std::string args = !b.json.empty() ? b.json : (!b.start_input.empty() ? b.start_input : std::string("{}"));
      item["id"] = b.item_id;
      item["call_id"] = b.id;
      item["name"] = b.name;
      if (custom_.count(b.name)) {
        item["type"] = "custom_tool_call";
        item["input"] = freeform_input(args);
      } else {
        item["type"] = "function_call";
        item["arguments"] = std::move(args);
      }
    } else if (b.type == "thinking") {
      bj::object part;
      part["type"] = "summary_text";
      part["text"] = b.text;
      item["type"] = "reasoning";
      item["id"] = b.item_id;
      item["summary"] = bj::array{std::move(part)};
    } else {
      return;  // redacted thinking, server tools: nothing the kernel can use
    }
    bj::object d;
    d["type"] = "item.done";
    d["item"] = item;
    emit_(d);
    items_.push_back(std::move(item));
  }

  void read_usage(const bj::object& u) {
    if (auto n = json::num(u, "input_tokens")) input_ = *n;
    if (auto n = json::num(u, "cache_read_input_tokens")) cache_read_ = *n;
    if (auto n = json::num(u, "cache_creation_input_tokens")) cache_creation_ = *n;
    if (auto n = json::num(u, "output_tokens")) output_ = *n;
  }

  const EmitFn& emit_;
  std::string label_;
  std::set<std::string> custom_;
  std::string prefix_;
  std::map<std::int64_t, Block> blocks_;
  bj::array items_;
  std::int64_t input_ = 0, cache_read_ = 0, cache_creation_ = 0, output_ = 0;
  std::string response_id_, stop_reason_;
  bool done_ = false;
};

common::HttpHeaders headers_for(const ProviderConfig& config, const ApiKey& key, bool streaming) {
  common::HttpHeaders h;
  if (!key.value.empty()) h.emplace_back("x-api-key", key.value);
  h.emplace_back("anthropic-version", config.anthropic_version);
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
    spec.url = endpoint(config, "messages");
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
    common::HttpHeaders h = headers_for(config, key, false);
    ProviderConfig c = config;
    c.query_params.emplace_back("limit", "1000");
    return fetch_models(c, endpoint(config, "models"), h, cancelled, key);
  });
}

}  // namespace keel::providers::anthropic
