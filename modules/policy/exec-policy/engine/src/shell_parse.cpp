// The plain-script parser (see shell_parse.hpp for what it accepts and rejects).
#include "keel/policy/shell_parse.hpp"

#include <algorithm>
#include <array>

namespace keel::policy {

std::vector<std::string> ShellCommand::argv() const {
  std::vector<std::string> out;
  out.reserve(words.size());
  for (const auto& w : words) out.push_back(w.text);
  return out;
}

bool ShellCommand::has_glob() const {
  return std::any_of(words.begin(), words.end(), [](const ShellWord& w) { return w.glob; });
}

namespace {

// A word being read: its text and, per byte, whether that byte was unquoted.
struct RawWord {
  std::string text;
  std::vector<bool> unquoted;
  bool any_quoted = false;

  bool present() const { return any_quoted || !text.empty(); }
  void add(char c, bool is_unquoted) {
    text.push_back(c);
    unquoted.push_back(is_unquoted);
    if (!is_unquoted) any_quoted = true;
  }
  bool all_unquoted_digits() const {
    if (text.empty() || any_quoted) return false;
    return std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  }
};

constexpr std::array<std::string_view, 22> kReservedWords = {
    "if",   "then",   "else", "elif",   "fi", "for", "while", "until",
    "do",   "done",   "case", "esac",   "function", "select", "time", "coproc",
    "in",   "{",      "}",    "[[",     "]]", "!"};

bool is_meta(char c) {
  switch (c) {
    case ' ': case '\t': case '\n': case ';': case '&': case '|':
    case '(': case ')': case '<': case '>':
      return true;
    default:
      return false;
  }
}

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

// An unquoted `{` ... `}` with an unquoted `,` or `..` between: brace expansion.
// One pass (model input must not make this quadratic): the first unquoted `{` opens the
// widest window, so a separator after it and a `}` after that is enough.
bool has_brace_expansion(const RawWord& w) {
  bool open = false;
  bool separator = false;
  const auto n = w.text.size();
  for (std::size_t k = 0; k < n; ++k) {
    if (!w.unquoted[k]) continue;
    const char c = w.text[k];
    if (c == '{') {
      open = true;
    } else if (open && c == ',') {
      separator = true;
    } else if (open && c == '.' && k + 1 < n && w.text[k + 1] == '.' && w.unquoted[k + 1]) {
      separator = true;
    } else if (c == '}' && separator) {
      return true;
    }
  }
  return false;
}

bool has_unquoted_glob(const RawWord& w) {
  for (std::size_t k = 0; k < w.text.size(); ++k) {
    const char c = w.text[k];
    if (w.unquoted[k] && (c == '*' || c == '?' || c == '[')) return true;
  }
  return false;
}

// `NAME=`, `NAME+=` or `NAME[` at the start of a word, all unquoted.
bool is_assignment(const RawWord& w) {
  std::size_t k = 0;
  const auto n = w.text.size();
  if (n == 0 || !w.unquoted[0] || !is_name_start(w.text[0])) return false;
  while (k < n && w.unquoted[k] && is_name_char(w.text[k])) ++k;
  if (k >= n || !w.unquoted[k]) return false;
  if (w.text[k] == '=' || w.text[k] == '[') return true;
  return w.text[k] == '+' && k + 1 < n && w.unquoted[k + 1] && w.text[k + 1] == '=';
}

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  std::optional<std::vector<ShellCommand>> run() {
    if (s_.find('\0') != std::string_view::npos) return std::nullopt;
    while (i_ < s_.size()) {
      if (!step()) return std::nullopt;
    }
    if (!end_of_input()) return std::nullopt;
    return std::move(out_);
  }

 private:
  enum class Op { newline, semi, and_and, or_or, pipe };

  std::string_view s_;
  std::size_t i_ = 0;
  std::vector<ShellCommand> out_;
  std::vector<RawWord> cur_;
  bool cur_redirect_ = false;
  bool need_command_ = false;  // after && || |: a command must follow

  char peek(std::size_t ahead = 0) const {
    return i_ + ahead < s_.size() ? s_[i_ + ahead] : '\0';
  }

  bool step() {
    const char c = s_[i_];
    switch (c) {
      case ' ':
      case '\t':
        ++i_;
        return true;
      case '\n':
        ++i_;
        return end_command(Op::newline);
      case '#':  // only reached at the start of a word
        while (i_ < s_.size() && s_[i_] != '\n') ++i_;
        return true;
      case ';':
        if (peek(1) == ';' || peek(1) == '&') return false;  // case terminators
        ++i_;
        return end_command(Op::semi);
      case '&':
        if (peek(1) == '&') {
          i_ += 2;
          return end_command(Op::and_and);
        }
        if (peek(1) == '>') {  // &> / &>>: stdout and stderr
          ++i_;
          return redirect(/*fd_given=*/false, /*both=*/true);
        }
        return false;  // backgrounding
      case '|':
        if (peek(1) == '|') {
          i_ += 2;
          return end_command(Op::or_or);
        }
        if (peek(1) == '&') return false;  // |&
        ++i_;
        return end_command(Op::pipe);
      case '(':
      case ')':
      case '<':
        return false;
      case '>':
        return redirect(/*fd_given=*/false, /*both=*/false);
      default:
        return word();
    }
  }

  bool word() {
    RawWord w;
    if (!read_word(w)) return false;
    if (!w.present()) return true;  // e.g. a lone line continuation
    if (peek() == '>' && w.all_unquoted_digits()) return redirect(/*fd_given=*/true, false);
    if (has_brace_expansion(w)) return false;
    cur_.push_back(std::move(w));
    return true;
  }

  // Reads one word up to an unquoted metacharacter.
  bool read_word(RawWord& w) {
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (is_meta(c)) return true;
      switch (c) {
        case '\'': {
          const auto close = s_.find('\'', i_ + 1);
          if (close == std::string_view::npos) return false;
          for (auto k = i_ + 1; k < close; ++k) w.add(s_[k], false);
          w.any_quoted = true;
          i_ = close + 1;
          break;
        }
        case '"':
          if (!read_double_quoted(w)) return false;
          break;
        case '\\':
          if (i_ + 1 >= s_.size()) return false;
          if (s_[i_ + 1] != '\n') w.add(s_[i_ + 1], false);
          i_ += 2;
          break;
        case '$':
        case '`':
          return false;
        default:
          w.add(c, true);
          ++i_;
          break;
      }
    }
    return true;
  }

  bool read_double_quoted(RawWord& w) {
    w.any_quoted = true;
    ++i_;  // opening quote
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c == '$' || c == '`') return false;
      if (c == '\\' && i_ + 1 < s_.size()) {
        const char e = s_[i_ + 1];
        if (e == '$' || e == '`' || e == '"' || e == '\\') {
          w.add(e, false);
          i_ += 2;
          continue;
        }
        if (e == '\n') {
          i_ += 2;
          continue;
        }
      }
      w.add(c, false);
      ++i_;
    }
    return false;  // unterminated
  }

  // At `>`. Accepts only `[n]>&m` and output to /dev/null; see shell_parse.hpp.
  bool redirect(bool fd_given, bool both) {
    ++i_;  // '>'
    bool dup = false;
    if (peek() == '>' || peek() == '|') {
      ++i_;
    } else if (peek() == '&' && !both) {
      ++i_;
      dup = true;
    }
    while (peek() == ' ' || peek() == '\t') ++i_;
    RawWord target;
    if (!read_word(target) || !target.present()) return false;
    bool ok = false;
    if (dup && target.all_unquoted_digits()) {
      ok = true;  // fd duplication, e.g. 2>&1
    } else if (!(dup && fd_given)) {
      ok = target.text == "/dev/null" && !has_unquoted_glob(target);
    }
    if (!ok) return false;
    cur_redirect_ = true;
    return true;
  }

  bool finish_command() {
    if (cur_.empty()) return !cur_redirect_;
    const RawWord& first = cur_.front();
    if (!first.any_quoted) {
      for (auto kw : kReservedWords) {
        if (first.text == kw) return false;
      }
    }
    if (is_assignment(first)) return false;
    ShellCommand cmd;
    for (auto& w : cur_) {
      ShellWord sw;
      sw.glob = has_unquoted_glob(w);
      sw.quoted = w.any_quoted;
      sw.text = std::move(w.text);
      cmd.words.push_back(std::move(sw));
    }
    out_.push_back(std::move(cmd));
    cur_.clear();
    cur_redirect_ = false;
    return true;
  }

  bool end_command(Op op) {
    const bool empty = cur_.empty() && !cur_redirect_;
    if (op == Op::newline) {
      if (empty) return true;  // blank line, or a newline after && || |
      need_command_ = false;
      return finish_command();
    }
    if (cur_.empty()) return false;  // `; ls`, `&& ls`, `>/dev/null ;`
    if (!finish_command()) return false;
    need_command_ = op != Op::semi;
    return true;
  }

  bool end_of_input() {
    if (!cur_.empty() || cur_redirect_) {
      if (!finish_command()) return false;
      need_command_ = false;
    }
    return !need_command_;
  }
};

}  // namespace

std::optional<std::vector<ShellCommand>> parse_shell_script(std::string_view script) {
  return Parser(script).run();
}

std::optional<std::vector<std::vector<std::string>>> parse_plain_commands(std::string_view script) {
  auto parsed = parse_shell_script(script);
  if (!parsed) return std::nullopt;
  std::vector<std::vector<std::string>> out;
  out.reserve(parsed->size());
  for (const auto& cmd : *parsed) out.push_back(cmd.argv());
  return out;
}

}  // namespace keel::policy
