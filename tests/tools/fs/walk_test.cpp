// Globs and .gitignore rules of the fs module (keel_fs_walk), tested directly.
#include <keel/tools/fs/walk.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using keel::tools::fs::expand_braces;
using keel::tools::fs::glob_match;
using keel::tools::fs::IgnoreFile;

TEST_CASE("glob_match", "[fs][glob]") {
  struct Case {
    const char* pattern;
    const char* path;
    bool match;
  };
  const std::vector<Case> cases = {
      {"*.rs", "main.rs", true},
      {"*.rs", "src/main.rs", false},  // '*' never crosses '/'
      {"*.rs", "main.rsx", false},
      {"?.txt", "a.txt", true},
      {"?.txt", "ab.txt", false},
      {"[abc].md", "b.md", true},
      {"[!abc].md", "b.md", false},
      {"[^abc].md", "d.md", true},
      {"[a-c]x", "cx", true},
      {"[a-c]x", "dx", false},
      {"[]]", "]", true},
      {"\\*.txt", "*.txt", true},
      {"\\*.txt", "a.txt", false},
      {"[unclosed", "[unclosed", true},
      {"**/foo", "foo", true},
      {"**/foo", "a/b/foo", true},
      {"**/foo", "a/b/foox", false},
      {"a/**/b", "a/b", true},
      {"a/**/b", "a/x/y/b", true},
      {"a/**/b", "ax/b", false},
      {"a/**", "a/x/y", true},
      {"a/**", "b/x", false},
      {"src/*.ts", "src/app.ts", true},
      {"src/*.ts", "src/deep/app.ts", false},
      {"a**b", "axxb", true},  // not a whole segment: like '*'
      {"a**b", "ax/xb", false},
      {"*", "", true},
      {"", "", true},
      {"", "x", false},
  };
  for (const auto& c : cases) {
    INFO(c.pattern << " vs " << c.path);
    CHECK(glob_match(c.pattern, c.path) == c.match);
  }
}

TEST_CASE("expand_braces", "[fs][glob]") {
  CHECK(expand_braces("*.rs") == std::vector<std::string>{"*.rs"});
  CHECK(expand_braces("*.{ts,tsx}") == std::vector<std::string>{"*.ts", "*.tsx"});
  CHECK(expand_braces("{a,b}/{c,d}") == std::vector<std::string>{"a/c", "a/d", "b/c", "b/d"});
  CHECK(expand_braces("x{a,{b,c}}") == std::vector<std::string>{"xa", "xb", "xc"});
  CHECK(expand_braces("x{a,b") == std::vector<std::string>{"x{a,b"});
}

TEST_CASE("IgnoreFile: parsing and matching", "[fs][gitignore]") {
  auto file = IgnoreFile::parse(
      "# a comment\n"
      "\n"
      "*.log\n"
      "!keep.log\n"
      "build/\n"
      "/root-only.txt\n"
      "docs/*.tmp\n"
      "**/cache\n"
      "\\#hash\n"
      "trailing   \n"
      "escaped\\ \n"
      "deep/**/x.bin\r\n");
  REQUIRE(file.rules().size() == 10);

  CHECK(file.match("app.log", false) == true);
  CHECK(file.match("sub/dir/app.log", false) == true);
  CHECK(file.match("keep.log", false) == false);  // re-included
  CHECK(file.match("sub/keep.log", false) == false);
  CHECK(file.match("build", true) == true);
  CHECK(file.match("sub/build", true) == true);
  CHECK_FALSE(file.match("build", false).has_value());  // a file called build is not a dir
  CHECK(file.match("root-only.txt", false) == true);
  CHECK_FALSE(file.match("sub/root-only.txt", false).has_value());  // anchored
  CHECK(file.match("docs/a.tmp", false) == true);
  CHECK_FALSE(file.match("x/docs/a.tmp", false).has_value());  // a middle '/' anchors too
  CHECK(file.match("cache", true) == true);
  CHECK(file.match("a/b/cache", false) == true);
  CHECK(file.match("#hash", false) == true);
  CHECK(file.match("trailing", false) == true);
  CHECK(file.match("escaped ", false) == true);
  CHECK(file.match("deep/x.bin", false) == true);
  CHECK(file.match("deep/1/2/x.bin", false) == true);
  CHECK_FALSE(file.match("src/main.rs", false).has_value());
}

TEST_CASE("IgnoreStack: deeper files override shallower ones", "[fs][gitignore]") {
  keel::tools::fs::IgnoreStack stack;
  stack.push("", IgnoreFile::parse("*.gen\n"));
  stack.push("pkg/", IgnoreFile::parse("!*.gen\n/local.txt\n"));
  CHECK(stack.ignored("a.gen", false));
  CHECK_FALSE(stack.ignored("pkg/a.gen", false));
  CHECK(stack.ignored("pkg/local.txt", false));
  CHECK_FALSE(stack.ignored("local.txt", false));
  stack.pop();
  CHECK(stack.ignored("pkg/a.gen", false));
}
