// keel's trusted-comment binding: "keel-<kind> name=<n> version=<v> sha256=<hex> [k=v ...]".

#include <algorithm>

#include "keel/market/binding.hpp"
#include "keel/market/signature_error.hpp"

namespace keel::market {
namespace {

constexpr std::string_view kPrefix = "keel-";

bool is_space(char c) { return c == ' ' || c == '\t'; }

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '-' || c == '.';
}

bool is_value_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u != 0x7f;  // no whitespace, no control characters
}

void check_key(std::string_view key, std::string_view what) {
  if (key.empty() || !std::all_of(key.begin(), key.end(), is_key_char)) {
    throw SignatureError("binding " + std::string(what) + " \"" + std::string(key) +
                         "\" must be non-empty and use only letters, digits, '_', '-' and '.'");
  }
}

void check_value(std::string_view field, std::string_view value) {
  if (value.empty() || !std::all_of(value.begin(), value.end(), is_value_char)) {
    throw SignatureError("binding field " + std::string(field) +
                         " must be non-empty and contain no spaces or control characters");
  }
}

std::string normalise_sha256(std::string_view hex) {
  std::string out(hex);
  for (char& c : out) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  }
  if (out.size() != 64 || !std::all_of(out.begin(), out.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      })) {
    throw SignatureError("binding field sha256 must be 64 hex digits, got \"" + std::string(hex) +
                         "\"");
  }
  return out;
}

bool is_core_field(std::string_view key) {
  return key == "name" || key == "version" || key == "sha256";
}

}  // namespace

std::string format_binding(std::string_view kind, std::string_view name,
                           std::string_view version, std::string_view sha256,
                           const std::vector<std::pair<std::string, std::string>>& extra) {
  check_key(kind, "kind");
  check_value("name", name);
  check_value("version", version);
  std::string out = std::string(kPrefix) + std::string(kind) + " name=" + std::string(name) +
                    " version=" + std::string(version) + " sha256=" + normalise_sha256(sha256);
  for (std::size_t i = 0; i < extra.size(); ++i) {
    const auto& [key, value] = extra[i];
    check_key(key, "field name");
    const bool repeated = is_core_field(key) ||
                          std::any_of(extra.begin(), extra.begin() + static_cast<long>(i),
                                      [&](const auto& e) { return e.first == key; });
    if (repeated) throw SignatureError("binding field " + key + " appears more than once");
    check_value(key, value);
    out += ' ' + key + '=' + value;
  }
  return out;
}

std::string format_binding(const Binding& b) {
  return format_binding(b.kind, b.name, b.version, b.sha256, b.extra);
}

Binding parse_binding(std::string_view text) {
  std::vector<std::string_view> tokens;
  for (std::size_t i = 0; i < text.size();) {
    while (i < text.size() && is_space(text[i])) ++i;
    const std::size_t start = i;
    while (i < text.size() && !is_space(text[i])) ++i;
    if (i > start) tokens.push_back(text.substr(start, i - start));
  }
  if (tokens.empty() || !tokens[0].starts_with(kPrefix) || tokens[0].size() == kPrefix.size()) {
    throw SignatureError("trusted comment is not a keel binding (expected \"keel-<kind> name=... "
                         "version=... sha256=...\"), got \"" + std::string(text) + "\"");
  }
  Binding b;
  b.kind = tokens[0].substr(kPrefix.size());
  check_key(b.kind, "kind");

  bool seen_name = false, seen_version = false, seen_sha = false;
  std::vector<std::string_view> seen;
  for (std::size_t i = 1; i < tokens.size(); ++i) {
    const auto eq = tokens[i].find('=');
    if (eq == std::string_view::npos) {
      throw SignatureError("binding field \"" + std::string(tokens[i]) +
                           "\" is not of the form key=value");
    }
    const auto key = tokens[i].substr(0, eq);
    const auto value = tokens[i].substr(eq + 1);
    check_key(key, "field name");
    check_value(key, value);
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      throw SignatureError("binding field " + std::string(key) + " appears more than once");
    }
    seen.push_back(key);
    if (key == "name") {
      b.name = value;
      seen_name = true;
    } else if (key == "version") {
      b.version = value;
      seen_version = true;
    } else if (key == "sha256") {
      b.sha256 = normalise_sha256(value);
      seen_sha = true;
    } else {
      b.extra.emplace_back(key, value);
    }
  }
  for (auto [present, field] : {std::pair{seen_name, "name"}, std::pair{seen_version, "version"},
                                std::pair{seen_sha, "sha256"}}) {
    if (!present) throw SignatureError(std::string("binding is missing the ") + field + " field");
  }
  return b;
}

}  // namespace keel::market
