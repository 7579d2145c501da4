// keel fs tools: globs, .gitignore rules and a directory walk that honours them.
//
// The common subset of gitignore(5): blank lines and `#` comments, `\#` / `\!` escapes,
// trailing spaces trimmed, `!` negation (the last matching rule of a file wins), a trailing
// `/` for directories only, a `/` at the start or in the middle anchoring the pattern to the
// .gitignore's directory (otherwise it matches the name at any depth), `*`, `?`, `[...]` and
// `**` (`**/x`, `a/**/b`, `a/**`). A deeper .gitignore overrides a shallower one, and an
// ignored directory is never entered (so nothing inside it can be re-included, as in git).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keel::tools::fs {

// Matches a glob against a '/'-separated path. `*` is any run of characters but '/', `?` one
// character but '/', `[a-z]` / `[!x]` / `[^x]` a class, `\x` a literal x, and `**` as a whole
// segment any number of segments (none included): `**/x`, `a/**/b`, `a/**`.
bool glob_match(std::string_view pattern, std::string_view path);

// Brace alternatives: "*.{ts,tsx}" -> {"*.ts", "*.tsx"}, nested braces expanded too; a pattern
// without (balanced) braces comes back as the only element.
std::vector<std::string> expand_braces(std::string_view pattern);

struct IgnoreRule {
  std::string pattern;   // without the `!`, leading `/` and trailing `/`
  bool negate = false;   // `!pattern`: re-include
  bool dir_only = false; // `pattern/`: only directories
  bool anchored = false; // had a '/' at the start or in the middle: relative to the file's dir
};

// The rules of one ignore file (patterns relative to the directory holding it).
class IgnoreFile {
 public:
  static IgnoreFile parse(std::string_view text);

  // For a path relative to the ignore file's directory: true = ignored, false = re-included
  // by a negation, nullopt = no rule says anything.
  std::optional<bool> match(std::string_view rel_path, bool is_dir) const;

  const std::vector<IgnoreRule>& rules() const { return rules_; }
  bool empty() const { return rules_.empty(); }

 private:
  std::vector<IgnoreRule> rules_;
};

// A stack of ignore files from the top of the tree down to the directory being walked.
class IgnoreStack {
 public:
  // `dir` is the directory of the file relative to the top of the walk ("" for the top itself,
  // else "a/b/"), so the rules see paths relative to their own directory.
  void push(std::string dir, IgnoreFile file);
  void pop();
  std::size_t size() const { return layers_.size(); }

  // `path` relative to the top of the walk ("a/b/c.txt").
  bool ignored(std::string_view path, bool is_dir) const;

 private:
  struct Layer {
    std::string dir;
    IgnoreFile file;
  };
  std::vector<Layer> layers_;
};

enum class EntryKind { File, Directory, Symlink, Other };

struct WalkEntry {
  std::filesystem::path abs;  // the full path
  std::string rel;            // relative to the walk's root, '/'-separated
  EntryKind kind;
};

struct WalkOptions {
  bool respect_gitignore = true;
  // Ignore files above the root (from the enclosing git repository's top, or from `top` when
  // given and the root lies inside it) are loaded too, so `grep path=src` still honours the
  // repository's .gitignore.
  std::optional<std::filesystem::path> top;
  // Return false to stop the walk.
  std::function<bool()> keep_going;
};

// Walks `root` depth-first (entries of a directory in byte order), never following symlinks
// and never entering `.git`; calls `visit` for every file, directory and symlink not ignored.
// For a directory, `visit` returning false skips its contents. Unreadable directories are
// skipped silently. Returns false if `keep_going` stopped it.
bool walk(const std::filesystem::path& root, const WalkOptions& options,
          const std::function<bool(const WalkEntry&)>& visit);

}  // namespace keel::tools::fs
