#include <keel/common/truncate.hpp>

#include <vector>

namespace keel::common {

std::string clip_lines_for_display(std::string_view text, std::size_t max_lines, std::string_view indent) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    auto nl = text.find('\n');
    lines.push_back(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
  }
  std::string out;
  auto add = [&](std::string_view l) { out.append(indent).append(l).append("\n"); };
  if (lines.size() <= max_lines) {
    for (auto l : lines) add(l);
    return out;
  }
  const std::size_t head = max_lines / 2, tail = max_lines - head;
  for (std::size_t i = 0; i < head; ++i) add(lines[i]);
  out.append(indent).append("… " + std::to_string(lines.size() - max_lines) + " more lines …\n");
  for (std::size_t i = lines.size() - tail; i < lines.size(); ++i) add(lines[i]);
  return out;
}

std::string printable_for_terminal(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  auto code_point = [&](const char* tag) { out.append("<U+").append(tag).append(">"); };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n' || c == '\t') {
      out.push_back(static_cast<char>(c));
    } else if (c == '\r') {
      if (i + 1 < text.size() && text[i + 1] == '\n') continue;  // CRLF: the newline is enough
      out.append("^M");
    } else if (c < 0x20 || c == 0x7f) {
      out.push_back('^');
      out.push_back(static_cast<char>(c ^ 0x40));  // ESC -> ^[, DEL -> ^?
    } else if (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) <= 0x9f) {  // U+0080..U+009F: C1 controls (CSI, OSC...)
      static constexpr char hex[] = "0123456789ABCDEF";
      const auto low = static_cast<unsigned char>(text[i + 1]);
      const char tag[] = {'0', '0', hex[low >> 4], hex[low & 15], 0};
      code_point(tag);
      ++i;
    } else if (c == 0xe2 && i + 2 < text.size()) {
      const auto b1 = static_cast<unsigned char>(text[i + 1]), b2 = static_cast<unsigned char>(text[i + 2]);
      // U+202A..U+202E (embeddings, overrides) and U+2066..U+2069 (isolates) reorder what is shown.
      const char* tag = b1 == 0x80 && b2 == 0xaa ? "202A" : b1 == 0x80 && b2 == 0xab ? "202B"
                      : b1 == 0x80 && b2 == 0xac ? "202C" : b1 == 0x80 && b2 == 0xad ? "202D"
                      : b1 == 0x80 && b2 == 0xae ? "202E" : b1 == 0x81 && b2 == 0xa6 ? "2066"
                      : b1 == 0x81 && b2 == 0xa7 ? "2067" : b1 == 0x81 && b2 == 0xa8 ? "2068"
                      : b1 == 0x81 && b2 == 0xa9 ? "2069" : nullptr;
      if (tag) {
        code_point(tag);
        i += 2;
      } else {
        out.push_back(static_cast<char>(c));
      }
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

}  // namespace keel::common
