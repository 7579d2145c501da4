// File formats and refusals, without the CLI.

#include <catch2/catch.hpp>
#include <sodium.h>

#include "keel/market/minisign.hpp"
#include "keel/market/sha256.hpp"
#include "test_support.hpp"

using namespace keel::market;
using namespace keel::market::test;

namespace {

// Made by `minisign -G -W`; minisign printed "minisign public key 75CDBF113807096B".
constexpr const char* kMinisignPub =
    "untrusted comment: minisign public key 75CDBF113807096B\n"
    "RWRrCQc4Eb/NdYpSSm8aXYfU+pPORsqxk7ijJQRh0JzxafL3taNn5B8n\n";

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (auto nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', start)) {
    out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

}  // namespace

TEST_CASE("public keys parse from a .pub file or a bare base64 line", "[minisign]") {
  const auto pk = PublicKey::parse(kMinisignPub);
  CHECK(pk.key_id_hex() == "75CDBF113807096B");
  CHECK(PublicKey::parse("RWRrCQc4Eb/NdYpSSm8aXYfU+pPORsqxk7ijJQRh0JzxafL3taNn5B8n") == pk);
  CHECK(PublicKey::parse("untrusted comment: x\r\nRWRrCQc4Eb/NdYpSSm8aXYfU+pPORsqxk7ijJQRh0JzxafL3taNn5B8n\r\n") == pk);
  CHECK(pk.to_file() == kMinisignPub);

  CHECK_THROWS_AS(PublicKey::parse(""), SignatureError);
  CHECK_THROWS_WITH(PublicKey::parse("untrusted comment: only a comment\n"),
                    Catch::Contains("no key line"));
  CHECK_THROWS_WITH(PublicKey::parse("RWRrCQc4Eb/NdYpSSm8aXYfU+pPORsqxk7ijJQRh0Jzx"),
                    Catch::Contains("42 bytes"));
  CHECK_THROWS_WITH(PublicKey::parse("not base64 at all!"), Catch::Contains("base64"));
  TempDir dir{"keel-minisign"};
  CHECK_THROWS_WITH(PublicKey::load(dir / "missing.pub"), Catch::Contains("missing.pub"));
}

TEST_CASE("keel secret keys round-trip and detect corruption", "[minisign]") {
  const auto pair = generate_keypair();
  CHECK(pair.secret_key.public_key() == pair.public_key);
  const auto text = pair.secret_key.to_file();
  const auto back = SecretKey::parse(text);
  CHECK(back.key_id == pair.secret_key.key_id);
  CHECK(back.ed25519 == pair.secret_key.ed25519);
  CHECK(SecretKey::parse(text, std::string("ignored for unencrypted keys")).key_id ==
        pair.secret_key.key_id);

  // Flip one bit inside the key bytes: checksum (and seed/public-half check) catch it.
  auto lines = lines_of(text);
  REQUIRE(lines.size() == 2);
  char& c = lines[1][100];
  c = c == 'A' ? 'B' : 'A';
  CHECK_THROWS_WITH(SecretKey::parse(join(lines)), Catch::Contains("corrupt"));
  CHECK_THROWS_AS(SecretKey::parse(kMinisignPub), SignatureError);  // a public key is no secret key
}

TEST_CASE("unencrypted keys without a checksum are still checked", "[minisign]") {
  // minisign 0.11 writes unencrypted keys with an all-zero checksum; keel then checks that
  // the stored public half matches the one derived from the seed.
  const auto pair = generate_keypair();
  const auto line = lines_of(pair.secret_key.to_file())[1];
  std::vector<unsigned char> raw(158);
  std::size_t len = 0;
  REQUIRE(sodium_base642bin(raw.data(), raw.size(), line.data(), line.size(), nullptr, &len,
                            nullptr, sodium_base64_VARIANT_ORIGINAL) == 0);
  REQUIRE(len == raw.size());
  auto encode = [&] {
    std::string out(sodium_base64_ENCODED_LEN(158, sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(out.data(), out.size(), raw.data(), raw.size(),
                      sodium_base64_VARIANT_ORIGINAL);
    out.resize(out.size() - 1);
    return "untrusted comment: k\n" + out + "\n";
  };
  std::fill(raw.begin() + 126, raw.end(), 0);
  CHECK(SecretKey::parse(encode()).public_key() == pair.public_key);
  raw[62 + 32 + 5] ^= 1;  // a byte of the public half
  CHECK_THROWS_WITH(SecretKey::parse(encode()), Catch::Contains("public half does not match"));
}

TEST_CASE("signature files round-trip and malformed ones name the bad line", "[minisign]") {
  const auto pair = generate_keypair();
  const auto sig = sign(pair.secret_key, bytes("data"), "tc", "uc");
  const auto text = sig.to_file();
  const auto lines = lines_of(text);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == "untrusted comment: uc");
  CHECK(lines[2] == "trusted comment: tc");
  const auto back = Signature::parse(text);
  CHECK(back.to_file() == text);
  CHECK(verify(pair.public_key, bytes("data"), back) == "tc");

  auto with = [&](std::size_t index, std::string replacement) {
    auto copy = lines;
    copy[index] = std::move(replacement);
    return join(copy);
  };
  CHECK_THROWS_WITH(Signature::parse(""), Catch::Contains("line 1"));
  CHECK_THROWS_WITH(Signature::parse("hello\n"), Catch::Contains("line 1"));
  CHECK_THROWS_WITH(Signature::parse(join({lines[0], lines[1], lines[2]})),
                    Catch::Contains("line 4") && Catch::Contains("truncated"));
  CHECK_THROWS_WITH(Signature::parse(text.substr(0, text.size() / 2)), Catch::Contains("line"));
  CHECK_THROWS_WITH(Signature::parse(with(0, "a comment")), Catch::Contains("line 1"));
  CHECK_THROWS_WITH(Signature::parse(with(1, lines[1].substr(0, 40))), Catch::Contains("line 2"));
  CHECK_THROWS_WITH(Signature::parse(with(1, "%%%garbage%%%")), Catch::Contains("line 2"));
  CHECK_THROWS_WITH(Signature::parse(with(2, "tc")), Catch::Contains("line 3"));
  CHECK_THROWS_WITH(Signature::parse(with(3, lines[3] + "AAAA")), Catch::Contains("line 4"));
  CHECK_THROWS_WITH(Signature::parse(text + "extra\n"), Catch::Contains("line 5"));

  std::string bad_alg = lines[1];
  bad_alg[0] = 'X';  // "RU" -> "XU": first two bytes are no longer "ED"
  CHECK_THROWS_WITH(Signature::parse(with(1, bad_alg)), Catch::Contains("unknown algorithm"));
}

TEST_CASE("keel signatures are refused when anything changes", "[minisign]") {
  const auto pair = generate_keypair();
  const auto other = generate_keypair();
  const std::string data = "the bytes of a module";
  const auto sig = sign(pair.secret_key, bytes(data), "keel-module name=a version=1");
  CHECK(sig.algorithm == SignatureAlgorithm::Prehashed);
  CHECK(verify(pair.public_key, bytes(data), sig) == "keel-module name=a version=1");

  std::string flipped = data;
  flipped.back() ^= 1;
  CHECK_THROWS_WITH(verify(pair.public_key, bytes(flipped), sig), Catch::Contains("does not match"));

  auto tampered = sig;
  tampered.trusted_comment = "keel-module name=a version=2";
  CHECK_THROWS_WITH(verify(pair.public_key, bytes(data), tampered),
                    Catch::Contains("trusted comment"));

  auto bad_global = sig;
  bad_global.global_signature[5] ^= 1;
  CHECK_THROWS_WITH(verify(pair.public_key, bytes(data), bad_global),
                    Catch::Contains("trusted comment"));

  CHECK_THROWS_WITH(verify(other.public_key, bytes(data), sig),
                    Catch::Contains("made with key " + pair.public_key.key_id_hex()) &&
                        Catch::Contains(other.public_key.key_id_hex()));
  CHECK_THROWS_WITH(verify_with_any({other.public_key}, bytes(data), sig),
                    Catch::Contains("signed by key " + pair.public_key.key_id_hex() +
                                    " which is not trusted"));
  CHECK_THROWS_WITH(verify_with_any({}, bytes(data), sig), Catch::Contains("no keys are trusted"));
  CHECK(verify_with_any({other.public_key, pair.public_key}, bytes(data), sig) ==
        "keel-module name=a version=1");

  // Same key id, different key: caught by the signature check, not the id check.
  auto impostor = other.public_key;
  impostor.key_id = pair.public_key.key_id;
  CHECK_THROWS_WITH(verify(impostor, bytes(data), sig), Catch::Contains("does not match"));
}

TEST_CASE("comments must be single lines", "[minisign]") {
  const auto pair = generate_keypair();
  CHECK_THROWS_WITH(sign(pair.secret_key, bytes("x"), "two\nlines"),
                    Catch::Contains("trusted comment") && Catch::Contains("single line"));
  CHECK_THROWS_WITH(sign(pair.secret_key, bytes("x"), "ok", "bad\r"),
                    Catch::Contains("untrusted comment"));
  CHECK_THROWS_WITH(sign(pair.secret_key, bytes("x"), std::string(9000, 'a')),
                    Catch::Contains("too long"));
}

TEST_CASE("sha256 helpers", "[minisign][sha256]") {
  CHECK(sha256_hex(bytes("")) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex(bytes("abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  TempDir dir{"keel-minisign"};
  std::string big(300 * 1024 + 1, 'k');
  write_file(dir / "big", big);
  CHECK(sha256_file_hex(dir / "big") == sha256_hex(bytes(big)));
  CHECK_THROWS_WITH(sha256_file_hex(dir / "nope"), Catch::Contains("nope"));
}

TEST_CASE("minisign: a key id with leading zeros is written without them, as minisign does", "[minisign][format]") {
  keel::market::KeyId id{0x49, 0xA3, 0x03, 0xB0, 0x70, 0xB7, 0x37, 0x0D};  // little-endian 0x0D37B770B003A349
  CHECK(keel::market::key_id_hex(id) == "0D37B770B003A349");
  CHECK(keel::market::key_id_in_minisign_comment(id) == "D37B770B003A349");
  CHECK(keel::market::key_id_in_minisign_comment(keel::market::KeyId{}) == "0");
  keel::market::PublicKey pk;
  pk.key_id = id;
  CHECK(pk.to_file().starts_with("untrusted comment: minisign public key D37B770B003A349\n"));
}
