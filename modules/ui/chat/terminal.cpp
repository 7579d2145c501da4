#include "terminal.hpp"

#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <utility>

namespace keel::chat {

Terminal::Terminal(int in_fd, int out_fd) : in_(in_fd), out_(out_fd) {
  const char* term = std::getenv("TERM");
  colour_ = isatty(out_fd) && std::getenv("NO_COLOR") == nullptr && !(term && std::string(term) == "dumb");
}

void Terminal::write(const std::string& text) {
  std::lock_guard lock(out_mu_);
  std::size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(out_, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the terminal is gone; nothing sensible is left to do with output
    off += static_cast<std::size_t>(n);
  }
}

void Terminal::discard_typeahead() {
  pending_.clear();
  if (isatty(in_)) ::tcflush(in_, TCIFLUSH);
}

bool Terminal::more_input_within(int wait_ms) {
  if (!pending_.empty()) return true;
  if (at_end_) return false;
  pollfd p{in_, POLLIN, 0};
  return ::poll(&p, 1, wait_ms) > 0 && (p.revents & POLLIN);
}

Terminal::Input Terminal::read_line(const std::string& prompt, const std::function<bool()>& give_up) {
  write(prompt);
  for (;;) {
    if (auto nl = pending_.find('\n'); nl != std::string::npos) {
      std::string line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return {Input::line, std::move(line)};
    }
    if (at_end_) {
      // A last line without a newline still counts.
      if (!pending_.empty()) return {Input::line, std::exchange(pending_, {})};
      return {Input::end_of_input, {}};
    }
    if (give_up && give_up()) return {Input::abandoned, {}};
    // Polling in short slices keeps give_up() responsive without a second wake-up channel.
    pollfd p{in_, POLLIN, 0};
    int r = ::poll(&p, 1, 100);
    if (r < 0 && errno != EINTR) at_end_ = true;
    if (r <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(in_, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      at_end_ = true;
      continue;
    }
    pending_.append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace keel::chat
