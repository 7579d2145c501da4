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

}  // namespace keel::common
