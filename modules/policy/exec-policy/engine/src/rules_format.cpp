// Writing rules: Starlark string literals and prefix_rule(...) text.
#include <cstdio>

#include "keel/policy/rules.hpp"

namespace keel::policy {

std::string starlark_quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default: {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", u);
          out += buf;
        } else {
          out.push_back(c);  // printable ASCII and UTF-8 bytes as they are
        }
      }
    }
  }
  out.push_back('"');
  return out;
}

std::string format_prefix_rule(const std::vector<std::string>& prefix, RuleDecision decision,
                               std::string_view justification) {
  std::string out = "prefix_rule(pattern=[";
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (i) out += ", ";
    out += starlark_quote(prefix[i]);
  }
  out += "], decision=";
  out += starlark_quote(to_string(decision));
  if (!justification.empty()) out += ", justification=" + starlark_quote(justification);
  out += ")";
  return out;
}

}  // namespace keel::policy
