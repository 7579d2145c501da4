#include "text.hpp"

namespace keel::tools::patch::detail {

namespace {
bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}
}  // namespace

std::string_view trim_end(std::string_view s) {
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

std::string_view trim_start(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    return s;
}

std::string_view trim(std::string_view s) { return trim_start(trim_end(s)); }

SplitText split_lines(std::string_view content) {
    SplitText out;
    std::size_t crlf = 0;
    std::size_t lf = 0;
    std::size_t pos = 0;
    while (pos < content.size()) {
        const std::size_t nl = content.find('\n', pos);
        if (nl == std::string_view::npos) {
            out.lines.push_back({content.substr(pos), std::string_view{}});
            out.final_newline = false;
            break;
        }
        if (nl > pos && content[nl - 1] == '\r') {
            out.lines.push_back({content.substr(pos, nl - 1 - pos), content.substr(nl - 1, 2)});
            ++crlf;
        } else {
            out.lines.push_back({content.substr(pos, nl - pos), content.substr(nl, 1)});
            ++lf;
        }
        pos = nl + 1;
    }
    // Ties go to whichever the first line uses; files with no terminator at all get LF.
    if (crlf > lf || (crlf == lf && crlf > 0 && out.lines.front().eol == "\r\n")) {
        out.dominant_eol = "\r\n";
    } else {
        out.dominant_eol = "\n";
    }
    return out;
}

}  // namespace keel::tools::patch::detail
