// The terminal the chat front end talks through: serialized, optionally coloured output, and
// line input that can be abandoned (an interrupt, a withdrawn approval) while it waits.
#pragma once

#include <functional>
#include <mutex>
#include <string>

namespace keel::chat {

class Terminal {
 public:
  Terminal(int in_fd, int out_fd);

  struct Input {
    enum Kind { line, end_of_input, abandoned } kind;
    std::string text;  // the line without its newline
  };
  // Prints `prompt` and waits for one line. Returns `abandoned` as soon as `give_up()` is
  // true (checked a few times a second) and `end_of_input` on Ctrl-D or a closed input.
  Input read_line(const std::string& prompt, const std::function<bool()>& give_up);

  // Whether more input arrives within `wait`: lines that come faster than anyone types are
  // a paste, and belong to the same message.
  bool more_input_within(int wait_ms);

  // Drops what was typed ahead and not read yet: an answer to a question must be typed after
  // the question is shown.
  void discard_typeahead();

  // Writes as is; safe from any thread.
  void write(const std::string& text);

  bool colour() const { return colour_; }
  std::string bold(const std::string& s) const { return wrap("1", s); }
  std::string dim(const std::string& s) const { return wrap("2", s); }
  std::string red(const std::string& s) const { return wrap("31", s); }
  std::string green(const std::string& s) const { return wrap("32", s); }
  std::string cyan(const std::string& s) const { return wrap("36", s); }

 private:
  std::string wrap(const char* code, const std::string& s) const {
    return colour_ ? "\x1b[" + std::string(code) + "m" + s + "\x1b[0m" : s;
  }
  int in_;
  int out_;
  bool colour_;
  bool at_end_ = false;
  std::string pending_;  // read but not yet returned (type-ahead)
  std::mutex out_mu_;
};

}  // namespace keel::chat
