// Splitting file contents into lines while remembering each line's own terminator, so that
// rewritten files keep their line endings (LF, CRLF, or none on the last line).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace keel::tools::patch::detail {

struct Line {
    std::string_view text;  // without the terminator
    std::string_view eol;   // "\n", "\r\n", or "" (only possible for the last line)
};

struct SplitText {
    std::vector<Line> lines;       // views into the split string, which must outlive this
    std::string_view dominant_eol; // the terminator new lines get: "\r\n" if most lines use it
    bool final_newline = true;     // false when the last line has no terminator
};

SplitText split_lines(std::string_view content);

// ASCII whitespace trimming (space, \t, \r, \n, \v, \f).
std::string_view trim_end(std::string_view s);
std::string_view trim_start(std::string_view s);
std::string_view trim(std::string_view s);

}  // namespace keel::tools::patch::detail
