// The marketplace index: a signed JSON list of packages (format in docs/marketplace.md).
//
//   auto v = verify_index(bytes, sig_text, trusted, "acme");   // signature first, then JSON
//   check_fresh(v.index, now);                                 // not expired
//   for (auto& p : v.index.packages) ...
//
// Parsing is forgiving where it is safe to be: an unknown field is a warning, a malformed
// package entry is skipped with a warning and the rest still load. What the trust decisions
// rest on (the document's shape, schema_version, index_version, expires) is strict.
#pragma once

#include <keel/market/minisign.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace keel::market {

struct IndexError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline constexpr int kIndexSchemaVersion = 1;
inline constexpr std::string_view kIndexFile = "index.json";
inline constexpr std::string_view kIndexSignatureFile = "index.json.minisig";

using SystemTime = std::chrono::system_clock::time_point;

// Where a package runs. An empty field (or "any") matches every host.
struct Platform {
  std::string os, arch, libc;
  bool empty() const { return os.empty() && arch.empty() && libc.empty(); }
};

// The kernel module-ABI versions a package works with: "MAJOR.MINOR" each; max may be
// "MAJOR.*" (any minor of that major). Empty means "any".
struct AbiRange {
  std::string min, max;
  bool empty() const { return min.empty() && max.empty(); }
};

struct Dependency {
  std::string name;
  std::string range;  // semver range, see version_range.hpp
};

// What a package says it will do. Shown to the user before install.
struct Permissions {
  std::string filesystem = "none";   // "none" | "read" | "write"
  std::vector<std::string> network;  // hosts it talks to; "*" = any; empty = none
  bool processes = false;            // spawns processes
  bool declared = false;             // the entry had a "permissions" object
};

struct IndexPackage {
  std::string name, version, kind, description;
  std::string publisher;  // minisign key id (16 hex digits) that signs the package
  std::string sha256;     // of the .keelpkg file
  std::uint64_t size = 0; // of the .keelpkg file, in bytes
  std::string file;       // path relative to the index ("hello-1.0.0.keelpkg") ...
  std::string url;        // ... or an absolute http(s) URL (exactly one of the two is set)
  AbiRange abi;
  Platform platform;
  std::vector<Dependency> dependencies;
  Permissions permissions;
  bool yanked = false;

  // file or url, whichever is set.
  const std::string& location() const { return url.empty() ? file : url; }
  std::string id() const { return name + "@" + version; }
};

struct Index {
  int schema_version = kIndexSchemaVersion;
  std::string name;  // the publisher's marketplace name (optional; bound by the signature)
  std::uint64_t index_version = 0;
  std::string generated;  // RFC 3339, informative
  std::string expires;    // RFC 3339
  SystemTime expires_at{};
  std::vector<IndexPackage> packages;

  // Entries named `name`, highest version first.
  std::vector<const IndexPackage*> versions_of(std::string_view name) const;
  const IndexPackage* find(std::string_view name, std::string_view version) const;
};

struct ParsedIndex {
  Index index;
  std::vector<std::string> warnings;  // unknown fields, skipped entries
};

// Throws IndexError when the document as a whole is unusable (not JSON, not an object,
// schema_version missing or newer than kIndexSchemaVersion, index_version/expires/packages
// missing or malformed). `source` names the index in messages.
ParsedIndex parse_index(std::string_view json_text, const std::string& source);

// Canonical, human-readable JSON (2-space indent, fixed key order, trailing newline).
std::string write_index(const Index& index);

// One package entry as JSON (the same order write_index uses), for `keel plugin info --json`.
std::string write_package(const IndexPackage& package);

// The trusted comment that binds an index signature: keel-index name=<name or "index">
// version=<index_version> sha256=<sha256 of index.json>.
std::string index_binding(std::string_view name, std::uint64_t index_version, std::string_view sha256);

struct VerifiedIndex {
  ParsedIndex parsed;
  std::string signer;       // key id
  std::string sha256;       // of the index bytes
  std::string bound_name;   // the name in the signed binding
};

// Verifies before parsing: the signature must come from a trusted key, its trusted comment
// must be a keel-index binding whose sha256 is that of `bytes`; only then is the JSON
// parsed, and its index_version (and name, if it has one) must equal the signed ones.
// Throws IndexError with a one-line reason naming `source`.
VerifiedIndex verify_index(std::span<const std::uint8_t> bytes, std::string_view signature_text,
                           const std::vector<PublicKey>& trusted, const std::string& source,
                           bool allow_legacy = false);

// Throws IndexError("... expired at ...") when `now` is past the index's expiry.
void check_fresh(const Index& index, SystemTime now, const std::string& source);

// --- RFC 3339 ---
// Accepts "2025-01-31T12:00:00Z", fractional seconds and numeric offsets ("+02:00").
std::optional<SystemTime> parse_rfc3339(std::string_view text);
std::string format_rfc3339(SystemTime t);  // UTC, whole seconds, "Z"

// --- platform and ABI ---
Platform host_platform();
bool platform_matches(const Platform& wanted, const Platform& host);
std::string describe(const Platform& p);
// The platform an ELF shared library was built for (os "linux", arch from e_machine, libc
// from its DT_NEEDED entries); fields it cannot tell stay empty.
Platform elf_platform(std::span<const std::uint8_t> library);
bool abi_compatible(const AbiRange& range, unsigned kernel_major, unsigned kernel_minor);
bool valid_abi_range(const AbiRange& range);
// The running kernel's module ABI (<keel/abi.h>).
unsigned kernel_abi_major();
unsigned kernel_abi_minor();

}  // namespace keel::market
