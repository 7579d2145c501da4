// Unified-diff producer: Myers' O(ND) line diff in linear space, rendered git-style.
#include <keel/tools/apply_patch.hpp>

#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <utility>

namespace keel::tools::patch {

namespace {

// Lines including their terminator, so "x" (last line, no newline) differs from "x\n".
std::vector<std::string_view> split_keep_eol(std::string_view text) {
    std::vector<std::string_view> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        nl = (nl == std::string_view::npos) ? text.size() : nl + 1;
        out.push_back(text.substr(pos, nl - pos));
        pos = nl;
    }
    return out;
}

class LineDiff {
public:
    LineDiff(const std::vector<std::string_view>& a, const std::vector<std::string_view>& b)
        : deleted(a.size(), false), inserted(b.size(), false) {
        std::unordered_map<std::string_view, std::int32_t> ids;
        auto intern = [&](std::string_view s) {
            return ids.emplace(s, static_cast<std::int32_t>(ids.size())).first->second;
        };
        a_.reserve(a.size());
        b_.reserve(b.size());
        for (auto s : a) a_.push_back(intern(s));
        for (auto s : b) b_.push_back(intern(s));
        compare(0, static_cast<std::ptrdiff_t>(a_.size()), 0, static_cast<std::ptrdiff_t>(b_.size()));
    }

    std::vector<bool> deleted;   // per line of a
    std::vector<bool> inserted;  // per line of b

private:
    // Beyond this many edits in one sub-problem, give up on minimality there (treat the
    // region as replaced) to bound the time on very different inputs.
    static constexpr std::ptrdiff_t kMaxCost = 2048;

    void compare(std::ptrdiff_t alo, std::ptrdiff_t ahi, std::ptrdiff_t blo, std::ptrdiff_t bhi) {
        while (alo < ahi && blo < bhi && a_[alo] == b_[blo]) { ++alo; ++blo; }
        while (alo < ahi && blo < bhi && a_[ahi - 1] == b_[bhi - 1]) { --ahi; --bhi; }
        if (alo == ahi || blo == bhi) {
            mark(alo, ahi, blo, bhi);
            return;
        }
        const auto split = middle_snake(alo, ahi, blo, bhi);
        if (!split) {
            mark(alo, ahi, blo, bhi);
            return;
        }
        compare(alo, split->first, blo, split->second);
        compare(split->first, ahi, split->second, bhi);
    }

    void mark(std::ptrdiff_t alo, std::ptrdiff_t ahi, std::ptrdiff_t blo, std::ptrdiff_t bhi) {
        for (auto i = alo; i < ahi; ++i) deleted[static_cast<std::size_t>(i)] = true;
        for (auto j = blo; j < bhi; ++j) inserted[static_cast<std::size_t>(j)] = true;
    }

    // A point on an optimal edit path strictly inside the box (both parts are smaller).
    std::optional<std::pair<std::ptrdiff_t, std::ptrdiff_t>> middle_snake(std::ptrdiff_t alo, std::ptrdiff_t ahi,
                                                                           std::ptrdiff_t blo, std::ptrdiff_t bhi) {
        const std::ptrdiff_t n = ahi - alo;
        const std::ptrdiff_t m = bhi - blo;
        const std::ptrdiff_t delta = n - m;
        const bool odd = (delta & 1) != 0;
        const std::ptrdiff_t max_d = (n + m + 1) / 2;
        const std::ptrdiff_t off = max_d + 1;
        vf_.assign(static_cast<std::size_t>(2 * max_d + 3), 0);
        vb_.assign(static_cast<std::size_t>(2 * max_d + 3), 0);
        auto F = [&](std::ptrdiff_t k) -> std::ptrdiff_t& { return vf_[static_cast<std::size_t>(off + k)]; };
        auto B = [&](std::ptrdiff_t k) -> std::ptrdiff_t& { return vb_[static_cast<std::size_t>(off + k)]; };

        for (std::ptrdiff_t d = 0; d <= max_d; ++d) {
            if (d > kMaxCost) return std::nullopt;
            for (std::ptrdiff_t k = -d; k <= d; k += 2) {
                std::ptrdiff_t x = (k == -d || (k != d && F(k - 1) < F(k + 1))) ? F(k + 1) : F(k - 1) + 1;
                std::ptrdiff_t y = x - k;
                while (x < n && y < m && a_[alo + x] == b_[blo + y]) { ++x; ++y; }
                F(k) = x;
                const std::ptrdiff_t kb = delta - k;
                if (odd && kb >= -(d - 1) && kb <= d - 1 && F(k) + B(kb) >= n) {
                    return std::make_pair(alo + x, blo + y);
                }
            }
            for (std::ptrdiff_t k = -d; k <= d; k += 2) {
                std::ptrdiff_t x = (k == -d || (k != d && B(k - 1) < B(k + 1))) ? B(k + 1) : B(k - 1) + 1;
                std::ptrdiff_t y = x - k;
                while (x < n && y < m && a_[ahi - 1 - x] == b_[bhi - 1 - y]) { ++x; ++y; }
                B(k) = x;
                const std::ptrdiff_t kf = delta - k;
                if (!odd && kf >= -d && kf <= d && B(k) + F(kf) >= n) {
                    return std::make_pair(ahi - x, bhi - y);
                }
            }
        }
        return std::nullopt;  // unreachable for non-empty inputs
    }

    std::vector<std::int32_t> a_;
    std::vector<std::int32_t> b_;
    std::vector<std::ptrdiff_t> vf_;
    std::vector<std::ptrdiff_t> vb_;
};

enum class Op { Equal, Delete, Insert };

struct ScriptItem {
    Op op;
    std::size_t a;  // index into old lines (Equal/Delete)
    std::size_t b;  // index into new lines (Equal/Insert)
};

std::string range(std::size_t before, std::size_t count) {
    // "l,n"; a one-line range is just "l"; an empty range names the line before it.
    if (count == 0) return std::to_string(before) + ",0";
    if (count == 1) return std::to_string(before + 1);
    return std::to_string(before + 1) + "," + std::to_string(count);
}

void append_line(std::string& out, char prefix, std::string_view line) {
    out.push_back(prefix);
    if (line.ends_with('\n')) {
        out.append(line);
    } else {
        out.append(line);
        out.append("\n\\ No newline at end of file\n");
    }
}

}  // namespace

std::string unified_diff(const DiffSide& before, const DiffSide& after, std::size_t context) {
    if (!before.text && !after.text) return {};
    const std::string_view old_text = before.text ? std::string_view(*before.text) : std::string_view{};
    const std::string_view new_text = after.text ? std::string_view(*after.text) : std::string_view{};
    const bool renamed = before.text && after.text && before.path != after.path;
    const bool same = before.text.has_value() == after.text.has_value() && old_text == new_text;
    if (same && !renamed) return {};

    std::string out = "diff --git a/" + before.path + " b/" + after.path + "\n";
    if (!before.text) out += "new file mode 100644\n";
    if (!after.text) out += "deleted file mode 100644\n";
    if (renamed) out += "rename from " + before.path + "\nrename to " + after.path + "\n";
    if (old_text == new_text) return out;  // a pure rename, or an empty file added/deleted
    out += before.text ? "--- a/" + before.path + "\n" : std::string("--- /dev/null\n");
    out += after.text ? "+++ b/" + after.path + "\n" : std::string("+++ /dev/null\n");

    const auto a = split_keep_eol(old_text);
    const auto b = split_keep_eol(new_text);
    const LineDiff diff(a, b);

    std::vector<ScriptItem> script;
    script.reserve(a.size() + b.size());
    for (std::size_t i = 0, j = 0; i < a.size() || j < b.size();) {
        if (i < a.size() && diff.deleted[i]) {
            script.push_back({Op::Delete, i++, j});
        } else if (j < b.size() && diff.inserted[j]) {
            script.push_back({Op::Insert, i, j++});
        } else {
            script.push_back({Op::Equal, i++, j++});
        }
    }

    const std::size_t s = script.size();
    auto next_change = [&](std::size_t from) {
        while (from < s && script[from].op == Op::Equal) ++from;
        return from;
    };
    std::size_t prev_end = 0;
    for (std::size_t c = next_change(0); c < s; c = next_change(prev_end)) {
        const std::size_t start = std::max(prev_end, c >= context ? c - context : 0);
        std::size_t end = c;
        for (;;) {
            while (end < s && script[end].op != Op::Equal) ++end;
            const std::size_t n = next_change(end);
            if (n < s && n - end <= 2 * context) {
                end = n;
                continue;
            }
            end = std::min(s, end + context);
            break;
        }

        std::size_t old_count = 0;
        std::size_t new_count = 0;
        for (std::size_t k = start; k < end; ++k) {
            if (script[k].op != Op::Insert) ++old_count;
            if (script[k].op != Op::Delete) ++new_count;
        }
        out += "@@ -" + range(script[start].a, old_count) + " +" + range(script[start].b, new_count) + " @@\n";
        for (std::size_t k = start; k < end; ++k) {
            const ScriptItem& it = script[k];
            switch (it.op) {
                case Op::Equal: append_line(out, ' ', a[it.a]); break;
                case Op::Delete: append_line(out, '-', a[it.a]); break;
                case Op::Insert: append_line(out, '+', b[it.b]); break;
            }
        }
        prev_end = end;
    }
    return out;
}

std::string unified_diff(std::string_view path, std::string_view old_text, std::string_view new_text,
                         std::size_t context) {
    return unified_diff(DiffSide{std::string(path), std::string(old_text)},
                        DiffSide{std::string(path), std::string(new_text)}, context);
}

}  // namespace keel::tools::patch
