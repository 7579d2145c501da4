#include <catch2/catch.hpp>

#include <keel/tools/apply_patch.hpp>

#include "temp_workdir.hpp"

using namespace keel::tools::patch;
using keel::tools::patch::test::TempWorkdir;

TEST_CASE("paths: escapes from the workdir are refused and change nothing", "[apply_patch][paths]") {
    TempWorkdir wd;
    wd.write("inside.txt", "in\n");
    // Outside the workdir: a file, and symlinks from inside pointing at it / at its directory.
    { std::ofstream(wd.outside() / "secret.txt") << "secret\n"; }
    std::filesystem::create_symlink(wd.outside() / "secret.txt", wd.path() / "link_out.txt");
    std::filesystem::create_symlink(wd.outside(), wd.path() / "dir_out");
    std::filesystem::create_symlink(wd.outside() / "not-there.txt", wd.path() / "dangling_out.txt");
    const auto before = wd.snapshot();

    struct Case {
        const char* name;
        std::string body;
        const char* why;
    };
    const std::vector<Case> cases = {
        {"../x add", "*** Add File: ../x\n+x\n", "the path leaves the working directory"},
        {"nested .. add", "*** Add File: a/../../x\n+x\n", "the path leaves the working directory"},
        {"absolute add", "*** Add File: /etc/x\n+x\n", "absolute paths are not allowed"},
        {"absolute update", "*** Update File: /etc/passwd\n@@\n-root\n+x\n", "absolute paths are not allowed"},
        {"absolute delete", "*** Delete File: /tmp/x\n", "absolute paths are not allowed"},
        {"move outside", "*** Update File: inside.txt\n*** Move to: ../moved.txt\n", "the path leaves the working directory"},
        {"symlink to a file outside", "*** Update File: link_out.txt\n@@\n-secret\n+pwned\n",
         "the path leaves the working directory"},
        {"add through a symlinked directory", "*** Add File: dir_out/new.txt\n+x\n",
         "the path leaves the working directory"},
        {"dangling symlink to outside", "*** Add File: dangling_out.txt\n+x\n",
         "the path leaves the working directory"},
        {"the workdir itself", "*** Add File: .\n+x\n", "does not name a file"},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        const auto r = apply_patch("*** Begin Patch\n" + c.body + "*** End Patch\n", wd.path());
        INFO(r.output);
        CHECK_FALSE(r.success);
        CHECK_THAT(r.output, Catch::StartsWith("Refusing to patch '"));
        CHECK_THAT(r.output, Catch::Contains(c.why));
        CHECK(wd.snapshot() == before);
    }
}

TEST_CASE("paths: symlinks and .. staying inside are fine", "[apply_patch][paths]") {
    TempWorkdir wd;
    wd.write("real/target.txt", "a\n");
    std::filesystem::create_symlink("real/target.txt", wd.path() / "link.txt");
    SECTION("update through an inside link edits the target and keeps the link") {
        const auto r = apply_patch("*** Begin Patch\n*** Update File: link.txt\n@@\n-a\n+b\n*** End Patch", wd.path());
        REQUIRE(r.success);
        CHECK(std::filesystem::is_symlink(wd.path() / "link.txt"));
        CHECK(wd.read("real/target.txt") == "b\n");
    }
    SECTION("deleting a link removes the link, not its target") {
        const auto r = apply_patch("*** Begin Patch\n*** Delete File: link.txt\n*** End Patch", wd.path());
        REQUIRE(r.success);
        CHECK_FALSE(wd.exists("link.txt"));
        CHECK(wd.read("real/target.txt") == "a\n");
    }
    SECTION("a .. that stays inside") {
        const auto r = apply_patch("*** Begin Patch\n*** Add File: real/../other.txt\n+o\n*** End Patch", wd.path());
        REQUIRE(r.success);
        CHECK(wd.read("other.txt") == "o\n");
    }
}
