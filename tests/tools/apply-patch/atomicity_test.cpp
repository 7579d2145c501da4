#include <catch2/catch.hpp>

#include <keel/tools/apply_patch.hpp>

#include "temp_workdir.hpp"

using namespace keel::tools::patch;
using keel::tools::patch::test::TempWorkdir;

namespace {

void populate(const TempWorkdir& wd) {
    wd.write("one.txt", "1\n2\n3\n");
    wd.write("two.txt", "a\nb\nc\n");
    wd.write("three.txt", "x\ny\nz\n");
    wd.write("gone.txt", "delete me\n");
}

// Touches every kind of change: update, add (in a new directory), move, delete.
const char* kFourFilePatch =
    "*** Begin Patch\n"
    "*** Update File: one.txt\n"
    "@@\n-2\n+two\n"
    "*** Add File: new/dir/added.txt\n"
    "+added\n"
    "*** Update File: two.txt\n"
    "*** Move to: moved/two.txt\n"
    "@@\n-b\n+B\n"
    "*** Delete File: gone.txt\n"
    "*** Update File: three.txt\n"
    "@@\n-y\n+Y\n"
    "*** End Patch\n";

}  // namespace

TEST_CASE("atomicity: a failing hunk in the 2nd file of a 3-file patch changes nothing", "[apply_patch][atomic]") {
    TempWorkdir wd;
    populate(wd);
    const auto before = wd.snapshot();
    const auto r = apply_patch(
        "*** Begin Patch\n"
        "*** Update File: one.txt\n"
        "@@\n 1\n-2\n+two\n"
        "*** Update File: two.txt\n"
        "@@\n a\n-b\n+B\n@@\n-no such line\n+x\n"
        "*** Update File: three.txt\n"
        "@@\n-y\n+Y\n"
        "*** End Patch\n",
        wd.path());
    CHECK_FALSE(r.success);
    CHECK(r.output == "Failed to find expected lines in two.txt (hunk 2):\nno such line");
    CHECK(r.changes.empty());
    CHECK(wd.snapshot() == before);  // every file byte-identical, nothing added
}

TEST_CASE("atomicity: a refused path anywhere changes nothing", "[apply_patch][atomic]") {
    TempWorkdir wd;
    populate(wd);
    const auto before = wd.snapshot();
    const auto r = apply_patch(
        "*** Begin Patch\n*** Add File: fine.txt\n+ok\n*** Update File: one.txt\n@@\n-1\n+one\n"
        "*** Add File: ../escape.txt\n+bad\n*** End Patch\n",
        wd.path());
    CHECK_FALSE(r.success);
    CHECK_THAT(r.output, Catch::Contains("../escape.txt"));
    CHECK(wd.snapshot() == before);
}

TEST_CASE("atomicity: a failure during the commit rolls back what was already done", "[apply_patch][atomic]") {
    // Count the commit steps of the full patch by failing at increasing positions until it
    // succeeds; every failing position must leave the tree byte-identical.
    std::size_t fail_at = 0;
    for (;; ++fail_at) {
        INFO("fail_at = " << fail_at);
        TempWorkdir wd;
        populate(wd);
        const auto before = wd.snapshot();
        ApplyOptions opts;
        opts.testing_fail_commit_at = fail_at;
        const auto r = apply_patch(kFourFilePatch, wd.path(), opts);
        if (r.success) break;
        CHECK_THAT(r.output, Catch::Contains("injected commit failure"));
        CHECK_THAT(r.output, Catch::Contains("no file was changed"));
        CHECK(wd.snapshot() == before);
        REQUIRE(fail_at < 50);
    }
    // one.txt: backup+rename, added: rename, two.txt: delete, moved: rename,
    // gone.txt: delete, three.txt: backup+rename.
    CHECK(fail_at == 8);
}

TEST_CASE("atomicity: the full patch leaves no temp or backup files", "[apply_patch][atomic]") {
    TempWorkdir wd;
    populate(wd);
    const auto r = apply_patch(kFourFilePatch, wd.path());
    INFO(r.output);
    REQUIRE(r.success);
    CHECK(r.output ==
          "Success. Updated the following files:\nA new/dir/added.txt\nM one.txt\nM moved/two.txt\n"
          "M three.txt\nD gone.txt\n");
    const std::map<std::string, std::string> expected = {
        {"work", "<dir>"},
        {"work/one.txt", "1\ntwo\n3\n"},
        {"work/three.txt", "x\nY\nz\n"},
        {"work/new", "<dir>"},
        {"work/new/dir", "<dir>"},
        {"work/new/dir/added.txt", "added\n"},
        {"work/moved", "<dir>"},
        {"work/moved/two.txt", "a\nB\nc\n"},
    };
    CHECK(wd.snapshot() == expected);
}
