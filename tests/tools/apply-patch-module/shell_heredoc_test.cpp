// apply_patch heredocs sent to the shell module: applied with the engine, never run.
//
// How "never run" is checked: each command, if a shell ran it, would leave a marker file
// behind in two independent ways —
//   1. PATH (through the shell module's `env` config) starts with a directory holding a fake
//      `apply_patch` program that creates `ran-fake-apply_patch`;
//   2. the heredoc delimiter is unquoted, so a shell would expand `$(touch ran-substitution)`
//      in the body even before finding out whether apply_patch exists.
// A control command shows both mechanisms really fire when the shell does run something.
#include "tool_test_support.hpp"

#include <keel/abi.h>

#include <cstdlib>
#include <string>

#include <sys/stat.h>

using namespace keel::test::tools;
using keel::test::AbiTestHost;

namespace {

struct Fixture {
  TempDir root{"keel-heredoc"};
  fs::path work = root.path() / "work";
  fs::path bin = root.path() / "bin";
  fs::path fake_marker = root.path() / "ran-fake-apply_patch";
  fs::path subst_marker = root.path() / "ran-substitution";
  AbiTestHost host{KEEL_SHELL_MODULE_PATH};

  Fixture() {
    fs::create_directories(work);
    fs::create_directories(bin);
    root.write("bin/apply_patch", "#!/bin/sh\ntouch '" + fake_marker.string() + "'\n");
    ::chmod((bin / "apply_patch").c_str(), 0755);
    const char* path = std::getenv("PATH");
    json::object config{{"env", json::object{{"PATH", bin.string() + ":" + (path ? path : "/usr/bin:/bin")}}}};
    host.start(json::serialize(config));
  }

  // A patch body that would create the substitution marker if a shell expanded it.
  std::string patch(const std::string& file) const {
    return "*** Begin Patch\n*** Add File: " + file + "\n+created by the patch\n+$(touch " + subst_marker.string() +
           ")\n*** End Patch\n";
  }
  bool ran() const { return fs::exists(fake_marker) || fs::exists(subst_marker); }

  ToolReply shell(const json::array& argv, const std::string& sandbox = "danger-full-access") {
    return call_tool(host, "shell", function_request("shell", json::object{{"command", argv}}, work.string(), sandbox));
  }
  ToolReply shell_command(const std::string& script) {
    return call_tool(host, "shell_command",
                     function_request("shell_command", json::object{{"command", script}, {"login", false}}, work.string()));
  }
};

}  // namespace

TEST_CASE("heredoc: the control command really runs (the markers work)", "[apply-patch-module][heredoc]") {
  Fixture f;
  // Not an apply_patch invocation the recognizer accepts, so the shell runs it.
  auto r = f.shell(json::array{"bash", "-c", "command apply_patch <<EOF\n$(touch " + f.subst_marker.string() + ")\nEOF\n"});
  CHECK(r.item().at("type") == "command_execution");
  CHECK(fs::exists(f.fake_marker));
  CHECK(fs::exists(f.subst_marker));
}

TEST_CASE("heredoc: shell argv form is applied, not run", "[apply-patch-module][heredoc]") {
  Fixture f;
  auto r = f.shell(json::array{"bash", "-c", "apply_patch <<EOF\n" + f.patch("hello.txt") + "EOF\n"});
  CHECK(r.status == KEEL_OK);
  INFO(r.output());
  REQUIRE(r.success());
  CHECK(r.output() == "Success. Updated the following files:\nA hello.txt\n");
  CHECK(f.root.read("work/hello.txt") == "created by the patch\n$(touch " + f.subst_marker.string() + ")\n");
  CHECK_FALSE(f.ran());
  const auto& item = r.item();
  CHECK(item.at("type") == "file_change");
  CHECK(item.at("status") == "completed");
  CHECK(item.at("changes") == json::array{json::object{{"path", "hello.txt"}, {"kind", "add"}}});
  CHECK(std::string(item.at("diff").as_string()).find("+++ b/hello.txt") != std::string::npos);

  // The login-shell spelling and a quoted delimiter are recognized too.
  auto lc = f.shell(json::array{"/bin/bash", "-lc", "apply_patch <<'PATCH'\n" + f.patch("second.txt") + "PATCH"});
  REQUIRE(lc.success());
  CHECK(f.root.exists("work/second.txt"));
  CHECK_FALSE(f.ran());
}

TEST_CASE("heredoc: shell_command form with cd is applied inside the cd directory", "[apply-patch-module][heredoc]") {
  Fixture f;
  fs::create_directories(f.work / "sub");
  f.root.write("work/sub/edit.txt", "keep\nchange me\n");
  const std::string script = "cd sub && apply_patch <<EOF\n" + f.patch("added.txt") +
                             "EOF\n";
  auto r = f.shell_command(script);
  INFO(r.output());
  REQUIRE(r.success());
  CHECK(f.root.exists("work/sub/added.txt"));
  CHECK_FALSE(f.root.exists("work/added.txt"));
  CHECK_FALSE(f.ran());
  // Paths are reported relative to the command's directory, so the per-turn diff lines up.
  CHECK(r.item().at("changes") == json::array{json::object{{"path", "sub/added.txt"}, {"kind", "add"}}});
  CHECK(r.output() == "Success. Updated the following files:\nA sub/added.txt\n");

  auto u = f.shell_command(
      "cd sub && apply_patch <<'EOF'\n*** Begin Patch\n*** Update File: edit.txt\n@@\n keep\n-change me\n+changed\n*** End "
      "Patch\nEOF\n");
  REQUIRE(u.success());
  CHECK(f.root.read("work/sub/edit.txt") == "keep\nchanged\n");
}

TEST_CASE("heredoc: escapes and failures change nothing and run nothing", "[apply-patch-module][heredoc]") {
  Fixture f;
  f.root.write("work/a.txt", "alpha\n");

  SECTION("cd out of the working directory") {
    auto r = f.shell(json::array{"bash", "-lc", "cd .. && apply_patch <<EOF\n" + f.patch("escaped.txt") + "EOF\n"});
    CHECK(r.status == KEEL_OK);
    CHECK_FALSE(r.success());
    CHECK(r.output().find("leaves the working directory") != std::string::npos);
    CHECK(r.item().at("status") == "failed");
    CHECK_FALSE(f.root.exists("escaped.txt"));
  }
  SECTION("cd to an absolute directory outside") {
    auto r = f.shell(json::array{"bash", "-lc", "cd " + f.root.path().string() + " && apply_patch <<EOF\n" +
                                                    f.patch("escaped.txt") + "EOF\n"});
    CHECK_FALSE(r.success());
    CHECK_FALSE(f.root.exists("escaped.txt"));
  }
  SECTION("a patch path leaving the directory") {
    auto r = f.shell(json::array{"bash", "-lc", "apply_patch <<EOF\n" + f.patch("../escaped.txt") + "EOF\n"});
    CHECK_FALSE(r.success());
    CHECK(r.output().find("Refusing") != std::string::npos);
    CHECK_FALSE(f.root.exists("escaped.txt"));
  }
  SECTION("a failing hunk") {
    auto r = f.shell(json::array{
        "bash", "-lc",
        "apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: b.txt\n+b\n*** Update File: a.txt\n@@\n-nope\n+x\n*** End "
        "Patch\nEOF\n"});
    CHECK_FALSE(r.success());
    CHECK(r.item().at("status") == "failed");
    CHECK(f.root.read("work/a.txt") == "alpha\n");
    CHECK_FALSE(f.root.exists("work/b.txt"));
  }
  SECTION("a read-only sandbox") {
    auto r = f.shell(json::array{"bash", "-lc", "apply_patch <<EOF\n" + f.patch("ro.txt") + "EOF\n"}, "read-only");
    CHECK_FALSE(r.success());
    CHECK(r.output().find("read-only") != std::string::npos);
    CHECK_FALSE(f.root.exists("work/ro.txt"));
  }
  SECTION("a malformed patch") {
    auto r = f.shell(json::array{"bash", "-lc", "apply_patch <<'EOF'\n*** Begin Patch\n*** Bogus: x\n*** End Patch\nEOF\n"});
    CHECK_FALSE(r.success());
    CHECK(r.item().at("type") == "file_change");
  }
  CHECK_FALSE(f.ran());
}
