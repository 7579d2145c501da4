// minisign public keys: "Ed" || key id (8) || Ed25519 public key (32), base64 on one line.

#include <cstring>

#include "common.hpp"
#include "keel/market/minisign.hpp"

namespace keel::market {

std::string key_id_hex(const KeyId& id) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(16);
  for (auto it = id.rbegin(); it != id.rend(); ++it) {  // little-endian 64-bit number
    out.push_back(digits[*it >> 4]);
    out.push_back(digits[*it & 0x0f]);
  }
  return out;
}

std::string key_id_in_minisign_comment(const KeyId& id) {
  std::string hex = key_id_hex(id);
  auto first = hex.find_first_not_of('0');
  return first == std::string::npos ? "0" : hex.substr(first);
}

PublicKey PublicKey::parse(std::string_view file_text) {
  detail::ensure_sodium();
  const auto line = detail::key_base64_line(file_text, "public key");
  std::array<std::uint8_t, 2 + 8 + 32> raw{};
  if (!detail::base64_decode_exact(line, raw)) {
    throw SignatureError("public key is not valid: expected base64 of " +
                         std::to_string(raw.size()) + " bytes");
  }
  if (raw[0] != 'E' || raw[1] != 'd') {
    throw SignatureError("public key uses an unsupported algorithm (expected Ed25519, \"Ed\")");
  }
  PublicKey key;
  std::memcpy(key.key_id.data(), raw.data() + 2, key.key_id.size());
  std::memcpy(key.ed25519.data(), raw.data() + 10, key.ed25519.size());
  return key;
}

PublicKey PublicKey::load(const std::filesystem::path& path) {
  const auto text = detail::read_small_file(path, 16 * 1024, "public key file");
  try {
    return parse(text);
  } catch (const SignatureError& e) {
    throw SignatureError(path.string() + ": " + e.what());
  }
}

std::string PublicKey::to_base64() const {
  std::array<std::uint8_t, 2 + 8 + 32> raw{'E', 'd'};
  std::memcpy(raw.data() + 2, key_id.data(), key_id.size());
  std::memcpy(raw.data() + 10, ed25519.data(), ed25519.size());
  return detail::base64_encode(raw);
}

std::string PublicKey::to_file(std::string_view comment) const {
  std::string text = comment.empty() ? "minisign public key " + key_id_in_minisign_comment(key_id) : std::string(comment);
  detail::check_one_line(text, 1000, "public key comment");
  return std::string(detail::kUntrustedPrefix) + text + "\n" + to_base64() + "\n";
}

}  // namespace keel::market
