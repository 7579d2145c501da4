#include <catch2/catch.hpp>

#include <keel/tools/apply_patch.hpp>

#include <random>

using namespace keel::tools::patch;

TEST_CASE("unified_diff: formats", "[apply_patch][diff]") {
    CHECK(unified_diff("f", "same\n", "same\n").empty());

    CHECK(unified_diff("f", "a\nb\nc\n", "a\nB\nc\n") ==
          "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");

    // Context is limited to 3 lines, distant changes make separate hunks.
    std::string before, after;
    for (int i = 1; i <= 20; ++i) {
        before += std::to_string(i) + "\n";
        after += (i == 2 ? std::string("two") : i == 18 ? std::string("eighteen") : std::to_string(i)) + "\n";
    }
    CHECK(unified_diff("n", before, after) ==
          "diff --git a/n b/n\n--- a/n\n+++ b/n\n"
          "@@ -1,5 +1,5 @@\n 1\n-2\n+two\n 3\n 4\n 5\n"
          "@@ -15,6 +15,6 @@\n 15\n 16\n 17\n-18\n+eighteen\n 19\n 20\n");

    // Close changes share a hunk.
    CHECK(unified_diff("c", "1\n2\n3\n4\n5\n", "1\nX\n3\n4\nY\n", 1) ==
          "diff --git a/c b/c\n--- a/c\n+++ b/c\n@@ -1,5 +1,5 @@\n 1\n-2\n+X\n 3\n 4\n-5\n+Y\n");

    CHECK(unified_diff({"new.txt", std::nullopt}, {"new.txt", std::string("x\ny\n")}) ==
          "diff --git a/new.txt b/new.txt\nnew file mode 100644\n--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1,2 @@\n+x\n+y\n");
    CHECK(unified_diff({"old.txt", std::string("x\n")}, {"old.txt", std::nullopt}) ==
          "diff --git a/old.txt b/old.txt\ndeleted file mode 100644\n--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n");
    CHECK(unified_diff({"a", std::string("x\n")}, {"b", std::string("x\n")}) ==
          "diff --git a/a b/b\nrename from a\nrename to b\n");

    CHECK(unified_diff("e", "a\nb", "a\nb\n") ==
          "diff --git a/e b/e\n--- a/e\n+++ b/e\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n");
    CHECK(unified_diff("i", "a\nb\n", "a\nnew\nb\n", 0) ==
          "diff --git a/i b/i\n--- a/i\n+++ b/i\n@@ -1,0 +2 @@\n+new\n");
}

TEST_CASE("unified_diff: minimal and consistent on random edits", "[apply_patch][diff]") {
    // Re-apply the diff's hunks to the old text and expect the new text.
    std::mt19937 rng(42);
    for (int round = 0; round < 200; ++round) {
        std::vector<std::string> a;
        const int n = static_cast<int>(rng() % 40);
        for (int i = 0; i < n; ++i) a.push_back(std::string(1, static_cast<char>('a' + rng() % 4)));
        std::vector<std::string> b = a;
        const int edits = static_cast<int>(rng() % 8);
        for (int e = 0; e < edits; ++e) {
            const auto pos = b.empty() ? 0 : rng() % (b.size() + 1);
            switch (rng() % 3) {
                case 0: b.insert(b.begin() + static_cast<long>(pos), std::string(1, static_cast<char>('a' + rng() % 4))); break;
                case 1: if (pos < b.size()) b.erase(b.begin() + static_cast<long>(pos)); break;
                default: if (pos < b.size()) b[pos] = "z"; break;
            }
        }
        std::string old_text, new_text;
        for (auto& s : a) old_text += s + "\n";
        for (auto& s : b) new_text += s + "\n";
        const std::string d = unified_diff("r", old_text, new_text, 0);

        // Replay: walk hunks, copying untouched old lines in between.
        std::vector<std::string> out;
        std::size_t old_pos = 0;
        std::size_t changed = 0;
        std::istringstream in(d);
        std::string line;
        while (std::getline(in, line)) {
            if (line.rfind("@@ -", 0) == 0) {
                const auto comma_or_space = line.find_first_of(", ", 4);
                std::size_t start = std::stoul(line.substr(4, comma_or_space - 4));
                const bool empty_old = line.substr(comma_or_space, 3) == ",0 ";
                const std::size_t upto = empty_old ? start : start - 1;
                while (old_pos < upto) out.push_back(a[old_pos++]);
            } else if (line[0] == '-' && line.rfind("---", 0) != 0) {
                ++old_pos;
                ++changed;
            } else if (line[0] == '+' && line.rfind("+++", 0) != 0) {
                out.push_back(line.substr(1));
                ++changed;
            } else if (line[0] == ' ') {
                out.push_back(a[old_pos++]);
            }
        }
        while (old_pos < a.size()) out.push_back(a[old_pos++]);
        INFO("round " << round << "\n" << d);
        CHECK(out == b);
        CHECK(changed <= 2 * static_cast<std::size_t>(edits));  // never worse than the edits made
    }
}

TEST_CASE("unified_diff: large inputs stay fast", "[apply_patch][diff]") {
    std::string a, b;
    for (int i = 0; i < 20000; ++i) {
        a += "line " + std::to_string(i) + "\n";
        b += "other " + std::to_string(i) + "\n";
    }
    const std::string d = unified_diff("big", a, b);
    CHECK(d.size() > a.size() + b.size());
}
