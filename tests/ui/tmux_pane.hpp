// A program running in a real terminal: a detached tmux session on a private tmux server,
// driven with send-keys and read with capture-pane, as a person at a terminal would.
#pragma once

#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace keel::ui_test {

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a command line through /bin/sh and returns its standard output.
inline std::string run_capture(const std::string& command) {
  std::string out;
  if (FILE* p = ::popen(command.c_str(), "r")) {
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

class TmuxPane {
 public:
  // Starts `argv` (with `env` as NAME=VALUE words) in a 120x50 terminal. When the program
  // ends the pane prints "KEEL-EXIT=<status>" and stays open so the screen can be read.
  TmuxPane(const std::vector<std::string>& env, const std::vector<std::string>& argv) {
    static int counter = 0;
    socket_ = "keel-ui-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    std::string inner = "env";
    for (auto& e : env) inner += " " + shell_quote(e);
    for (auto& a : argv) inner += " " + shell_quote(a);
    inner += "; echo KEEL-EXIT=$?; sleep 600";
    tmux("new-session -d -s ui -x 120 -y 50 " + shell_quote(inner));
  }
  ~TmuxPane() { tmux("kill-server"); }
  TmuxPane(const TmuxPane&) = delete;
  TmuxPane& operator=(const TmuxPane&) = delete;

  // The whole screen and its scrollback, lines joined where the terminal wrapped them.
  std::string screen() const { return tmux("capture-pane -p -J -S -2000 -t ui"); }

  // Waits until the screen shows `text` (true) or `timeout` passes (false).
  bool wait_for(const std::string& text, std::chrono::milliseconds timeout = std::chrono::seconds(20)) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (screen().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return screen().find(text) != std::string::npos;
  }
  // Fails the test, showing the screen, unless `text` appears within `timeout`.
  void expect(const std::string& text, std::chrono::milliseconds timeout = std::chrono::seconds(20)) const {
    bool shown = wait_for(text, timeout);
    INFO("waited for \"" << text << "\"; the screen:\n" << screen());
    REQUIRE(shown);
  }
  // How often `text` is on the screen now.
  std::size_t count(const std::string& text) const {
    auto s = screen();
    std::size_t n = 0;
    for (auto at = s.find(text); at != std::string::npos; at = s.find(text, at + text.size())) ++n;
    return n;
  }

  void type(const std::string& text) const { tmux("send-keys -t ui -l " + shell_quote(text)); }
  void enter() const { tmux("send-keys -t ui Enter"); }
  void line(const std::string& text) const {
    type(text);
    enter();
  }
  // Pastes `text` into the pane at once, as a terminal does with the clipboard.
  void paste(const std::string& text) const {
    tmux("set-buffer -b keel-test " + shell_quote(text));
    tmux("paste-buffer -d -b keel-test -t ui");
  }
  void ctrl_c() const { tmux("send-keys -t ui C-c"); }
  void ctrl_d() const { tmux("send-keys -t ui C-d"); }
  // Sends `signo` to the program in the pane (the shell's child), as `kill` from elsewhere would.
  bool signal_program(int signo) const {
    std::string shell = tmux("display-message -p -t ui '#{pane_pid}'");
    while (!shell.empty() && (shell.back() == '\n' || shell.back() == ' ')) shell.pop_back();
    std::string children = run_capture("cat /proc/" + shell + "/task/*/children 2>/dev/null");
    int pid = std::atoi(children.c_str());
    return pid > 0 && ::kill(pid, signo) == 0;
  }

 private:
  std::string tmux(const std::string& args) const {
    return run_capture(std::string(KEEL_TMUX) + " -L " + socket_ + " -f /dev/null " + args + " 2>&1");
  }
  std::string socket_;
};

}  // namespace keel::ui_test
