// Lexer for rules files: identifiers, strings (plain, raw, triple-quoted), punctuation,
// comments. Errors carry file:line:column.
#include "rules_lexer.hpp"

#include <cstdio>

#include "keel/policy/rules.hpp"

namespace keel::policy::detail {
namespace {

bool ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool ident_char(char c) { return ident_start(c) || (c >= '0' && c <= '9'); }

std::string printable(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return std::string(1, c);
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\x%02x", u);
  return buf;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Lexer {
 public:
  Lexer(std::string_view s, const std::string& file) : s_(s), file_(file) {}

  std::vector<Token> run() {
    std::vector<Token> out;
    while (true) {
      skip_blanks_and_comments();
      Token t;
      t.line = line_;
      t.col = col_;
      if (i_ >= s_.size()) {
        t.kind = Tok::end;
        out.push_back(std::move(t));
        return out;
      }
      const char c = s_[i_];
      if ((c == 'r' || c == 'R') && (peek(1) == '"' || peek(1) == '\'')) {
        advance();
        t.kind = Tok::string;
        t.text = string_literal(/*raw=*/true, t);
      } else if (ident_start(c)) {
        t.kind = Tok::ident;
        while (i_ < s_.size() && ident_char(s_[i_])) t.text.push_back(advance());
      } else if (c == '"' || c == '\'') {
        t.kind = Tok::string;
        t.text = string_literal(/*raw=*/false, t);
      } else {
        switch (c) {
          case '(': t.kind = Tok::lparen; break;
          case ')': t.kind = Tok::rparen; break;
          case '[': t.kind = Tok::lbrack; break;
          case ']': t.kind = Tok::rbrack; break;
          case ',': t.kind = Tok::comma; break;
          case '=': t.kind = Tok::equals; break;
          case ';': t.kind = Tok::semicolon; break;
          default:
            fail(line_, col_, "unexpected character '" + printable(c) + "'");
        }
        advance();
      }
      out.push_back(std::move(t));
    }
  }

 private:
  std::string_view s_;
  const std::string& file_;
  std::size_t i_ = 0;
  int line_ = 1;
  int col_ = 1;

  [[noreturn]] void fail(int line, int col, std::string msg) const {
    throw RulesError(file_, line, col, std::move(msg));
  }

  char peek(std::size_t ahead = 0) const {
    return i_ + ahead < s_.size() ? s_[i_ + ahead] : '\0';
  }

  char advance() {
    const char c = s_[i_++];
    if (c == '\n') {
      ++line_;
      col_ = 1;
    } else {
      ++col_;
    }
    return c;
  }

  void skip_blanks_and_comments() {
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        advance();
      } else if (c == '\\' && peek(1) == '\n') {
        advance();
        advance();
      } else if (c == '#') {
        while (i_ < s_.size() && s_[i_] != '\n') advance();
      } else {
        return;
      }
    }
  }

  // At the opening quote (after any `r` prefix).
  std::string string_literal(bool raw, const Token& start) {
    const char q = s_[i_];
    const bool triple = peek(1) == q && peek(2) == q;
    for (int k = 0; k < (triple ? 3 : 1); ++k) advance();
    std::string out;
    while (true) {
      if (i_ >= s_.size()) fail(start.line, start.col, "unterminated string");
      const char c = s_[i_];
      if (c == q && (!triple || (peek(1) == q && peek(2) == q))) {
        for (int k = 0; k < (triple ? 3 : 1); ++k) advance();
        return out;
      }
      if (c == '\n' && !triple) fail(start.line, start.col, "unterminated string");
      if (c != '\\') {
        out.push_back(advance());
        continue;
      }
      const int esc_line = line_;
      const int esc_col = col_;
      advance();  // backslash
      if (i_ >= s_.size()) fail(start.line, start.col, "unterminated string");
      const char e = s_[i_];
      if (raw) {  // kept literally; an escaped quote does not end the string
        out.push_back('\\');
        out.push_back(advance());
        continue;
      }
      advance();
      switch (e) {
        case '\n': break;  // line continuation
        case '\\': out.push_back('\\'); break;
        case '\'': out.push_back('\''); break;
        case '"': out.push_back('"'); break;
        case 'n': out.push_back('\n'); break;
        case 't': out.push_back('\t'); break;
        case 'r': out.push_back('\r'); break;
        case 'a': out.push_back('\a'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'v': out.push_back('\v'); break;
        case 'x': {
          const int hi = hex_value(peek());
          const int lo = hex_value(peek(1));
          if (hi < 0 || lo < 0) fail(esc_line, esc_col, "invalid \\x escape (two hex digits expected)");
          advance();
          advance();
          out.push_back(static_cast<char>(hi * 16 + lo));
          break;
        }
        default:
          if (e >= '0' && e <= '7') {  // octal: up to three digits
            int v = e - '0';
            for (int k = 0; k < 2 && peek() >= '0' && peek() <= '7'; ++k) v = v * 8 + (advance() - '0');
            if (v > 0xff) fail(esc_line, esc_col, "octal escape out of range");
            out.push_back(static_cast<char>(v));
            break;
          }
          fail(esc_line, esc_col, "invalid escape sequence '\\" + printable(e) + "'");
      }
    }
  }
};

}  // namespace

std::vector<Token> lex_rules(std::string_view text, const std::string& file) {
  return Lexer(text, file).run();
}

std::string describe(const Token& t) {
  switch (t.kind) {
    case Tok::ident: return "'" + t.text + "'";
    case Tok::string: return "string";
    case Tok::lparen: return "'('";
    case Tok::rparen: return "')'";
    case Tok::lbrack: return "'['";
    case Tok::rbrack: return "']'";
    case Tok::comma: return "','";
    case Tok::equals: return "'='";
    case Tok::semicolon: return "';'";
    case Tok::end: return "end of file";
  }
  return "token";
}

}  // namespace keel::policy::detail
