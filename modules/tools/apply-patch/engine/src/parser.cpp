// Parser: patch text -> file actions, with line-numbered errors.
#include <keel/tools/apply_patch.hpp>

#include "text.hpp"

#include <cctype>

namespace keel::tools::patch {

std::vector<std::string> UpdateChunk::old_lines() const {
    std::vector<std::string> out;
    for (const auto& l : lines) {
        if (l.kind != HunkLineKind::Add) out.push_back(l.text);
    }
    return out;
}

std::vector<std::string> UpdateChunk::new_lines() const {
    std::vector<std::string> out;
    for (const auto& l : lines) {
        if (l.kind != HunkLineKind::Remove) out.push_back(l.text);
    }
    return out;
}

namespace {

using detail::trim;
using detail::trim_end;

constexpr std::string_view kBeginPatch = "*** Begin Patch";
constexpr std::string_view kEndPatch = "*** End Patch";
constexpr std::string_view kAddFile = "*** Add File:";
constexpr std::string_view kDeleteFile = "*** Delete File:";
constexpr std::string_view kUpdateFile = "*** Update File:";
constexpr std::string_view kMoveTo = "*** Move to:";
constexpr std::string_view kEndOfFile = "*** End of File";

[[noreturn]] void fail_patch(std::size_t line, const std::string& message) {
    if (line == 0) throw PatchError("Invalid patch: " + message, 0);
    throw PatchError("Invalid patch on line " + std::to_string(line) + ": " + message, line);
}

[[noreturn]] void fail_hunk(std::size_t line, const std::string& message) {
    throw PatchError("Invalid patch hunk on line " + std::to_string(line) + ": " + message, line);
}

// `<<EOF`, `<<'EOF'`, `<<"EOF"`, `<<-EOF`, optionally preceded by `apply_patch`: returns the
// delimiter, or empty when the line is not a heredoc opener.
std::string heredoc_opener_delimiter(std::string_view line) {
    std::string_view s = trim(line);
    for (std::string_view cmd : {std::string_view("apply_patch"), std::string_view("applypatch")}) {
        if (s.starts_with(cmd)) {
            s = detail::trim_start(s.substr(cmd.size()));
            break;
        }
    }
    if (!s.starts_with("<<")) return {};
    s.remove_prefix(2);
    if (s.starts_with("-")) s.remove_prefix(1);
    s = detail::trim_start(s);
    if (s.size() >= 2 && (s.front() == '\'' || s.front() == '"') && s.back() == s.front()) {
        s = s.substr(1, s.size() - 2);
    }
    if (s.empty()) return {};
    for (char c : s) {
        if (std::isspace(static_cast<unsigned char>(c)) || c == '\'' || c == '"') return {};
    }
    return std::string(s);
}

// A line starting with "@@" opens a hunk. Returns the locating context line, if any.
// Tolerates unified-diff ranges ("@@ -12,7 +12,8 @@ def greet():" -> "def greet():").
std::optional<std::string> hunk_header_context(std::string_view line) {
    std::string_view rest = line.substr(2);
    if (rest.starts_with(' ')) rest.remove_prefix(1);
    std::string_view t = trim(rest);
    if (t.empty()) return std::nullopt;
    if (t.starts_with('-')) {
        // -a[,b] +c[,d] @@[ context]
        auto skip_range = [](std::string_view s, char sign) -> std::optional<std::string_view> {
            if (!s.starts_with(sign)) return std::nullopt;
            s.remove_prefix(1);
            std::size_t n = 0;
            while (n < s.size() && (std::isdigit(static_cast<unsigned char>(s[n])) || s[n] == ',')) ++n;
            if (n == 0) return std::nullopt;
            return s.substr(n);
        };
        auto after_old = skip_range(t, '-');
        if (after_old && after_old->starts_with(' ')) {
            auto after_new = skip_range(detail::trim_start(*after_old), '+');
            if (after_new) {
                std::string_view tail = detail::trim_start(*after_new);
                if (tail.starts_with("@@")) {
                    tail = trim(tail.substr(2));
                    if (tail.empty()) return std::nullopt;
                    return std::string(tail);
                }
            }
        }
    }
    return std::string(rest);
}

class Parser {
public:
    Parser(std::vector<std::string_view> lines, std::size_t first, std::size_t end)
        : lines_(std::move(lines)), pos_(first), end_(end) {}

    ParsedPatch run() {
        ParsedPatch out;
        while (pos_ < end_) {
            const std::string_view t = trim(lines_[pos_]);
            if (t.empty()) {
                ++pos_;
                continue;
            }
            if (t.starts_with(kAddFile)) {
                out.actions.push_back(parse_add(t));
            } else if (t.starts_with(kDeleteFile)) {
                FileAction a;
                a.kind = ActionKind::Delete;
                a.patch_line = line_no();
                a.path = path_after(t, kDeleteFile);
                ++pos_;
                out.actions.push_back(std::move(a));
            } else if (t.starts_with(kUpdateFile)) {
                out.actions.push_back(parse_update(t));
            } else {
                fail_hunk(line_no(),
                          "'" + std::string(t) +
                              "' is not a valid hunk header. Valid hunk headers: '*** Add File: "
                              "{path}', '*** Delete File: {path}', '*** Update File: {path}'");
            }
        }
        return out;
    }

private:
    std::size_t line_no() const { return pos_ + 1; }

    std::string path_after(std::string_view header, std::string_view marker) const {
        const std::string_view path = trim(header.substr(marker.size()));
        if (path.empty()) {
            fail_hunk(line_no(), "'" + std::string(header) + "' does not name a file");
        }
        return std::string(path);
    }

    bool next_significant_starts_with_plus(std::size_t from) const {
        for (std::size_t i = from; i < end_; ++i) {
            if (trim(lines_[i]).empty()) continue;
            return lines_[i].starts_with('+');
        }
        return false;
    }

    FileAction parse_add(std::string_view header) {
        FileAction a;
        a.kind = ActionKind::Add;
        a.patch_line = line_no();
        a.path = path_after(header, kAddFile);
        ++pos_;
        while (pos_ < end_) {
            const std::string_view l = lines_[pos_];
            if (l.starts_with('+')) {
                a.contents.append(l.substr(1));
                a.contents.push_back('\n');
            } else if (trim(l).empty() && next_significant_starts_with_plus(pos_ + 1)) {
                // A blank line that lost its '+' between added lines: an empty line.
                a.contents.push_back('\n');
            } else {
                break;
            }
            ++pos_;
        }
        return a;
    }

    FileAction parse_update(std::string_view header) {
        FileAction a;
        a.kind = ActionKind::Update;
        a.patch_line = line_no();
        a.path = path_after(header, kUpdateFile);
        ++pos_;
        if (pos_ < end_) {
            const std::string_view t = trim(lines_[pos_]);
            if (t.starts_with(kMoveTo)) {
                a.move_to = path_after(t, kMoveTo);
                ++pos_;
            }
        }
        while (pos_ < end_) {
            const std::string_view l = lines_[pos_];
            if (trim(l).empty()) {
                ++pos_;
                continue;
            }
            if (l.starts_with("***")) break;
            a.chunks.push_back(parse_chunk(a.chunks.empty()));
        }
        if (a.chunks.empty() && !a.move_to) {
            fail_hunk(a.patch_line, "Update file hunk for path '" + a.path + "' is empty");
        }
        return a;
    }

    UpdateChunk parse_chunk(bool allow_missing_header) {
        UpdateChunk c;
        c.patch_line = line_no();
        const std::string_view first = lines_[pos_];
        if (first.starts_with("@@")) {
            c.context_header = hunk_header_context(first);
            ++pos_;
        } else if (!allow_missing_header) {
            fail_hunk(line_no(), "Expected update hunk to start with a @@ context marker, got: '" +
                                     std::string(first) + "'");
        }
        while (pos_ < end_) {
            const std::string_view l = lines_[pos_];
            if (trim_end(l) == kEndOfFile) {
                if (c.lines.empty()) break;
                c.end_of_file = true;
                ++pos_;
                return c;
            }
            if (l.empty()) {
                c.lines.push_back({HunkLineKind::Context, std::string()});
            } else if (l[0] == ' ') {
                c.lines.push_back({HunkLineKind::Context, std::string(l.substr(1))});
            } else if (l[0] == '-') {
                c.lines.push_back({HunkLineKind::Remove, std::string(l.substr(1))});
            } else if (l[0] == '+') {
                c.lines.push_back({HunkLineKind::Add, std::string(l.substr(1))});
            } else {
                if (!c.lines.empty()) return c;
                if (l.starts_with("@@") || l.starts_with("***")) break;
                fail_hunk(line_no(), "Unexpected line found in update hunk: '" + std::string(l) +
                                         "'. Every line should start with ' ' (context line), "
                                         "'+' (added line), or '-' (removed line)");
            }
            ++pos_;
        }
        if (c.lines.empty()) fail_hunk(c.patch_line, "Update hunk does not contain any lines");
        return c;
    }

    std::vector<std::string_view> lines_;
    std::size_t pos_;
    std::size_t end_;
};

}  // namespace

ParsedPatch parse_patch(std::string_view text) {
    std::vector<std::string_view> lines;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        std::size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) nl = text.size();
        std::string_view l = text.substr(pos, nl - pos);
        if (l.ends_with('\r')) l.remove_suffix(1);
        lines.push_back(l);
        pos = nl + 1;
    }

    auto first_significant = [&](std::size_t from) {
        while (from < lines.size() && trim(lines[from]).empty()) ++from;
        return from;
    };
    auto last_significant = [&](std::size_t before) {  // index + 1, or 0 if none
        while (before > 0 && trim(lines[before - 1]).empty()) --before;
        return before;
    };

    std::size_t first = first_significant(0);
    std::size_t last = last_significant(lines.size());
    if (first >= last) fail_patch(0, "The patch is empty; it must start with '*** Begin Patch'");

    // A patch still wrapped in its heredoc: <<'EOF' ... EOF.
    if (trim(lines[first]) != kBeginPatch) {
        const std::string delim = heredoc_opener_delimiter(lines[first]);
        if (!delim.empty() && last - 1 > first && trim(lines[last - 1]) == delim) {
            first = first_significant(first + 1);
            last = last_significant(last - 1);
            if (first >= last) fail_patch(0, "The patch is empty; it must start with '*** Begin Patch'");
        }
    }

    if (trim(lines[first]) != kBeginPatch) {
        fail_patch(first + 1, "The first line of the patch must be '*** Begin Patch'");
    }
    if (last - 1 == first || trim(lines[last - 1]) != kEndPatch) {
        fail_patch(last, "The last line of the patch must be '*** End Patch'");
    }
    return Parser(std::move(lines), first + 1, last - 1).run();
}

}  // namespace keel::tools::patch
