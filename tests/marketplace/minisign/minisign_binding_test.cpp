// keel's trusted-comment binding of name, version and content hash.

#include <catch2/catch.hpp>

#include "keel/market/binding.hpp"
#include "keel/market/minisign.hpp"
#include "keel/market/sha256.hpp"
#include "test_support.hpp"

using namespace keel::market;
using namespace keel::market::test;

TEST_CASE("bindings format and parse", "[minisign][binding]") {
  const std::string sha = sha256_hex(bytes("module"));
  const auto text = format_binding("module", "tool-shell", "1.2.0", sha);
  CHECK(text == "keel-module name=tool-shell version=1.2.0 sha256=" + sha);

  const auto b = parse_binding(text);
  CHECK(b.kind == "module");
  CHECK(b.name == "tool-shell");
  CHECK(b.version == "1.2.0");
  CHECK(b.sha256 == sha);
  CHECK(b.extra.empty());
  CHECK(format_binding(b) == text);

  // Unknown fields are kept; order of known fields does not matter; hex is normalised.
  std::string upper = sha;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const auto e = parse_binding("keel-index  sha256=" + upper + " abi=3 name=main version=42 exp=a=b");
  CHECK(e.kind == "index");
  CHECK(e.sha256 == sha);
  REQUIRE(e.extra.size() == 2);
  CHECK(e.extra[0] == std::pair<std::string, std::string>{"abi", "3"});
  CHECK(e.extra[1] == std::pair<std::string, std::string>{"exp", "a=b"});
  CHECK(parse_binding(format_binding(e)).extra == e.extra);
}

TEST_CASE("malformed bindings are refused", "[minisign][binding]") {
  const std::string sha(64, 'a');
  CHECK_THROWS_WITH(parse_binding("trusted: whatever"), Catch::Contains("not a keel binding"));
  CHECK_THROWS_WITH(parse_binding("keel- name=a version=1 sha256=" + sha),
                    Catch::Contains("not a keel binding"));
  CHECK_THROWS_WITH(parse_binding("keel-module name=a sha256=" + sha),
                    Catch::Contains("missing the version"));
  CHECK_THROWS_WITH(parse_binding("keel-module name=a version=1"), Catch::Contains("sha256"));
  CHECK_THROWS_WITH(parse_binding("keel-module name=a version=1 version=2 sha256=" + sha),
                    Catch::Contains("more than once"));
  CHECK_THROWS_WITH(parse_binding("keel-module name=a version=1 sha256=abc"),
                    Catch::Contains("64 hex"));
  CHECK_THROWS_WITH(parse_binding("keel-module name= version=1 sha256=" + sha),
                    Catch::Contains("name"));
  CHECK_THROWS_WITH(parse_binding("keel-module name=a version=1 sha256=" + sha + " loose"),
                    Catch::Contains("key=value"));
  CHECK_THROWS_WITH(format_binding("module", "has space", "1", sha), Catch::Contains("name"));
  CHECK_THROWS_WITH(format_binding("module", "a", "1", sha, {{"name", "b"}}),
                    Catch::Contains("more than once"));
}

TEST_CASE("a signed binding cannot be replayed onto another version", "[minisign][binding]") {
  const auto pair = generate_keypair();
  const std::string v1 = "module v1 bytes", v2 = "module v2 bytes";
  const auto sig = sign(pair.secret_key, bytes(v1),
                        format_binding("module", "shell", "1.0.0", sha256_hex(bytes(v1))));

  // The signature verifies over v1, and its binding names v1.
  const auto binding = parse_binding(verify(pair.public_key, bytes(v1), sig));
  CHECK(binding.name == "shell");
  CHECK(binding.version == "1.0.0");
  CHECK(binding.sha256 == sha256_hex(bytes(v1)));

  // A caller installing "shell 2.0.0" with v1's valid signature sees the mismatch.
  CHECK(binding.version != "2.0.0");
  CHECK(binding.sha256 != sha256_hex(bytes(v2)));
  // Rewriting the binding to name 2.0.0 breaks the global signature.
  auto replayed = sig;
  replayed.trusted_comment = format_binding("module", "shell", "2.0.0", sha256_hex(bytes(v1)));
  CHECK_THROWS_WITH(verify(pair.public_key, bytes(v1), replayed),
                    Catch::Contains("trusted comment"));
}
