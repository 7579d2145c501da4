// The fs module (read_file, list_dir, grep_files), loaded from its built file and driven
// through the C ABI.
#include "../apply-patch-module/tool_test_support.hpp"

#include <keel/abi.h>

#include <chrono>
#include <string>

using namespace keel::test::tools;
using keel::test::AbiTestHost;

namespace {

struct Fixture {
  TempDir dir{"keel-fs"};
  AbiTestHost host{KEEL_FS_MODULE_PATH};
  Fixture() { host.start(); }
  ToolReply call(const std::string& tool, const json::object& args) {
    return call_tool(host, tool, function_request(tool, args, dir.path().string()));
  }
};

std::string numbered(int from, int to, const std::string& prefix = "line ") {
  std::string out;
  for (int i = from; i <= to; ++i) out += "L" + std::to_string(i) + ": " + prefix + std::to_string(i) + "\n";
  return out;
}

std::string lines(int n, const std::string& prefix = "line ") {
  std::string out;
  for (int i = 1; i <= n; ++i) out += prefix + std::to_string(i) + "\n";
  return out;
}

void set_mtime(const fs::path& p, int seconds_ago) {
  fs::last_write_time(p, fs::file_time_type::clock::now() - std::chrono::seconds(seconds_ago));
}

}  // namespace

TEST_CASE("fs module: three parallel-safe tools with JSON schemas", "[fs]") {
  AbiTestHost host(KEEL_FS_MODULE_PATH);
  CHECK(std::string(host.module().name) == "fs");
  REQUIRE(host.module().capability_count == 3);
  for (const char* name : {"read_file", "list_dir", "grep_files"}) {
    INFO(name);
    const keel_capability* cap = host.capability(name);
    REQUIRE(cap);
    CHECK(cap->kind == KEEL_CAP_TOOL);
    CHECK(cap->flags == KEEL_FLAG_PARALLEL_SAFE);
    auto schema = json::parse(cap->schema_json).as_object();
    CHECK(schema.at("type") == "object");
  }
}

TEST_CASE("read_file: numbered lines, ranges and limits", "[fs][read_file]") {
  Fixture f;
  f.dir.write("a.txt", lines(10));

  auto all = f.call("read_file", {{"file_path", "a.txt"}});
  CHECK(all.status == KEEL_OK);
  CHECK(all.success());
  CHECK(all.output() == numbered(1, 10));
  CHECK_FALSE(all.has_item());

  auto range = f.call("read_file", {{"file_path", "a.txt"}, {"offset", 3}, {"limit", 4}});
  CHECK(range.output() == numbered(3, 6) + "[... more lines follow; continue with offset=7]\n");

  auto tail = f.call("read_file", {{"file_path", (f.dir.path() / "a.txt").string()}, {"offset", 9}, {"limit", 5}});
  CHECK(tail.output() == numbered(9, 10));  // absolute paths work; no note at the end

  auto past = f.call("read_file", {{"file_path", "a.txt"}, {"offset", 11}});
  CHECK_FALSE(past.success());
  CHECK(past.output().find("exceeds") != std::string::npos);

  for (auto bad : {json::object{{"file_path", "a.txt"}, {"offset", 0}}, json::object{{"file_path", "a.txt"}, {"limit", 0}},
                   json::object{{"file_path", "a.txt"}, {"limit", "ten"}}, json::object{{"offset", 1}}}) {
    INFO(json::serialize(bad));
    auto r = f.call("read_file", bad);
    CHECK(r.status == KEEL_OK);
    CHECK_FALSE(r.success());
  }
}

TEST_CASE("read_file: default limit of 2000 lines", "[fs][read_file]") {
  Fixture f;
  f.dir.write("big.txt", lines(2500));
  auto r = f.call("read_file", {{"file_path", "big.txt"}});
  CHECK(r.output().find("L2000: line 2000\n") != std::string::npos);
  CHECK(r.output().find("L2001:") == std::string::npos);
  CHECK(r.output().ends_with("[... more lines follow; continue with offset=2001]\n"));
}

TEST_CASE("read_file: long lines, CRLF, invalid UTF-8, empty, binary, missing", "[fs][read_file]") {
  Fixture f;
  std::string long_line(600, 'x');
  std::string unicode_line;
  for (int i = 0; i < 520; ++i) unicode_line += "\xC3\xA9";  // é: 2 bytes, 1 character
  f.dir.write("long.txt", long_line + "\n" + unicode_line + "\nshort\r\nbad \xFF byte\n");
  auto r = f.call("read_file", {{"file_path", "long.txt"}});
  REQUIRE(r.success());
  std::string cut_unicode;
  for (int i = 0; i < 500; ++i) cut_unicode += "\xC3\xA9";
  CHECK(r.output() == "L1: " + std::string(500, 'x') + " [... line truncated, 100 more characters]\n" +
                          "L2: " + cut_unicode + " [... line truncated, 20 more characters]\n" +
                          "L3: short\n"
                          "L4: bad \xEF\xBF\xBD byte\n");

  f.dir.write("empty.txt", "");
  auto e = f.call("read_file", {{"file_path", "empty.txt"}});
  CHECK(e.success());
  CHECK(e.output().find("empty") != std::string::npos);

  f.dir.write("blob.bin", std::string("PK\x03\x04\0\0data", 10));
  auto b = f.call("read_file", {{"file_path", "blob.bin"}});
  CHECK_FALSE(b.success());
  CHECK(b.output().find("binary") != std::string::npos);

  auto m = f.call("read_file", {{"file_path", "nope.txt"}});
  CHECK_FALSE(m.success());
  CHECK(m.output().find("does not exist") != std::string::npos);

  fs::create_directory(f.dir.path() / "d");
  auto d = f.call("read_file", {{"file_path", "d"}});
  CHECK_FALSE(d.success());
  CHECK(d.output().find("list_dir") != std::string::npos);
}

TEST_CASE("list_dir: tree, depth, offset and limit", "[fs][list_dir]") {
  Fixture f;
  f.dir.write("b.txt", "");
  f.dir.write("a/one.txt", "");
  f.dir.write("a/deep/two.txt", "");
  f.dir.write("a/deep/deeper/three.txt", "");
  f.dir.write("c/z.txt", "");
  fs::create_directory(f.dir.path() / "empty");
  fs::create_symlink("b.txt", f.dir.path() / "link");
  const std::string header = "Absolute path: " + f.dir.path().string() + "\n";

  auto r = f.call("list_dir", {{"dir_path", "."}});
  CHECK(r.success());
  CHECK(r.output() == header +
                          "a/\n"
                          "  deep/\n"
                          "  one.txt\n"
                          "b.txt\n"
                          "c/\n"
                          "  z.txt\n"
                          "empty/\n"
                          "link@\n");

  auto d1 = f.call("list_dir", {{"dir_path", f.dir.path().string()}, {"depth", 1}});
  CHECK(d1.output() == header + "a/\nb.txt\nc/\nempty/\nlink@\n");

  auto d3 = f.call("list_dir", {{"dir_path", "a"}, {"depth", 3}});
  CHECK(d3.output() == "Absolute path: " + (f.dir.path() / "a").string() +
                           "\n"
                           "deep/\n"
                           "  deeper/\n"
                           "    three.txt\n"
                           "  two.txt\n"
                           "one.txt\n");

  auto page = f.call("list_dir", {{"dir_path", "."}, {"limit", 3}});
  CHECK(page.output() == header + "a/\n  deep/\n  one.txt\nMore than 3 entries found; continue with offset=4\n");
  auto page2 = f.call("list_dir", {{"dir_path", "."}, {"offset", 4}, {"limit", 3}});
  CHECK(page2.output() == header + "b.txt\nc/\n  z.txt\nMore than 3 entries found; continue with offset=7\n");
  auto last = f.call("list_dir", {{"dir_path", "."}, {"offset", 7}, {"limit", 3}});
  CHECK(last.output() == header + "empty/\nlink@\n");

  auto past = f.call("list_dir", {{"dir_path", "."}, {"offset", 50}});
  CHECK_FALSE(past.success());
  CHECK(past.output().find("exceeds") != std::string::npos);

  auto empty = f.call("list_dir", {{"dir_path", "empty"}});
  CHECK(empty.success());
  CHECK(empty.output().find("empty directory") != std::string::npos);

  CHECK_FALSE(f.call("list_dir", {{"dir_path", "b.txt"}}).success());
  CHECK_FALSE(f.call("list_dir", {{"dir_path", "missing"}}).success());
  CHECK_FALSE(f.call("list_dir", {{"dir_path", "."}, {"depth", 0}}).success());
}

TEST_CASE("list_dir: default limit of 25 entries", "[fs][list_dir]") {
  Fixture f;
  for (int i = 0; i < 30; ++i) f.dir.write("f" + std::string(i < 10 ? "0" : "") + std::to_string(i), "");
  auto r = f.call("list_dir", {{"dir_path", "."}});
  CHECK(r.output().find("f24\n") != std::string::npos);
  CHECK(r.output().find("f25\n") == std::string::npos);
  CHECK(r.output().ends_with("More than 25 entries found; continue with offset=26\n"));
}

TEST_CASE("grep_files: matches sorted by mtime, include globs, limits", "[fs][grep_files]") {
  Fixture f;
  f.dir.write("old.rs", "fn main() { needle(); }\n");
  f.dir.write("src/new.rs", "// needle here\n");
  f.dir.write("src/mid.ts", "const needle = 1;\n");
  f.dir.write("src/other.rs", "nothing to see\n");
  f.dir.write("web/app.tsx", "NEEDLE\n");
  set_mtime(f.dir.path() / "old.rs", 300);
  set_mtime(f.dir.path() / "src/mid.ts", 200);
  set_mtime(f.dir.path() / "src/new.rs", 100);
  set_mtime(f.dir.path() / "web/app.tsx", 50);

  auto r = f.call("grep_files", {{"pattern", "needle"}});
  CHECK(r.success());
  CHECK(r.output() == "src/new.rs\nsrc/mid.ts\nold.rs\n");

  auto icase = f.call("grep_files", {{"pattern", "(?i)needle"}});
  CHECK(icase.output() == "web/app.tsx\nsrc/new.rs\nsrc/mid.ts\nold.rs\n");

  auto rs = f.call("grep_files", {{"pattern", "needle"}, {"include", "*.rs"}});
  CHECK(rs.output() == "src/new.rs\nold.rs\n");
  auto braces = f.call("grep_files", {{"pattern", "(?i)needle"}, {"include", "*.{ts,tsx}"}});
  CHECK(braces.output() == "web/app.tsx\nsrc/mid.ts\n");
  auto anchored = f.call("grep_files", {{"pattern", "needle"}, {"include", "src/*.rs"}});
  CHECK(anchored.output() == "src/new.rs\n");

  auto sub = f.call("grep_files", {{"pattern", "needle"}, {"path", "src"}});
  CHECK(sub.output() == "src/new.rs\nsrc/mid.ts\n");  // still relative to cwd
  auto one = f.call("grep_files", {{"pattern", "needle"}, {"path", "old.rs"}});
  CHECK(one.output() == "old.rs\n");

  auto limited = f.call("grep_files", {{"pattern", "needle"}, {"limit", 2}});
  CHECK(limited.output() ==
        "src/new.rs\nsrc/mid.ts\n[... 1 more matching files not shown; narrow the search or raise limit]\n");

  auto regex = f.call("grep_files", {{"pattern", "fn\\s+\\w+\\(\\)"}});
  CHECK(regex.output() == "old.rs\n");
  auto digits = f.call("grep_files", {{"pattern", "=\\s\\d;"}});
  CHECK(digits.output() == "src/mid.ts\n");
  auto words = f.call("grep_files", {{"pattern", "\\bneedle\\b"}, {"include", "*.rs"}});
  CHECK(words.output() == "src/new.rs\nold.rs\n");
  auto noncap = f.call("grep_files", {{"pattern", "(?:const|let) needle"}});
  CHECK(noncap.output() == "src/mid.ts\n");

  auto none = f.call("grep_files", {{"pattern", "haystack"}});
  CHECK_FALSE(none.success());
  CHECK(none.output() == "No matches found.");

  auto bad = f.call("grep_files", {{"pattern", "(unclosed"}});
  CHECK_FALSE(bad.success());
  CHECK(bad.output().find("invalid regular expression") != std::string::npos);
  CHECK_FALSE(f.call("grep_files", {{"pattern", "x"}, {"path", "missing"}}).success());
}

TEST_CASE("grep_files: regex features behind the literal prefilter", "[fs][grep_files]") {
  Fixture f;
  f.dir.write("color.txt", "the color red\n");
  f.dir.write("colour.txt", "the colour blue\n");
  f.dir.write("exact.txt", "preamble\nneedle\npostscript\n");
  f.dir.write("inline.txt", "a needle inside\n");
  f.dir.write("plus.txt", "a+b = c\n");
  f.dir.write("Mixed.txt", "NeEdLe\n");
  f.dir.write("multi.txt", "needle first\nthen needle alone\nneedle\n");  // third line matches ^needle$
  auto names = [&](const json::object& args) {
    auto r = f.call("grep_files", args);
    std::vector<std::string> got;
    if (!r.success()) return got;
    std::string out = r.output();
    for (std::size_t pos = 0; pos < out.size();) {
      auto nl = out.find('\n', pos);
      got.push_back(out.substr(pos, nl - pos));
      pos = nl + 1;
    }
    std::sort(got.begin(), got.end());
    return got;
  };
  using V = std::vector<std::string>;
  CHECK(names({{"pattern", "colou?r"}}) == V{"color.txt", "colour.txt"});
  CHECK(names({{"pattern", "colou+r"}}) == V{"colour.txt"});
  CHECK(names({{"pattern", "^needle$"}}) == V{"exact.txt", "multi.txt"});
  CHECK(names({{"pattern", "needle (inside|first)"}}) == V{"inline.txt", "multi.txt"});
  CHECK(names({{"pattern", "zzz|a\\+b"}}) == V{"plus.txt"});
  CHECK(names({{"pattern", "a\\+b = [a-z]"}}) == V{"plus.txt"});
  CHECK(names({{"pattern", "(?i)^needle$"}}) == V{"Mixed.txt", "exact.txt", "multi.txt"});
  CHECK(names({{"pattern", "re[d]"}}) == V{"color.txt"});
  CHECK(names({{"pattern", "the colou{0,1}r (red|blue)"}}) == V{"color.txt", "colour.txt"});
}

TEST_CASE("grep_files: .gitignore files are respected, .git and binaries skipped", "[fs][grep_files][gitignore]") {
  Fixture f;
  f.dir.write(".gitignore", "*.log\n!keep.log\nbuild/\n/top-only.txt\nnode_modules\ngen/**/*.out\n");
  f.dir.write("app.log", "needle\n");
  f.dir.write("keep.log", "needle\n");
  f.dir.write("build/out.txt", "needle\n");
  f.dir.write("sub/build", "needle\n");  // a file named build: the dir-only rule does not apply
  f.dir.write("top-only.txt", "needle\n");
  f.dir.write("sub/top-only.txt", "needle\n");  // anchored rule only applies at the top
  f.dir.write("node_modules/pkg/index.js", "needle\n");
  f.dir.write("gen/a/b/x.out", "needle\n");
  f.dir.write("gen/x.in", "needle\n");
  f.dir.write(".git/config", "needle\n");
  f.dir.write(".github/workflow.yml", "needle\n");
  f.dir.write("nested/.gitignore", "*.tmp\n!important.log\n");
  f.dir.write("nested/a.tmp", "needle\n");
  f.dir.write("nested/important.log", "needle\n");
  f.dir.write("nested/b.txt", "needle\n");
  f.dir.write("a.tmp", "needle\n");  // *.tmp is only ignored below nested/
  f.dir.write("image.bin", std::string("needle\0\x01\x02", 9));
  f.dir.write("src/main.c", "needle\n");

  auto r = f.call("grep_files", {{"pattern", "needle"}, {"limit", 1000}});
  REQUIRE(r.success());
  std::vector<std::string> got;
  std::string out = r.output();
  for (std::size_t pos = 0; pos < out.size();) {
    auto nl = out.find('\n', pos);
    got.push_back(out.substr(pos, nl - pos));
    pos = nl + 1;
  }
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<std::string>{".github/workflow.yml", "a.tmp", "gen/x.in", "keep.log", "nested/b.txt",
                                        "nested/important.log", "src/main.c", "sub/build", "sub/top-only.txt"});

  // Searching below the top still honours the top's .gitignore.
  auto sub = f.call("grep_files", {{"pattern", "needle"}, {"path", "gen"}});
  CHECK(sub.output() == "gen/x.in\n");
  auto nested = f.call("grep_files", {{"pattern", "needle"}, {"path", "nested"}});
  std::string n = nested.output();
  CHECK(n.find("nested/a.tmp") == std::string::npos);
  CHECK(n.find("nested/b.txt") != std::string::npos);
  CHECK(n.find("nested/important.log") != std::string::npos);
}
