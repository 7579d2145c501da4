// keel::common truncation — shorten long text for a model by cutting the middle.
//
// Tool output is often long and its interesting parts are at both ends (the command's first
// lines, and the error or summary at the end), so like Codex we keep a head and a tail and
// replace the middle with a note that says how much was cut:
//
//   first lines...
//   [... 1234 lines (56789 bytes) truncated ...]
//   last lines...
//
// Both a byte budget and a line budget apply (each split evenly between head and tail). Cuts
// never split a UTF-8 sequence; the note always sits on a line of its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace keel::common {

// Defaults modelled on Codex CLI: ~10 KiB and 256 lines (128 head + 128 tail) for the model.
inline constexpr std::size_t kDefaultTruncateBytes = 10 * 1024;
inline constexpr std::size_t kDefaultTruncateLines = 256;

struct TruncateOptions {
  std::size_t max_bytes = kDefaultTruncateBytes;  // kept bytes, head + tail (the note is extra)
  std::size_t max_lines = kDefaultTruncateLines;  // kept lines, head + tail
};

struct TruncateResult {
  std::string text;                 // the (possibly) shortened text
  std::uint64_t total_bytes = 0;    // of the original
  std::uint64_t total_lines = 0;    // of the original (a last line without '\n' counts)
  std::uint64_t omitted_bytes = 0;  // cut from the middle
  std::uint64_t omitted_lines = 0;  // newlines in the cut part
  bool truncated() const { return omitted_bytes != 0; }
};

// Truncates `text` in the middle if it exceeds either budget; otherwise returns it unchanged.
TruncateResult truncate_middle_info(std::string_view text, const TruncateOptions& options = {});
std::string truncate_middle(std::string_view text, const TruncateOptions& options = {});

// The same for text whose middle is already gone (e.g. a capped capture buffer that kept only
// its head and tail): the original was head + <gap_bytes bytes holding gap_lines newlines> +
// tail. The note counts the gap plus whatever else is cut from head and tail. With
// gap_bytes == 0 this is truncate_middle(head + tail).
TruncateResult truncate_middle_info(std::string_view head, std::string_view tail, std::uint64_t gap_bytes,
                                    std::uint64_t gap_lines, const TruncateOptions& options = {});
std::string truncate_middle(std::string_view head, std::string_view tail, std::uint64_t gap_bytes,
                            std::uint64_t gap_lines, const TruncateOptions& options = {});

// "[... N lines (M bytes) truncated ...]" ("[... M bytes truncated ...]" when N is 0).
std::string truncation_note(std::uint64_t omitted_lines, std::uint64_t omitted_bytes);

// Lines in `text`: newlines, plus one for a last line without a newline.
std::uint64_t count_lines(std::string_view text);

// UTF-8 boundary helpers. They only look at most 3 bytes around `pos`, so invalid input
// never makes them scan far.
// Largest position <= pos that does not fall inside a UTF-8 sequence.
std::size_t utf8_floor(std::string_view text, std::size_t pos);
// Smallest position >= pos that does not fall inside a UTF-8 sequence.
std::size_t utf8_ceil(std::string_view text, std::size_t pos);
// Length of `text` without a trailing *incomplete* UTF-8 sequence (for streaming: hold the
// remaining bytes back until the next chunk completes them).
std::size_t utf8_complete_prefix(std::string_view text);

// For a person reading a terminal rather than a model: `text` with every line indented, at
// most `max_lines` of them (half from each end) and a line saying how many were left out.
std::string clip_lines_for_display(std::string_view text, std::size_t max_lines, std::string_view indent);

// Text from a model or a command made safe to print on a terminal: control characters other
// than newline and tab become visible caret notation (ESC is "^["), a carriage return not
// followed by a newline too, C1 controls and bidirectional overrides become "<U+XXXX>". Escape
// sequences could otherwise rewrite what is on screen — an approval question among it.
std::string printable_for_terminal(std::string_view text);

}  // namespace keel::common
