// Globs, .gitignore rules and the walk (see walk.hpp).
#include <keel/tools/fs/walk.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <system_error>

namespace keel::tools::fs {

namespace stdfs = std::filesystem;

namespace {

// Parses a `[...]` class starting at P[pi] == '['. Returns false when it is not a well-formed
// class (then '[' is a literal); otherwise sets `end` past the ']' and `matched`.
bool match_class(std::string_view p, std::size_t pi, char c, std::size_t& end, bool& matched) {
  std::size_t i = pi + 1;
  bool negate = false;
  if (i < p.size() && (p[i] == '!' || p[i] == '^')) {
    negate = true;
    ++i;
  }
  bool found = false;
  bool first = true;
  while (i < p.size() && (p[i] != ']' || first)) {
    first = false;
    char lo = p[i];
    if (lo == '\\' && i + 1 < p.size()) lo = p[++i];
    ++i;
    char hi = lo;
    if (i + 1 < p.size() && p[i] == '-' && p[i + 1] != ']') {
      hi = p[i + 1];
      if (hi == '\\' && i + 2 < p.size()) {
        hi = p[i + 2];
        ++i;
      }
      i += 2;
    }
    auto uc = static_cast<unsigned char>(c);
    if (uc >= static_cast<unsigned char>(lo) && uc <= static_cast<unsigned char>(hi)) found = true;
  }
  if (i >= p.size()) return false;  // no closing ']'
  end = i + 1;
  matched = found != negate;
  return true;
}

bool match_at(std::string_view p, std::size_t pi, std::string_view s, std::size_t si) {
  while (pi < p.size()) {
    char c = p[pi];
    if (c == '*') {
      const bool whole_segment = pi + 1 < p.size() && p[pi + 1] == '*' && (pi == 0 || p[pi - 1] == '/') &&
                                 (pi + 2 == p.size() || p[pi + 2] == '/');
      if (whole_segment) {
        if (pi + 2 == p.size()) return true;  // `a/**`: everything below
        const std::size_t rest = pi + 3;      // after "**/": zero or more whole segments
        if (match_at(p, rest, s, si)) return true;
        for (std::size_t k = si; k < s.size(); ++k)
          if (s[k] == '/' && match_at(p, rest, s, k + 1)) return true;
        return false;
      }
      while (pi < p.size() && p[pi] == '*') ++pi;
      if (pi == p.size()) return s.find('/', si) == std::string_view::npos;
      for (std::size_t k = si; k <= s.size(); ++k) {
        if (match_at(p, pi, s, k)) return true;
        if (k < s.size() && s[k] == '/') return false;
      }
      return false;
    }
    if (si >= s.size()) return false;
    if (c == '?') {
      if (s[si] == '/') return false;
      ++pi;
      ++si;
      continue;
    }
    if (c == '[') {
      std::size_t end = 0;
      bool matched = false;
      if (match_class(p, pi, s[si], end, matched)) {
        if (!matched || s[si] == '/') return false;
        pi = end;
        ++si;
        continue;
      }
    }
    if (c == '\\' && pi + 1 < p.size()) c = p[++pi];
    if (s[si] != c) return false;
    ++pi;
    ++si;
  }
  return si == s.size();
}

std::string_view basename(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::optional<std::string> read_small_file(const stdfs::path& p) {
  std::error_code ec;
  if (!stdfs::is_regular_file(p, ec)) return std::nullopt;
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::move(ss).str();
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view path) { return match_at(pattern, 0, path, 0); }

std::vector<std::string> expand_braces(std::string_view pattern) {
  // Find the first top-level '{' with a matching '}'.
  std::size_t open = std::string_view::npos;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\') {
      ++i;
      continue;
    }
    if (pattern[i] == '{') {
      open = i;
      break;
    }
  }
  if (open == std::string_view::npos) return {std::string(pattern)};
  int depth = 0;
  std::size_t close = std::string_view::npos;
  std::vector<std::size_t> commas;
  for (std::size_t i = open; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\') {
      ++i;
      continue;
    }
    if (c == '{') ++depth;
    else if (c == '}') {
      if (--depth == 0) {
        close = i;
        break;
      }
    } else if (c == ',' && depth == 1) {
      commas.push_back(i);
    }
  }
  if (close == std::string_view::npos) return {std::string(pattern)};
  const std::string_view prefix = pattern.substr(0, open);
  const std::string_view suffix = pattern.substr(close + 1);
  std::vector<std::string> out;
  std::size_t start = open + 1;
  commas.push_back(close);
  for (std::size_t comma : commas) {
    std::string alt = std::string(prefix) + std::string(pattern.substr(start, comma - start)) + std::string(suffix);
    for (auto& e : expand_braces(alt)) out.push_back(std::move(e));
    start = comma + 1;
  }
  return out;
}

IgnoreFile IgnoreFile::parse(std::string_view text) {
  IgnoreFile file;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string line(text.substr(pos, nl - pos));
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // Trailing spaces are trimmed unless escaped with a backslash.
    while (!line.empty() && line.back() == ' ' && !(line.size() >= 2 && line[line.size() - 2] == '\\')) line.pop_back();
    if (line.size() >= 2 && line.back() == ' ' && line[line.size() - 2] == '\\') line.erase(line.size() - 2, 1);
    if (line.empty() || line[0] == '#') continue;
    IgnoreRule rule;
    if (line[0] == '!') {
      rule.negate = true;
      line.erase(0, 1);
    } else if (line[0] == '\\' && line.size() > 1 && (line[1] == '#' || line[1] == '!')) {
      line.erase(0, 1);
    }
    if (!line.empty() && line.back() == '/') {
      rule.dir_only = true;
      while (!line.empty() && line.back() == '/') line.pop_back();
    }
    if (line.find('/') != std::string::npos) rule.anchored = true;
    while (!line.empty() && line.front() == '/') line.erase(0, 1);
    if (line.empty()) continue;
    rule.pattern = std::move(line);
    file.rules_.push_back(std::move(rule));
  }
  return file;
}

std::optional<bool> IgnoreFile::match(std::string_view rel_path, bool is_dir) const {
  for (auto it = rules_.rbegin(); it != rules_.rend(); ++it) {
    if (it->dir_only && !is_dir) continue;
    bool hit = it->anchored ? glob_match(it->pattern, rel_path) : glob_match(it->pattern, basename(rel_path));
    if (hit) return !it->negate;
  }
  return std::nullopt;
}

void IgnoreStack::push(std::string dir, IgnoreFile file) { layers_.push_back({std::move(dir), std::move(file)}); }

void IgnoreStack::pop() {
  if (!layers_.empty()) layers_.pop_back();
}

bool IgnoreStack::ignored(std::string_view path, bool is_dir) const {
  for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) {
    if (!path.starts_with(it->dir)) continue;
    if (auto verdict = it->file.match(path.substr(it->dir.size()), is_dir)) return *verdict;
  }
  return false;
}

namespace {

struct Walker {
  const WalkOptions& options;
  const std::function<bool(const WalkEntry&)>& visit;
  IgnoreStack ignores;
  std::string top_prefix;  // the root's path relative to the top of the ignore stack ("" or "src/")
  std::size_t visited = 0;
  bool stopped = false;

  bool keep_going() {
    if (stopped) return false;
    if (options.keep_going && (++visited % 256) == 0 && !options.keep_going()) stopped = true;
    return !stopped;
  }

  void load_ignore(const stdfs::path& dir, std::string dir_rel_top) {
    if (!options.respect_gitignore) return;
    if (auto text = read_small_file(dir / ".gitignore"))
      ignores.push(std::move(dir_rel_top), IgnoreFile::parse(*text));
    else
      ignores.push(std::move(dir_rel_top), IgnoreFile{});  // keeps push/pop balanced
  }

  void walk_dir(const stdfs::path& dir, const std::string& rel) {
    load_ignore(dir, top_prefix + rel);
    std::vector<std::pair<std::string, stdfs::directory_entry>> entries;
    std::error_code ec;
    for (stdfs::directory_iterator it(dir, stdfs::directory_options::skip_permission_denied, ec), end;
         !ec && it != end; it.increment(ec))
      entries.emplace_back(it->path().filename().string(), *it);
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });

    for (auto& [name, entry] : entries) {
      if (!keep_going()) break;
      if (name == ".git") continue;
      std::error_code sec;
      auto st = entry.symlink_status(sec);
      if (sec) continue;
      EntryKind kind = stdfs::is_directory(st)      ? EntryKind::Directory
                       : stdfs::is_regular_file(st) ? EntryKind::File
                       : stdfs::is_symlink(st)      ? EntryKind::Symlink
                                                    : EntryKind::Other;
      std::string child_rel = rel + name;
      const bool is_dir = kind == EntryKind::Directory;
      if (options.respect_gitignore && ignores.ignored(top_prefix + child_rel, is_dir)) continue;
      bool descend = visit(WalkEntry{entry.path(), child_rel, kind});
      if (is_dir && descend) walk_dir(entry.path(), child_rel + "/");
    }
    ignores.pop();
  }
};

// Ignore files between `top` and `root` (root excluded), outermost first, with their dirs
// relative to top.
void load_ancestors(Walker& w, const stdfs::path& root, const std::optional<stdfs::path>& given_top) {
  std::error_code ec;
  stdfs::path canon_root = stdfs::weakly_canonical(root, ec);
  if (ec) return;
  // The repository top: the nearest ancestor (root included) holding `.git`.
  std::optional<stdfs::path> top;
  for (stdfs::path p = canon_root;; p = p.parent_path()) {
    if (stdfs::exists(p / ".git", ec)) {
      top = p;
      break;
    }
    if (p == p.parent_path()) break;
  }
  if (!top && given_top) {
    stdfs::path t = stdfs::weakly_canonical(*given_top, ec);
    if (!ec) {
      auto rel = canon_root.lexically_relative(t);
      if (!rel.empty() && *rel.begin() != "..") top = t;
    }
  }
  if (!top) return;
  auto rel = canon_root.lexically_relative(*top);
  if (rel.empty() || rel == ".") return;
  std::vector<std::string> parts;
  for (const auto& part : rel) parts.push_back(part.string());
  if (auto text = read_small_file(*top / ".git" / "info" / "exclude")) w.ignores.push("", IgnoreFile::parse(*text));
  std::string prefix;
  stdfs::path dir = *top;
  for (const auto& part : parts) {
    if (auto text = read_small_file(dir / ".gitignore")) w.ignores.push(prefix, IgnoreFile::parse(*text));
    // An ancestor directory that is itself ignored still gets searched when asked for
    // explicitly (like rg), so only the rules are collected here.
    dir /= part;
    prefix += part + "/";
  }
  w.top_prefix = prefix;
}

}  // namespace

bool walk(const stdfs::path& root, const WalkOptions& options, const std::function<bool(const WalkEntry&)>& visit) {
  Walker w{options, visit, {}, {}};
  if (options.respect_gitignore) {
    load_ancestors(w, root, options.top);
    if (w.top_prefix.empty()) {
      // The root is the top: its own .git/info/exclude applies too.
      if (auto text = read_small_file(root / ".git" / "info" / "exclude")) w.ignores.push("", IgnoreFile::parse(*text));
    }
  }
  w.walk_dir(root, "");
  return !w.stopped;
}

}  // namespace keel::tools::fs
