// keel apply_patch engine: the patch language coding models are trained to emit.
//
//   *** Begin Patch
//   *** Add File: path/new.txt
//   +line one
//   *** Update File: src/app.py
//   *** Move to: src/main.py
//   @@ def greet():
//   -    print("Hi")
//   +    print("Hello, world!")
//   *** Delete File: old.txt
//   *** End Patch
//
// parse_patch() turns the text into file actions; apply_patch() computes every new file
// content in memory, then writes all of them atomically (nothing is touched when any hunk of
// any file fails); extract_patch_from_command() recognizes `apply_patch <<'EOF' ... EOF`
// inside a shell command; unified_diff() renders changes for display.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace keel::tools::patch {

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

// A malformed patch. what() already names the line, e.g.
// "Invalid patch hunk on line 7: Unexpected line found in update hunk: 'foo'. ...".
class PatchError : public std::runtime_error {
public:
    PatchError(const std::string& message, std::size_t line)
        : std::runtime_error(message), line_(line) {}
    // 1-based line of the patch text the error refers to (0 when it refers to no line).
    std::size_t line() const noexcept { return line_; }

private:
    std::size_t line_;
};

enum class HunkLineKind { Context, Remove, Add };

struct HunkLine {
    HunkLineKind kind;
    std::string text;  // without the leading ' ', '-' or '+'
};

// One `@@` section of an Update.
struct UpdateChunk {
    // Text after "@@ " (e.g. "def greet():"); the hunk is searched for after this line.
    std::optional<std::string> context_header;
    std::vector<HunkLine> lines;
    bool end_of_file = false;   // `*** End of File`: the hunk must match at the end of the file
    std::size_t patch_line = 0; // 1-based line of the patch where the chunk starts

    std::vector<std::string> old_lines() const;  // context + removed
    std::vector<std::string> new_lines() const;  // context + added
};

enum class ActionKind { Add, Delete, Update };

struct FileAction {
    ActionKind kind = ActionKind::Add;
    std::string path;                   // as written in the patch (relative to the workdir)
    std::optional<std::string> move_to; // Update only: `*** Move to:`
    std::string contents;               // Add only: the new file's contents ('\n' line ends)
    std::vector<UpdateChunk> chunks;    // Update only
    std::size_t patch_line = 0;         // 1-based line of the action's header
};

struct ParsedPatch {
    std::vector<FileAction> actions;
};

// Parses patch text. Lenient like Codex: surrounding blank lines and whitespace around the
// Begin/End markers are tolerated, as is a patch still wrapped in `<<'EOF'` ... `EOF`, and
// CRLF patch text. Throws PatchError with a line-numbered message.
ParsedPatch parse_patch(std::string_view text);

// ---------------------------------------------------------------------------------------------
// Applying
// ---------------------------------------------------------------------------------------------

enum class ChangeKind { Add, Update, Delete, Move };

struct FileChange {
    std::string path;                    // the path now holding the result (Move: destination)
    ChangeKind kind = ChangeKind::Update;
    std::optional<std::string> old_path; // Move only: the source path
    std::string unified_diff;            // this change alone, git-style
};

struct ApplyResult {
    bool success = false;
    // On success "Success. Updated the following files:\nA a\nM b\nD c\n";
    // on failure the error, e.g. "Failed to find expected lines in src/app.py (hunk 2):\n...".
    std::string output;
    std::vector<FileChange> changes;  // in patch order; empty on failure
    std::string unified_diff;         // concatenation of the changes' diffs
};

struct ApplyOptions {
    // Compute changes, diffs and the success message but write nothing.
    bool dry_run = false;
    // Fault injection for tests: fail the commit just before its Nth (0-based) filesystem
    // step, exercising the rollback path. Never set this outside tests.
    std::optional<std::size_t> testing_fail_commit_at;
};

// Parses and applies a patch in `workdir`. Never throws for user errors (malformed patch,
// context not found, missing file, path outside the workdir, I/O failure): those come back
// as success=false with a message, and no file has been changed.
ApplyResult apply_patch(std::string_view patch, const std::filesystem::path& workdir,
                        const ApplyOptions& options = {});
ApplyResult apply_patch(const ParsedPatch& patch, const std::filesystem::path& workdir,
                        const ApplyOptions& options = {});

// ---------------------------------------------------------------------------------------------
// Context matching (exposed for tests and for tools that want the same tolerance)
// ---------------------------------------------------------------------------------------------

enum class MatchLevel { Exact, IgnoreTrailingWhitespace, IgnoreSurroundingWhitespace, NormalizedPunctuation };

struct SequenceMatch {
    std::size_t index;  // first line of the match
    MatchLevel level;
};

// Finds `pattern` in `lines` at or after `start`, trying each MatchLevel in order (all lines of
// one attempt at the same level). With `at_end_of_file`, only a match ending on the last line
// counts. An empty pattern matches at `start`.
std::optional<SequenceMatch> seek_sequence(const std::vector<std::string_view>& lines,
                                           const std::vector<std::string_view>& pattern,
                                           std::size_t start, bool at_end_of_file);

// Maps typographic punctuation to ASCII: curly quotes -> ' ", dashes/minus -> -, the Unicode
// spaces (NBSP, thin, ideographic, ...) -> ' ', ellipsis -> "...". Invalid UTF-8 passes through.
std::string normalize_punctuation(std::string_view text);

// ---------------------------------------------------------------------------------------------
// Heredoc recognition
// ---------------------------------------------------------------------------------------------

struct HeredocPatch {
    std::string patch;                 // the patch text handed to apply_patch
    // `cd DIR && apply_patch ...`: DIR exactly as written (relative, absolute or with `..`);
    // the caller resolves it against the command's workdir and confines it like any path.
    std::optional<std::string> workdir;
};

// Recognizes a shell command that is really an apply_patch invocation:
//   ["apply_patch", "<patch>"]  /  ["applypatch", "<patch>"]
//   ["bash", "-lc", "apply_patch <<'EOF'\n*** Begin Patch\n...\n*** End Patch\nEOF\n"]
//   ["bash", "-lc", "cd sub && apply_patch <<\"EOF\"\n...\nEOF"]
// Shells: bash, sh, zsh, dash (any directory prefix) with -c / -lc / -l -c. The delimiter
// may be quoted ('EOF', "EOF") or bare; `<<-` strips leading tabs. Anything else: nullopt.
std::optional<HeredocPatch> extract_patch_from_command(const std::vector<std::string>& argv);

// ---------------------------------------------------------------------------------------------
// Unified diffs
// ---------------------------------------------------------------------------------------------

struct DiffSide {
    std::string path;                // shown as a/<path> or b/<path>
    std::optional<std::string> text; // nullopt: the file does not exist on this side
};

// Git-style unified diff ("diff --git", "---", "+++", "@@ -l,n +l,n @@" hunks, "\ No newline
// at end of file"). Empty string when nothing differs. `context` lines around each change.
std::string unified_diff(const DiffSide& before, const DiffSide& after, std::size_t context = 3);

// Convenience: both sides exist under the same path.
std::string unified_diff(std::string_view path, std::string_view old_text,
                         std::string_view new_text, std::size_t context = 3);

// ---------------------------------------------------------------------------------------------
// Tool specification (for the module wrapper)
// ---------------------------------------------------------------------------------------------

inline constexpr std::string_view kToolName = "apply_patch";

inline constexpr std::string_view kToolDescription =
    R"(Use the `apply_patch` tool to edit files. The patch language is a stripped-down, file-oriented diff format designed to be easy to parse and safe to apply:

*** Begin Patch
[ one or more file sections ]
*** End Patch

Each file section starts with one of three headers:
*** Add File: <path> - create a new file (overwriting any existing one). Every following line is a `+` line holding the file's contents.
*** Delete File: <path> - remove an existing file. Nothing follows.
*** Update File: <path> - patch an existing file in place, optionally followed by `*** Move to: <new path>` to rename it.

An Update is a series of hunks. Each hunk starts with `@@`, optionally followed by a line that locates it (such as a class or function header: `@@ def greet():`), then its lines, each starting with ' ' (unchanged context), '-' (removed) or '+' (added). Give about 3 lines of context above and below each change; if that is not unique, add `@@` headers naming the enclosing class/function. End a hunk with `*** End of File` when it must match at the end of the file.

Example:
*** Begin Patch
*** Add File: hello.txt
+Hello world
*** Update File: src/app.py
*** Move to: src/main.py
@@ def greet():
-    print("Hi")
+    print("Hello, world!")
*** Delete File: obsolete.txt
*** End Patch

Paths are relative to the working directory; never use absolute paths or paths leaving it. Context lines must match the file (trailing whitespace and typographic punctuation are tolerated). If any hunk fails, no file is changed.)";

// Lark grammar of the patch language, for providers' freeform (custom) tools.
inline constexpr std::string_view kLarkGrammar = R"(start: begin_patch hunk+ end_patch
begin_patch: "*** Begin Patch" LF
end_patch: "*** End Patch" LF?

hunk: add_hunk | delete_hunk | update_hunk
add_hunk: "*** Add File: " filename LF add_line+
delete_hunk: "*** Delete File: " filename LF
update_hunk: "*** Update File: " filename LF change_move? change?

filename: /(.+)/
add_line: "+" /(.*)/ LF -> line

change_move: "*** Move to: " filename LF
change: (change_context | change_line)+ eof_line?
change_context: ("@@" | "@@ " /(.+)/) LF
change_line: ("+" | "-" | " ") /(.*)/ LF
eof_line: "*** End of File" LF

%import common.LF
)";

// JSON schema of the function-tool form's arguments.
inline constexpr std::string_view kFunctionParametersSchema =
    R"({"type":"object","properties":{"input":{"type":"string","description":"The entire contents of the apply_patch command"}},"required":["input"]})";

// {"type":"grammar","syntax":"lark","definition":<kLarkGrammar>} as JSON text: the `format` of
// the freeform (custom) tool form.
std::string freeform_tool_format_json();

}  // namespace keel::tools::patch
