// The apply-patch module, loaded from its built file and driven through the C ABI.
#include "tool_test_support.hpp"

#include <keel/abi.h>

#include <string>

using namespace keel::test::tools;
using keel::test::AbiTestHost;

namespace {

ToolReply apply(AbiTestHost& host, const std::string& patch, const fs::path& cwd,
                const std::string& sandbox = "danger-full-access") {
  return call_tool(host, "apply_patch", freeform_request("apply_patch", patch, cwd.string(), sandbox));
}

const json::array& changes_of(const json::object& item) { return item.at("changes").as_array(); }

json::object change(const std::string& path, const std::string& kind) {
  return json::object{{"path", path}, {"kind", kind}};
}

}  // namespace

TEST_CASE("apply-patch module: one freeform, mutating apply_patch tool", "[apply-patch-module]") {
  AbiTestHost host(KEEL_APPLY_PATCH_MODULE_PATH);
  CHECK(std::string(host.module().name) == "apply-patch");
  CHECK(std::string(host.module().version) == "0.1.0");
  REQUIRE(host.module().capability_count == 1);
  const keel_capability* cap = host.capability("apply_patch");
  REQUIRE(cap);
  CHECK(cap->kind == KEEL_CAP_TOOL);
  CHECK(cap->flags == (KEEL_FLAG_FREEFORM | KEEL_FLAG_MUTATING));
  CHECK(std::string(cap->description).find("*** Begin Patch") != std::string::npos);
  auto format = json::parse(cap->schema_json).as_object();
  CHECK(format.at("type") == "grammar");
  CHECK(format.at("syntax") == "lark");
  CHECK(std::string(format.at("definition").as_string()).find("*** Begin Patch") != std::string::npos);
}

TEST_CASE("apply-patch module: add, update, move and delete in one patch", "[apply-patch-module]") {
  TempDir dir("keel-ap-module");
  dir.write("src/app.py", "def greet():\n    print(\"Hi\")\n    return 1\n");
  dir.write("notes.txt", "one\ntwo\nthree\n");
  dir.write("old.txt", "obsolete\n");
  AbiTestHost host(KEEL_APPLY_PATCH_MODULE_PATH);
  host.start();

  const std::string patch =
      "*** Begin Patch\n"
      "*** Add File: docs/new.txt\n"
      "+line one\n"
      "+line two\n"
      "*** Update File: notes.txt\n"
      "@@\n"
      " one\n"
      "-two\n"
      "+TWO\n"
      " three\n"
      "*** Update File: src/app.py\n"
      "*** Move to: src/main.py\n"
      "@@ def greet():\n"
      "-    print(\"Hi\")\n"
      "+    print(\"Hello, world!\")\n"
      "*** Delete File: old.txt\n"
      "*** End Patch\n";
  auto r = apply(host, patch, dir.path());
  CHECK(r.status == KEEL_OK);
  INFO(r.output());
  REQUIRE(r.success());
  CHECK(r.output() ==
        "Success. Updated the following files:\nA docs/new.txt\nM notes.txt\nM src/main.py\nD old.txt\n");

  CHECK(dir.read("docs/new.txt") == "line one\nline two\n");
  CHECK(dir.read("notes.txt") == "one\nTWO\nthree\n");
  CHECK(dir.read("src/main.py") == "def greet():\n    print(\"Hello, world!\")\n    return 1\n");
  CHECK_FALSE(dir.exists("src/app.py"));
  CHECK_FALSE(dir.exists("old.txt"));

  const auto& item = r.item();
  CHECK(item.at("type") == "file_change");
  CHECK(item.at("status") == "completed");
  const auto& ch = changes_of(item);
  REQUIRE(ch.size() == 4);
  CHECK(ch[0] == change("docs/new.txt", "add"));
  CHECK(ch[1] == change("notes.txt", "update"));
  CHECK(ch[2].at("path") == "src/main.py");
  CHECK(ch[2].at("kind") == "update");
  CHECK(ch[2].at("move_from") == "src/app.py");
  CHECK(ch[3] == change("old.txt", "delete"));
  const std::string diff(item.at("diff").as_string());
  CHECK(diff.find("+++ b/docs/new.txt") != std::string::npos);
  CHECK(diff.find("-two\n+TWO\n") != std::string::npos);
  CHECK(diff.find("--- a/old.txt") != std::string::npos);
  CHECK(diff.find("+    print(\"Hello, world!\")") != std::string::npos);

  // The started item comes first, in progress, naming the files.
  REQUIRE(r.emits.size() == 1);
  CHECK(r.emits[0].at("type") == "item.started");
  const auto& started = r.emits[0].at("item").as_object();
  CHECK(started.at("type") == "file_change");
  CHECK(started.at("status") == "in_progress");
  REQUIRE(changes_of(started).size() == 4);
  CHECK(changes_of(started)[0] == change("docs/new.txt", "add"));
  CHECK(changes_of(started)[3] == change("old.txt", "delete"));
}

TEST_CASE("apply-patch module: the JSON function form {\"input\": patch} works too", "[apply-patch-module]") {
  TempDir dir("keel-ap-module");
  AbiTestHost host(KEEL_APPLY_PATCH_MODULE_PATH);
  host.start();
  const std::string patch = "*** Begin Patch\n*** Add File: hello.txt\n+hi\n*** End Patch";
  auto r = call_tool(host, "apply_patch",
                     function_request("apply_patch", json::object{{"input", patch}}, dir.path().string()));
  REQUIRE(r.success());
  CHECK(dir.read("hello.txt") == "hi\n");
  CHECK(changes_of(r.item()) == json::array{change("hello.txt", "add")});

  auto missing = call_tool(host, "apply_patch", function_request("apply_patch", json::object{}, dir.path().string()));
  CHECK(missing.status == KEEL_OK);
  CHECK_FALSE(missing.success());
  CHECK(missing.output().find("*** Begin Patch") != std::string::npos);
}

TEST_CASE("apply-patch module: a failing hunk leaves every file untouched", "[apply-patch-module]") {
  TempDir dir("keel-ap-module");
  dir.write("a.txt", "alpha\nbeta\n");
  dir.write("b.txt", "gamma\ndelta\n");
  AbiTestHost host(KEEL_APPLY_PATCH_MODULE_PATH);
  host.start();

  const std::string patch =
      "*** Begin Patch\n"
      "*** Add File: c.txt\n"
      "+new\n"
      "*** Update File: a.txt\n"
      "@@\n"
      "-alpha\n"
      "+ALPHA\n"
      "*** Update File: b.txt\n"
      "@@\n"
      "-this line is not in the file\n"
      "+whatever\n"
      "*** Delete File: a.txt\n"
      "*** End Patch\n";
  auto r = apply(host, patch, dir.path());
  CHECK(r.status == KEEL_OK);
  CHECK_FALSE(r.success());
  CHECK(r.output().find("b.txt") != std::string::npos);
  CHECK(r.output().find("this line is not in the file") != std::string::npos);
  CHECK(dir.read("a.txt") == "alpha\nbeta\n");
  CHECK(dir.read("b.txt") == "gamma\ndelta\n");
  CHECK_FALSE(dir.exists("c.txt"));
  CHECK(r.item().at("type") == "file_change");
  CHECK(r.item().at("status") == "failed");
  CHECK(r.item().at("diff") == "");
  CHECK(changes_of(r.item()).size() == 4);  // what the patch attempted
  REQUIRE(r.emits.size() == 1);
  CHECK(r.emits[0].at("item").at("status") == "in_progress");
}

TEST_CASE("apply-patch module: paths leaving the working directory are refused", "[apply-patch-module]") {
  TempDir root("keel-ap-module");
  fs::create_directory(root.path() / "work");
  const fs::path work = root.path() / "work";
  root.write("outside.txt", "keep\n");
  fs::create_directory_symlink(root.path(), work / "up");
  AbiTestHost host(KEEL_APPLY_PATCH_MODULE_PATH);
  host.start();

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"dot-dot", "*** Begin Patch\n*** Add File: ../escape.txt\n+x\n*** End Patch\n"},
      {"absolute", "*** Begin Patch\n*** Add File: " + (root.path() / "abs.txt").string() + "\n+x\n*** End Patch\n"},
      {"through a symlink", "*** Begin Patch\n*** Add File: up/link.txt\n+x\n*** End Patch\n"},
      {"delete outside", "*** Begin Patch\n*** Delete File: ../outside.txt\n*** End Patch\n"},
      {"move outside",
       "*** Begin Patch\n*** Add File: in.txt\n+x\n*** Update File: in.txt\n*** Move to: ../moved.txt\n@@\n-x\n+y\n*** "
       "End Patch\n"},
  };
  for (const auto& [name, patch] : cases) {
    INFO(name);
    auto r = apply(host, patch, work);
    CHECK(r.status == KEEL_OK);
    CHECK_FALSE(r.success());
    CHECK(r.output().find("Refusing") != std::string::npos);
    CHECK(r.item().at("status") == "failed");
  }
  CHECK_FALSE(root.exists("escape.txt"));
  CHECK_FALSE(root.exists("abs.txt"));
  CHECK_FALSE(root.exists("link.txt"));
  CHECK_FALSE(root.exists("moved.txt"));
  CHECK_FALSE(root.exists("work/in.txt"));
  CHECK(root.read("outside.txt") == "keep\n");
}

TEST_CASE("apply-patch module: malformed patches and a read-only sandbox change nothing", "[apply-patch-module]") {
  TempDir dir("keel-ap-module");
  dir.write("a.txt", "alpha\n");
  AbiTestHost host(KEEL_APPLY_PATCH_MODULE_PATH);
  host.start();

  auto bad = apply(host, "*** Begin Patch\n*** Frobnicate File: a.txt\n*** End Patch\n", dir.path());
  CHECK(bad.status == KEEL_OK);
  CHECK_FALSE(bad.success());
  CHECK(bad.output().find("line 2") != std::string::npos);
  CHECK(bad.item().at("status") == "failed");
  CHECK(changes_of(bad.item()).empty());
  REQUIRE(bad.emits.size() == 1);
  CHECK(bad.emits[0].at("type") == "item.started");

  auto ro = apply(host, "*** Begin Patch\n*** Update File: a.txt\n@@\n-alpha\n+beta\n*** End Patch\n", dir.path(),
                  "read-only");
  CHECK_FALSE(ro.success());
  CHECK(ro.output().find("read-only") != std::string::npos);
  CHECK(ro.item().at("status") == "failed");
  CHECK(changes_of(ro.item()) == json::array{change("a.txt", "update")});
  CHECK(dir.read("a.txt") == "alpha\n");

  auto ok = apply(host, "*** Begin Patch\n*** Update File: a.txt\n@@\n-alpha\n+beta\n*** End Patch\n", dir.path(),
                  "workspace-write");
  CHECK(ok.success());
  CHECK(dir.read("a.txt") == "beta\n");
}

TEST_CASE("apply-patch module: tolerant matching, CRLF and unicode through the module", "[apply-patch-module]") {
  TempDir dir("keel-ap-module");
  dir.write("crlf.txt", "one\r\ntwo\r\n");
  dir.write("quotes.txt", "say \xE2\x80\x9Chello\xE2\x80\x9D   \nend\n");
  AbiTestHost host(KEEL_APPLY_PATCH_MODULE_PATH);
  host.start();
  auto r = apply(host,
                 "*** Begin Patch\n"
                 "*** Update File: crlf.txt\n"
                 "@@\n"
                 "-two\n"
                 "+deux\n"
                 "*** Update File: quotes.txt\n"
                 "@@\n"
                 "-say \"hello\"\n"
                 "+say \xC2\xAB" "bonjour\xC2\xBB\n"
                 "*** End Patch\n",
                 dir.path());
  INFO(r.output());
  REQUIRE(r.success());
  CHECK(dir.read("crlf.txt") == "one\r\ndeux\r\n");
  CHECK(dir.read("quotes.txt") == "say \xC2\xAB" "bonjour\xC2\xBB\nend\n");
}
