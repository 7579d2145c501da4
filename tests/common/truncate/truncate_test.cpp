#include <keel/common/truncate.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace keel::common;

namespace {

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

std::string numbered_lines(int from, int to) {
  std::string s;
  for (int i = from; i <= to; ++i) s += "line " + std::to_string(i) + "\n";
  return s;
}

}  // namespace

TEST_CASE("small input is returned untouched", "[truncate]") {
  for (std::string s : {std::string(), std::string("hello"), std::string("a\nb\n"), numbered_lines(1, 256)}) {
    auto r = truncate_middle_info(s);
    CHECK(r.text == s);
    CHECK_FALSE(r.truncated());
    CHECK(r.total_bytes == s.size());
  }
  // Exactly at both limits.
  CHECK(truncate_middle(std::string(10240, 'x')) == std::string(10240, 'x'));
}

TEST_CASE("too many lines keeps the first and last 128 lines", "[truncate]") {
  std::string text = numbered_lines(1, 1000);
  auto r = truncate_middle_info(text);
  REQUIRE(r.truncated());
  std::string omitted = numbered_lines(129, 872);
  CHECK(r.omitted_lines == 744);
  CHECK(r.omitted_bytes == omitted.size());
  CHECK(r.total_lines == 1000);
  std::string expected = numbered_lines(1, 128) + "[... 744 lines (" + std::to_string(omitted.size()) +
                         " bytes) truncated ...]\n" + numbered_lines(873, 1000);
  CHECK(r.text == expected);
}

TEST_CASE("line and byte budgets are parameters", "[truncate]") {
  std::string text = numbered_lines(1, 10);
  auto r = truncate_middle(text, TruncateOptions{1000, 4});
  CHECK(r == "line 1\nline 2\n[... 6 lines (42 bytes) truncated ...]\nline 9\nline 10\n");
  // Odd line budget: the tail gets the extra line.
  r = truncate_middle(text, TruncateOptions{1000, 3});
  CHECK(r == "line 1\n[... 7 lines (49 bytes) truncated ...]\nline 9\nline 10\n");
  // A last line without a newline counts as a line.
  r = truncate_middle("a\nb\nc\nd\ne", TruncateOptions{1000, 2});
  CHECK(r == "a\n[... 3 lines (6 bytes) truncated ...]\ne");
}

TEST_CASE("too many bytes cuts inside a line, the note on a line of its own", "[truncate]") {
  std::string text(100000, 'a');
  auto r = truncate_middle_info(text);
  REQUIRE(r.truncated());
  CHECK(r.omitted_bytes == 100000 - 10240);
  CHECK(r.omitted_lines == 0);
  CHECK(r.text == std::string(5120, 'a') + "\n[... 89760 bytes truncated ...]\n" + std::string(5120, 'a'));

  // Lines that fit the line budget but not the byte budget.
  std::string lines;
  for (int i = 0; i < 100; ++i) lines += std::string(199, static_cast<char>('a' + i % 26)) + "\n";
  auto l = truncate_middle_info(lines, TruncateOptions{1000, 256});
  CHECK(l.text.size() < 1000 + 60);
  CHECK(l.text.substr(0, 200) == std::string(199, 'a') + "\n");
  CHECK(l.text.substr(l.text.size() - 200) == std::string(199, 'v') + "\n");
  CHECK(l.omitted_bytes == lines.size() - 1000);
}

TEST_CASE("cuts never split a UTF-8 sequence", "[truncate][utf8]") {
  const std::string pieces[] = {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\n"};
  for (const auto& piece : pieces) {
    std::string text;
    while (text.size() < 5000) text += piece;
    for (std::size_t budget = 1; budget < 64; ++budget) {
      auto r = truncate_middle_info(text, TruncateOptions{budget, 1000});
      INFO("piece " << piece.size() << " bytes, budget " << budget);
      REQUIRE(r.truncated());
      CHECK(valid_utf8(r.text));
      CHECK(r.omitted_bytes + (r.text.size() - truncation_note(r.omitted_lines, r.omitted_bytes).size()) >=
            text.size());  // nothing lost without being counted
    }
  }
}

TEST_CASE("pre-cut head and tail with a gap", "[truncate]") {
  CHECK(truncate_middle("abc\n", "xyz\n", 100, 5) == "abc\n[... 5 lines (100 bytes) truncated ...]\nxyz\n");
  // Head and tail cut mid-sequence by a byte-capped buffer: the partial bytes join the gap.
  auto r = truncate_middle_info("ab\xC3", "\xA9" "cd", 10, 0);
  CHECK(r.text == "ab\n[... 12 bytes truncated ...]\ncd");
  CHECK(r.total_bytes == 16);
  // Budgets still apply to head and tail.
  std::string head = numbered_lines(1, 500), tail = numbered_lines(9501, 10000);
  auto g = truncate_middle_info(head, tail, 12345, 9000);
  CHECK(g.text.rfind("line 1\n", 0) == 0);
  CHECK(g.text.find("line 128\n") != std::string::npos);
  CHECK(g.text.find("line 129\n") == std::string::npos);
  CHECK(g.text.find("line 9872\n") == std::string::npos);
  CHECK(g.text.find("line 9873\n") != std::string::npos);
  CHECK(g.omitted_lines == 372 + 9000 + 372);
  CHECK(g.total_lines == 500 + 9000 + 500);
  // No gap: the same as truncating the joined text.
  CHECK(truncate_middle(numbered_lines(1, 300), numbered_lines(301, 600), 0, 0) == truncate_middle(numbered_lines(1, 600)));
}

TEST_CASE("note wording", "[truncate]") {
  CHECK(truncation_note(1234, 56789) == "[... 1234 lines (56789 bytes) truncated ...]");
  CHECK(truncation_note(1, 1) == "[... 1 line (1 byte) truncated ...]");
  CHECK(truncation_note(0, 42) == "[... 42 bytes truncated ...]");
}

TEST_CASE("UTF-8 helpers", "[truncate][utf8]") {
  std::string s = "a\xE2\x82\xAC" "b";  // a € b
  CHECK(utf8_floor(s, 0) == 0);
  CHECK(utf8_floor(s, 2) == 1);
  CHECK(utf8_floor(s, 3) == 1);
  CHECK(utf8_floor(s, 4) == 4);
  CHECK(utf8_ceil(s, 2) == 4);
  CHECK(utf8_ceil(s, 100) == s.size());
  CHECK(utf8_complete_prefix("abc") == 3);
  CHECK(utf8_complete_prefix("a\xE2\x82") == 1);
  CHECK(utf8_complete_prefix("a\xE2\x82\xAC") == 4);
  CHECK(utf8_complete_prefix("a\xF0") == 1);
  CHECK(utf8_complete_prefix("\x80\x80\x80\x80") == 4);  // garbage is not held back
  CHECK(count_lines("") == 0);
  CHECK(count_lines("a") == 1);
  CHECK(count_lines("a\n") == 1);
  CHECK(count_lines("a\nb") == 2);
}

TEST_CASE("clip_lines_for_display: indents every line, keeps head and tail, says what is left out", "[truncate][display]") {
  using keel::common::clip_lines_for_display;
  CHECK(clip_lines_for_display("", 4, "  ") == "");
  CHECK(clip_lines_for_display("a\nb", 4, "  ") == "  a\n  b\n");      // a last line without newline gets one
  CHECK(clip_lines_for_display("a\nb\n", 2, "> ") == "> a\n> b\n");    // exactly at the limit: untouched
  CHECK(clip_lines_for_display("1\n2\n3\n4\n5\n6\n7\n", 4, " ") == " 1\n 2\n … 3 more lines …\n 6\n 7\n");
  CHECK(clip_lines_for_display("1\n2\n3\n4\n5\n", 3, "") == "1\n… 2 more lines …\n4\n5\n");  // odd: the tail gets the extra
}

TEST_CASE("printable_for_terminal: escape sequences and reordering marks cannot reach the screen", "[truncate][display]") {
  using keel::common::printable_for_terminal;
  CHECK(printable_for_terminal("plain text\n\twith tabs") == "plain text\n\twith tabs");
  CHECK(printable_for_terminal("ls\x1b[2K\rrm -rf ~") == "ls^[[2K^Mrm -rf ~");     // erase line, return
  CHECK(printable_for_terminal("a\r\nb") == "a\nb");
  CHECK(printable_for_terminal("\x1b]52;c;ZXZpbA==\x07") == "^[]52;c;ZXZpbA==^G");  // OSC 52: clipboard
  CHECK(printable_for_terminal("x\x7f\x01") == "x^?^A");
  CHECK(printable_for_terminal("\xc2\x9b" "2J") == "<U+009B>2J");                    // C1 CSI
  CHECK(printable_for_terminal("safe\xe2\x80\xae" "txt.exe") == "safe<U+202E>txt.exe");  // right-to-left override
  CHECK(printable_for_terminal("\xe2\x81\xa6x\xe2\x81\xa9") == "<U+2066>x<U+2069>");
  CHECK(printable_for_terminal("caf\xc3\xa9 \xe2\x80\x94 \xe2\x9c\x93") == "caf\xc3\xa9 \xe2\x80\x94 \xe2\x9c\x93");  // é — ✓ untouched
}
