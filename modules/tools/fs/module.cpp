// keel fs module: read-only, parallel-safe file tools shaped like Codex CLI's.
//
//   read_file   {file_path, offset? (1-based line, default 1), limit? (lines, default 2000)}
//               -> "L12: text" per line; lines longer than 500 characters are cut (with a note);
//                  binary files (NUL bytes) are refused.
//   list_dir    {dir_path, offset? (1-based entry, default 1), limit? (default 25),
//                depth? (default 2)}
//               -> "Absolute path: /x" then an indented tree (2 spaces a level), directories
//                  ending in '/', symlinks in '@', other kinds in '?'; siblings sorted by
//                  name; "More than N entries found" when the listing was cut.
//   grep_files  {pattern (POSIX extended regex, plus \d \D \s \S \w \b and a leading (?i)),
//                include? (glob, e.g. "*.{ts,tsx}"), path? (default: cwd), limit? (default 100)}
//               -> paths of matching files, newest first, one per line; honours .gitignore
//                  files, never enters .git, skips binary files and symlinks.
//
// Relative paths are resolved against the request's `cwd`; absolute paths are accepted.
// Paths printed by grep_files are relative to `cwd` when they lie inside it.
#include <keel/sdk/tool.hpp>
#include <keel/tools/fs/walk.hpp>

#include <boost/json.hpp>

#include <fcntl.h>
#include <regex.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

namespace {

namespace json = boost::json;
namespace stdfs = std::filesystem;
namespace kfs = keel::tools::fs;
using keel::sdk::ToolContext;
using keel::sdk::ToolError;
using keel::sdk::ToolResult;

constexpr std::int64_t kReadDefaultLimit = 2000;
constexpr std::size_t kMaxLineChars = 500;
constexpr std::int64_t kListDefaultLimit = 25;
constexpr std::int64_t kListDefaultDepth = 2;
constexpr std::int64_t kGrepDefaultLimit = 100;
constexpr std::int64_t kGrepMaxLimit = 2000;
constexpr std::uintmax_t kGrepMaxFileBytes = 32u * 1024 * 1024;
constexpr std::size_t kBinaryProbeBytes = 8192;

// A reply for the model (the SDK makes the text valid UTF-8).
ToolResult text_result(std::string output, bool success = true) {
  ToolResult r;
  r.output = std::move(output);
  r.success = success;
  return r;
}

stdfs::path base_dir(const ToolContext& ctx) {
  if (!ctx.cwd.empty()) return ctx.cwd;
  std::error_code ec;
  return stdfs::current_path(ec);
}

stdfs::path resolve(const ToolContext& ctx, const std::string& p) {
  stdfs::path path(p);
  if (path.is_relative()) path = base_dir(ctx) / path;
  path = path.lexically_normal();
  if (!path.has_filename() && path.has_relative_path()) path = path.parent_path();  // "/a/b/" -> "/a/b"
  return path;
}

// `path` as the model should see it: relative to cwd when inside it, else absolute.
std::string display_path(const ToolContext& ctx, const stdfs::path& path) {
  auto inside = [&](const stdfs::path& base) -> std::optional<std::string> {
    stdfs::path rel = path.lexically_relative(base);
    if (!rel.empty() && *rel.begin() != "..") return rel.generic_string();
    return std::nullopt;
  };
  const stdfs::path base = base_dir(ctx).lexically_normal();
  if (auto rel = inside(base)) return *rel;
  std::error_code ec;
  stdfs::path canon = stdfs::weakly_canonical(base, ec);
  if (!ec)
    if (auto rel = inside(canon)) return *rel;
  return path.generic_string();
}

std::int64_t positive_arg(const ToolContext& ctx, std::string_view key, std::int64_t fallback, std::string_view what) {
  const auto* v = ctx.args.if_contains(key);
  if (!v || v->is_null()) return fallback;
  std::int64_t n = ctx.int_arg_or(key, fallback);
  if (n < 1) throw ToolError(std::string(key) + " must be " + std::string(what));
  return n;
}

std::string required_path(const ToolContext& ctx, std::string_view key) {
  const auto* v = ctx.args.if_contains(key);
  if (!v || !v->is_string() || v->as_string().empty())
    throw ToolError("missing required argument '" + std::string(key) + "' (a path, absolute or relative to the working directory)");
  return std::string(v->as_string());
}

std::string errno_text(int err) { return std::generic_category().message(err); }

// Cuts a line at `max` UTF-8 characters; `more` receives how many were dropped.
std::string_view cut_line(std::string_view line, std::size_t max, std::size_t& more) {
  more = 0;
  std::size_t chars = 0, i = 0;
  for (; i < line.size(); ++i) {
    if ((static_cast<unsigned char>(line[i]) & 0xC0) != 0x80) {
      if (chars == max) break;
      ++chars;
    }
  }
  if (i == line.size()) return line;
  for (std::size_t k = i; k < line.size(); ++k)
    if ((static_cast<unsigned char>(line[k]) & 0xC0) != 0x80) ++more;
  return line.substr(0, i);
}

// ---------------------------------------------------------------------------------------------
// read_file
// ---------------------------------------------------------------------------------------------

ToolResult read_file(ToolContext& ctx) {
  const std::string arg = required_path(ctx, "file_path");
  const std::int64_t offset = positive_arg(ctx, "offset", 1, "a 1-indexed line number (1 or more)");
  const std::int64_t limit = positive_arg(ctx, "limit", kReadDefaultLimit, "greater than zero");
  const stdfs::path path = resolve(ctx, arg);

  std::error_code ec;
  auto st = stdfs::status(path, ec);
  if (ec || !stdfs::exists(st)) throw ToolError("read_file: '" + arg + "' does not exist");
  if (stdfs::is_directory(st)) throw ToolError("read_file: '" + arg + "' is a directory; use list_dir to see what it holds");
  if (!stdfs::is_regular_file(st)) throw ToolError("read_file: '" + arg + "' is not a regular file");

  std::ifstream in(path, std::ios::binary);
  if (!in) throw ToolError("read_file: cannot open '" + arg + "': " + errno_text(errno));
  {
    char probe[kBinaryProbeBytes];
    in.read(probe, sizeof probe);
    if (std::memchr(probe, '\0', static_cast<std::size_t>(in.gcount())))
      throw ToolError("read_file: '" + arg +
                      "' looks like a binary file (it contains NUL bytes); read_file only reads text files");
    in.clear();
    in.seekg(0);
  }

  std::string out;
  std::string line;
  std::int64_t number = 0;
  std::int64_t shown = 0;
  bool more = false;
  while (std::getline(in, line)) {
    ++number;
    if (number < offset) continue;
    if (shown == limit) {
      more = true;
      break;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::size_t dropped = 0;
    std::string_view text = cut_line(line, kMaxLineChars, dropped);
    out += "L" + std::to_string(number) + ": ";
    out.append(text);
    if (dropped) out += " [... line truncated, " + std::to_string(dropped) + " more characters]";
    out.push_back('\n');
    ++shown;
  }
  if (number == 0) return text_result("(" + arg + " is empty)");
  if (shown == 0)
    throw ToolError("read_file: offset " + std::to_string(offset) + " exceeds the file's length (" +
                    std::to_string(number) + " lines)");
  if (more)
    out += "[... more lines follow; continue with offset=" + std::to_string(offset + shown) + "]\n";
  return text_result(std::move(out));
}

// ---------------------------------------------------------------------------------------------
// list_dir
// ---------------------------------------------------------------------------------------------

struct Listed {
  std::string name;
  int depth;
  kfs::EntryKind kind;
};

// Depth-first, siblings in byte order, without following symlinks or entering `.git`; stops
// once `want` entries were collected.
void list_entries(const stdfs::path& dir, int depth, int max_depth, std::size_t want, std::vector<Listed>& out,
                  const ToolContext& ctx) {
  std::vector<std::pair<std::string, stdfs::directory_entry>> entries;
  std::error_code ec;
  for (stdfs::directory_iterator it(dir, stdfs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec))
    entries.emplace_back(it->path().filename().string(), *it);
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [name, entry] : entries) {
    if (out.size() >= want || ctx.call.cancelled()) return;
    std::error_code sec;
    auto st = entry.symlink_status(sec);
    kfs::EntryKind kind = stdfs::is_directory(st)      ? kfs::EntryKind::Directory
                          : stdfs::is_regular_file(st) ? kfs::EntryKind::File
                          : stdfs::is_symlink(st)      ? kfs::EntryKind::Symlink
                                                       : kfs::EntryKind::Other;
    out.push_back({name, depth, kind});
    if (kind == kfs::EntryKind::Directory && depth + 1 < max_depth && name != ".git")
      list_entries(entry.path(), depth + 1, max_depth, want, out, ctx);
  }
}

ToolResult list_dir(ToolContext& ctx) {
  const std::string arg = required_path(ctx, "dir_path");
  const std::int64_t offset = positive_arg(ctx, "offset", 1, "a 1-indexed entry number (1 or more)");
  const std::int64_t limit = positive_arg(ctx, "limit", kListDefaultLimit, "greater than zero");
  const std::int64_t depth = positive_arg(ctx, "depth", kListDefaultDepth, "greater than zero");
  const stdfs::path path = resolve(ctx, arg);

  std::error_code ec;
  auto st = stdfs::status(path, ec);
  if (ec || !stdfs::exists(st)) throw ToolError("list_dir: '" + arg + "' does not exist");
  if (!stdfs::is_directory(st)) throw ToolError("list_dir: '" + arg + "' is not a directory; use read_file to read a file");

  std::vector<Listed> entries;
  const std::size_t want = static_cast<std::size_t>(std::min<std::int64_t>(offset - 1 + limit + 1, 1'000'000));
  list_entries(path, 0, static_cast<int>(std::min<std::int64_t>(depth, 1000)), want, entries, ctx);

  std::string out = "Absolute path: " + path.generic_string() + "\n";
  if (entries.empty()) return text_result(out + "(empty directory)\n");
  const auto start = static_cast<std::size_t>(offset - 1);
  if (start >= entries.size())
    throw ToolError("list_dir: offset " + std::to_string(offset) + " exceeds the directory's entry count (" +
                    std::to_string(entries.size()) + ")");
  const std::size_t end = std::min(entries.size(), start + static_cast<std::size_t>(limit));
  for (std::size_t i = start; i < end; ++i) {
    const auto& e = entries[i];
    out.append(static_cast<std::size_t>(e.depth) * 2, ' ');
    std::size_t dropped = 0;
    out.append(cut_line(e.name, kMaxLineChars, dropped));
    switch (e.kind) {
      case kfs::EntryKind::Directory: out += "/"; break;
      case kfs::EntryKind::Symlink: out += "@"; break;
      case kfs::EntryKind::Other: out += "?"; break;
      case kfs::EntryKind::File: break;
    }
    out.push_back('\n');
  }
  if (end < entries.size())
    out += "More than " + std::to_string(end - start) + " entries found; continue with offset=" +
           std::to_string(offset + static_cast<std::int64_t>(end - start)) + "\n";
  return text_result(std::move(out));
}

// ---------------------------------------------------------------------------------------------
// grep_files
// ---------------------------------------------------------------------------------------------

// Rewrites the common Perl/ripgrep spellings models use into POSIX ERE as glibc reads it
// (which already knows \w \W \s \S \b \B \< \>): \d, \D, \t, (?:...), lazy quantifiers.
std::string to_posix_ere(std::string_view p, bool& icase) {
  icase = false;
  if (p.starts_with("(?i)")) {
    icase = true;
    p.remove_prefix(4);
  }
  std::string out;
  bool in_class = false;
  for (std::size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char n = p[i + 1];
      ++i;
      if (n == 'd') out += in_class ? "0-9" : "[0-9]";
      else if (n == 'D' && !in_class) out += "[^0-9]";
      else if (n == 't') out += '\t';
      else if (in_class) {
        // Inside a bracket expression a backslash is literal in POSIX; keep the intended char.
        if (n == 's') out += " \t\r\f\v";
        else if (n == 'w') out += "A-Za-z0-9_";
        else out += n;
      } else {
        out += '\\';
        out += n;
      }
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      // A ']' (after an optional '^') right at the start is a literal member.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (c == '(' && p.substr(i).starts_with("(?:")) {
      out += '(';
      i += 2;
      continue;
    }
    if (c == '?' && !out.empty() && (out.back() == '*' || out.back() == '+' || out.back() == '?' || out.back() == '}'))
      continue;  // lazy quantifier: same files match
    out += c;
  }
  return out;
}

// The longest run of literal characters every match must contain (a cheap prefilter: files
// without it are skipped and only lines holding it go to regexec), and whether the whole
// pattern is that literal. Empty when the pattern has a top-level alternation.
struct Literal {
  std::string text;
  bool whole = false;
};

Literal required_literal(std::string_view ere) {
  Literal best;
  std::string run;
  bool only_literals = true;
  auto end_run = [&] {
    if (run.size() > best.text.size()) best.text = run;
    run.clear();
  };
  for (std::size_t i = 0; i < ere.size(); ++i) {
    const char c = ere[i];
    const bool quantifier_next = i + 1 < ere.size() && (ere[i + 1] == '*' || ere[i + 1] == '?' || ere[i + 1] == '{');
    auto literal = [&](char ch) {
      if (quantifier_next) {  // optional or repeated from zero: not required
        only_literals = false;
        end_run();
        return;
      }
      run += ch;
    };
    switch (c) {
      case '|':
        return {};
      case '\\':
        if (i + 1 < ere.size()) {
          const char n = ere[++i];
          const bool punct = !((n >= 'a' && n <= 'z') || (n >= 'A' && n <= 'Z') || (n >= '0' && n <= '9'));
          if (punct) {
            const bool q = i + 1 < ere.size() && (ere[i + 1] == '*' || ere[i + 1] == '?' || ere[i + 1] == '{');
            if (q) {
              only_literals = false;
              end_run();
            } else {
              run += n;
            }
            continue;
          }
        }
        only_literals = false;
        end_run();
        break;
      case '[': {  // a bracket expression: skip it
        only_literals = false;
        end_run();
        std::size_t k = i + 1;
        if (k < ere.size() && ere[k] == '^') ++k;
        if (k < ere.size() && ere[k] == ']') ++k;
        while (k < ere.size() && ere[k] != ']') {
          if (ere[k] == '[' && k + 1 < ere.size() && (ere[k + 1] == ':' || ere[k + 1] == '.' || ere[k + 1] == '=')) {
            auto close = ere.find(std::string{ere[k + 1], ']'}, k + 2);
            k = close == std::string_view::npos ? ere.size() : close + 2;
          } else {
            ++k;
          }
        }
        i = k;
        break;
      }
      case '(': {  // a group: skip it (an alternation inside only concerns the group)
        only_literals = false;
        end_run();
        int depth = 0;
        std::size_t k = i;
        for (; k < ere.size(); ++k) {
          if (ere[k] == '\\') ++k;
          else if (ere[k] == '(') ++depth;
          else if (ere[k] == ')' && --depth == 0) break;
        }
        i = k;
        break;
      }
      case '{': {  // a bound: skip it
        only_literals = false;
        end_run();
        auto close = ere.find('}', i);
        i = close == std::string_view::npos ? ere.size() : close;
        break;
      }
      case '.': case '^': case '$': case '*': case '?': case '+': case ')':
        only_literals = false;
        end_run();
        break;
      default:
        literal(c);
    }
  }
  end_run();
  best.whole = only_literals && !best.text.empty();
  return best;
}

std::string ascii_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

class Regex {
 public:
  explicit Regex(std::string_view pattern) {
    std::string ere = to_posix_ere(pattern, icase_);
    int flags = REG_EXTENDED | REG_NOSUB | REG_NEWLINE | (icase_ ? REG_ICASE : 0);
    int rc = regcomp(&re_, ere.c_str(), flags);
    if (rc != 0) {
      char buf[256];
      regerror(rc, &re_, buf, sizeof buf);
      throw ToolError("grep_files: invalid regular expression '" + std::string(pattern) + "': " + buf +
                      " (patterns are POSIX extended regular expressions; \\d \\s \\w \\b and (?i) work too)");
    }
    literal_ = required_literal(ere);
    if (icase_) literal_.text = ascii_lower(literal_.text);
  }
  ~Regex() { regfree(&re_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Whether some line of `text` matches.
  bool search(const std::string& text) const {
    if (literal_.text.empty()) return regexec(&re_, text.c_str(), 0, nullptr, 0) == 0;
    std::string lowered;
    const std::string* hay = &text;
    if (icase_) {
      lowered = ascii_lower(text);
      hay = &lowered;
    }
    const std::string& lit = literal_.text;
    std::size_t pos = 0;
    std::string line;
    while (pos < hay->size()) {
      const void* hit = ::memmem(hay->data() + pos, hay->size() - pos, lit.data(), lit.size());
      if (!hit) return false;
      if (literal_.whole) return true;
      const std::size_t at = static_cast<std::size_t>(static_cast<const char*>(hit) - hay->data());
      const std::size_t nl_before = text.rfind('\n', at);
      const std::size_t begin = nl_before == std::string::npos ? 0 : nl_before + 1;
      std::size_t end = text.find('\n', at);
      if (end == std::string::npos) end = text.size();
      line.assign(text, begin, end - begin);
      if (regexec(&re_, line.c_str(), 0, nullptr, 0) == 0) return true;
      pos = end + 1;
    }
    return false;
  }

 private:
  regex_t re_{};
  bool icase_ = false;
  Literal literal_;
};

// A file's contents if it is a text file worth searching (binary files, with NUL bytes, and
// files over kGrepMaxFileBytes are skipped).
bool read_text(const stdfs::path& path, std::string& out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  struct stat st {};
  bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && static_cast<std::uintmax_t>(st.st_size) <= kGrepMaxFileBytes;
  if (ok) {
    out.resize(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (got < out.size()) {
      ssize_t n = ::read(fd, out.data() + got, out.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    out.resize(got);
    ok = std::memchr(out.data(), '\0', out.size()) == nullptr;
  }
  ::close(fd);
  return ok;
}

struct Include {
  std::vector<std::string> globs;     // any of them
  std::vector<std::string> excludes;  // `!glob`
  bool matches(std::string_view rel) const {
    auto test = [&](const std::string& g) {
      if (g.find('/') != std::string::npos) return kfs::glob_match(g.front() == '/' ? std::string_view(g).substr(1) : g, rel) ||
                                                   kfs::glob_match("**/" + g, rel);
      auto slash = rel.rfind('/');
      return kfs::glob_match(g, slash == std::string_view::npos ? rel : rel.substr(slash + 1));
    };
    for (const auto& g : excludes)
      if (test(g)) return false;
    if (globs.empty()) return true;
    for (const auto& g : globs)
      if (test(g)) return true;
    return false;
  }
};

Include parse_include(std::string_view include) {
  Include inc;
  // Several globs may be given separated by commas outside braces ("*.ts,*.tsx") or spaces.
  std::vector<std::string> parts;
  std::string cur;
  int depth = 0;
  for (char c : include) {
    if (c == '{') ++depth;
    if (c == '}' && depth > 0) --depth;
    if ((c == ',' || c == ' ') && depth == 0) {
      if (!cur.empty()) parts.push_back(cur);
      cur.clear();
      continue;
    }
    cur += c;
  }
  if (!cur.empty()) parts.push_back(cur);
  for (auto& part : parts) {
    bool exclude = part.front() == '!';
    for (auto& g : kfs::expand_braces(exclude ? std::string_view(part).substr(1) : std::string_view(part)))
      (exclude ? inc.excludes : inc.globs).push_back(std::move(g));
  }
  return inc;
}

ToolResult grep_files(ToolContext& ctx) {
  const auto* pv = ctx.args.if_contains("pattern");
  if (!pv || !pv->is_string()) throw ToolError("missing required argument 'pattern' (a regular expression)");
  const std::string pattern(pv->as_string());
  if (pattern.empty()) throw ToolError("grep_files: pattern must not be empty");
  const std::int64_t limit = std::min(positive_arg(ctx, "limit", kGrepDefaultLimit, "greater than zero"), kGrepMaxLimit);
  Include include;
  if (const auto* iv = ctx.args.if_contains("include"); iv && iv->is_string() && !iv->as_string().empty())
    include = parse_include(iv->as_string());
  std::string path_arg = ".";
  if (const auto* v = ctx.args.if_contains("path"); v && v->is_string() && !v->as_string().empty())
    path_arg = std::string(v->as_string());

  const Regex regex(pattern);
  const stdfs::path root = resolve(ctx, path_arg);
  std::error_code ec;
  auto st = stdfs::status(root, ec);
  if (ec || !stdfs::exists(st)) throw ToolError("grep_files: '" + path_arg + "' does not exist");

  struct Match {
    stdfs::file_time_type mtime;
    std::string shown;
  };
  std::vector<Match> matches;
  std::string content;
  auto consider = [&](const stdfs::path& file) {
    if (!read_text(file, content) || !regex.search(content)) return;
    std::error_code tec;
    auto mtime = stdfs::last_write_time(file, tec);
    matches.push_back({mtime, display_path(ctx, file)});
  };

  bool complete = true;
  if (stdfs::is_regular_file(st)) {
    consider(root);
  } else if (stdfs::is_directory(st)) {
    kfs::WalkOptions opts;
    opts.top = base_dir(ctx);
    opts.keep_going = [&] { return !ctx.call.cancelled(); };
    complete = kfs::walk(root, opts, [&](const kfs::WalkEntry& e) {
      if (e.kind == kfs::EntryKind::File && include.matches(e.rel)) consider(e.abs);
      return true;
    });
  } else {
    throw ToolError("grep_files: '" + path_arg + "' is neither a file nor a directory");
  }

  if (matches.empty()) return text_result(complete ? "No matches found." : "No matches found (the search was cancelled).", false);
  std::sort(matches.begin(), matches.end(), [](const Match& a, const Match& b) {
    return a.mtime != b.mtime ? a.mtime > b.mtime : a.shown < b.shown;
  });
  std::string out;
  const std::size_t shown = std::min(matches.size(), static_cast<std::size_t>(limit));
  for (std::size_t i = 0; i < shown; ++i) out += matches[i].shown + "\n";
  if (shown < matches.size())
    out += "[... " + std::to_string(matches.size() - shown) + " more matching files not shown; narrow the search or raise limit]\n";
  if (!complete) out += "[the search was cancelled before it finished]\n";
  return text_result(std::move(out));
}

constexpr const char* kReadFileSchema = R"({
  "type": "object",
  "properties": {
    "file_path": {"type": "string", "description": "Path to the file (absolute, or relative to the working directory)."},
    "offset": {"type": "number", "description": "The 1-indexed line number to start reading from (default 1)."},
    "limit": {"type": "number", "description": "The maximum number of lines to return (default 2000)."}
  },
  "required": ["file_path"],
  "additionalProperties": false
})";

constexpr const char* kListDirSchema = R"({
  "type": "object",
  "properties": {
    "dir_path": {"type": "string", "description": "Path to the directory to list (absolute, or relative to the working directory)."},
    "offset": {"type": "number", "description": "The 1-indexed entry number to start listing from (default 1)."},
    "limit": {"type": "number", "description": "The maximum number of entries to return (default 25)."},
    "depth": {"type": "number", "description": "The maximum directory depth to traverse; 1 lists only the directory's own entries (default 2)."}
  },
  "required": ["dir_path"],
  "additionalProperties": false
})";

constexpr const char* kGrepFilesSchema = R"({
  "type": "object",
  "properties": {
    "pattern": {"type": "string", "description": "Regular expression to search for (POSIX extended; \\d \\s \\w \\b and a leading (?i) for case-insensitive also work)."},
    "include": {"type": "string", "description": "Optional glob limiting which files are searched (e.g. \"*.rs\" or \"*.{ts,tsx}\")."},
    "path": {"type": "string", "description": "Directory or file to search (default: the working directory)."},
    "limit": {"type": "number", "description": "The maximum number of file paths to return (default 100, at most 2000)."}
  },
  "required": ["pattern"],
  "additionalProperties": false
})";

}  // namespace

KEEL_TOOL_MODULE("fs", "0.1.0", "Read-only file tools: read_file, list_dir and grep_files",
                 KEEL_TOOL("read_file",
                           "Reads a local file with 1-indexed line numbers (L<n>: <text>), optionally a range of lines "
                           "(offset, limit).",
                           kReadFileSchema, KEEL_FLAG_PARALLEL_SAFE, read_file),
                 KEEL_TOOL("list_dir",
                           "Lists entries in a local directory as an indented tree with 1-indexed entry numbers, "
                           "to a given depth, a page at a time (offset, limit).",
                           kListDirSchema, KEEL_FLAG_PARALLEL_SAFE, list_dir),
                 KEEL_TOOL("grep_files",
                           "Finds files whose contents match the pattern and lists them by modification time, "
                           "newest first. Respects .gitignore and skips binary files.",
                           kGrepFilesSchema, KEEL_FLAG_PARALLEL_SAFE, grep_files))
