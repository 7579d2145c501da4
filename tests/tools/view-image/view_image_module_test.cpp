// The view-image module, loaded from its built file and driven through the C ABI.
#include "abi_test_host.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace json = boost::json;
namespace fs = std::filesystem;
using keel::test::AbiTestHost;
using keel::test::TempDir;

namespace {

// A complete, valid 1x1 RGBA PNG (signature, IHDR, IDAT, IEND with correct CRCs).
const unsigned char kPng[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00,
    0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00,
    0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff,
    0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
// Its base64, computed independently (Python's base64 module).
constexpr const char* kPngBase64 =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==";

std::string request(const json::object& args, const fs::path& cwd) {
  return json::serialize(json::object{{"call_id", "call_1"},
                                      {"name", "view_image"},
                                      {"arguments", json::serialize(args)},
                                      {"cwd", cwd.string()},
                                      {"sandbox", json::object{{"mode", "read-only"}}},
                                      {"session_id", "s1"},
                                      {"turn_id", "t1"}});
}

json::object view(AbiTestHost& host, const std::string& path, const fs::path& cwd) {
  auto r = host.call("view_image", "call", request(json::object{{"path", path}}, cwd));
  REQUIRE(r.reply_count == 1);
  REQUIRE(r.status == KEEL_OK);
  return json::parse(r.payload).as_object();
}

std::string output_of(const json::object& reply) { return std::string(reply.at("output").as_string()); }

}  // namespace

TEST_CASE("view_image is one parallel-safe tool", "[view_image]") {
  AbiTestHost host(KEEL_VIEW_IMAGE_MODULE_PATH);
  REQUIRE(host.module().capability_count == 1);
  const auto* cap = host.capability("view_image");
  REQUIRE(cap);
  CHECK(cap->kind == KEEL_CAP_TOOL);
  CHECK((cap->flags & KEEL_FLAG_PARALLEL_SAFE) != 0);
  CHECK((cap->flags & KEEL_FLAG_MUTATING) == 0);
  auto schema = json::parse(cap->schema_json).as_object();
  CHECK(schema.at("required").as_array().at(0).as_string() == "path");
}

TEST_CASE("a PNG is attached as a data URL item", "[view_image]") {
  TempDir dir{"keel-view-image-test"};
  auto file = dir.write("pixel.png", std::string_view(reinterpret_cast<const char*>(kPng), sizeof kPng));
  AbiTestHost host(KEEL_VIEW_IMAGE_MODULE_PATH);
  host.start();

  SECTION("absolute path") {
    auto reply = view(host, file.string(), "/");
    CHECK(reply.at("success").as_bool());
    CHECK(output_of(reply) == "attached image " + file.string());
    const auto& item = reply.at("item").as_object();
    CHECK(item.at("type").as_string() == "image_attachment");
    CHECK(item.at("path").as_string() == file.string());
    CHECK(item.at("mime").as_string() == "image/png");
    CHECK(item.at("bytes").to_number<std::int64_t>() == static_cast<std::int64_t>(sizeof kPng));
    CHECK(item.at("data_url").as_string() == std::string("data:image/png;base64,") + kPngBase64);
  }
  SECTION("relative to the request's cwd") {
    fs::create_directories(dir.path() / "sub");
    auto reply = view(host, "../pixel.png", dir.path() / "sub");
    CHECK(reply.at("success").as_bool());
    CHECK(reply.at("item").as_object().at("path").as_string() == file.string());
  }
  // The module publishes nothing: the kernel attaches the image from the reply's item.
  CHECK(host.published().empty());
}

TEST_CASE("JPEG, GIF and WebP are recognised by their magic bytes, not their names", "[view_image]") {
  TempDir dir{"keel-view-image-test"};
  AbiTestHost host(KEEL_VIEW_IMAGE_MODULE_PATH);
  host.start();
  struct Case {
    std::string name, bytes, mime, b64;
  };
  const Case cases[] = {
      {"photo.png", std::string("\xff\xd8\xff\xe0\x00\x10JFIF\x00", 11), "image/jpeg", "/9j/4AAQSkZJRgA="},
      {"anim", std::string("GIF89a\x01\x00\x01\x00", 10), "image/gif", "R0lGODlhAQABAA=="},
      {"pic.bin", std::string("RIFF\x04\x00\x00\x00WEBPVP8 ", 16), "image/webp", "UklGRgQAAABXRUJQVlA4IA=="},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    auto reply = view(host, dir.write(c.name, c.bytes).string(), dir.path());
    REQUIRE(reply.at("success").as_bool());
    const auto& item = reply.at("item").as_object();
    CHECK(item.at("mime").as_string() == c.mime);
    CHECK(item.at("data_url").as_string() == "data:" + c.mime + ";base64," + c.b64);
  }
}

TEST_CASE("anything that is not a supported image is refused clearly", "[view_image][errors]") {
  TempDir dir{"keel-view-image-test"};
  AbiTestHost host(KEEL_VIEW_IMAGE_MODULE_PATH);
  host.start();
  auto refused = [&](const std::string& path, const std::string& expect) {
    INFO(path);
    auto reply = view(host, path, dir.path());
    CHECK_FALSE(reply.at("success").as_bool());
    CHECK_FALSE(reply.contains("item"));
    CHECK_THAT(output_of(reply), Catch::Contains(expect));
  };

  refused(dir.write("notes.png", "just some text, named like an image\n").string(), "not a supported image");
  refused(dir.write("empty.png", "").string(), "not a supported image");
  refused(dir.write("riff.webp", std::string("RIFF\x04\x00\x00\x00WAVEfmt ", 16)).string(), "not a supported image");
  refused((dir.path() / "missing.png").string(), "unable to locate image");
  refused(dir.path().string(), "is a directory");

  // Larger than 20 MiB (a sparse file with a PNG signature): refused without being read.
  auto big = dir.write("huge.png", std::string_view(reinterpret_cast<const char*>(kPng), sizeof kPng));
  fs::resize_file(big, 20ull * 1024 * 1024 + 1);
  refused(big.string(), "20 MiB");

  auto bad = host.call("view_image", "call", request(json::object{{"file", "x.png"}}, dir.path()));
  auto reply = json::parse(bad.payload).as_object();
  CHECK_FALSE(reply.at("success").as_bool());
  CHECK_THAT(output_of(reply), Catch::Contains("path"));
}

TEST_CASE("exactly 20 MiB is accepted; max_bytes configures the limit", "[view_image][config]") {
  TempDir dir{"keel-view-image-test"};
  auto file = dir.write("edge.png", std::string_view(reinterpret_cast<const char*>(kPng), sizeof kPng));
  {
    AbiTestHost host(KEEL_VIEW_IMAGE_MODULE_PATH);
    host.start();
    fs::resize_file(file, 20ull * 1024 * 1024);
    auto reply = view(host, file.string(), dir.path());
    CHECK(reply.at("success").as_bool());
    CHECK(reply.at("item").as_object().at("bytes").to_number<std::int64_t>() == 20ll * 1024 * 1024);
  }
  AbiTestHost host(KEEL_VIEW_IMAGE_MODULE_PATH);
  host.start(R"({"max_bytes": 64})");
  fs::resize_file(file, sizeof kPng);
  auto reply = view(host, file.string(), dir.path());
  CHECK_FALSE(reply.at("success").as_bool());
  CHECK_THAT(output_of(reply), Catch::Contains("64 bytes"));
}
