// The .minisig format, four lines:
//   untrusted comment: <text>
//   base64( algorithm "ED"|"Ed" (2) || key id (8) || Ed25519 signature (64) )
//   trusted comment: <text>
//   base64( global signature (64) over signature || trusted comment text )

#include <cstring>

#include "common.hpp"
#include "keel/market/minisign.hpp"

namespace keel::market {
namespace {

// minisign reads these lines into fixed buffers of this size.
constexpr std::size_t kMaxUntrustedLine = 1024;
constexpr std::size_t kMaxTrustedLine = 8192;

[[noreturn]] void malformed(int line, const std::string& why) {
  throw SignatureError("malformed signature file: line " + std::to_string(line) + " " + why);
}

}  // namespace

Signature Signature::parse(std::string_view file_text) {
  detail::ensure_sodium();
  auto lines = detail::split_lines(file_text);
  while (!lines.empty() && detail::is_blank(lines.back())) lines.pop_back();
  static constexpr const char* kNames[] = {"(untrusted comment)", "(signature)",
                                           "(trusted comment)", "(global signature)"};
  // Lines are checked in order, so the first wrong line is the one reported.
  auto line = [&](std::size_t index) {
    if (index >= lines.size()) {
      malformed(static_cast<int>(index) + 1,
                std::string(kNames[index]) + " is missing: the file is truncated");
    }
    return lines[index];
  };

  Signature sig;
  if (!line(0).starts_with(detail::kUntrustedPrefix)) {
    malformed(1, "must start with \"untrusted comment: \"");
  }
  if (lines[0].size() > kMaxUntrustedLine) malformed(1, "(untrusted comment) is too long");
  sig.untrusted_comment = lines[0].substr(detail::kUntrustedPrefix.size());

  std::array<std::uint8_t, 2 + 8 + 64> raw{};
  if (!detail::base64_decode_exact(detail::trim(line(1)), raw)) {
    malformed(2, "(signature) is not base64 of " + std::to_string(raw.size()) + " bytes");
  }
  if (raw[0] == 'E' && raw[1] == 'D') {
    sig.algorithm = SignatureAlgorithm::Prehashed;
  } else if (raw[0] == 'E' && raw[1] == 'd') {
    sig.algorithm = SignatureAlgorithm::Legacy;
  } else {
    malformed(2, "(signature) names an unknown algorithm (expected \"ED\" or \"Ed\")");
  }
  std::memcpy(sig.key_id.data(), raw.data() + 2, sig.key_id.size());
  std::memcpy(sig.signature.data(), raw.data() + 10, sig.signature.size());

  if (!line(2).starts_with(detail::kTrustedPrefix)) {
    malformed(3, "must start with \"trusted comment: \"");
  }
  if (lines[2].size() > kMaxTrustedLine) malformed(3, "(trusted comment) is too long");
  sig.trusted_comment = lines[2].substr(detail::kTrustedPrefix.size());

  if (!detail::base64_decode_exact(detail::trim(line(3)), sig.global_signature)) {
    malformed(4, "(global signature) is not base64 of 64 bytes");
  }
  if (lines.size() > 4) malformed(5, "is unexpected: a signature file has exactly four lines");
  return sig;
}

Signature Signature::load(const std::filesystem::path& path) {
  const auto text = detail::read_small_file(path, 64 * 1024, "signature file");
  try {
    return parse(text);
  } catch (const SignatureError& e) {
    throw SignatureError(path.string() + ": " + e.what());
  }
}

std::string Signature::to_file() const {
  std::array<std::uint8_t, 2 + 8 + 64> raw{'E', algorithm == SignatureAlgorithm::Prehashed
                                                    ? std::uint8_t{'D'}
                                                    : std::uint8_t{'d'}};
  std::memcpy(raw.data() + 2, key_id.data(), key_id.size());
  std::memcpy(raw.data() + 10, signature.data(), signature.size());
  std::string out;
  out += detail::kUntrustedPrefix;
  out += untrusted_comment;
  out += '\n';
  out += detail::base64_encode(raw);
  out += '\n';
  out += detail::kTrustedPrefix;
  out += trusted_comment;
  out += '\n';
  out += detail::base64_encode(global_signature);
  out += '\n';
  return out;
}

}  // namespace keel::market
