#include <keel/common/truncate.hpp>

#include <algorithm>

namespace keel::common {
namespace {

bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Length of the sequence a lead byte starts (0 for a byte that cannot start one).
std::size_t sequence_length(char c) {
  auto b = static_cast<unsigned char>(c);
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}

std::uint64_t count_newlines(std::string_view s) {
  return static_cast<std::uint64_t>(std::count(s.begin(), s.end(), '\n'));
}

// End of the head kept from `a`: at most `max_lines` whole lines and `max_bytes` bytes; when
// the line budget is not used up, a partial line fills the byte budget.
std::size_t head_end(std::string_view a, std::size_t max_bytes, std::size_t max_lines) {
  std::size_t limit = std::min(a.size(), max_bytes);
  std::size_t end = 0;
  std::size_t lines = 0;
  while (lines < max_lines) {
    auto nl = a.find('\n', end);
    if (nl == std::string_view::npos || nl + 1 > limit) break;
    end = nl + 1;
    ++lines;
  }
  if (lines < max_lines) end = limit;
  end = utf8_floor(a, end);
  if (end == a.size()) end = utf8_complete_prefix(a);
  return end;
}

// Start of the tail kept from `b`: at most `max_lines` lines and `max_bytes` bytes.
std::size_t tail_start(std::string_view b, std::size_t max_bytes, std::size_t max_lines) {
  std::size_t limit = b.size() > max_bytes ? b.size() - max_bytes : 0;
  std::size_t start = b.size();
  if (b.empty()) return 0;
  std::size_t lines = 0;
  bool reached_front = false;
  // Walk lines backwards; line_end is where the current line ends (its '\n' or the end).
  std::size_t line_end = b.back() == '\n' ? b.size() - 1 : b.size();
  while (lines < max_lines) {
    std::size_t candidate = 0;
    if (line_end > 0) {
      auto nl = b.rfind('\n', line_end - 1);
      candidate = nl == std::string_view::npos ? 0 : nl + 1;
    }
    if (candidate < limit) break;
    start = candidate;
    ++lines;
    if (candidate == 0) {
      reached_front = true;
      break;
    }
    line_end = candidate - 1;
  }
  if (lines < max_lines && !reached_front) start = limit;
  return utf8_ceil(b, start);
}

TruncateResult assemble(std::string_view head, std::string_view tail, std::uint64_t omitted_bytes,
                        std::uint64_t omitted_lines) {
  TruncateResult r;
  r.omitted_bytes = omitted_bytes;
  r.omitted_lines = omitted_lines;
  std::string note = truncation_note(omitted_lines, omitted_bytes);
  r.text.reserve(head.size() + note.size() + tail.size() + 2);
  r.text.append(head);
  if (!head.empty() && head.back() != '\n') r.text.push_back('\n');
  r.text.append(note);
  r.text.push_back('\n');
  r.text.append(tail);
  return r;
}

}  // namespace

std::size_t utf8_floor(std::string_view text, std::size_t pos) {
  pos = std::min(pos, text.size());
  for (int i = 0; i < 3 && pos > 0 && pos < text.size() && is_continuation(text[pos]); ++i) --pos;
  return pos;
}

std::size_t utf8_ceil(std::string_view text, std::size_t pos) {
  pos = std::min(pos, text.size());
  for (int i = 0; i < 3 && pos < text.size() && is_continuation(text[pos]); ++i) ++pos;
  return pos;
}

std::size_t utf8_complete_prefix(std::string_view text) {
  // Find the last lead byte among the final (up to) 3 bytes and check whether its sequence
  // is complete.
  std::size_t n = text.size();
  for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
    char c = text[n - back];
    if (is_continuation(c)) continue;
    std::size_t len = sequence_length(c);
    if (len > back) return n - back;  // incomplete: hold it back
    return n;
  }
  return n;  // ASCII, complete, or invalid bytes that no later chunk can complete
}

std::uint64_t count_lines(std::string_view text) {
  return count_newlines(text) + ((!text.empty() && text.back() != '\n') ? 1 : 0);
}

std::string truncation_note(std::uint64_t omitted_lines, std::uint64_t omitted_bytes) {
  std::string bytes = std::to_string(omitted_bytes) + (omitted_bytes == 1 ? " byte" : " bytes");
  if (omitted_lines == 0) return "[... " + bytes + " truncated ...]";
  return "[... " + std::to_string(omitted_lines) + (omitted_lines == 1 ? " line (" : " lines (") + bytes +
         ") truncated ...]";
}

TruncateResult truncate_middle_info(std::string_view text, const TruncateOptions& options) {
  const std::uint64_t total_lines = count_lines(text);
  if (text.size() <= options.max_bytes && total_lines <= options.max_lines) {
    TruncateResult r;
    r.text.assign(text);
    r.total_bytes = text.size();
    r.total_lines = total_lines;
    return r;
  }
  const std::size_t head_bytes = options.max_bytes / 2, tail_bytes = options.max_bytes - head_bytes;
  const std::size_t head_lines = options.max_lines / 2, tail_lines = options.max_lines - head_lines;
  std::size_t end = head_end(text, head_bytes, head_lines);
  std::size_t start = std::max(end, tail_start(text, tail_bytes, tail_lines));
  std::string_view middle = text.substr(end, start - end);
  TruncateResult r = middle.empty()
                         ? TruncateResult{std::string(text), 0, 0, 0, 0}
                         : assemble(text.substr(0, end), text.substr(start), middle.size(), count_newlines(middle));
  r.total_bytes = text.size();
  r.total_lines = total_lines;
  return r;
}

TruncateResult truncate_middle_info(std::string_view head, std::string_view tail, std::uint64_t gap_bytes,
                                    std::uint64_t gap_lines, const TruncateOptions& options) {
  if (gap_bytes == 0) {
    if (tail.empty()) return truncate_middle_info(head, options);
    std::string joined;
    joined.reserve(head.size() + tail.size());
    joined.append(head).append(tail);
    return truncate_middle_info(joined, options);
  }
  const std::size_t head_bytes = options.max_bytes / 2, tail_bytes = options.max_bytes - head_bytes;
  const std::size_t head_lines = options.max_lines / 2, tail_lines = options.max_lines - head_lines;
  std::size_t end = head_end(head, head_bytes, head_lines);
  std::size_t start = tail_start(tail, tail_bytes, tail_lines);
  std::string_view head_cut = head.substr(end), tail_cut = tail.substr(0, start);
  TruncateResult r = assemble(head.substr(0, end), tail.substr(start),
                              head_cut.size() + gap_bytes + tail_cut.size(),
                              count_newlines(head_cut) + gap_lines + count_newlines(tail_cut));
  r.total_bytes = head.size() + gap_bytes + tail.size();
  // Lines: newlines everywhere, plus a last line without one.
  r.total_lines = count_newlines(head) + gap_lines + count_lines(tail);
  return r;
}

std::string truncate_middle(std::string_view text, const TruncateOptions& options) {
  return truncate_middle_info(text, options).text;
}

std::string truncate_middle(std::string_view head, std::string_view tail, std::uint64_t gap_bytes,
                            std::uint64_t gap_lines, const TruncateOptions& options) {
  return truncate_middle_info(head, tail, gap_bytes, gap_lines, options).text;
}

}  // namespace keel::common
