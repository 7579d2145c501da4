#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace keel::market {

// keel's trusted-comment binding: "keel-<kind> name=<n> version=<v> sha256=<hex> [k=v ...]".
// Placed in a minisign trusted comment it ties the signature to one package's name, version
// and content, so it cannot be replayed onto another package or version. The caller compares
// the parsed fields with what it expected.
struct Binding {
  std::string kind;     // "module", "package", "index", ... (the text after "keel-")
  std::string name;
  std::string version;
  std::string sha256;   // 64 lowercase hex chars
  std::vector<std::pair<std::string, std::string>> extra;  // unknown fields, in order
};

// Values must be non-empty with no whitespace or control characters; field names use
// letters, digits, "_", "-", "."; a field may appear only once; sha256 must
// be 64 hex chars (written lowercase). Throws SignatureError otherwise.
std::string format_binding(std::string_view kind, std::string_view name,
                           std::string_view version, std::string_view sha256,
                           const std::vector<std::pair<std::string, std::string>>& extra = {});
std::string format_binding(const Binding& binding);

// Throws SignatureError when the text is not a binding, a field is malformed or repeated,
// or name/version/sha256 is missing. Unknown fields go to Binding::extra.
Binding parse_binding(std::string_view text);

}  // namespace keel::market
