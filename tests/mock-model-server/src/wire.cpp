#include "wire.hpp"

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <set>
#include <stdexcept>

namespace keel::testing::wire {

namespace bj = boost::json;

namespace {

std::string str(const bj::object& o, std::string_view key, std::string fallback = {}) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : fallback;
}

std::int64_t num(const bj::object& o, std::string_view key, std::int64_t fallback) {
  auto* v = o.if_contains(key);
  if (!v) return fallback;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  if (v->is_double()) return static_cast<std::int64_t>(v->get_double());
  return fallback;
}

// Splits text into pieces of about n characters without cutting a UTF-8 sequence.
std::vector<std::string> pieces(const std::string& text, std::size_t n) {
  std::vector<std::string> out;
  if (n == 0) n = 1;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t end = std::min(text.size(), i + n);
    while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
    out.push_back(text.substr(i, end - i));
    i = end;
  }
  return out;
}

std::string frame(std::string_view event, const bj::object& data) {
  std::string out;
  if (!event.empty()) {
    out += "event: ";
    out += event;
    out += "\n";
  }
  out += "data: ";
  out += bj::serialize(data);
  out += "\n\n";
  return out;
}

const std::set<std::string> kFaults = {
    "http",        "http_500",          "server_error", "overloaded", "rate_limit", "insufficient_quota",
    "unauthorized", "context_length_exceeded", "drop", "cut",        "stall",      "invalid_json",
    "stream_error"};

}  // namespace

Response parse_response(const bj::object& line) {
  Response r;
  r.text = str(line, "text");
  r.reasoning = str(line, "reasoning");
  if (auto* tcs = line.if_contains("tool_calls")) {
    if (!tcs->is_array()) throw std::invalid_argument("\"tool_calls\" must be an array");
    int i = 0;
    for (const auto& v : tcs->get_array()) {
      if (!v.is_object()) throw std::invalid_argument("each tool call must be an object");
      const auto& o = v.get_object();
      ToolCall tc;
      tc.name = str(o, "name");
      if (tc.name.empty()) throw std::invalid_argument("a tool call needs a \"name\"");
      tc.call_id = str(o, "call_id", "call_mock_" + std::to_string(i));
      if (auto* in = o.if_contains("input")) {
        if (!in->is_string()) throw std::invalid_argument("a tool call's \"input\" must be a string");
        tc.custom = true;
        tc.input = std::string(in->get_string());
      } else if (auto* raw = o.if_contains("arguments_raw")) {
        if (!raw->is_string()) throw std::invalid_argument("\"arguments_raw\" must be a string");
        tc.arguments = std::string(raw->get_string());
      } else if (auto* args = o.if_contains("arguments")) {
        tc.arguments = args->is_string() ? std::string(args->get_string()) : bj::serialize(*args);
      } else {
        tc.arguments = "{}";
      }
      r.tool_calls.push_back(std::move(tc));
      ++i;
    }
  }
  if (auto* u = line.if_contains("usage")) {
    if (!u->is_object()) throw std::invalid_argument("\"usage\" must be an object");
    const auto& uo = u->get_object();
    r.usage.input = num(uo, "input_tokens", r.usage.input);
    r.usage.cached = num(uo, "cached_input_tokens", r.usage.cached);
    r.usage.output = num(uo, "output_tokens", r.usage.output);
    r.usage.reasoning = num(uo, "reasoning_output_tokens", r.usage.reasoning);
  }
  r.chunk_size = static_cast<std::size_t>(std::max<std::int64_t>(1, num(line, "chunk_size", 8)));
  r.chunk_delay_ms = std::max<std::int64_t>(0, num(line, "chunk_delay_ms", 0));
  r.write_size = static_cast<std::size_t>(std::max<std::int64_t>(0, num(line, "write_size", 0)));
  if (auto* f = line.if_contains("fault")) {
    if (f->is_string()) {
      r.fault = std::string(f->get_string());
    } else if (f->is_object()) {
      r.fault_args = f->get_object();
      r.fault = str(r.fault_args, "type");
    } else {
      throw std::invalid_argument("\"fault\" must be a string or an object with \"type\"");
    }
    if (!kFaults.count(r.fault)) throw std::invalid_argument("unknown fault \"" + r.fault + "\"");
  }
  // Shortcut: a top-level "status" means an HTTP error.
  if (r.fault.empty() && line.contains("status")) {
    r.fault = "http";
    r.fault_args = line;
  }
  return r;
}

bool is_http_fault(const std::string& f) {
  return f == "http" || f == "http_500" || f == "server_error" || f == "overloaded" || f == "rate_limit" ||
         f == "insufficient_quota" || f == "unauthorized" || f == "context_length_exceeded";
}

HttpError plain_error(Format format, int status, const std::string& type, const std::string& message) {
  HttpError e;
  e.status = status;
  bj::object err;
  if (format == Format::anthropic) {
    err["type"] = type;
    err["message"] = message;
    bj::object body;
    body["type"] = "error";
    body["error"] = std::move(err);
    e.body = bj::serialize(body);
  } else {
    err["message"] = message;
    err["type"] = type;
    err["param"] = nullptr;
    err["code"] = nullptr;
    bj::object body;
    body["error"] = std::move(err);
    e.body = bj::serialize(body);
  }
  return e;
}

HttpError http_error(Format format, const Response& r) {
  const auto& a = r.fault_args;
  const bool anthropic = format == Format::anthropic;
  int status = 500;
  std::string type, code, message;
  if (r.fault == "http_500" || r.fault == "server_error") {
    status = 500;
    type = anthropic ? "api_error" : "server_error";
    message = "The server had an error while processing your request.";
  } else if (r.fault == "overloaded") {
    status = anthropic ? 529 : 503;
    type = anthropic ? "overloaded_error" : "server_error";
    message = "Overloaded";
  } else if (r.fault == "rate_limit") {
    status = 429;
    type = anthropic ? "rate_limit_error" : "requests";
    code = "rate_limit_exceeded";
    message = "Rate limit reached for requests.";
    if (auto t = str(a, "try_again_in"); !t.empty()) message += " Please try again in " + t + ".";
  } else if (r.fault == "insufficient_quota") {
    status = anthropic ? 400 : 429;
    type = anthropic ? "invalid_request_error" : "insufficient_quota";
    code = "insufficient_quota";
    message = anthropic ? "Your credit balance is too low to access the Anthropic API."
                        : "You exceeded your current quota, please check your plan and billing details.";
  } else if (r.fault == "unauthorized") {
    status = 401;
    type = anthropic ? "authentication_error" : "invalid_request_error";
    code = "invalid_api_key";
    message = anthropic ? "invalid x-api-key" : "Incorrect API key provided.";
  } else if (r.fault == "context_length_exceeded") {
    status = 400;
    type = "invalid_request_error";
    code = "context_length_exceeded";
    message = anthropic ? "prompt is too long: 210000 tokens > 200000 maximum"
                        : "This model's maximum context length is 128000 tokens. However, your messages resulted "
                          "in 210000 tokens. Please reduce the length of the messages.";
  } else {  // "http"
    status = static_cast<int>(num(a, "status", 500));
    type = str(a, "error_type", status >= 500 ? "server_error" : "invalid_request_error");
    code = str(a, "code");
    message = str(a, "message", "mock HTTP " + std::to_string(status));
  }
  status = static_cast<int>(num(a, "status", status));
  if (auto m = str(a, "message"); !m.empty()) message = m;
  if (auto c = str(a, "code"); !c.empty()) code = c;
  if (auto t = str(a, "error_type"); !t.empty()) type = t;

  HttpError e = plain_error(format, status, type, message);
  if (!anthropic && !code.empty()) {
    auto v = bj::parse(e.body);
    v.as_object()["error"].as_object()["code"] = code;
    e.body = bj::serialize(v);
  }
  if (auto* ra = a.if_contains("retry_after")) {
    if (ra->is_string()) e.headers.emplace_back("Retry-After", std::string(ra->get_string()));
    else e.headers.emplace_back("Retry-After", std::to_string(num(a, "retry_after", 1)));
  }
  if (auto* ra = a.if_contains("retry_after_ms")) {
    (void)ra;
    e.headers.emplace_back("retry-after-ms", std::to_string(num(a, "retry_after_ms", 0)));
  }
  if (auto* hs = a.if_contains("headers"); hs && hs->is_object())
    for (const auto& [k, v] : hs->get_object())
      if (v.is_string()) e.headers.emplace_back(std::string(k), std::string(v.get_string()));
  if (auto body = str(a, "body"); !body.empty()) e.body = body;
  return e;
}

namespace {

std::vector<std::string> render_responses(const Response& r, const std::string& model, int serial) {
  std::vector<std::string> out;
  const std::string rid = "resp_mock_" + std::to_string(serial);
  std::int64_t seq = 0;
  auto ev = [&](const std::string& type, bj::object o) {
    o["type"] = type;
    o["sequence_number"] = seq++;
    out.push_back(frame(type, o));
  };
  bj::object created;
  created["id"] = rid;
  created["object"] = "response";
  created["status"] = "in_progress";
  created["model"] = model;
  created["output"] = bj::array();
  ev("response.created", {{"response", created}});
  ev("response.in_progress", {{"response", created}});

  bj::array output;
  std::int64_t index = 0;
  if (!r.reasoning.empty()) {
    std::string id = "rs_mock_" + std::to_string(serial);
    bj::object item{{"id", id}, {"type", "reasoning"}, {"summary", bj::array()}};
    ev("response.output_item.added", {{"output_index", index}, {"item", item}});
    for (const auto& p : pieces(r.reasoning, r.chunk_size))
      ev("response.reasoning_summary_text.delta",
         {{"item_id", id}, {"output_index", index}, {"summary_index", 0}, {"delta", p}});
    item["summary"] = bj::array{bj::object{{"type", "summary_text"}, {"text", r.reasoning}}};
    item["encrypted_content"] = "mock-encrypted-reasoning";
    ev("response.output_item.done", {{"output_index", index}, {"item", item}});
    output.push_back(item);
    ++index;
  }
  if (!r.text.empty()) {
    std::string id = "msg_mock_" + std::to_string(serial);
    bj::object item{{"id", id}, {"type", "message"}, {"role", "assistant"}, {"status", "in_progress"},
                    {"content", bj::array()}};
    ev("response.output_item.added", {{"output_index", index}, {"item", item}});
    ev("response.content_part.added",
       {{"item_id", id}, {"output_index", index}, {"content_index", 0},
        {"part", bj::object{{"type", "output_text"}, {"text", ""}, {"annotations", bj::array()}}}});
    for (const auto& p : pieces(r.text, r.chunk_size))
      ev("response.output_text.delta", {{"item_id", id}, {"output_index", index}, {"content_index", 0}, {"delta", p}});
    ev("response.output_text.done", {{"item_id", id}, {"output_index", index}, {"content_index", 0}, {"text", r.text}});
    item["status"] = "completed";
    item["content"] =
        bj::array{bj::object{{"type", "output_text"}, {"text", r.text}, {"annotations", bj::array()}}};
    ev("response.output_item.done", {{"output_index", index}, {"item", item}});
    output.push_back(item);
    ++index;
  }
  int n = 0;
  for (const auto& tc : r.tool_calls) {
    std::string id = (tc.custom ? "ctc_mock_" : "fc_mock_") + std::to_string(serial) + "_" + std::to_string(n++);
    bj::object item{{"id", id}, {"type", tc.custom ? "custom_tool_call" : "function_call"}, {"status", "in_progress"},
                    {"call_id", tc.call_id}, {"name", tc.name}};
    item[tc.custom ? "input" : "arguments"] = "";
    ev("response.output_item.added", {{"output_index", index}, {"item", item}});
    const std::string& payload = tc.custom ? tc.input : tc.arguments;
    for (const auto& p : pieces(payload, r.chunk_size))
      ev(tc.custom ? "response.custom_tool_call_input.delta" : "response.function_call_arguments.delta",
         {{"item_id", id}, {"output_index", index}, {"delta", p}});
    if (!tc.custom)
      ev("response.function_call_arguments.done", {{"item_id", id}, {"output_index", index}, {"arguments", payload}});
    item["status"] = "completed";
    item[tc.custom ? "input" : "arguments"] = payload;
    ev("response.output_item.done", {{"output_index", index}, {"item", item}});
    output.push_back(item);
    ++index;
  }
  bj::object done = created;
  done["status"] = "completed";
  done["output"] = std::move(output);
  done["usage"] = bj::object{{"input_tokens", r.usage.input},
                             {"input_tokens_details", bj::object{{"cached_tokens", r.usage.cached}}},
                             {"output_tokens", r.usage.output},
                             {"output_tokens_details", bj::object{{"reasoning_tokens", r.usage.reasoning}}},
                             {"total_tokens", r.usage.input + r.usage.output}};
  ev("response.completed", {{"response", done}});
  return out;
}

std::vector<std::string> render_chat(const Response& r, const std::string& model, int serial, bool include_usage) {
  std::vector<std::string> out;
  const std::string id = "chatcmpl-mock-" + std::to_string(serial);
  auto chunk = [&](bj::object delta, bj::value finish = nullptr) {
    bj::object choice{{"index", 0}, {"delta", std::move(delta)}, {"logprobs", nullptr}, {"finish_reason", finish}};
    bj::object o{{"id", id},           {"object", "chat.completion.chunk"}, {"created", 1700000000},
                 {"model", model},     {"choices", bj::array{std::move(choice)}}};
    out.push_back(frame("", o));
  };
  chunk(bj::object{{"role", "assistant"}, {"content", ""}});
  for (const auto& p : pieces(r.reasoning, r.chunk_size)) chunk(bj::object{{"reasoning_content", p}});
  for (const auto& p : pieces(r.text, r.chunk_size)) chunk(bj::object{{"content", p}});
  // Tool calls: the first fragment of each names it; argument pieces then arrive
  // interleaved across calls, so a client must assemble them per index.
  std::vector<std::vector<std::string>> args;
  for (std::size_t i = 0; i < r.tool_calls.size(); ++i) {
    const auto& tc = r.tool_calls[i];
    std::string text = tc.custom ? bj::serialize(bj::object{{"input", tc.input}}) : tc.arguments;
    args.push_back(pieces(text, r.chunk_size));
    bj::object fn{{"name", tc.name}, {"arguments", ""}};
    bj::object call{{"index", static_cast<std::int64_t>(i)}, {"id", tc.call_id}, {"type", "function"},
                    {"function", std::move(fn)}};
    chunk(bj::object{{"tool_calls", bj::array{std::move(call)}}});
  }
  for (std::size_t round = 0;; ++round) {
    bool any = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
      if (round >= args[i].size()) continue;
      any = true;
      bj::object call{{"index", static_cast<std::int64_t>(i)},
                      {"function", bj::object{{"arguments", args[i][round]}}}};
      chunk(bj::object{{"tool_calls", bj::array{std::move(call)}}});
    }
    if (!any) break;
  }
  chunk(bj::object(), r.tool_calls.empty() ? "stop" : "tool_calls");
  if (include_usage) {
    bj::object usage{{"prompt_tokens", r.usage.input},
                     {"completion_tokens", r.usage.output},
                     {"total_tokens", r.usage.input + r.usage.output},
                     {"prompt_tokens_details", bj::object{{"cached_tokens", r.usage.cached}}},
                     {"completion_tokens_details", bj::object{{"reasoning_tokens", r.usage.reasoning}}}};
    bj::object o{{"id", id},       {"object", "chat.completion.chunk"}, {"created", 1700000000},
                 {"model", model}, {"choices", bj::array()},            {"usage", std::move(usage)}};
    out.push_back(frame("", o));
  }
  out.push_back("data: [DONE]\n\n");
  return out;
}

std::vector<std::string> render_anthropic(const Response& r, const std::string& model, int serial) {
  std::vector<std::string> out;
  auto ev = [&](const std::string& type, bj::object o) {
    o["type"] = type;
    out.push_back(frame(type, o));
  };
  bj::object message{{"id", "msg_mock_" + std::to_string(serial)},
                     {"type", "message"},
                     {"role", "assistant"},
                     {"model", model},
                     {"content", bj::array()},
                     {"stop_reason", nullptr},
                     {"stop_sequence", nullptr},
                     {"usage", bj::object{{"input_tokens", r.usage.input - r.usage.cached},
                                          {"cache_creation_input_tokens", 0},
                                          {"cache_read_input_tokens", r.usage.cached},
                                          {"output_tokens", 1}}}};
  ev("message_start", {{"message", message}});
  ev("ping", {});
  std::int64_t index = 0;
  if (!r.reasoning.empty()) {
    ev("content_block_start",
       {{"index", index}, {"content_block", bj::object{{"type", "thinking"}, {"thinking", ""}, {"signature", ""}}}});
    for (const auto& p : pieces(r.reasoning, r.chunk_size))
      ev("content_block_delta", {{"index", index}, {"delta", bj::object{{"type", "thinking_delta"}, {"thinking", p}}}});
    ev("content_block_delta",
       {{"index", index}, {"delta", bj::object{{"type", "signature_delta"}, {"signature", "mock-signature"}}}});
    ev("content_block_stop", {{"index", index}});
    ++index;
  }
  if (!r.text.empty()) {
    ev("content_block_start", {{"index", index}, {"content_block", bj::object{{"type", "text"}, {"text", ""}}}});
    for (const auto& p : pieces(r.text, r.chunk_size))
      ev("content_block_delta", {{"index", index}, {"delta", bj::object{{"type", "text_delta"}, {"text", p}}}});
    ev("content_block_stop", {{"index", index}});
    ++index;
  }
  for (const auto& tc : r.tool_calls) {
    ev("content_block_start",
       {{"index", index},
        {"content_block",
         bj::object{{"type", "tool_use"}, {"id", tc.call_id}, {"name", tc.name}, {"input", bj::object()}}}});
    std::string text = tc.custom ? bj::serialize(bj::object{{"input", tc.input}}) : tc.arguments;
    for (const auto& p : pieces(text, r.chunk_size))
      ev("content_block_delta",
         {{"index", index}, {"delta", bj::object{{"type", "input_json_delta"}, {"partial_json", p}}}});
    ev("content_block_stop", {{"index", index}});
    ++index;
  }
  ev("message_delta", {{"delta", bj::object{{"stop_reason", r.tool_calls.empty() ? "end_turn" : "tool_use"},
                                             {"stop_sequence", nullptr}}},
                       {"usage", bj::object{{"output_tokens", r.usage.output}}}});
  ev("message_stop", {});
  return out;
}

}  // namespace

std::vector<std::string> render(Format format, const Response& r, const std::string& model, int serial,
                                bool include_usage) {
  switch (format) {
    case Format::responses: return render_responses(r, model, serial);
    case Format::chat: return render_chat(r, model, serial, include_usage);
    case Format::anthropic: return render_anthropic(r, model, serial);
  }
  return {};
}

std::string error_frame(Format format, const Response& r, int serial) {
  const auto& a = r.fault_args;
  std::string code = str(a, "code", "server_error");
  std::string message = str(a, "message", "The server had an error while processing your request.");
  switch (format) {
    case Format::responses: {
      bj::object resp{{"id", "resp_mock_" + std::to_string(serial)},
                      {"object", "response"},
                      {"status", "failed"},
                      {"error", bj::object{{"code", code}, {"message", message}}}};
      return frame("response.failed", {{"type", "response.failed"}, {"response", std::move(resp)}});
    }
    case Format::chat:
      return frame("", {{"error", bj::object{{"message", message}, {"type", str(a, "error_type", "server_error")},
                                             {"code", code}}}});
    case Format::anthropic:
      return frame("error", {{"type", "error"},
                             {"error", bj::object{{"type", str(a, "error_type", "overloaded_error")},
                                                  {"message", str(a, "message", "Overloaded")}}}});
  }
  return {};
}

}  // namespace keel::testing::wire
