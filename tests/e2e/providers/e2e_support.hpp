// End-to-end helpers for the provider tests: the real keel-mock-model-server as a child
// process (port read from its first line of stdout, every request recorded to a file), a
// temporary KEEL_HOME seeded with the build's signed first-party modules and a config.toml
// naming one mock provider per wire protocol, and the real `keel` binary run as a child.
#pragma once

#include <keel/common/process.hpp>

#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace keel::e2e {

namespace fs = std::filesystem;
namespace json = boost::json;

inline const fs::path kBuildHome = fs::path(KEEL_BINARY_DIR) / "keel-home";
inline const fs::path kKeelExe = KEEL_EXE;
inline const fs::path kMockExe = KEEL_MOCK_EXE;

// The environment variable the mock providers take their key from, and the key the mock
// server is started with (a request without it gets HTTP 401).
inline constexpr const char* kKeyEnv = "KEEL_E2E_MOCK_KEY";
inline constexpr const char* kKey = "e2e-secret-key";

// The three wire protocols and the provider entry each is configured under.
struct Wire {
  std::string wire;      // responses | chat | anthropic
  std::string provider;  // mock-responses | mock-chat | mock-anthropic
  std::string path;      // what the mock server sees: /v1/responses, ...
};
inline const std::vector<Wire>& wires() {
  static const std::vector<Wire> w{{"responses", "mock-responses", "/v1/responses"},
                                   {"chat", "mock-chat", "/v1/chat/completions"},
                                   {"anthropic", "mock-anthropic", "/v1/messages"}};
  return w;
}
inline const Wire& wire(const std::string& name) {
  for (auto& w : wires())
    if (w.wire == name) return w;
  throw std::invalid_argument("no wire " + name);
}

using keel::test::TempDir;

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return {};
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_file(const fs::path& p, const std::string& text) {
  if (!p.parent_path().empty()) fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) throw std::runtime_error("cannot write " + p.string());
}

inline std::vector<json::object> parse_jsonl(const std::string& text) {
  std::vector<json::object> out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    boost::system::error_code ec;
    auto v = json::parse(line, ec);
    if (ec || !v.is_object()) throw std::runtime_error("not a JSON object line: " + line);
    out.push_back(std::move(v.as_object()));
  }
  return out;
}

inline std::string str(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string{};
}
inline std::int64_t num(const json::object& o, std::string_view key, std::int64_t fallback = -1) {
  auto* v = o.if_contains(key);
  if (v && v->is_int64()) return v->as_int64();
  if (v && v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  return fallback;
}
inline bool contains(std::string_view hay, std::string_view needle) { return hay.find(needle) != std::string_view::npos; }
inline std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// ---- the mock model server, as a process -----------------------------------------------

class MockServer {
 public:
  // Starts keel-mock-model-server on port 0 with `script` (JSONL) and the test API key;
  // `model` is the one model its /models endpoint lists.
  MockServer(const fs::path& dir, const std::string& script, bool require_key = true, const std::string& model = "")
      : script_(dir / "script.jsonl"), record_(dir / "requests.jsonl"), log_(dir / "mock-server.log") {
    write_file(script_, script);
    std::vector<std::string> args{kMockExe.string(), "--port", "0", "--script", script_.string(), "--record",
                                  record_.string()};
    if (require_key) {
      args.push_back("--api-key");
      args.push_back(kKey);
    }
    if (!model.empty()) {
      args.push_back("--model");
      args.push_back(model);
    }
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    if (rc != 0) {
      ::close(out[0]);
      throw std::runtime_error("cannot start " + kMockExe.string());
    }
    out_fd_ = out[0];
    // The first line of stdout is the port.
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (line.find('\n') == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{out_fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[64];
      auto n = ::read(out_fd_, buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<std::size_t>(n));
    }
    try {
      port_ = std::stoi(line);
    } catch (...) {
      stop();
      throw std::runtime_error("keel-mock-model-server printed no port: '" + line + "'; log: " + read_file(log_));
    }
  }
  ~MockServer() { stop(); }
  MockServer(const MockServer&) = delete;
  MockServer& operator=(const MockServer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Every request received so far: {"method","path","headers","body"}.
  std::vector<json::object> requests() const { return parse_jsonl(read_file(record_)); }
  // POSTs to a model endpoint, in arrival order.
  std::vector<json::object> model_requests() const {
    std::vector<json::object> out;
    for (auto& r : requests())
      if (str(r, "method") == "POST") out.push_back(r);
    return out;
  }
  std::string log() const { return read_file(log_); }

  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      for (int i = 0; i < 200 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (::waitpid(pid_, &status, WNOHANG) == 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
      }
      pid_ = -1;
    }
    if (out_fd_ >= 0) ::close(out_fd_), out_fd_ = -1;
  }

 private:
  fs::path script_, record_, log_;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = 0;
};

// ---- KEEL_HOME --------------------------------------------------------------------------

// The provider entries every test home has. retry_base_delay_ms = 1 keeps retries fast.
inline std::string provider_config(int port, const std::string& extra = "") {
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  auto entry = [&](const std::string& id, const std::string& name, const std::string& wire, const std::string& url) {
    return "[model_providers." + id + "]\nname = \"" + name + "\"\nbase_url = \"" + url + "\"\nwire_api = \"" + wire +
           "\"\nenv_key = \"" + kKeyEnv +
           "\"\nretry_base_delay_ms = 1\nretry_max_delay_ms = 20\nrequest_max_retries = 3\nstream_max_retries = 3\n"
           "stream_idle_timeout_ms = 5000\nconnect_timeout_ms = 2000\n\n";
  };
  return "model = \"test-model\"\nmodel_provider = \"mock-responses\"\n\n" +
         entry("mock-responses", "Mock Responses", "responses", base + "/v1") +
         entry("mock-chat", "Mock Chat", "chat", base + "/v1") +
         entry("mock-anthropic", "Mock Anthropic", "anthropic", base) + extra;
}

struct Home {
  TempDir tmp{"keel-e2e"};
  fs::path home = tmp / "home";
  fs::path work = tmp / "work";

  // Copies the signed first-party modules and the key that signed them from the build tree.
  explicit Home(const std::string& config_toml) {
    REQUIRE(fs::is_directory(kBuildHome / "modules"));
    fs::create_directories(work);
    fs::create_directories(home);
    fs::copy(kBuildHome / "modules", home / "modules", fs::copy_options::recursive);
    fs::copy(kBuildHome / "trusted_keys", home / "trusted_keys", fs::copy_options::recursive);
    write_file(home / "config.toml", config_toml);
  }
};

// ---- running keel ------------------------------------------------------------------------

struct KeelRun {
  int exit_code = -1;
  std::string out, err;
  double seconds = 0;
  std::vector<json::object> events;  // stdout parsed as JSONL (when it was --json)

  std::string describe() const {
    return "exit " + std::to_string(exit_code) + " after " + std::to_string(seconds) + " s\nstdout:\n" + out +
           "\nstderr:\n" + err;
  }
  std::vector<json::object> of_type(std::string_view type) const {
    std::vector<json::object> o;
    for (auto& e : events)
      if (str(e, "type") == type) o.push_back(e);
    return o;
  }
  // item.completed events whose item has this type.
  std::vector<json::object> completed(std::string_view item_type) const {
    std::vector<json::object> o;
    for (auto& e : of_type("item.completed"))
      if (auto* i = e.if_contains("item"); i && i->is_object() && str(i->as_object(), "type") == item_type)
        o.push_back(i->as_object());
    return o;
  }
  std::vector<std::string> types() const {
    std::vector<std::string> t;
    for (auto& e : events) t.push_back(str(e, "type"));
    return t;
  }
  std::vector<std::string> error_messages() const {
    std::vector<std::string> m;
    for (auto& e : of_type("error")) m.push_back(str(e, "message"));
    return m;
  }
  std::string failure_message() const {
    auto f = of_type("turn.failed");
    if (f.empty()) return {};
    auto* e = f.back().if_contains("error");
    return e && e->is_object() ? str(e->as_object(), "message") : std::string{};
  }
};

// Runs the real keel with KEEL_HOME=home (and the test key unless told otherwise).
inline KeelRun run_keel(const Home& h, std::vector<std::string> args, std::map<std::string, std::string> env = {},
                        bool with_key = true, const fs::path& exe = kKeelExe) {
  common::ProcessOptions o;
  o.argv = {exe.string()};
  for (auto& a : args) o.argv.push_back(a);
  o.cwd = h.work.string();
  o.env = std::move(env);
  o.env["KEEL_HOME"] = h.home.string();
  if (with_key) o.env.emplace(kKeyEnv, kKey);
  else o.env_remove.push_back(kKeyEnv);
  o.env_remove.push_back("KEEL_LOG");
  o.timeout = std::chrono::seconds(60);
  o.max_output_bytes = 8 * 1024 * 1024;
  auto r = common::run_process(o);
  KeelRun k;
  k.exit_code = r.exit_code;
  k.out = r.stdout_text();
  k.err = r.stderr_text();
  k.seconds = r.wall_seconds();
  if (!r.spawned) k.err += "\n(could not start: " + r.error + ")";
  try {
    k.events = parse_jsonl(k.out);
  } catch (const std::exception&) {
    // Not JSONL (text mode); leave events empty.
  }
  return k;
}

// `keel exec --json --provider P -m test-model -C work PROMPT` plus extra flags.
inline KeelRun exec_json(const Home& h, const std::string& provider, const std::string& prompt,
                         std::vector<std::string> extra = {}, std::map<std::string, std::string> env = {},
                         bool with_key = true) {
  std::vector<std::string> args{"exec", "--json"};
  if (!provider.empty()) args.insert(args.end(), {"--provider", provider});
  args.insert(args.end(), {"-m", "test-model", "-C", h.work.string()});
  for (auto& e : extra) args.push_back(e);
  args.push_back(prompt);
  return run_keel(h, args, std::move(env), with_key);
}

// The request body's text, for "the model was told X" checks that do not depend on the
// wire format's item shapes.
inline std::string body_text(const json::object& request) {
  auto* b = request.if_contains("body");
  return b ? json::serialize(*b) : std::string{};
}

// The tool outputs a request carried back to the model, whatever the wire format:
// Responses function_call_output, Chat role "tool" messages, Anthropic tool_result blocks.
inline std::vector<std::string> tool_outputs(const json::object& request) {
  std::vector<std::string> out;
  auto* b = request.if_contains("body");
  if (!b || !b->is_object()) return out;
  auto& body = b->as_object();
  auto text_of = [](const json::value& v) -> std::string {
    if (v.is_string()) return std::string(v.as_string());
    std::string s;
    if (v.is_array())
      for (auto& p : v.as_array())
        if (p.is_object()) s += str(p.as_object(), "text");
    return s.empty() ? json::serialize(v) : s;
  };
  if (auto* input = body.if_contains("input"); input && input->is_array())
    for (auto& i : input->as_array())
      if (i.is_object() && (str(i.as_object(), "type") == "function_call_output" ||
                            str(i.as_object(), "type") == "custom_tool_call_output"))
        if (auto* o = i.as_object().if_contains("output")) out.push_back(text_of(*o));
  if (auto* msgs = body.if_contains("messages"); msgs && msgs->is_array())
    for (auto& m : msgs->as_array()) {
      if (!m.is_object()) continue;
      auto& mo = m.as_object();
      if (str(mo, "role") == "tool")
        if (auto* c = mo.if_contains("content")) out.push_back(text_of(*c));
      if (auto* c = mo.if_contains("content"); c && c->is_array())
        for (auto& block : c->as_array())
          if (block.is_object() && str(block.as_object(), "type") == "tool_result")
            if (auto* bc = block.as_object().if_contains("content")) out.push_back(text_of(*bc));
    }
  return out;
}

}  // namespace keel::e2e
