// Rules files: a Starlark subset holding `prefix_rule(...)` calls.
//
//   # comment
//   prefix_rule(
//       pattern = ["git", ["push", "fetch"]],   # a list element may list alternatives
//       decision = "prompt",                    # "allow" (default) | "prompt" | "forbidden"
//       justification = "talks to the network",
//       match = ["git push origin main", ["git", "fetch"]],   # must match (shlex-split
//       not_match = ["git status"],                           #  strings or token lists)
//   )
//
// Syntax: strings in '...' or "..." (escapes \\ \' \" \n \t \r \a \b \f \v \0 \xHH and
// \<newline>), raw strings r"...", triple-quoted strings; lists with trailing commas;
// keyword arguments in any order; the pattern may also be the first positional argument;
// `None` stands for "not given" (justification, match, not_match). Statements are
// separated by newlines or `;`. Anything else is an error.
//
// Every error names the file, line and column: `rules/default.rules:12:5: unknown
// argument 'decison' (did you mean 'decision'?)`. Loading is all-or-nothing.
//
// Matching: a rule matches argv when argv has at least as many elements as the pattern
// and each leading element equals the pattern element (or one of its alternatives).
// For `prompt`/`forbidden` rules a program given by path also matches by its basename
// (`/bin/rm -rf /` hits a forbidden `rm` rule); `allow` rules only match the exact
// program, so `/tmp/x/git push` never borrows an allow rule for `git push`.
// The strictest matching decision wins (forbidden > prompt > allow); among equally
// strict rules the first loaded wins.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace keel::policy {

enum class RuleDecision { allow = 0, prompt = 1, forbidden = 2 };  // ordered by strictness

std::string_view to_string(RuleDecision d);
std::optional<RuleDecision> parse_rule_decision(std::string_view s);

// A load error, what() is "file:line:column: message" (column 0 is omitted, line 0 too).
class RulesError : public std::runtime_error {
 public:
  RulesError(std::string file, int line, int column, std::string message);
  const std::string& file() const noexcept { return file_; }
  int line() const noexcept { return line_; }
  int column() const noexcept { return column_; }
  const std::string& message() const noexcept { return message_; }

 private:
  std::string file_;
  int line_;
  int column_;
  std::string message_;
};

// One pattern element: a literal (one alternative) or a set of alternatives.
struct PatternToken {
  std::vector<std::string> alternatives;  // never empty
  bool matches(std::string_view arg) const;
};

struct PrefixRule {
  std::vector<PatternToken> pattern;  // never empty
  RuleDecision decision = RuleDecision::allow;
  std::string justification;
  std::string file;  // where it was defined
  int line = 0;
  std::vector<std::vector<std::string>> match_examples;
  std::vector<std::vector<std::string>> not_match_examples;

  // Exact prefix match (no basename fallback).
  bool matches_exactly(const std::vector<std::string>& argv) const;
  // Matching as used by evaluation (basename fallback for prompt/forbidden, see above).
  bool matches(const std::vector<std::string>& argv) const;
  // `["git", ["push", "fetch"]]`
  std::string pattern_text() const;
  // `file:line`
  std::string location() const;
};

// A matching rule, copied out so it outlives the RuleSet.
struct RuleMatch {
  RuleDecision decision = RuleDecision::allow;
  std::string file;
  int line = 0;
  std::string pattern;  // pattern_text()
  std::string justification;

  std::string location() const;  // `file:line`
};

class RuleSet {
 public:
  // Parses `text` as if read from `file_name` and adds its rules (all or nothing).
  void add_text(std::string_view text, std::string file_name);
  // Reads and adds a rules file. Throws RulesError (also for an unreadable file).
  void add_file(const std::filesystem::path& path);
  // Adds every `*.rules` file directly in `dir`, in name order; a missing dir is empty.
  void add_dir(const std::filesystem::path& dir);

  static RuleSet from_text(std::string_view text, std::string file_name);
  static RuleSet from_file(const std::filesystem::path& path);

  // Every matching rule, in load order.
  std::vector<RuleMatch> matches(const std::vector<std::string>& argv) const;
  // The strictest matching rule; std::nullopt when none matches.
  std::optional<RuleMatch> evaluate(const std::vector<std::string>& argv) const;

  const std::vector<PrefixRule>& rules() const noexcept { return rules_; }
  bool empty() const noexcept { return rules_.empty(); }
  std::size_t size() const noexcept { return rules_.size(); }

 private:
  std::vector<PrefixRule> rules_;
};

// Parses rules text; `file_name` is used in errors and in PrefixRule::file.
std::vector<PrefixRule> parse_rules(std::string_view text, const std::string& file_name);

// A Starlark string literal: "..." with \\ \" \n \t \r and \xHH for other control bytes.
std::string starlark_quote(std::string_view s);

// `prefix_rule(pattern=["git", "push"], decision="allow")` (+ justification when given).
std::string format_prefix_rule(const std::vector<std::string>& prefix, RuleDecision decision,
                               std::string_view justification = {});

// "Approve and add a rule": appends an allow rule for `prefix` to the rules file at
// `path` (created with its parent directories if missing; a missing final newline is
// added first). The appended text is parsed back before writing; the append holds an
// exclusive flock. Returns the rule text appended (without the leading newline). When an
// identical allow rule already exists in the file, nothing is written.
// Throws std::invalid_argument for an empty prefix, std::system_error on I/O errors.
std::string append_allow_rule(const std::filesystem::path& path,
                              const std::vector<std::string>& prefix,
                              std::string_view justification = {});

}  // namespace keel::policy
