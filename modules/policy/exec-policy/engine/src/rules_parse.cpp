// Parser for rules files: `prefix_rule(...)` statements into PrefixRule values, with the
// match / not_match examples checked at load time.
#include <algorithm>
#include <array>
#include <map>

#include "keel/policy/rules.hpp"
#include "keel/policy/shell_parse.hpp"
#include "rules_lexer.hpp"

namespace keel::policy {

namespace {
std::string format_error(const std::string& file, int line, int column, const std::string& msg) {
  std::string out = file;
  if (line > 0) {
    out += ":" + std::to_string(line);
    if (column > 0) out += ":" + std::to_string(column);
  }
  return out + ": " + msg;
}
}  // namespace

RulesError::RulesError(std::string file, int line, int column, std::string message)
    : std::runtime_error(format_error(file, line, column, message)),
      file_(std::move(file)),
      line_(line),
      column_(column),
      message_(std::move(message)) {}

std::string_view to_string(RuleDecision d) {
  switch (d) {
    case RuleDecision::allow: return "allow";
    case RuleDecision::prompt: return "prompt";
    case RuleDecision::forbidden: return "forbidden";
  }
  return "forbidden";
}

std::optional<RuleDecision> parse_rule_decision(std::string_view s) {
  if (s == "allow") return RuleDecision::allow;
  if (s == "prompt") return RuleDecision::prompt;
  if (s == "forbidden") return RuleDecision::forbidden;
  return std::nullopt;
}

namespace {

using detail::Tok;
using detail::Token;

struct Value {
  enum class Kind { str, list, none } kind = Kind::none;
  std::string s;
  std::vector<Value> items;
  int line = 0;
  int col = 0;
};

constexpr std::array<std::string_view, 5> kArguments = {"pattern", "decision", "justification",
                                                        "match", "not_match"};

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

struct Example {
  std::vector<std::string> argv;
  std::string shown;  // as written, for messages
  int line = 0;
  int col = 0;
};

class Parser {
 public:
  Parser(std::vector<Token> toks, const std::string& file) : t_(std::move(toks)), file_(file) {}

  std::vector<PrefixRule> run() {
    std::vector<PrefixRule> rules;
    int last_line = 0;  // line where the previous statement ended; 0: none or after ';'
    while (cur().kind != Tok::end) {
      if (cur().kind == Tok::semicolon) {
        next();
        last_line = 0;
        continue;
      }
      if (last_line != 0 && cur().line == last_line) {
        fail(cur(), "expected a newline or ';' between statements");
      }
      rules.push_back(statement());
      last_line = t_[pos_ - 1].line;
    }
    return rules;
  }

 private:
  std::vector<Token> t_;
  const std::string& file_;
  std::size_t pos_ = 0;

  const Token& cur() const { return t_[pos_]; }
  const Token& next() { return t_[pos_ < t_.size() - 1 ? pos_++ : pos_]; }

  [[noreturn]] void fail(int line, int col, const std::string& msg) const {
    throw RulesError(file_, line, col, msg);
  }
  [[noreturn]] void fail(const Token& t, const std::string& msg) const { fail(t.line, t.col, msg); }
  [[noreturn]] void fail(const Value& v, const std::string& msg) const { fail(v.line, v.col, msg); }

  const Token& expect(Tok kind, const char* what) {
    if (cur().kind != kind) fail(cur(), std::string("expected ") + what + ", found " + describe(cur()));
    return next();
  }

  PrefixRule statement() {
    const Token& name = cur();
    if (name.kind != Tok::ident) fail(name, "expected prefix_rule(...), found " + describe(name));
    if (t_[pos_ + 1].kind == Tok::equals) {
      fail(name, "assignments are not supported; only prefix_rule(...) calls are allowed");
    }
    if (name.text != "prefix_rule") {
      fail(name, "unknown function '" + name.text + "'; only prefix_rule(...) is supported");
    }
    const Token call = next();
    expect(Tok::lparen, "'(' after prefix_rule");

    std::map<std::string, Value> args;
    bool seen_keyword = false;
    int positional = 0;
    while (cur().kind != Tok::rparen) {
      if (cur().kind == Tok::ident && t_[pos_ + 1].kind == Tok::equals) {
        const Token key = next();
        next();  // '='
        seen_keyword = true;
        if (std::find(kArguments.begin(), kArguments.end(), key.text) == kArguments.end()) {
          fail(key, unknown_argument(key.text));
        }
        if (args.count(key.text)) fail(key, "argument '" + key.text + "' given twice");
        args[key.text] = value();
      } else {
        const Token& at = cur();
        if (seen_keyword) fail(at, "positional argument after keyword arguments");
        if (positional++ > 0) {
          fail(at, "prefix_rule takes one positional argument (pattern); use pattern=, "
                   "decision=, justification=, match=, not_match=");
        }
        args["pattern"] = value();
      }
      if (cur().kind == Tok::comma) {
        next();
      } else if (cur().kind != Tok::rparen) {
        fail(cur(), "expected ',' or ')' in prefix_rule(...), found " + describe(cur()));
      }
    }
    next();  // ')'
    return build(call, args);
  }

  static std::string unknown_argument(const std::string& name) {
    std::string msg = "unknown argument '" + name + "'";
    std::string_view best;
    std::size_t best_d = 3;
    for (auto a : kArguments) {
      const auto d = edit_distance(name, a);
      if (d < best_d) {
        best_d = d;
        best = a;
      }
    }
    if (!best.empty()) msg += " (did you mean '" + std::string(best) + "'?)";
    return msg;
  }

  Value value(int depth = 0) {
    const Token& t = cur();
    if (depth > 32) fail(t, "lists nested too deeply");
    Value v;
    v.line = t.line;
    v.col = t.col;
    switch (t.kind) {
      case Tok::string:
        v.kind = Value::Kind::str;
        v.s = next().text;
        return v;
      case Tok::lbrack:
        v.kind = Value::Kind::list;
        next();
        while (cur().kind != Tok::rbrack) {
          v.items.push_back(value(depth + 1));
          if (cur().kind == Tok::comma) {
            next();
          } else if (cur().kind != Tok::rbrack) {
            fail(cur(), "expected ',' or ']' in list, found " + describe(cur()));
          }
        }
        next();
        return v;
      case Tok::ident:
        if (t.text == "None") {
          next();
          return v;
        }
        fail(t, "unexpected name '" + t.text + "' (strings must be quoted)");
      default:
        fail(t, "expected a string or a list, found " + describe(t));
    }
  }

  std::string require_string(const Value& v, const char* what) const {
    if (v.kind != Value::Kind::str) fail(v, std::string(what) + " must be a string");
    return v.s;
  }

  std::vector<PatternToken> pattern(const Value& v) const {
    if (v.kind != Value::Kind::list) fail(v, "pattern must be a list of strings");
    if (v.items.empty()) fail(v, "pattern must not be empty");
    std::vector<PatternToken> out;
    for (const auto& item : v.items) {
      PatternToken tok;
      if (item.kind == Value::Kind::str) {
        tok.alternatives.push_back(item.s);
      } else if (item.kind == Value::Kind::list) {
        if (item.items.empty()) fail(item, "a list of alternatives must not be empty");
        for (const auto& alt : item.items) {
          if (alt.kind != Value::Kind::str) fail(alt, "alternatives must be strings");
          tok.alternatives.push_back(alt.s);
        }
      } else {
        fail(item, "a pattern element must be a string or a list of strings");
      }
      out.push_back(std::move(tok));
    }
    return out;
  }

  std::vector<Example> examples(const Value& v, const char* what) const {
    std::vector<Example> out;
    if (v.kind == Value::Kind::none) return out;
    if (v.kind != Value::Kind::list) {
      fail(v, std::string(what) + " must be a list of commands (strings or lists of strings)");
    }
    for (const auto& item : v.items) {
      Example ex;
      ex.line = item.line;
      ex.col = item.col;
      if (item.kind == Value::Kind::str) {
        auto split = shell_split(item.s);
        if (!split) fail(item, std::string("cannot split ") + what + " example " + starlark_quote(item.s) +
                                   ": unterminated quote or trailing backslash");
        ex.argv = std::move(*split);
        ex.shown = starlark_quote(item.s);
      } else if (item.kind == Value::Kind::list) {
        for (const auto& tok : item.items) {
          if (tok.kind != Value::Kind::str) fail(tok, std::string(what) + " example tokens must be strings");
          ex.argv.push_back(tok.s);
        }
        ex.shown = "[";
        for (std::size_t k = 0; k < ex.argv.size(); ++k) {
          ex.shown += (k ? ", " : "") + starlark_quote(ex.argv[k]);
        }
        ex.shown += "]";
      } else {
        fail(item, std::string(what) + " examples must be strings or lists of strings");
      }
      if (ex.argv.empty()) fail(item, std::string("empty ") + what + " example");
      out.push_back(std::move(ex));
    }
    return out;
  }

  PrefixRule build(const Token& call, const std::map<std::string, Value>& args) const {
    PrefixRule rule;
    rule.file = file_;
    rule.line = call.line;
    const auto p = args.find("pattern");
    if (p == args.end() || p->second.kind == Value::Kind::none) {
      fail(call, "prefix_rule() is missing pattern=[...]");
    }
    rule.pattern = pattern(p->second);
    if (auto d = args.find("decision"); d != args.end() && d->second.kind != Value::Kind::none) {
      const auto text = require_string(d->second, "decision");
      const auto parsed = parse_rule_decision(text);
      if (!parsed) {
        fail(d->second, "unknown decision " + starlark_quote(text) +
                            " (expected \"allow\", \"prompt\" or \"forbidden\")");
      }
      rule.decision = *parsed;
    }
    if (auto j = args.find("justification"); j != args.end() && j->second.kind != Value::Kind::none) {
      rule.justification = require_string(j->second, "justification");
    }
    std::vector<Example> match;
    std::vector<Example> not_match;
    if (auto m = args.find("match"); m != args.end()) match = examples(m->second, "match");
    if (auto m = args.find("not_match"); m != args.end()) not_match = examples(m->second, "not_match");
    for (const auto& ex : match) {
      if (!rule.matches_exactly(ex.argv)) {
        fail(ex.line, ex.col, "match example " + ex.shown + " does not match pattern " + rule.pattern_text());
      }
      rule.match_examples.push_back(ex.argv);
    }
    for (const auto& ex : not_match) {
      if (rule.matches_exactly(ex.argv)) {
        fail(ex.line, ex.col, "not_match example " + ex.shown + " matches pattern " + rule.pattern_text());
      }
      rule.not_match_examples.push_back(ex.argv);
    }
    return rule;
  }
};

}  // namespace

std::vector<PrefixRule> parse_rules(std::string_view text, const std::string& file_name) {
  return Parser(detail::lex_rules(text, file_name), file_name).run();
}

}  // namespace keel::policy
