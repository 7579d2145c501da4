// Loading rules into a RuleSet and evaluating commands against it.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "keel/policy/rules.hpp"

namespace keel::policy {

bool PatternToken::matches(std::string_view arg) const {
  return std::find(alternatives.begin(), alternatives.end(), arg) != alternatives.end();
}

bool PrefixRule::matches_exactly(const std::vector<std::string>& argv) const {
  if (argv.size() < pattern.size()) return false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (!pattern[i].matches(argv[i])) return false;
  }
  return true;
}

bool PrefixRule::matches(const std::vector<std::string>& argv) const {
  if (matches_exactly(argv)) return true;
  // prompt / forbidden rules also catch a program given by path (/bin/rm for rm).
  if (decision == RuleDecision::allow || argv.empty()) return false;
  const auto slash = argv[0].rfind('/');
  if (slash == std::string::npos) return false;
  std::vector<std::string> by_name = argv;
  by_name[0] = argv[0].substr(slash + 1);
  return matches_exactly(by_name);
}

std::string PrefixRule::pattern_text() const {
  std::string out = "[";
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (i) out += ", ";
    const auto& alts = pattern[i].alternatives;
    if (alts.size() == 1) {
      out += starlark_quote(alts[0]);
      continue;
    }
    out += "[";
    for (std::size_t k = 0; k < alts.size(); ++k) out += (k ? ", " : "") + starlark_quote(alts[k]);
    out += "]";
  }
  return out + "]";
}

std::string PrefixRule::location() const { return file + ":" + std::to_string(line); }

std::string RuleMatch::location() const { return file + ":" + std::to_string(line); }

void RuleSet::add_text(std::string_view text, std::string file_name) {
  auto parsed = parse_rules(text, file_name);
  rules_.insert(rules_.end(), std::make_move_iterator(parsed.begin()),
                std::make_move_iterator(parsed.end()));
}

namespace {
std::string read_rules_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw RulesError(path.string(), 0, 0, std::string("cannot read rules file: ") + std::strerror(errno));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw RulesError(path.string(), 0, 0, "error while reading rules file");
  return buf.str();
}
}  // namespace

void RuleSet::add_file(const std::filesystem::path& path) {
  add_text(read_rules_file(path), path.string());
}

void RuleSet::add_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".rules" && entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  RuleSet staged;  // all or nothing
  for (const auto& f : files) staged.add_file(f);
  rules_.insert(rules_.end(), std::make_move_iterator(staged.rules_.begin()),
                std::make_move_iterator(staged.rules_.end()));
}

RuleSet RuleSet::from_text(std::string_view text, std::string file_name) {
  RuleSet set;
  set.add_text(text, std::move(file_name));
  return set;
}

RuleSet RuleSet::from_file(const std::filesystem::path& path) {
  RuleSet set;
  set.add_file(path);
  return set;
}

std::vector<RuleMatch> RuleSet::matches(const std::vector<std::string>& argv) const {
  std::vector<RuleMatch> out;
  for (const auto& r : rules_) {
    if (!r.matches(argv)) continue;
    out.push_back(RuleMatch{r.decision, r.file, r.line, r.pattern_text(), r.justification});
  }
  return out;
}

std::optional<RuleMatch> RuleSet::evaluate(const std::vector<std::string>& argv) const {
  const PrefixRule* best = nullptr;
  for (const auto& r : rules_) {
    if (!r.matches(argv)) continue;
    if (!best || r.decision > best->decision) best = &r;
  }
  if (!best) return std::nullopt;
  return RuleMatch{best->decision, best->file, best->line, best->pattern_text(), best->justification};
}

}  // namespace keel::policy
