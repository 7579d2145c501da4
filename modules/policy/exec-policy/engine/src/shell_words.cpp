// shlex-style splitting and POSIX quoting of single words.
#include "keel/policy/shell_parse.hpp"

namespace keel::policy {

std::optional<std::vector<std::string>> shell_split(std::string_view line) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  std::size_t i = 0;
  const auto n = line.size();
  while (i < n) {
    const char c = line[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (in_word) out.push_back(std::move(cur));
      cur.clear();
      in_word = false;
      ++i;
      continue;
    }
    in_word = true;
    if (c == '\'') {
      const auto close = line.find('\'', i + 1);
      if (close == std::string_view::npos) return std::nullopt;
      cur.append(line.substr(i + 1, close - i - 1));
      i = close + 1;
    } else if (c == '"') {
      ++i;
      bool closed = false;
      while (i < n) {
        const char d = line[i];
        if (d == '"') {
          closed = true;
          ++i;
          break;
        }
        if (d == '\\' && i + 1 < n &&
            (line[i + 1] == '\\' || line[i + 1] == '"' || line[i + 1] == '$' ||
             line[i + 1] == '`' || line[i + 1] == '\n')) {
          if (line[i + 1] != '\n') cur.push_back(line[i + 1]);
          i += 2;
          continue;
        }
        cur.push_back(d);
        ++i;
      }
      if (!closed) return std::nullopt;
    } else if (c == '\\') {
      if (i + 1 >= n) return std::nullopt;
      if (line[i + 1] != '\n') cur.push_back(line[i + 1]);
      i += 2;
    } else {
      cur.push_back(c);
      ++i;
    }
  }
  if (in_word) out.push_back(std::move(cur));
  return out;
}

std::string shell_quote(std::string_view word) {
  auto plain = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '@' || c == '%' || c == '+' || c == '=' || c == ':' ||
           c == ',' || c == '.' || c == '/' || c == '-';
  };
  bool all_plain = !word.empty();
  for (char c : word) all_plain = all_plain && plain(c);
  if (all_plain) return std::string(word);
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  out.push_back('\'');
  return out;
}

std::string shell_join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out.push_back(' ');
    out += shell_quote(a);
  }
  return out;
}

}  // namespace keel::policy
