#include "update.hpp"

#include "text.hpp"

#include <algorithm>

namespace keel::tools::patch::detail {

namespace {

std::vector<std::string_view> old_side(const std::vector<HunkLine>& ops) {
    std::vector<std::string_view> out;
    for (const auto& op : ops) {
        if (op.kind != HunkLineKind::Add) out.emplace_back(op.text);
    }
    return out;
}

// Models often end a hunk with a blank line that stands for "end of file" rather than for a
// blank line in the file. Drops one trailing empty line from the old side (and, if the new
// side also ends with one, from the new side), keeping the hunk's meaning otherwise.
bool drop_trailing_blank(std::vector<HunkLine>& ops) {
    std::optional<std::size_t> j;  // last line of the old side
    std::optional<std::size_t> k;  // last line of the new side
    for (std::size_t i = ops.size(); i-- > 0;) {
        if (!j && ops[i].kind != HunkLineKind::Add) j = i;
        if (!k && ops[i].kind != HunkLineKind::Remove) k = i;
    }
    if (!j || !ops[*j].text.empty()) return false;
    const bool new_blank = k && ops[*k].text.empty();

    std::vector<std::size_t> erase;
    if (ops[*j].kind == HunkLineKind::Remove || (new_blank && *k == *j)) {
        erase.push_back(*j);
    } else {
        ops[*j].kind = HunkLineKind::Add;  // context that stays on the new side only
    }
    if (new_blank && *k != *j) {
        if (ops[*k].kind == HunkLineKind::Add) {
            erase.push_back(*k);
        } else {
            ops[*k].kind = HunkLineKind::Remove;
        }
    }
    std::sort(erase.rbegin(), erase.rend());
    for (std::size_t i : erase) ops.erase(ops.begin() + static_cast<std::ptrdiff_t>(i));
    return true;
}

std::string join_lines(const std::vector<std::string>& lines) {
    std::string out;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (i) out.push_back('\n');
        out += lines[i];
    }
    return out;
}

struct Replacement {
    std::size_t start;          // first original line replaced
    std::size_t old_len;        // original lines consumed
    std::vector<HunkLine> ops;  // how to rewrite them
};

}  // namespace

std::string apply_chunks(std::string_view original, const std::vector<UpdateChunk>& chunks,
                         std::string_view display_path) {
    const SplitText split = split_lines(original);
    std::vector<std::string_view> texts;
    texts.reserve(split.lines.size());
    for (const auto& l : split.lines) texts.push_back(l.text);

    std::vector<Replacement> replacements;
    std::size_t line_index = 0;
    for (std::size_t ci = 0; ci < chunks.size(); ++ci) {
        const UpdateChunk& chunk = chunks[ci];
        const std::string hunk = " (hunk " + std::to_string(ci + 1) + ")";
        bool located_by_header = false;
        std::size_t header_index = 0;
        if (chunk.context_header) {
            const auto m = seek_sequence(texts, {std::string_view(*chunk.context_header)}, line_index, false);
            if (!m) {
                throw HunkFailure("Failed to find context '" + *chunk.context_header + "' in " +
                                  std::string(display_path) + hunk);
            }
            header_index = m->index;
            line_index = m->index + 1;
            located_by_header = true;
        }

        std::vector<HunkLine> ops = chunk.lines;
        std::vector<std::string_view> old = old_side(ops);
        if (old.empty()) {
            // Pure addition: right after the @@ context line if there is one, else at the end.
            const std::size_t at = (located_by_header && !chunk.end_of_file) ? line_index : texts.size();
            replacements.push_back({at, 0, std::move(ops)});
            continue;
        }

        // Models often repeat the @@ line as the hunk's first context line: then the hunk may
        // start on the header line itself.
        auto seek = [&](const std::vector<std::string_view>& pattern) {
            auto found = seek_sequence(texts, pattern, line_index, chunk.end_of_file);
            if (!found && located_by_header) {
                found = seek_sequence(texts, pattern, header_index, chunk.end_of_file);
                if (found && found->index != header_index) found.reset();
            }
            return found;
        };
        auto m = seek(old);
        while (!m && drop_trailing_blank(ops)) {
            old = old_side(ops);
            m = seek(old);
        }
        if (!m) {
            throw HunkFailure("Failed to find expected lines in " + std::string(display_path) + hunk +
                              ":\n" + join_lines(chunk.old_lines()));
        }
        replacements.push_back({m->index, old.size(), std::move(ops)});
        line_index = m->index + old.size();
    }

    std::stable_sort(replacements.begin(), replacements.end(),
                     [](const Replacement& a, const Replacement& b) { return a.start < b.start; });

    std::vector<Line> out;  // eol "" on a new line means "to be decided"
    out.reserve(split.lines.size());
    std::size_t cur = 0;
    for (const auto& r : replacements) {
        if (r.start < cur) {
            throw HunkFailure("Hunks overlap in " + std::string(display_path) +
                              "; combine them into one hunk");
        }
        out.insert(out.end(), split.lines.begin() + static_cast<std::ptrdiff_t>(cur),
                   split.lines.begin() + static_cast<std::ptrdiff_t>(r.start));
        std::size_t k = r.start;
        for (const auto& op : r.ops) {
            switch (op.kind) {
                case HunkLineKind::Context: out.push_back(split.lines[k++]); break;
                case HunkLineKind::Remove: ++k; break;
                case HunkLineKind::Add: out.push_back({op.text, std::string_view{}}); break;
            }
        }
        cur = k;
    }
    out.insert(out.end(), split.lines.begin() + static_cast<std::ptrdiff_t>(cur), split.lines.end());

    std::string result;
    result.reserve(original.size() + 64);
    for (std::size_t i = 0; i < out.size(); ++i) {
        std::string_view eol = out[i].eol.empty() ? split.dominant_eol : out[i].eol;
        if (i + 1 == out.size() && !split.final_newline) eol = {};
        result.append(out[i].text);
        result.append(eol);
    }
    return result;
}

}  // namespace keel::tools::patch::detail
