// Heredoc recognizer: finds an apply_patch invocation inside a shell command, so that it is
// applied as a patch instead of being run.
#include <keel/tools/apply_patch.hpp>

#include <algorithm>
#include <array>

namespace keel::tools::patch {

namespace {

std::string_view basename(std::string_view s) {
    const auto slash = s.rfind('/');
    return slash == std::string_view::npos ? s : s.substr(slash + 1);
}

bool is_apply_patch_command(std::string_view word) {
    return word == "apply_patch" || word == "applypatch";
}

bool is_blank(char c) { return c == ' ' || c == '\t'; }

// Characters that end an unquoted shell word or make it more than a literal.
bool is_word_char(char c) {
    switch (c) {
        case ' ': case '\t': case '\n': case '\r': case ';': case '&': case '|': case '<':
        case '>': case '(': case ')': case '`': case '$': case '"': case '\'': case '\\':
        case '*': case '?': case '[': case '{': case '}': case '~': case '#':
            return false;
        default:
            return true;
    }
}

class ScriptScanner {
public:
    explicit ScriptScanner(std::string_view s) : s_(s) {}

    void skip_blanks() {
        while (pos_ < s_.size() && is_blank(s_[pos_])) ++pos_;
    }
    void skip_whitespace() {
        while (pos_ < s_.size() && (is_blank(s_[pos_]) || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
    }
    bool eat(std::string_view token) {
        if (s_.substr(pos_).starts_with(token)) {
            pos_ += token.size();
            return true;
        }
        return false;
    }
    bool at_end() const { return pos_ >= s_.size(); }
    char peek() const { return at_end() ? '\0' : s_[pos_]; }

    // A literal word: bare, '...' or "..." without expansions. Adjacent parts concatenate.
    std::optional<std::string> word() {
        std::string out;
        bool any = false;
        while (!at_end()) {
            const char c = s_[pos_];
            if (c == '\'') {
                const auto close = s_.find('\'', pos_ + 1);
                if (close == std::string_view::npos) return std::nullopt;
                out.append(s_.substr(pos_ + 1, close - pos_ - 1));
                pos_ = close + 1;
            } else if (c == '"') {
                const auto close = s_.find('"', pos_ + 1);
                if (close == std::string_view::npos) return std::nullopt;
                const std::string_view inner = s_.substr(pos_ + 1, close - pos_ - 1);
                if (inner.find_first_of("$`\\") != std::string_view::npos) return std::nullopt;
                out.append(inner);
                pos_ = close + 1;
            } else if (is_word_char(c)) {
                out.push_back(c);
                ++pos_;
            } else {
                break;
            }
            any = true;
        }
        if (!any) return std::nullopt;
        return out;
    }

    std::string_view rest() const { return s_.substr(std::min(pos_, s_.size())); }
    void advance(std::size_t n) { pos_ += n; }

private:
    std::string_view s_;
    std::size_t pos_ = 0;
};

bool only_whitespace(std::string_view s) {
    return s.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

// `<<[-] DELIM\n BODY \nDELIM` at the scanner's position, followed by nothing else.
std::optional<std::string> heredoc_body(ScriptScanner& sc) {
    if (!sc.eat("<<")) return std::nullopt;
    const bool strip_tabs = sc.eat("-");
    sc.skip_blanks();
    const auto delim = sc.word();
    if (!delim || delim->empty()) return std::nullopt;
    sc.skip_blanks();
    if (sc.peek() == '\r') sc.advance(1);
    if (!sc.eat("\n")) return std::nullopt;

    std::string_view body = sc.rest();
    std::string patch;
    std::size_t pos = 0;
    while (pos < body.size()) {
        std::size_t nl = body.find('\n', pos);
        const bool last = nl == std::string_view::npos;
        if (last) nl = body.size();
        std::string_view line = body.substr(pos, nl - pos);
        if (line.ends_with('\r')) line.remove_suffix(1);
        if (strip_tabs) {
            while (line.starts_with('\t')) line.remove_prefix(1);
        }
        if (line == *delim) {
            if (!only_whitespace(body.substr(std::min(nl + 1, body.size())))) return std::nullopt;
            return patch;
        }
        patch.append(line);
        patch.push_back('\n');
        pos = nl + 1;
    }
    // Unterminated heredoc: the shell would read to the end of the script too.
    return patch;
}

std::optional<HeredocPatch> parse_script(std::string_view script) {
    ScriptScanner sc(script);
    HeredocPatch out;
    sc.skip_whitespace();

    auto first = sc.word();
    if (!first) return std::nullopt;
    if (*first == "cd") {
        sc.skip_blanks();
        auto dir = sc.word();
        if (!dir || dir->empty()) return std::nullopt;
        sc.skip_blanks();
        if (!sc.eat("&&")) return std::nullopt;
        sc.skip_whitespace();
        out.workdir = std::move(*dir);
        first = sc.word();
        if (!first) return std::nullopt;
    }
    if (!is_apply_patch_command(*first)) return std::nullopt;
    sc.skip_blanks();

    if (sc.peek() == '<') {
        auto body = heredoc_body(sc);
        if (!body) return std::nullopt;
        out.patch = std::move(*body);
        return out;
    }
    // apply_patch '<patch>' — a single literal argument and nothing after it.
    auto arg = sc.word();
    if (!arg || !only_whitespace(sc.rest())) return std::nullopt;
    out.patch = std::move(*arg);
    return out;
}

}  // namespace

std::optional<HeredocPatch> extract_patch_from_command(const std::vector<std::string>& argv) {
    if (argv.size() == 2 && is_apply_patch_command(basename(argv[0]))) {
        return HeredocPatch{argv[1], std::nullopt};
    }
    if (argv.size() < 3) return std::nullopt;
    static constexpr std::array<std::string_view, 4> kShells{"bash", "sh", "zsh", "dash"};
    const std::string_view shell = basename(argv[0]);
    bool known_shell = false;
    for (auto s : kShells) known_shell = known_shell || shell == s;
    if (!known_shell) return std::nullopt;

    const std::string* script = nullptr;
    if (argv.size() == 3 && (argv[1] == "-c" || argv[1] == "-lc" || argv[1] == "-cl")) {
        script = &argv[2];
    } else if (argv.size() == 4 && (argv[1] == "-l" || argv[1] == "--login") && argv[2] == "-c") {
        script = &argv[3];
    }
    if (!script) return std::nullopt;
    return parse_script(*script);
}

}  // namespace keel::tools::patch
