#include <keel/testing/mock_model_server.hpp>

#include "wire.hpp"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/StreamCopier.h>
#include <Poco/ThreadPool.h>

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace keel::testing {

namespace bj = boost::json;

std::string RecordedRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
        }))
      return v;
  return {};
}

bj::value RecordedRequest::json() const {
  boost::system::error_code ec;
  auto v = bj::parse(body, ec);
  return ec ? bj::value(nullptr) : v;
}

struct MockModelServer::State {
  explicit State(Options o) : options(std::move(o)) {}

  mutable std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  Options options;
  std::deque<bj::object> script;
  std::vector<RecordedRequest> requests;
  bj::array models{bj::object{{"id", "mock-model"}, {"object", "model"}, {"owned_by", "keel"}}};
  int served = 0;
  std::atomic<int> active{0};

  // Sleeps ms unless the server stops first; false when it stopped.
  bool wait_ms(std::int64_t ms) {
    std::unique_lock lock(mu);
    return !cv.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stopping; });
  }

  void record(RecordedRequest r) {
    std::lock_guard lock(mu);
    if (!options.record_path.empty()) {
      bj::object o;
      o["method"] = r.method;
      o["path"] = r.path;
      bj::object h;
      for (const auto& [k, v] : r.headers) h[k] = v;
      o["headers"] = std::move(h);
      bj::value body = r.json();
      o["body"] = body.is_null() ? bj::value(r.body) : body;
      std::ofstream(options.record_path, std::ios::app) << bj::serialize(o) << "\n";
    }
    requests.push_back(std::move(r));
  }

  void add(std::string_view jsonl) {
    std::vector<bj::object> parsed;
    std::size_t line_no = 0, pos = 0;
    while (pos <= jsonl.size()) {
      std::size_t nl = jsonl.find('\n', pos);
      if (nl == std::string_view::npos) nl = jsonl.size();
      std::string_view line = jsonl.substr(pos, nl - pos);
      pos = nl + 1;
      ++line_no;
      while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) line.remove_prefix(1);
      while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.remove_suffix(1);
      if (line.empty() || line.front() == '#') continue;
      boost::system::error_code ec;
      auto v = bj::parse(line, ec);
      if (ec || !v.is_object())
        throw std::invalid_argument("mock script line " + std::to_string(line_no) + " is not a JSON object: " +
                                    std::string(line.substr(0, 120)));
      try {
        wire::parse_response(v.get_object());
      } catch (const std::exception& e) {
        throw std::invalid_argument("mock script line " + std::to_string(line_no) + ": " + e.what());
      }
      parsed.push_back(std::move(v.get_object()));
    }
    std::lock_guard lock(mu);
    for (auto& o : parsed) script.push_back(std::move(o));
  }
};

namespace {

using wire::Format;

struct ActiveGuard {
  explicit ActiveGuard(std::atomic<int>& a) : n(a) { ++n; }
  ~ActiveGuard() { --n; }
  std::atomic<int>& n;
};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

const char* reason_for(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 418: return "I'm a teapot";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 529: return "Overloaded";
    default: return status < 400 ? "OK" : "Error";
  }
}

class Handler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit Handler(std::shared_ptr<MockModelServer::State> st) : st_(std::move(st)) {}

  void handleRequest(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& res) override {
    ActiveGuard guard(st_->active);
    try {
      handle(req, res);
    } catch (...) {
      // A client that went away mid-stream is business as usual here.
    }
  }

 private:
  void send_json(Poco::Net::HTTPServerResponse& res, int status, const std::string& body,
                 const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    // Set as text: 529 and friends are outside Poco's HTTPStatus enumeration.
    res.setStatus(std::to_string(status));
    res.setReason(reason_for(status));
    res.setContentType("application/json");
    for (const auto& [k, v] : headers) res.set(k, v);
    res.setContentLength(static_cast<std::streamsize>(body.size()));
    res.setKeepAlive(false);
    res.send() << body;
  }

  static void cut(Poco::Net::HTTPServerRequest& req) {
    try {
      static_cast<Poco::Net::HTTPServerRequestImpl&>(req).socket().shutdown();
    } catch (...) {
    }
  }

  void handle(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& res) {
    RecordedRequest rec;
    rec.method = req.getMethod();
    rec.path = req.getURI();
    for (auto it = req.begin(); it != req.end(); ++it) rec.headers.emplace_back(it->first, it->second);
    Poco::StreamCopier::copyToString(req.stream(), rec.body);
    std::string path = rec.path.substr(0, rec.path.find('?'));

    // Control endpoints (not recorded).
    if (path.rfind("/__mock/", 0) == 0) {
      if (path == "/__mock/script" && rec.method == "POST") {
        try {
          st_->add(rec.body);
        } catch (const std::exception& e) {
          send_json(res, 400, bj::serialize(bj::object{{"error", e.what()}}));
          return;
        }
        std::lock_guard lock(st_->mu);
        send_json(res, 200, bj::serialize(bj::object{{"pending", st_->script.size()}}));
      } else if (path == "/__mock/requests") {
        bj::array out;
        std::lock_guard lock(st_->mu);
        for (const auto& r : st_->requests) {
          bj::object h;
          for (const auto& [k, v] : r.headers) h[k] = v;
          bj::value body = r.json();
          out.push_back(bj::object{{"method", r.method}, {"path", r.path}, {"headers", std::move(h)},
                                   {"body", body.is_null() ? bj::value(r.body) : body}});
        }
        send_json(res, 200, bj::serialize(out));
      } else if (path == "/__mock/reset") {
        std::lock_guard lock(st_->mu);
        st_->script.clear();
        st_->requests.clear();
        send_json(res, 200, "{}");
      } else {
        send_json(res, 200, R"({"ok":true})");
      }
      return;
    }

    bj::value body_json = rec.json();
    st_->record(rec);

    if (rec.method == "GET" && ends_with(path, "/models")) {
      std::lock_guard lock(st_->mu);
      send_json(res, 200, bj::serialize(bj::object{{"object", "list"}, {"data", st_->models}}));
      return;
    }

    Format format;
    if (ends_with(path, "/responses")) format = Format::responses;
    else if (ends_with(path, "/chat/completions")) format = Format::chat;
    else if (ends_with(path, "/messages")) format = Format::anthropic;
    else {
      send_json(res, 404, R"({"error":{"message":"mock-model-server: no such endpoint","type":"not_found"}})");
      return;
    }

    if (!st_->options.api_key.empty()) {
      std::string got = format == Format::anthropic ? rec.header("x-api-key") : rec.header("authorization");
      std::string want = format == Format::anthropic ? st_->options.api_key : "Bearer " + st_->options.api_key;
      if (got != want) {
        auto e = wire::plain_error(format, 401, format == Format::anthropic ? "authentication_error" : "invalid_request_error",
                                   "mock-model-server: missing or wrong API key");
        send_json(res, e.status, e.body, e.headers);
        return;
      }
    }

    bj::object line;
    int serial;
    {
      std::lock_guard lock(st_->mu);
      serial = ++st_->served;
      if (!st_->script.empty()) {
        line = std::move(st_->script.front());
        st_->script.pop_front();
      } else {
        serial = -serial;
      }
    }
    if (serial < 0) {
      auto e = wire::plain_error(format, 400, "invalid_request_error",
                                 "mock-model-server: the script has no response left for request #" +
                                     std::to_string(-serial));
      send_json(res, e.status, e.body, e.headers);
      return;
    }
    wire::Response r = wire::parse_response(line);

    if (r.fault == "drop") {
      cut(req);
      return;
    }
    if (wire::is_http_fault(r.fault)) {
      auto e = wire::http_error(format, r);
      send_json(res, e.status, e.body, e.headers);
      return;
    }

    std::string model = st_->options.model;
    bool include_usage = false;
    if (auto* o = body_json.if_object()) {
      if (auto* m = o->if_contains("model"); m && m->is_string()) model = std::string(m->get_string());
      if (auto* so = o->if_contains("stream_options"); so && so->is_object())
        if (auto* iu = so->get_object().if_contains("include_usage"); iu && iu->is_bool()) include_usage = iu->get_bool();
    }
    std::vector<std::string> frames = wire::render(format, r, model, serial, include_usage);

    auto arg = [&](std::string_view key, std::int64_t fallback) -> std::int64_t {
      auto* v = r.fault_args.if_contains(key);
      if (v && v->is_int64()) return v->get_int64();
      if (v && v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
      return fallback;
    };
    const std::int64_t half = std::max<std::int64_t>(1, static_cast<std::int64_t>(frames.size()) / 2);

    res.setStatus(Poco::Net::HTTPResponse::HTTP_OK);
    res.setContentType("text/event-stream");
    res.set("Cache-Control", "no-cache");
    res.setChunkedTransferEncoding(true);
    res.setKeepAlive(false);
    std::ostream& out = res.send();

    auto write = [&](std::string_view s) {
      if (r.write_size == 0) {
        out.write(s.data(), static_cast<std::streamsize>(s.size()));
        out.flush();
      } else {
        for (std::size_t i = 0; i < s.size(); i += r.write_size) {
          auto piece = s.substr(i, r.write_size);
          out.write(piece.data(), static_cast<std::streamsize>(piece.size()));
          out.flush();
        }
      }
      if (!out.good()) throw std::runtime_error("client went away");
    };

    std::int64_t fault_at = -1;
    if (r.fault == "cut" || r.fault == "stall") fault_at = std::min<std::int64_t>(arg("after_events", half),
                                                                                 static_cast<std::int64_t>(frames.size()) - 1);
    if (r.fault == "invalid_json" || r.fault == "stream_error")
      fault_at = std::min<std::int64_t>(arg("after_events", 1), static_cast<std::int64_t>(frames.size()));

    for (std::size_t i = 0; i <= frames.size(); ++i) {
      if (static_cast<std::int64_t>(i) == fault_at) {
        if (r.fault == "cut") {
          const std::string& f = frames[i];
          write(std::string_view(f).substr(0, f.size() / 2));
          cut(req);
          return;
        }
        if (r.fault == "stall") {
          st_->wait_ms(arg("stall_ms", 10000));
          cut(req);
          return;
        }
        if (r.fault == "invalid_json") {
          write(format == Format::chat ? "data: {\"id\": \"chatcmpl-broken\", \"choices\": [\n\n"
                                       : "event: response.output_text.delta\ndata: {\"type\": \"oops\", \"delta\": \n\n");
        }
        if (r.fault == "stream_error") {
          write(wire::error_frame(format, r, serial));
          if (!r.fault_args.contains("continue")) {
            return;
          }
        }
      }
      if (i == frames.size()) break;
      if (i > 0 && r.chunk_delay_ms > 0 && !st_->wait_ms(r.chunk_delay_ms)) {
        cut(req);
        return;
      }
      write(frames[i]);
    }
  }

  std::shared_ptr<MockModelServer::State> st_;
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit Factory(std::shared_ptr<MockModelServer::State> st) : st_(std::move(st)) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new Handler(st_);
  }

 private:
  std::shared_ptr<MockModelServer::State> st_;
};

}  // namespace

struct MockModelServer::Impl {
  Impl(std::shared_ptr<State> st, std::uint16_t requested_port)
      : pool(2, 32),
        socket(Poco::Net::SocketAddress("127.0.0.1", requested_port)),
        server(new Factory(st), pool, socket, make_params()) {
    server.start();
    this->port = socket.address().port();
  }
  static Poco::Net::HTTPServerParams::Ptr make_params() {
    auto* p = new Poco::Net::HTTPServerParams;
    p->setKeepAlive(false);
    p->setMaxThreads(32);
    p->setMaxQueued(128);
    p->setTimeout(Poco::Timespan(30, 0));
    return p;
  }
  Poco::ThreadPool pool;
  Poco::Net::ServerSocket socket;
  Poco::Net::HTTPServer server;
  bool stopped = false;
  std::uint16_t port = 0;
};

MockModelServer::MockModelServer() : MockModelServer(Options{}) {}

MockModelServer::MockModelServer(Options options) : state_(std::make_shared<State>(std::move(options))) {
  // Writing to a client that hung up must not kill the test process.
  std::signal(SIGPIPE, SIG_IGN);
  {
    std::lock_guard lock(state_->mu);
    state_->models = bj::array{bj::object{{"id", state_->options.model}, {"object", "model"}, {"owned_by", "keel"}}};
  }
  impl_ = std::make_unique<Impl>(state_, state_->options.port);
}

MockModelServer::~MockModelServer() { stop(); }

void MockModelServer::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  {
    std::lock_guard lock(state_->mu);
    state_->stopping = true;
  }
  state_->cv.notify_all();
  impl_->server.stopAll(true);
  try {
    impl_->socket.close();  // a stopped server refuses connections, like a dead one
  } catch (...) {
  }
  for (int i = 0; i < 500 && state_->active.load() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  impl_->pool.joinAll();
}

std::uint16_t MockModelServer::port() const { return impl_->port; }

std::string MockModelServer::url() const { return "http://127.0.0.1:" + std::to_string(port()); }

void MockModelServer::add_script(std::string_view jsonl) { state_->add(jsonl); }

void MockModelServer::add_response(const bj::object& response) { state_->add(bj::serialize(response)); }

void MockModelServer::load_script_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("cannot read mock script " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  state_->add(ss.str());
}

std::size_t MockModelServer::pending() const {
  std::lock_guard lock(state_->mu);
  return state_->script.size();
}

void MockModelServer::set_models(const bj::array& models) {
  std::lock_guard lock(state_->mu);
  state_->models = models;
}

std::vector<RecordedRequest> MockModelServer::requests() const {
  std::lock_guard lock(state_->mu);
  return state_->requests;
}

std::vector<RecordedRequest> MockModelServer::model_requests() const {
  std::vector<RecordedRequest> out;
  for (auto& r : requests()) {
    std::string path = r.path.substr(0, r.path.find('?'));
    if (r.method == "POST" && !ends_with(path, "/models")) out.push_back(std::move(r));
  }
  return out;
}

void MockModelServer::clear() {
  std::lock_guard lock(state_->mu);
  state_->script.clear();
  state_->requests.clear();
}

}  // namespace keel::testing
