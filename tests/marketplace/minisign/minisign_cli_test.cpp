// Interoperability with the real minisign CLI: keys and signatures made by either side are
// accepted by the other.

#include <catch2/catch.hpp>

#include "keel/market/minisign.hpp"
#include "test_support.hpp"

using namespace keel::market;
using namespace keel::market::test;

namespace {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

void require_minisign() {
  INFO("the minisign CLI was not found at configure time (apt-get install minisign)");
  REQUIRE(have_minisign());
}

// A key pair written by `minisign -G -W` (unencrypted).
void minisign_keypair(const TempDir& dir) {
  const auto r = minisign(dir, {"-G", "-W", "-p", "k.pub", "-s", "k.key"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
}

}  // namespace

TEST_CASE("a file signed by minisign verifies in keel", "[minisign][cli]") {
  require_minisign();
  TempDir dir{"keel-minisign"};
  minisign_keypair(dir);
  write_file(dir / "data.txt", "some module bytes\n");
  const auto r = minisign(dir, {"-S", "-s", "k.key", "-m", "data.txt", "-t", "trusted comment"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);

  const auto pk = PublicKey::load(dir / "k.pub");
  const auto sig = Signature::load(dir / "data.txt.minisig");
  CHECK(sig.algorithm == SignatureAlgorithm::Prehashed);
  CHECK(verify_file(pk, dir / "data.txt", sig) == "trusted comment");
  CHECK(verify(pk, bytes(read_file(dir / "data.txt")), sig) == "trusted comment");
  CHECK(verify_with_any({generate_keypair().public_key, pk}, bytes("some module bytes\n"), sig) ==
        "trusted comment");

  // The key id reads as minisign prints it, and the .pub file round-trips exactly.
  CHECK(first_line(read_file(dir / "k.pub")) == "untrusted comment: minisign public key " +
                                                    key_id_in_minisign_comment(pk.key_id));
  CHECK(pk.to_file() == read_file(dir / "k.pub"));
  CHECK(sig.to_file() == read_file(dir / "data.txt.minisig"));

  // minisign's unencrypted secret key (zero checksum in 0.11) loads and matches the .pub.
  const auto sk = SecretKey::load(dir / "k.key");
  CHECK(sk.public_key() == pk);
}

TEST_CASE("a keel signature verifies with minisign -V", "[minisign][cli]") {
  require_minisign();
  TempDir dir{"keel-minisign"};
  const auto pair = generate_keypair();
  write_file(dir / "k.pub", pair.public_key.to_file());
  write_file(dir / "k.key", pair.secret_key.to_file());

  // Larger than one read chunk, so sign_file really streams.
  std::string data(200 * 1024 + 7, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31 + 7);
  write_file(dir / "lib.so", data);

  const auto sig = sign_file(pair.secret_key, dir / "lib.so", "keel trusted comment\twith tab",
                             "made by keel");
  write_file(dir / "lib.so.minisig", sig.to_file());
  CHECK(sign(pair.secret_key, bytes(data), "keel trusted comment\twith tab", "made by keel")
            .to_file() == sig.to_file());  // Ed25519 is deterministic

  auto r = minisign(dir, {"-V", "-p", "k.pub", "-m", "lib.so"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  r = minisign(dir, {"-V", "-Q", "-p", "k.pub", "-m", "lib.so"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "keel trusted comment\twith tab\n");
  // -P with the bare base64 key works too, and -H (prehashed required) accepts keel's.
  r = minisign(dir, {"-V", "-H", "-P", pair.public_key.to_base64(), "-m", "lib.so"});
  CHECK(r.exit_code == 0);

  // minisign refuses it once the data changes.
  data[1000] ^= 1;
  write_file(dir / "lib.so", data);
  r = minisign(dir, {"-V", "-p", "k.pub", "-m", "lib.so"});
  CHECK(r.exit_code != 0);
}

TEST_CASE("a keel-written secret key is usable by minisign", "[minisign][cli]") {
  require_minisign();
  TempDir dir{"keel-minisign"};
  const auto pair = generate_keypair();
  write_file(dir / "k.key", pair.secret_key.to_file());
  write_file(dir / "file", "payload");

  auto r = minisign(dir, {"-S", "-s", "k.key", "-m", "file", "-t", "signed by minisign"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(verify_file(pair.public_key, dir / "file", Signature::load(dir / "file.minisig")) ==
        "signed by minisign");

  // minisign -R recreates the same public key from it.
  r = minisign(dir, {"-R", "-s", "k.key", "-p", "re.pub"});
  REQUIRE(r.exit_code == 0);
  CHECK(PublicKey::load(dir / "re.pub") == pair.public_key);
}

TEST_CASE("a password-protected minisign secret key", "[minisign][cli][scrypt]") {
  require_minisign();
  TempDir dir{"keel-minisign"};
  // minisign reads the password (twice when generating) from stdin when it is not a tty.
  auto r = minisign(dir, {"-G", "-p", "e.pub", "-s", "e.key"}, "correct horse\ncorrect horse\n");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto pk = PublicKey::load(dir / "e.pub");

  // One key for all checks: each scrypt run (minisign's 1 GiB setting) takes a while.
  const auto sk = SecretKey::load(dir / "e.key", std::string("correct horse"));
  CHECK(sk.public_key() == pk);
  write_file(dir / "f", "x");
  write_file(dir / "f.minisig", sign_file(sk, dir / "f", "tc").to_file());
  r = minisign(dir, {"-V", "-p", "e.pub", "-m", "f"});
  CHECK(r.exit_code == 0);

  CHECK_THROWS_WITH(SecretKey::load(dir / "e.key", std::string("wrong horse")),
                    Catch::Contains("wrong password"));
  CHECK_THROWS_WITH(SecretKey::load(dir / "e.key"), Catch::Contains("password is needed"));
}

TEST_CASE("legacy Ed signatures from minisign -l", "[minisign][cli]") {
  require_minisign();
  TempDir dir{"keel-minisign"};
  minisign_keypair(dir);
  write_file(dir / "old.bin", "legacy payload");
  const auto r = minisign(dir, {"-S", "-l", "-s", "k.key", "-m", "old.bin", "-t", "old style"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);

  const auto pk = PublicKey::load(dir / "k.pub");
  const auto sig = Signature::load(dir / "old.bin.minisig");
  REQUIRE(sig.algorithm == SignatureAlgorithm::Legacy);
  CHECK_THROWS_WITH(verify_file(pk, dir / "old.bin", sig), Catch::Contains("legacy"));
  CHECK_THROWS_WITH(verify_with_any({pk}, bytes("legacy payload"), sig), Catch::Contains("legacy"));
  CHECK(verify_file(pk, dir / "old.bin", sig, {.allow_legacy = true}) == "old style");
  CHECK(verify(pk, bytes("legacy payload"), sig, {.allow_legacy = true}) == "old style");
  CHECK_THROWS_WITH(verify(pk, bytes("legacy payloaD"), sig, {.allow_legacy = true}),
                    Catch::Contains("does not match"));
}

TEST_CASE("tampering with a minisign-made signature is detected", "[minisign][cli]") {
  require_minisign();
  TempDir dir{"keel-minisign"};
  minisign_keypair(dir);
  const std::string data = "module contents v1";
  write_file(dir / "m", data);
  REQUIRE(minisign(dir, {"-S", "-s", "k.key", "-m", "m", "-t", "name=a version=1"}).exit_code == 0);
  const auto pk = PublicKey::load(dir / "k.pub");
  const auto sig = Signature::load(dir / "m.minisig");

  SECTION("a flipped byte in the data") {
    std::string changed = data;
    changed[3] ^= 0x20;
    CHECK_THROWS_WITH(verify(pk, bytes(changed), sig), Catch::Contains("does not match"));
    write_file(dir / "m", changed);
    CHECK_THROWS_WITH(verify_file(pk, dir / "m", sig), Catch::Contains("does not match"));
    CHECK(minisign(dir, {"-V", "-p", "k.pub", "-m", "m"}).exit_code != 0);
  }
  SECTION("an edited trusted comment") {
    std::string text = read_file(dir / "m.minisig");
    text.replace(text.find("version=1"), 9, "version=2");
    write_file(dir / "m.minisig", text);
    const auto edited = Signature::load(dir / "m.minisig");
    CHECK_THROWS_WITH(verify(pk, bytes(data), edited), Catch::Contains("trusted comment"));
    CHECK(minisign(dir, {"-V", "-p", "k.pub", "-m", "m"}).exit_code != 0);
  }
  SECTION("another key") {
    const auto other = generate_keypair().public_key;
    CHECK_THROWS_WITH(verify(other, bytes(data), sig),
                      Catch::Contains(pk.key_id_hex()) && Catch::Contains(other.key_id_hex()));
    CHECK_THROWS_WITH(verify_file_with_any({other}, dir / "m", sig),
                      Catch::Contains("signed by key " + pk.key_id_hex() + " which is not trusted"));
  }
}
