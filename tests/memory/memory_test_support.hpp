// Shared by the memory tests, their child process and the bench: a throwaway directory, JSON
// calls through the module's C ABI, and real child processes (posix_spawn) with a pipe.
#pragma once

#include "abi_test_host.hpp"
#include "temp_dir.hpp"

#include <keel/abi.h>

#include <boost/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace keel::test::memory {

namespace json = boost::json;
namespace fs = std::filesystem;

using keel::test::TempDir;

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

// A module call whose reply payload is parsed.
struct JsonReply {
  int status = -1;
  json::object body;
  std::string raw;
  bool ok() const { return status == KEEL_OK; }
  std::string error_message() const {
    if (auto* e = body.if_contains("error"); e && e->is_object())
      if (auto* m = e->as_object().if_contains("message"); m && m->is_string()) return std::string(m->as_string());
    return {};
  }
};

inline JsonReply call_json(AbiTestHost& host, const std::string& capability, const std::string& method,
                           const json::value& payload) {
  auto r = host.call(capability, method, json::serialize(payload));
  if (r.reply_count != 1) throw std::runtime_error("expected exactly one reply, got " + std::to_string(r.reply_count));
  JsonReply out;
  out.status = r.status;
  out.raw = r.payload;
  auto v = json::parse(r.payload);
  if (v.is_object()) out.body = v.as_object();
  return out;
}

// Like call_json, but throws unless the reply is KEEL_OK.
inline json::object call_ok(AbiTestHost& host, const std::string& capability, const std::string& method,
                            const json::value& payload) {
  auto r = call_json(host, capability, method, payload);
  if (!r.ok())
    throw std::runtime_error(capability + "." + method + " failed (" + std::to_string(r.status) + "): " + r.raw);
  return r.body;
}

// The payload the kernel sends for one call of a JSON tool.
inline json::object tool_request(const json::object& args, const std::string& session_id = "s1",
                                 const std::string& turn_id = "t1", const std::string& call_id = "call_1") {
  return json::object{{"call_id", call_id},
                      {"name", "memory"},
                      {"arguments", json::serialize(args)},
                      {"cwd", "/tmp"},
                      {"sandbox", json::object{{"mode", "workspace-write"}}},
                      {"session_id", session_id},
                      {"turn_id", turn_id}};
}

// A child process with its stdout on a pipe.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int rc = ::posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    if (rc != 0) {
      ::close(fds[0]);
      throw std::runtime_error("cannot spawn " + argv[0]);
    }
    out_ = fds[0];
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait();
    }
    if (out_ >= 0) ::close(out_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }

  // The next line the child printed; nullopt at EOF or timeout.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      ssize_t n = ::read(out_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  void kill(int sig) { ::kill(pid_, sig); }

  // Waits for the child; returns the raw wait status.
  int wait() {
    int status = 0;
    if (pid_ > 0) {
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      pid_ = -1;
      status_ = status;
    }
    return status_;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int status_ = 0;
  std::string buf_;
};

}  // namespace keel::test::memory
