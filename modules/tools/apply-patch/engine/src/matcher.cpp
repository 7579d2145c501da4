// Context matcher: finds a hunk's lines in a file, tolerating whitespace and typographic
// punctuation differences, tried strictest first.
#include <keel/tools/apply_patch.hpp>

#include "text.hpp"

#include <array>
#include <utility>

namespace keel::tools::patch {

namespace {

// Decodes one UTF-8 sequence at s[i]; returns the code point and its length, or length 0
// when the bytes there are not valid UTF-8.
std::pair<char32_t, std::size_t> decode_utf8(std::string_view s, std::size_t i) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) return {b0, 1};
    std::size_t len = 0;
    char32_t cp = 0;
    if ((b0 & 0xE0) == 0xC0) { len = 2; cp = b0 & 0x1F; }
    else if ((b0 & 0xF0) == 0xE0) { len = 3; cp = b0 & 0x0F; }
    else if ((b0 & 0xF8) == 0xF0) { len = 4; cp = b0 & 0x07; }
    else return {0, 0};
    if (i + len > s.size()) return {0, 0};
    for (std::size_t k = 1; k < len; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0) != 0x80) return {0, 0};
        cp = (cp << 6) | (b & 0x3F);
    }
    return {cp, len};
}

// ASCII replacement for typographic punctuation, or nullptr to keep the code point.
const char* ascii_for(char32_t cp) {
    switch (cp) {
        // dashes and minus
        case 0x2010: case 0x2011: case 0x2012: case 0x2013: case 0x2014: case 0x2015:
        case 0x2212: case 0xFE58: case 0xFE63: case 0xFF0D:
            return "-";
        // single quotes, primes
        case 0x2018: case 0x2019: case 0x201A: case 0x201B: case 0x2032: case 0x2035:
        case 0xFF07:
            return "'";
        // double quotes
        case 0x201C: case 0x201D: case 0x201E: case 0x201F: case 0x2033: case 0x2036:
        case 0x00AB: case 0x00BB: case 0xFF02:
            return "\"";
        // spaces
        case 0x00A0: case 0x2002: case 0x2003: case 0x2004: case 0x2005: case 0x2006:
        case 0x2007: case 0x2008: case 0x2009: case 0x200A: case 0x202F: case 0x205F:
        case 0x3000:
            return " ";
        case 0x2026:
            return "...";
        default:
            return nullptr;
    }
}

using LineEq = bool (*)(std::string_view, std::string_view);

bool eq_exact(std::string_view a, std::string_view b) { return a == b; }
bool eq_trim_end(std::string_view a, std::string_view b) {
    return detail::trim_end(a) == detail::trim_end(b);
}
bool eq_trim(std::string_view a, std::string_view b) { return detail::trim(a) == detail::trim(b); }

}  // namespace

std::string normalize_punctuation(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        const auto [cp, len] = decode_utf8(text, i);
        if (len == 0) {
            out.push_back(text[i]);
            ++i;
            continue;
        }
        if (const char* ascii = (len > 1) ? ascii_for(cp) : nullptr) {
            out.append(ascii);
        } else {
            out.append(text.substr(i, len));
        }
        i += len;
    }
    return out;
}

std::optional<SequenceMatch> seek_sequence(const std::vector<std::string_view>& lines,
                                           const std::vector<std::string_view>& pattern,
                                           std::size_t start, bool at_end_of_file) {
    if (pattern.empty()) return SequenceMatch{start, MatchLevel::Exact};
    if (pattern.size() > lines.size()) return std::nullopt;
    const std::size_t last_start = lines.size() - pattern.size();
    std::size_t from = start;
    if (at_end_of_file) {
        if (last_start < start) return std::nullopt;
        from = last_start;
    }
    if (from > last_start) return std::nullopt;

    static constexpr std::array<std::pair<MatchLevel, LineEq>, 3> kLevels{{
        {MatchLevel::Exact, &eq_exact},
        {MatchLevel::IgnoreTrailingWhitespace, &eq_trim_end},
        {MatchLevel::IgnoreSurroundingWhitespace, &eq_trim},
    }};
    for (const auto& [level, eq] : kLevels) {
        for (std::size_t i = from; i <= last_start; ++i) {
            bool ok = true;
            for (std::size_t k = 0; k < pattern.size() && ok; ++k) ok = eq(lines[i + k], pattern[k]);
            if (ok) return SequenceMatch{i, level};
        }
    }

    // Last resort: typographic punctuation normalized (then surrounding whitespace ignored).
    // Each line is normalized at most once.
    std::vector<std::string> norm_pattern;
    norm_pattern.reserve(pattern.size());
    for (auto p : pattern) norm_pattern.emplace_back(detail::trim(normalize_punctuation(p)));
    std::vector<std::optional<std::string>> norm_lines(lines.size());
    auto norm_line = [&](std::size_t k) -> std::string_view {
        if (!norm_lines[k]) norm_lines[k] = std::string(detail::trim(normalize_punctuation(lines[k])));
        return *norm_lines[k];
    };
    for (std::size_t i = from; i <= last_start; ++i) {
        bool ok = true;
        for (std::size_t k = 0; k < pattern.size() && ok; ++k) ok = norm_line(i + k) == norm_pattern[k];
        if (ok) return SequenceMatch{i, MatchLevel::NormalizedPunctuation};
    }
    return std::nullopt;
}

}  // namespace keel::tools::patch

