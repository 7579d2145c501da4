#include <catch2/catch.hpp>

#include <keel/tools/apply_patch.hpp>

#include "temp_workdir.hpp"

using namespace keel::tools::patch;

namespace {
const std::string kPatch = "*** Begin Patch\n*** Add File: hello.txt\n+hi\n*** End Patch\n";
}

TEST_CASE("heredoc: recognized forms", "[apply_patch][heredoc]") {
    struct Case {
        const char* name;
        std::vector<std::string> argv;
        std::string patch;
        std::optional<std::string> workdir;
    };
    const std::vector<Case> cases = {
        {"direct argv", {"apply_patch", kPatch}, kPatch, std::nullopt},
        {"direct argv, applypatch alias", {"applypatch", kPatch}, kPatch, std::nullopt},
        {"bash -lc with 'EOF'", {"bash", "-lc", "apply_patch <<'EOF'\n" + kPatch + "EOF\n"}, kPatch, std::nullopt},
        {"bash -lc with \"EOF\"", {"bash", "-lc", "apply_patch <<\"EOF\"\n" + kPatch + "EOF"}, kPatch, std::nullopt},
        {"bare delimiter", {"bash", "-lc", "apply_patch <<EOF\n" + kPatch + "EOF\n"}, kPatch, std::nullopt},
        {"space before delimiter, other name", {"bash", "-c", "apply_patch << 'PATCH'\n" + kPatch + "PATCH\n"}, kPatch,
         std::nullopt},
        {"applypatch in a heredoc", {"/bin/bash", "-lc", "applypatch <<'EOF'\n" + kPatch + "EOF\n"}, kPatch,
         std::nullopt},
        {"cd dir && apply_patch", {"bash", "-lc", "cd sub && apply_patch <<'EOF'\n" + kPatch + "EOF\n"}, kPatch,
         std::string("sub")},
        {"cd quoted dir", {"bash", "-lc", "cd 'my dir/x' && apply_patch <<'EOF'\n" + kPatch + "EOF\n"}, kPatch,
         std::string("my dir/x")},
        {"sh -c, zsh -lc, bash -l -c", {"sh", "-c", "apply_patch <<'EOF'\n" + kPatch + "EOF\n"}, kPatch, std::nullopt},
        {"zsh", {"zsh", "-lc", "apply_patch <<'EOF'\n" + kPatch + "EOF\n"}, kPatch, std::nullopt},
        {"bash -l -c", {"bash", "-l", "-c", "apply_patch <<'EOF'\n" + kPatch + "EOF\n"}, kPatch, std::nullopt},
        {"<<- strips leading tabs", {"bash", "-lc", "apply_patch <<-'EOF'\n\t*** Begin Patch\n\t*** Add File: hello.txt\n\t+hi\n\t*** End Patch\n\tEOF\n"},
         kPatch, std::nullopt},
        {"single-quoted argument", {"bash", "-lc", "apply_patch '" + kPatch + "'"}, kPatch, std::nullopt},
        {"trailing whitespace after the delimiter line", {"bash", "-lc", "apply_patch <<'EOF'\n" + kPatch + "EOF\n\n  \n"},
         kPatch, std::nullopt},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        const auto got = extract_patch_from_command(c.argv);
        REQUIRE(got);
        CHECK(got->patch == c.patch);
        CHECK(got->workdir == c.workdir);
    }
}

TEST_CASE("heredoc: other commands are not patches", "[apply_patch][heredoc]") {
    const std::vector<std::vector<std::string>> cases = {
        {},
        {"apply_patch"},
        {"ls", "-la"},
        {"bash", "-lc", "ls -la"},
        {"bash", "-lc", "echo apply_patch <<'EOF'\nx\nEOF\n"},
        {"bash", "-lc", "apply_patch <<'EOF'\n" + kPatch + "EOF\nrm -rf /\n"},
        {"bash", "-lc", "cd sub; apply_patch <<'EOF'\n" + kPatch + "EOF\n"},
        {"bash", "-lc", "cd $HOME && apply_patch <<'EOF'\n" + kPatch + "EOF\n"},
        {"bash", "-lc", "apply_patch <<'EOF' && rm x\n" + kPatch + "EOF\n"},
        {"bash", "-x", "apply_patch <<'EOF'\n" + kPatch + "EOF\n"},
        {"python3", "-c", "apply_patch <<'EOF'\n" + kPatch + "EOF\n"},
        {"apply_patch", kPatch, "extra"},
    };
    for (std::size_t i = 0; i < cases.size(); ++i) {
        INFO("case " << i);
        CHECK_FALSE(extract_patch_from_command(cases[i]));
    }
}

TEST_CASE("heredoc: the extracted patch applies in the cd directory", "[apply_patch][heredoc]") {
    keel::tools::patch::test::TempWorkdir wd;
    std::filesystem::create_directory(wd.path() / "sub");
    const auto got = extract_patch_from_command({"bash", "-lc", "cd sub && apply_patch <<'EOF'\n" + kPatch + "EOF\n"});
    REQUIRE(got);
    REQUIRE(got->workdir);
    const auto r = apply_patch(got->patch, wd.path() / *got->workdir);
    REQUIRE(r.success);
    CHECK(wd.read("sub/hello.txt") == "hi\n");
}
