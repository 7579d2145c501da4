#include <keel/market/binding.hpp>
#include <keel/market/index.hpp>
#include <keel/market/sha256.hpp>
#include <keel/market/version_range.hpp>

#include <catch2/catch.hpp>

using namespace keel::market;

namespace {

const char* kSha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

std::string entry(const std::string& name, const std::string& version, const std::string& extra = "") {
  return R"({"name": ")" + name + R"(", "version": ")" + version +
         R"(", "kind": "tool", "publisher": "75CDBF113807096B", "sha256": ")" + kSha +
         R"(", "size": 1234, "file": ")" + name + "-" + version + R"(.keelpkg")" + extra + "}";
}

std::string doc(const std::string& packages, const std::string& extra = "") {
  return R"({"schema_version": 1, "index_version": 3, "expires": "2099-01-01T00:00:00Z", "packages": [)" + packages +
         "]" + extra + "}";
}

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

std::string error_of(const std::string& text) {
  try {
    parse_index(text, "idx");
  } catch (const IndexError& e) {
    return e.what();
  }
  return "";
}

std::span<const std::uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace

TEST_CASE("a full entry parses and round-trips through write_index", "[marketplace][index]") {
  auto text = doc(entry("hello", "1.2.0",
                        R"(, "description": "Greets", "abi": {"min": "1.0", "max": "1.*"},
                           "platform": {"os": "linux", "arch": "x86_64", "libc": "gnu"},
                           "dependencies": [{"name": "base", "range": "^1.0.0"}],
                           "permissions": {"filesystem": "read", "network": ["api.example.com"], "processes": true},
                           "yanked": true)"));
  auto parsed = parse_index(text, "idx");
  CHECK(parsed.warnings.empty());
  auto& i = parsed.index;
  CHECK(i.index_version == 3);
  REQUIRE(i.packages.size() == 1);
  auto& p = i.packages[0];
  CHECK(p.id() == "hello@1.2.0");
  CHECK(p.publisher == "75CDBF113807096B");
  CHECK(p.size == 1234);
  CHECK(p.abi.max == "1.*");
  CHECK(p.platform.arch == "x86_64");
  REQUIRE(p.dependencies.size() == 1);
  CHECK(p.dependencies[0].range == "^1.0.0");
  CHECK(p.permissions.declared);
  CHECK(p.permissions.filesystem == "read");
  CHECK(p.permissions.processes);
  CHECK(p.yanked);

  auto again = parse_index(write_index(i), "idx2");
  CHECK(again.warnings.empty());
  CHECK(write_index(again.index) == write_index(i));
}

TEST_CASE("unknown fields are warnings; malformed entries are skipped and the rest load", "[marketplace][index]") {
  auto text = doc(entry("good", "1.0.0", R"(, "homepage": "https://x")") + "," +   // unknown field
                      entry("bad-sha", "1.0.0").replace(entry("bad-sha", "1.0.0").find(kSha), 64, "zz") + "," +
                      R"({"name": "no-version"})" + "," + entry("Bad_Name", "1.0.0") + "," +
                      entry("bad-size", "1.0.0").replace(entry("bad-size", "1.0.0").find("\"size\": 1234"), 12, "\"size\": -5") + "," +
                      entry("bad-dep", "1.0.0", R"(, "dependencies": [{"name": "x", "range": "^^1"}])") + "," +
                      entry("bad-perm", "1.0.0", R"(, "permissions": {"filesystem": "everything"})") + "," +
                      entry("escape", "1.0.0").replace(entry("escape", "1.0.0").find("escape-1.0.0.keelpkg"), 20,
                                                       "../escape.keelpkg") +
                      "," + entry("good", "1.0.0") + "," + "42" + "," + entry("also-good", "2.0.0-beta.1"),
                  R"(, "mirror": "x")");
  auto parsed = parse_index(text, "idx");
  std::vector<std::string> ids;
  for (auto& p : parsed.index.packages) ids.push_back(p.id());
  CHECK(ids == std::vector<std::string>{"good@1.0.0", "also-good@2.0.0-beta.1"});
  auto& w = parsed.warnings;
  auto has = [&](const std::string& s) {
    return std::any_of(w.begin(), w.end(), [&](const std::string& x) { return contains(x, s); });
  };
  CHECK(has("idx: unknown field \"mirror\" ignored"));
  CHECK(has("packages[0] (good@1.0.0): unknown field \"homepage\" ignored"));
  CHECK(has("(bad-sha@1.0.0): skipped: \"sha256\" must be 64 hex digits"));
  CHECK(has("packages[2] (no-version): skipped: missing \"version\""));
  CHECK(has("(Bad_Name@1.0.0): skipped: invalid name"));
  CHECK(has("(bad-size@1.0.0): skipped: \"size\" must be a positive integer"));
  CHECK(has("(bad-dep@1.0.0): skipped:"));
  CHECK(has("invalid version range '^^1'"));
  CHECK(has("(bad-perm@1.0.0): skipped: permissions.filesystem"));
  CHECK(has("(escape@1.0.0): skipped: \"file\" must be a plain relative path"));
  CHECK(has("packages[8] (good@1.0.0): skipped: listed twice"));
  CHECK(has("packages[9]: skipped: a package entry must be an object"));
}

TEST_CASE("document-level problems make the index unusable", "[marketplace][index]") {
  CHECK(contains(error_of("[1, 2]"), "must be a JSON object"));
  CHECK(contains(error_of("{not json"), "not valid JSON"));
  CHECK(contains(error_of(R"({"index_version": 1})"), "missing \"schema_version\""));
  CHECK(contains(error_of(R"({"schema_version": 2, "index_version": 1, "expires": "2099-01-01T00:00:00Z", "packages": []})"),
                 "index schema 2 is newer than this keel understands"));
  CHECK(contains(error_of(R"({"schema_version": 1, "index_version": 0, "expires": "2099-01-01T00:00:00Z", "packages": []})"),
                 "\"index_version\" must be a positive integer"));
  CHECK(contains(error_of(R"({"schema_version": 1, "index_version": 1, "expires": "tomorrow", "packages": []})"),
                 "not an RFC 3339 time"));
  CHECK(contains(error_of(R"({"schema_version": 1, "index_version": 1, "expires": "2099-01-01T00:00:00Z"})"),
                 "missing \"packages\""));
}

TEST_CASE("RFC 3339 times", "[marketplace][index]") {
  auto t = parse_rfc3339("2025-03-01T12:30:00Z");
  REQUIRE(t);
  CHECK(format_rfc3339(*t) == "2025-03-01T12:30:00Z");
  CHECK(format_rfc3339(*parse_rfc3339("2025-03-01T14:30:00.250+02:00")) == "2025-03-01T12:30:00Z");
  CHECK(format_rfc3339(*parse_rfc3339("2025-03-01T10:00:00-02:30")) == "2025-03-01T12:30:00Z");
  CHECK(format_rfc3339(*parse_rfc3339("2024-02-29T00:00:00z")) == "2024-02-29T00:00:00Z");
  for (auto bad : {"2025-02-29T00:00:00Z", "2025-13-01T00:00:00Z", "2025-01-01T24:00:00Z", "2025-01-01T00:00:00",
                   "2025-01-01", "2025-01-01T00:00:00+0200", "2025-01-01T00:00:00Zjunk", "2025-01-01T00:00:00."})
    CHECK_FALSE(parse_rfc3339(bad));
}

TEST_CASE("semver ranges", "[marketplace][index]") {
  struct Row {
    const char* version;
    const char* range;
    bool ok;
  };
  for (auto r : std::initializer_list<Row>{
           {"1.2.3", "*", true},          {"1.2.3", "", true},
           {"1.2.3", "1.2.3", true},      {"1.2.4", "=1.2.3", false},
           {"1.2.9", "1.2", true},        {"1.3.0", "1.2.x", false},
           {"1.9.0", "1", true},          {"2.0.0", "1.x", false},
           {"1.9.0", "^1.2.3", true},     {"2.0.0", "^1.2.3", false},
           {"1.2.2", "^1.2.3", false},    {"0.2.9", "^0.2.3", true},
           {"0.3.0", "^0.2.3", false},    {"0.0.3", "^0.0.3", true},
           {"0.0.4", "^0.0.3", false},    {"1.2.9", "~1.2.3", true},
           {"1.3.0", "~1.2.3", false},    {"1.9.0", "~1", true},
           {"1.5.0", ">=1.0.0 <2.0.0", true}, {"2.0.0", ">=1.0.0 <2.0.0", false},
           {"1.0.0", ">= 1.0.0", true},   {"1.0.0", ">1.0.0", false},
           {"1.1.0", ">1.0", true},       {"1.0.5", ">1.0", false},
           {"1.0.0", "<=1.0.0", true},    {"1.0.9", "<=1.0", true},
           {"3.1.0", "^1.0.0 || ^3.0.0", true}, {"2.1.0", "^1.0.0 || ^3.0.0", false},
           {"2.0.0-beta.1", "^1.0.0", false}, {"2.0.0-beta.1", "*", false},
           {"2.0.0-beta.2", ">=2.0.0-beta.1", true}, {"2.0.1-beta.2", ">=2.0.0-beta.1", false},
           {"1.0.0", "^^1", false},       {"not-a-version", "*", false},
       }) {
    INFO(r.version << " in '" << r.range << "'");
    CHECK(satisfies(r.version, r.range) == r.ok);
  }
  for (auto bad : {"^^1", "1.", "a.b.c", ">=", "1.2.3 ||", "01.2.3"}) {
    INFO(bad);
    CHECK_FALSE(valid_version_range(bad));
  }
}

TEST_CASE("platform and ABI matching", "[marketplace][index]") {
  Platform host{"linux", "x86_64", "gnu"};
  CHECK(platform_matches({}, host));
  CHECK(platform_matches({"linux", "amd64", ""}, host));
  CHECK(platform_matches({"any", "x86_64", "*"}, host));
  CHECK_FALSE(platform_matches({"linux", "aarch64", "gnu"}, host));
  CHECK_FALSE(platform_matches({"linux", "x86_64", "musl"}, host));
  CHECK(host_platform().os == "linux");
  CHECK(!host_platform().arch.empty());

  CHECK(abi_compatible({}, 1, 0));
  CHECK(abi_compatible({"1.0", "1.*"}, 1, 7));
  CHECK_FALSE(abi_compatible({"1.2", "1.*"}, 1, 1));
  CHECK_FALSE(abi_compatible({"1.0", "1.*"}, 2, 0));
  CHECK(abi_compatible({"1.0", "1.3"}, 1, 3));
  CHECK_FALSE(abi_compatible({"1.0", "1.3"}, 1, 4));
  CHECK_FALSE(valid_abi_range({"1", ""}));
  CHECK_FALSE(valid_abi_range({"1.*", ""}));

  std::vector<std::uint8_t> elf(64, 0);
  elf[0] = 0x7f, elf[1] = 'E', elf[2] = 'L', elf[3] = 'F', elf[5] = 1, elf[18] = 183;
  const std::string needed = "libc.so.6";
  elf.insert(elf.end(), needed.begin(), needed.end());
  elf.push_back(0);
  auto p = elf_platform(elf);
  CHECK(p.os == "linux");
  CHECK(p.arch == "aarch64");
  CHECK(p.libc == "gnu");
  CHECK(elf_platform(std::vector<std::uint8_t>(10, 0)).empty());
}

TEST_CASE("verify_index checks the signature before parsing and binds the version", "[marketplace][index]") {
  auto kp = generate_keypair();
  auto other = generate_keypair();
  const std::string text = doc(entry("hello", "1.0.0"));
  auto sha = sha256_hex(bytes(text));
  auto good = sign(kp.secret_key, bytes(text), index_binding("index", 3, sha)).to_file();

  auto v = verify_index(bytes(text), good, {kp.public_key}, "idx");
  CHECK(v.parsed.index.packages.size() == 1);
  CHECK(v.signer == kp.public_key.key_id_hex());
  CHECK(v.bound_name == "index");
  CHECK(index_binding("", 3, sha) == "keel-index name=index version=3 sha256=" + sha);

  auto refused = [&](const std::string& t, const std::string& sig, std::vector<PublicKey> keys) {
    try {
      verify_index(bytes(t), sig, keys, "idx");
    } catch (const IndexError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(contains(refused(text, good, {}), "no trusted keys"));
  CHECK(contains(refused(text, good, {other.public_key}), "not trusted"));
  CHECK(contains(refused(text, "garbage", {kp.public_key}), "unreadable"));
  auto tampered = text;
  tampered[tampered.find("hello")] = 'j';
  CHECK(contains(refused(tampered, good, {kp.public_key}), "index refused"));
  // Signed garbage never reaches the JSON parser as trusted data, but a signed non-index
  // is still caught by the parser after the signature.
  CHECK(contains(refused(text, sign(kp.secret_key, bytes(text), "just a comment").to_file(), {kp.public_key}),
                 "not a keel-index binding"));
  CHECK(contains(refused(text, sign(kp.secret_key, bytes(text), index_binding("index", 4, sha)).to_file(), {kp.public_key}),
                 "says index_version 3 but its signature is for version 4"));
  CHECK(contains(refused(text, sign(kp.secret_key, bytes(text), index_binding("index", 3, std::string(64, 'a'))).to_file(),
                         {kp.public_key}),
                 "modified after signing"));

  auto expired = doc(entry("hello", "1.0.0")).replace(doc("").find("2099"), 4, "2001");
  auto parsed = parse_index(expired, "idx");
  CHECK_THROWS_WITH(check_fresh(parsed.index, std::chrono::system_clock::now(), "idx"),
                    Catch::Contains("expired at 2001-01-01T00:00:00Z"));
  CHECK_NOTHROW(check_fresh(parse_index(text, "idx").index, std::chrono::system_clock::now(), "idx"));
}
