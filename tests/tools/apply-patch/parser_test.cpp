#include <catch2/catch.hpp>

#include <keel/tools/apply_patch.hpp>

using namespace keel::tools::patch;

namespace {

std::string error_of(const std::string& text, std::size_t* line = nullptr) {
    try {
        parse_patch(text);
    } catch (const PatchError& e) {
        if (line) *line = e.line();
        return e.what();
    }
    return "<parsed>";
}

}  // namespace

TEST_CASE("parser: every grammar element", "[apply_patch][parser]") {
    const auto p = parse_patch(
        "*** Begin Patch\n"
        "*** Add File: path/new.txt\n"
        "+line one\n"
        "+line two\n"
        "*** Update File: src/app.py\n"
        "*** Move to: src/main.py\n"
        "@@ def greet():\n"
        "-    print(\"Hi\")\n"
        "+    print(\"Hello, world!\")\n"
        "@@\n"
        " keep\n"
        "-tail\n"
        "+TAIL\n"
        "*** End of File\n"
        "*** Delete File: old.txt\n"
        "*** End Patch\n");
    REQUIRE(p.actions.size() == 3);

    const auto& add = p.actions[0];
    CHECK(add.kind == ActionKind::Add);
    CHECK(add.path == "path/new.txt");
    CHECK(add.contents == "line one\nline two\n");
    CHECK(add.patch_line == 2);

    const auto& upd = p.actions[1];
    CHECK(upd.kind == ActionKind::Update);
    CHECK(upd.path == "src/app.py");
    REQUIRE(upd.move_to);
    CHECK(*upd.move_to == "src/main.py");
    REQUIRE(upd.chunks.size() == 2);
    CHECK(upd.chunks[0].context_header == std::optional<std::string>("def greet():"));
    CHECK(upd.chunks[0].old_lines() == std::vector<std::string>{"    print(\"Hi\")"});
    CHECK(upd.chunks[0].new_lines() == std::vector<std::string>{"    print(\"Hello, world!\")"});
    CHECK_FALSE(upd.chunks[0].end_of_file);
    CHECK(upd.chunks[0].patch_line == 7);
    CHECK_FALSE(upd.chunks[1].context_header);
    CHECK(upd.chunks[1].end_of_file);
    CHECK(upd.chunks[1].old_lines() == std::vector<std::string>{"keep", "tail"});
    CHECK(upd.chunks[1].new_lines() == std::vector<std::string>{"keep", "TAIL"});

    CHECK(p.actions[2].kind == ActionKind::Delete);
    CHECK(p.actions[2].path == "old.txt");
}

TEST_CASE("parser: first hunk of an Update may omit @@", "[apply_patch][parser]") {
    const auto p = parse_patch("*** Begin Patch\n*** Update File: a.txt\n foo\n-bar\n+baz\n*** End Patch");
    REQUIRE(p.actions.size() == 1);
    REQUIRE(p.actions[0].chunks.size() == 1);
    CHECK_FALSE(p.actions[0].chunks[0].context_header);
    CHECK(p.actions[0].chunks[0].lines.size() == 3);
}

TEST_CASE("parser: leniency", "[apply_patch][parser]") {
    SECTION("whitespace around markers and surrounding blank lines") {
        const auto p = parse_patch("\n\n   *** Begin Patch  \n*** Add File: a\n+x\n  *** End Patch   \n\n");
        REQUIRE(p.actions.size() == 1);
        CHECK(p.actions[0].contents == "x\n");
    }
    SECTION("wrapped in a heredoc") {
        for (const char* opener : {"<<EOF", "<<'EOF'", "<<\"EOF\"", "apply_patch <<'EOF'"}) {
            const auto p = parse_patch(std::string(opener) + "\n*** Begin Patch\n*** Delete File: a\n*** End Patch\nEOF\n");
            REQUIRE(p.actions.size() == 1);
            CHECK(p.actions[0].kind == ActionKind::Delete);
        }
    }
    SECTION("CRLF patch text") {
        const auto p = parse_patch("*** Begin Patch\r\n*** Update File: a\r\n@@\r\n-x\r\n+y\r\n*** End Patch\r\n");
        REQUIRE(p.actions.size() == 1);
        CHECK(p.actions[0].chunks[0].old_lines() == std::vector<std::string>{"x"});
        CHECK(p.actions[0].chunks[0].new_lines() == std::vector<std::string>{"y"});
    }
    SECTION("unified-diff ranges in @@ are not taken as context") {
        const auto p = parse_patch("*** Begin Patch\n*** Update File: a\n@@ -1,2 +1,2 @@\n-x\n+y\n@@ -10,3 +10,3 @@ def f():\n-a\n+b\n*** End Patch");
        CHECK_FALSE(p.actions[0].chunks[0].context_header);
        CHECK(p.actions[0].chunks[1].context_header == std::optional<std::string>("def f():"));
    }
    SECTION("empty line inside a hunk is an empty context line") {
        const auto p = parse_patch("*** Begin Patch\n*** Update File: a\n@@\n a\n\n-b\n*** End Patch");
        CHECK(p.actions[0].chunks[0].old_lines() == std::vector<std::string>{"a", "", "b"});
    }
    SECTION("Add File with no lines is an empty file") {
        const auto p = parse_patch("*** Begin Patch\n*** Add File: empty.txt\n*** End Patch");
        CHECK(p.actions[0].contents.empty());
    }
    SECTION("pure rename") {
        const auto p = parse_patch("*** Begin Patch\n*** Update File: a\n*** Move to: b\n*** End Patch");
        CHECK(p.actions[0].chunks.empty());
        CHECK(p.actions[0].move_to == std::optional<std::string>("b"));
    }
}

TEST_CASE("parser: malformed patches give line-numbered errors", "[apply_patch][parser]") {
    struct Case {
        const char* name;
        std::string text;
        std::size_t line;
        const char* message;
    };
    const std::vector<Case> cases = {
        {"empty", "", 0, "Invalid patch: The patch is empty"},
        {"missing Begin", "*** Add File: a\n+x\n*** End Patch", 1,
         "Invalid patch on line 1: The first line of the patch must be '*** Begin Patch'"},
        {"missing End", "*** Begin Patch\n*** Add File: a\n+x\n", 3,
         "Invalid patch on line 3: The last line of the patch must be '*** End Patch'"},
        {"only Begin", "*** Begin Patch\n", 1, "The last line of the patch must be '*** End Patch'"},
        {"bad hunk header", "*** Begin Patch\n*** Frobnicate File: a\n*** End Patch", 2,
         "Invalid patch hunk on line 2: '*** Frobnicate File: a' is not a valid hunk header"},
        {"stray text after Add", "*** Begin Patch\n*** Add File: a\n+x\nnot a plus line\n*** End Patch", 4,
         "Invalid patch hunk on line 4: 'not a plus line' is not a valid hunk header"},
        {"bad line prefix at hunk start", "*** Begin Patch\n*** Update File: a\n@@\nfoo\n*** End Patch", 4,
         "Invalid patch hunk on line 4: Unexpected line found in update hunk: 'foo'. Every line should start with"},
        {"bad line prefix after hunk lines", "*** Begin Patch\n*** Update File: a\n@@\n-x\n+y\nfoo\n*** End Patch", 6,
         "Invalid patch hunk on line 6: Expected update hunk to start with a @@ context marker, got: 'foo'"},
        {"empty update", "*** Begin Patch\n*** Update File: a\n*** End Patch", 2,
         "Invalid patch hunk on line 2: Update file hunk for path 'a' is empty"},
        {"empty hunk", "*** Begin Patch\n*** Update File: a\n@@ x\n@@\n-a\n*** End Patch", 3,
         "Invalid patch hunk on line 3: Update hunk does not contain any lines"},
        {"missing path", "*** Begin Patch\n*** Delete File:   \n*** End Patch", 2, "does not name a file"},
        {"line numbers count leading blank lines", "\n\n*** Begin Patch\n*** Update File: a\n@@\nbad\n*** End Patch", 6,
         "Invalid patch hunk on line 6:"},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        std::size_t line = 999;
        const std::string err = error_of(c.text, &line);
        CHECK_THAT(err, Catch::Contains(c.message));
        CHECK(line == c.line);
    }
}
