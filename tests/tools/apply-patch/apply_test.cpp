#include <catch2/catch.hpp>

#include <keel/tools/apply_patch.hpp>

#include "temp_workdir.hpp"

#include <sys/stat.h>

using namespace keel::tools::patch;
using keel::tools::patch::test::TempWorkdir;

namespace {

std::string wrap(const std::string& body) { return "*** Begin Patch\n" + body + "*** End Patch\n"; }

}  // namespace

TEST_CASE("apply: table of single-file updates", "[apply_patch][apply]") {
    struct Case {
        const char* name;
        std::string before;
        std::string patch_body;  // after "*** Update File: f.txt\n"
        std::string after;
    };
    const std::vector<Case> cases = {
        {"simple replace", "a\nb\nc\n", "@@\n a\n-b\n+B\n c\n", "a\nB\nc\n"},
        {"first hunk without @@", "a\nb\nc\n", " a\n-b\n+B\n", "a\nB\nc\n"},
        {"context header locates the hunk",
         "def hello():\n    print(\"Hi\")\n\ndef greet():\n    print(\"Hi\")\n",
         "@@ def greet():\n-    print(\"Hi\")\n+    print(\"Hello, world!\")\n",
         "def hello():\n    print(\"Hi\")\n\ndef greet():\n    print(\"Hello, world!\")\n"},
        {"multiple hunks searched forward", "x\n1\nx\n2\nx\n3\n",
         "@@\n x\n-1\n+one\n@@\n x\n-3\n+three\n", "x\none\nx\n2\nx\nthree\n"},
        {"second hunk searches after the first", "k\nv\nk\nv\n", "@@\n k\n-v\n+V1\n@@\n k\n-v\n+V2\n",
         "k\nV1\nk\nV2\n"},
        {"End of File anchors at the end", "x\ny\nx\ny\n", "@@\n x\n-y\n+Y\n*** End of File\n", "x\ny\nx\nY\n"},
        {"append at end of file", "a\nb\n", "@@\n b\n+c\n+d\n*** End of File\n", "a\nb\nc\nd\n"},
        {"pure addition after @@ header", "class A:\n    pass\nclass B:\n    pass\n",
         "@@ class B:\n+    x = 1\n", "class A:\n    pass\nclass B:\n    x = 1\n    pass\n"},
        {"@@ header repeated as the first context line", "x\ndef f():\n    a\ndef g():\n    a\n",
         "@@ def g():\n def g():\n-    a\n+    b\n", "x\ndef f():\n    a\ndef g():\n    b\n"},
        {"pure addition without header appends", "a\n", "@@\n+b\n", "a\nb\n"},
        {"delete lines", "a\nb\nc\nd\n", "@@\n a\n-b\n-c\n d\n", "a\nd\n"},
        {"blank context lines", "a\n\nb\n", "@@\n a\n\n-b\n+B\n", "a\n\nB\n"},
        {"trailing blank hunk line meaning end of file", "a\nb\n", "@@\n a\n-b\n+B\n \n", "a\nB\n"},
        {"ignoring trailing whitespace keeps the file's context text", "a  \nb\n", "@@\n a\n-b\n+B\n",
         "a  \nB\n"},
        {"ignoring surrounding whitespace", "    if x:\n        y()\n", "@@\n if x:\n-    y()\n+        z()\n",
         "    if x:\n        z()\n"},
        {"typographic punctuation in the file", "msg = \u201chello\u201d \u2014 ok\nnext\n",
         "@@\n-msg = \"hello\" - ok\n+msg = \"bye\"\n next\n", "msg = \"bye\"\nnext\n"},
        {"typographic punctuation in the patch", "s = 'it's'\n", "@@\n-s = \u2018it\u2019s\u2019\n+s = 'it is'\n",
         "s = 'it is'\n"},
        {"CRLF file stays CRLF", "a\r\nb\r\nc\r\n", "@@\n a\n-b\n+B\n+B2\n c\n", "a\r\nB\r\nB2\r\nc\r\n"},
        {"CRLF file, append at end", "a\r\nb\r\n", "@@\n b\n+c\n*** End of File\n", "a\r\nb\r\nc\r\n"},
        {"mixed endings keep each line's own", "a\r\nb\nc\r\n", "@@\n a\n-b\n+B\n c\n", "a\r\nB\r\nc\r\n"},
        {"no final newline stays without", "a\nb", "@@\n a\n-b\n+B\n", "a\nB"},
        {"no final newline, append at end", "a\nb", "@@\n b\n+c\n*** End of File\n", "a\nb\nc"},
        {"no final newline, edit elsewhere", "a\nb\nc", "@@\n-a\n+A\n b\n", "A\nb\nc"},
        {"no final newline, patch adds one", "a\nb", "@@\n b\n+\n*** End of File\n", "a\nb\n"},
        {"unicode content", "h\u00e9llo\n\u4e16\u754c\n\U0001F600 smile\n",
         "@@\n h\u00e9llo\n-\u4e16\u754c\n+\u4e16\u754c\uff01\n \U0001F600 smile\n",
         "h\u00e9llo\n\u4e16\u754c\uff01\n\U0001F600 smile\n"},
        {"remove everything", "a\nb\n", "@@\n-a\n-b\n", ""},
        {"empty file gets content", "", "@@\n+first\n", "first\n"},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        TempWorkdir wd;
        wd.write("f.txt", c.before);
        const auto r = apply_patch(wrap("*** Update File: f.txt\n" + c.patch_body), wd.path());
        INFO(r.output);
        REQUIRE(r.success);
        CHECK(r.output == "Success. Updated the following files:\nM f.txt\n");
        CHECK(wd.read("f.txt") == c.after);
        REQUIRE(r.changes.size() == 1);
        CHECK(r.changes[0].kind == ChangeKind::Update);
    }
}

TEST_CASE("apply: add, delete, move and the summary", "[apply_patch][apply]") {
    TempWorkdir wd;
    wd.write("src/app.py", "def greet():\n    print(\"Hi\")\n");
    wd.write("old.txt", "bye\n");
    const auto r = apply_patch(
        "*** Begin Patch\n"
        "*** Add File: path/new.txt\n"
        "+line one\n"
        "+line two\n"
        "*** Update File: src/app.py\n"
        "*** Move to: src/main.py\n"
        "@@ def greet():\n"
        "-    print(\"Hi\")\n"
        "+    print(\"Hello, world!\")\n"
        "*** Delete File: old.txt\n"
        "*** End Patch\n",
        wd.path());
    INFO(r.output);
    REQUIRE(r.success);
    CHECK(r.output == "Success. Updated the following files:\nA path/new.txt\nM src/main.py\nD old.txt\n");
    CHECK(wd.read("path/new.txt") == "line one\nline two\n");
    CHECK(wd.read("src/main.py") == "def greet():\n    print(\"Hello, world!\")\n");
    CHECK_FALSE(wd.exists("src/app.py"));
    CHECK_FALSE(wd.exists("old.txt"));

    REQUIRE(r.changes.size() == 3);
    CHECK(r.changes[0].kind == ChangeKind::Add);
    CHECK(r.changes[0].path == "path/new.txt");
    CHECK(r.changes[1].kind == ChangeKind::Move);
    CHECK(r.changes[1].path == "src/main.py");
    CHECK(r.changes[1].old_path == std::optional<std::string>("src/app.py"));
    CHECK(r.changes[2].kind == ChangeKind::Delete);
    CHECK_THAT(r.unified_diff, Catch::Contains("+++ b/path/new.txt\n@@ -0,0 +1,2 @@\n+line one\n+line two\n"));
    CHECK_THAT(r.unified_diff, Catch::Contains("rename from src/app.py\nrename to src/main.py\n"));
    CHECK_THAT(r.unified_diff, Catch::Contains("-    print(\"Hi\")\n+    print(\"Hello, world!\")\n"));
    CHECK_THAT(r.unified_diff, Catch::Contains("--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n"));
    // Nothing left behind (temp files, backups).
    CHECK(wd.snapshot().size() == 5);  // work, work/path, work/path/new.txt, work/src, work/src/main.py
}

TEST_CASE("apply: Codex semantics for existing and missing files", "[apply_patch][apply]") {
    TempWorkdir wd;
    SECTION("Add over an existing file overwrites it") {
        wd.write("a.txt", "old\n");
        const auto r = apply_patch(wrap("*** Add File: a.txt\n+new\n"), wd.path());
        REQUIRE(r.success);
        CHECK(r.output == "Success. Updated the following files:\nA a.txt\n");
        CHECK(wd.read("a.txt") == "new\n");
    }
    SECTION("Add an empty file") {
        const auto r = apply_patch(wrap("*** Add File: empty.txt\n"), wd.path());
        REQUIRE(r.success);
        CHECK(wd.read("empty.txt").empty());
    }
    SECTION("Delete of a missing file fails") {
        const auto r = apply_patch(wrap("*** Delete File: nope.txt\n"), wd.path());
        CHECK_FALSE(r.success);
        CHECK(r.output == "Failed to delete nope.txt: the file does not exist");
    }
    SECTION("Update of a missing file fails") {
        const auto r = apply_patch(wrap("*** Update File: nope.txt\n@@\n-a\n+b\n"), wd.path());
        CHECK_FALSE(r.success);
        CHECK(r.output == "Failed to update nope.txt: the file does not exist");
    }
    SECTION("Update of a directory fails") {
        std::filesystem::create_directory(wd.path() / "d");
        const auto r = apply_patch(wrap("*** Update File: d\n@@\n-a\n+b\n"), wd.path());
        CHECK_FALSE(r.success);
        CHECK(r.output == "Failed to update d: it is a directory");
    }
    SECTION("Move over an existing file replaces it") {
        wd.write("a.txt", "A\n");
        wd.write("b.txt", "B\n");
        const auto r = apply_patch(wrap("*** Update File: a.txt\n*** Move to: b.txt\n@@\n-A\n+AA\n"), wd.path());
        REQUIRE(r.success);
        CHECK(wd.read("b.txt") == "AA\n");
        CHECK_FALSE(wd.exists("a.txt"));
    }
    SECTION("pure rename into a new directory") {
        wd.write("a.txt", "A\n");
        const auto r = apply_patch(wrap("*** Update File: a.txt\n*** Move to: sub/dir/a.txt\n"), wd.path());
        REQUIRE(r.success);
        CHECK(r.output == "Success. Updated the following files:\nM sub/dir/a.txt\n");
        CHECK(wd.read("sub/dir/a.txt") == "A\n");
        CHECK_FALSE(wd.exists("a.txt"));
    }
    SECTION("later actions see earlier ones") {
        const auto r = apply_patch(wrap("*** Add File: a.txt\n+one\n*** Update File: a.txt\n@@\n-one\n+two\n"), wd.path());
        REQUIRE(r.success);
        CHECK(wd.read("a.txt") == "two\n");
    }
    SECTION("an empty patch modifies nothing") {
        const auto r = apply_patch("*** Begin Patch\n*** End Patch\n", wd.path());
        CHECK_FALSE(r.success);
        CHECK(r.output == "No files were modified.");
    }
    SECTION("malformed patch text is reported, not thrown") {
        const auto r = apply_patch("*** Begin Patch\n*** Add File: a\n+x\n", wd.path());
        CHECK_FALSE(r.success);
        CHECK(r.output == "Invalid patch on line 3: The last line of the patch must be '*** End Patch'");
        CHECK_FALSE(wd.exists("a"));
    }
    SECTION("a missing workdir is reported, not thrown") {
        const auto r = apply_patch(wrap("*** Add File: a\n+x\n"), wd.path() / "missing");
        CHECK_FALSE(r.success);
        CHECK_THAT(r.output, Catch::Contains("is not usable"));
    }
}

TEST_CASE("apply: failing hunks say which file, which hunk and why", "[apply_patch][apply]") {
    TempWorkdir wd;
    wd.write("src/app.py", "a\nb\nc\n");
    const auto before = wd.snapshot();
    SECTION("expected lines") {
        const auto r = apply_patch(wrap("*** Update File: src/app.py\n@@\n-a\n+A\n@@\n b\n-nope\n+x\n"), wd.path());
        CHECK_FALSE(r.success);
        CHECK(r.output == "Failed to find expected lines in src/app.py (hunk 2):\nb\nnope");
        CHECK(r.changes.empty());
    }
    SECTION("context header") {
        const auto r = apply_patch(wrap("*** Update File: src/app.py\n@@ def missing():\n-a\n+A\n"), wd.path());
        CHECK_FALSE(r.success);
        CHECK(r.output == "Failed to find context 'def missing():' in src/app.py (hunk 1)");
    }
    SECTION("hunks must move forward") {
        const auto r = apply_patch(wrap("*** Update File: src/app.py\n@@\n-c\n+C\n@@\n-a\n+A\n"), wd.path());
        CHECK_FALSE(r.success);
        CHECK_THAT(r.output, Catch::StartsWith("Failed to find expected lines in src/app.py (hunk 2):"));
    }
    SECTION("End of File must match at the end") {
        const auto r = apply_patch(wrap("*** Update File: src/app.py\n@@\n-a\n+A\n*** End of File\n"), wd.path());
        CHECK_FALSE(r.success);
        CHECK_THAT(r.output, Catch::StartsWith("Failed to find expected lines in src/app.py (hunk 1):\na"));
    }
    CHECK(wd.snapshot() == before);
}

TEST_CASE("apply: permissions of replaced files are kept", "[apply_patch][apply]") {
    TempWorkdir wd;
    wd.write("run.sh", "echo hi\n");
    ::chmod((wd.path() / "run.sh").c_str(), 0750);
    const auto r = apply_patch(wrap("*** Update File: run.sh\n@@\n-echo hi\n+echo bye\n"), wd.path());
    REQUIRE(r.success);
    struct stat st {};
    REQUIRE(::stat((wd.path() / "run.sh").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0750);
}

TEST_CASE("apply: dry run computes everything and writes nothing", "[apply_patch][apply]") {
    TempWorkdir wd;
    wd.write("a.txt", "x\n");
    const auto before = wd.snapshot();
    ApplyOptions opts;
    opts.dry_run = true;
    const auto r = apply_patch(wrap("*** Update File: a.txt\n@@\n-x\n+y\n*** Add File: b.txt\n+b\n"), wd.path(), opts);
    REQUIRE(r.success);
    CHECK(r.output == "Success. Updated the following files:\nA b.txt\nM a.txt\n");
    CHECK_THAT(r.unified_diff, Catch::Contains("-x\n+y\n"));
    CHECK(wd.snapshot() == before);
}
