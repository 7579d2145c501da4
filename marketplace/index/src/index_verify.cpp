#include <keel/market/binding.hpp>
#include <keel/market/index.hpp>
#include <keel/market/sha256.hpp>

#include <charconv>

namespace keel::market {

VerifiedIndex verify_index(std::span<const std::uint8_t> bytes, std::string_view signature_text,
                           const std::vector<PublicKey>& trusted, const std::string& source, bool allow_legacy) {
  if (trusted.empty())
    throw IndexError(source + ": no trusted keys, so no index can be verified (add the publisher's key with "
                              "`keel trust add FILE.pub`)");
  Signature sig;
  try {
    sig = Signature::parse(signature_text);
  } catch (const std::exception& e) {
    throw IndexError(source + ": index refused: its signature (" + std::string(kIndexSignatureFile) +
                     ") is unreadable: " + e.what());
  }
  std::string comment;
  try {
    comment = verify_with_any(trusted, bytes, sig, VerifyOptions{allow_legacy});
  } catch (const std::exception& e) {
    throw IndexError(source + ": index refused: " + e.what());
  }
  Binding b;
  try {
    b = parse_binding(comment);
  } catch (const std::exception& e) {
    throw IndexError(source + ": index refused: the signature's trusted comment is not a keel-index binding (" +
                     e.what() + ")");
  }
  if (b.kind != "index")
    throw IndexError(source + ": index refused: the signature is for a " + b.kind + ", not an index");
  VerifiedIndex out;
  out.sha256 = sha256_hex(bytes);
  if (b.sha256 != out.sha256)
    throw IndexError(source + ": index refused: its content does not match the signed sha256 (modified after signing)");
  std::uint64_t signed_version = 0;
  auto [ptr, ec] = std::from_chars(b.version.data(), b.version.data() + b.version.size(), signed_version);
  if (ec != std::errc() || ptr != b.version.data() + b.version.size())
    throw IndexError(source + ": index refused: the signed version '" + b.version + "' is not an index_version");

  // Only now, with the bytes authenticated, is the JSON looked at.
  out.parsed = parse_index(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), source);
  auto& idx = out.parsed.index;
  if (idx.index_version != signed_version)
    throw IndexError(source + ": index refused: it says index_version " + std::to_string(idx.index_version) +
                     " but its signature is for version " + b.version);
  if (!idx.name.empty() && idx.name != b.name)
    throw IndexError(source + ": index refused: it is named '" + idx.name + "' but its signature is for '" + b.name +
                     "'");
  out.bound_name = b.name;
  out.signer = sig.key_id_hex();
  return out;
}

void check_fresh(const Index& index, SystemTime now, const std::string& source) {
  if (now >= index.expires_at)
    throw IndexError(source + ": index refused: it expired at " + index.expires +
                     " (the publisher must re-sign it; a stale index could hide security updates)");
}

}  // namespace keel::market
