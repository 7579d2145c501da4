#include <catch2/catch.hpp>

#include <keel/tools/apply_patch.hpp>

using namespace keel::tools::patch;

TEST_CASE("matcher: levels are tried strictest first", "[apply_patch][matcher]") {
    struct Case {
        const char* name;
        std::vector<std::string_view> lines;
        std::vector<std::string_view> pattern;
        std::size_t index;
        MatchLevel level;
    };
    const std::vector<Case> cases = {
        {"exact", {"a", "b", "c"}, {"b", "c"}, 1, MatchLevel::Exact},
        {"exact preferred over a tolerant earlier match", {"b  ", "x", "b"}, {"b"}, 2, MatchLevel::Exact},
        {"trailing whitespace", {"a", "b   \t", "c"}, {"b", "c "}, 1, MatchLevel::IgnoreTrailingWhitespace},
        {"surrounding whitespace", {"a", "    b", "c"}, {"b"}, 1, MatchLevel::IgnoreSurroundingWhitespace},
        {"curly double quotes", {"x", "print(\u201chi\u201d)"}, {"print(\"hi\")"}, 1, MatchLevel::NormalizedPunctuation},
        {"curly single quotes", {"it\u2019s \u2018ok\u2019"}, {"it's 'ok'"}, 0, MatchLevel::NormalizedPunctuation},
        {"en and em dashes, minus", {"a \u2013 b \u2014 c \u2212 d"}, {"a - b - c - d"}, 0, MatchLevel::NormalizedPunctuation},
        {"non-breaking and thin spaces", {"a\u00a0b\u2009c\u202fd"}, {"a b c d"}, 0, MatchLevel::NormalizedPunctuation},
        {"normalization works both ways", {"say \"hi\""}, {"say \u201chi\u201d"}, 0, MatchLevel::NormalizedPunctuation},
        {"ellipsis", {"wait\u2026"}, {"wait..."}, 0, MatchLevel::NormalizedPunctuation},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        const auto m = seek_sequence(c.lines, c.pattern, 0, false);
        REQUIRE(m);
        CHECK(m->index == c.index);
        CHECK(m->level == c.level);
    }
}

TEST_CASE("matcher: start position, end-of-file anchor, misses", "[apply_patch][matcher]") {
    const std::vector<std::string_view> lines = {"x", "y", "x", "y"};
    CHECK(seek_sequence(lines, {"x"}, 0, false)->index == 0);
    CHECK(seek_sequence(lines, {"x"}, 1, false)->index == 2);
    CHECK_FALSE(seek_sequence(lines, {"x"}, 3, false));
    CHECK(seek_sequence(lines, {"x", "y"}, 0, true)->index == 2);
    CHECK_FALSE(seek_sequence(lines, {"x"}, 0, true));  // last line is "y"
    CHECK_FALSE(seek_sequence(lines, {"z"}, 0, false));
    CHECK_FALSE(seek_sequence(lines, {"x", "y", "x", "y", "x"}, 0, false));
    CHECK(seek_sequence(lines, {}, 2, false)->index == 2);
}

TEST_CASE("matcher: normalize_punctuation", "[apply_patch][matcher]") {
    CHECK(normalize_punctuation("\u201cq\u201d \u2018s\u2019 \u2013\u2014 \u00a0\u3000 \u2026") == "\"q\" 's' --    ...");
    CHECK(normalize_punctuation("h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c") == "h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c");
    CHECK(normalize_punctuation(std::string("bad \xff\xe2\x80 bytes")) == std::string("bad \xff\xe2\x80 bytes"));
}
