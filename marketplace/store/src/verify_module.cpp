#include <keel/market/archive.hpp>
#include <keel/market/binding.hpp>
#include <keel/market/sha256.hpp>
#include <keel/market/store.hpp>

#include "binding_check.hpp"

namespace keel::market {

std::string module_binding(const ModuleManifest& m, std::string_view sha256) {
  return format_binding("module", m.name, m.version, sha256);
}

std::string package_binding(const ModuleManifest& m, std::string_view sha256) {
  return format_binding("package", m.name, m.version, sha256);
}

// Checks that a verified trusted comment names exactly what we expected.
void check_binding(const std::string& comment, std::string_view kind, const ModuleManifest& m, std::string_view sha256) {
  Binding b;
  try {
    b = parse_binding(comment);
  } catch (const std::exception& e) {
    throw StoreError(std::string("signature's trusted comment is not a keel binding: ") + e.what());
  }
  if (b.kind != kind) throw StoreError("signature is for a " + b.kind + ", not a " + std::string(kind));
  if (b.name != m.name) throw StoreError("signature is for '" + b.name + "', not '" + m.name + "'");
  if (b.version != m.version)
    throw StoreError("signature is for version " + b.version + ", not " + m.version + " (replayed signature?)");
  if (b.sha256 != sha256) throw StoreError("content does not match the signed sha256 (modified after signing)");
}

VerifiedLibrary verify_module_library(const InstalledModule& module, const std::vector<PublicKey>& trusted,
                                      bool allow_legacy) {
  if (trusted.empty()) throw StoreError("no trusted keys (add one with `keel trust add`)");
  VerifiedLibrary out;
  Signature sig;
  try {
    out.bytes = read_file_bytes(module.library());
  } catch (const std::exception& e) {
    throw StoreError("cannot read library " + module.library().string() + ": " + e.what());
  }
  try {
    sig = Signature::load(module.signature());
  } catch (const std::exception& e) {
    throw StoreError("no valid signature " + module.signature().filename().string() + ": " + e.what());
  }
  std::string comment;
  try {
    comment = verify_with_any(trusted, out.bytes, sig, VerifyOptions{allow_legacy});
  } catch (const std::exception& e) {
    throw StoreError(std::string("signature check failed: ") + e.what());
  }
  out.sha256 = sha256_hex(out.bytes);
  check_binding(comment, "module", module.manifest, out.sha256);
  out.signer = sig.key_id_hex();
  return out;
}

}  // namespace keel::market
