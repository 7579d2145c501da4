// keel view-image module: Codex's `view_image` tool.
//
//   view_image {"path": "<file>"}   (absolute, or relative to the request's cwd; "~/" is $HOME)
//
// Reads a local image, recognised by its magic bytes (PNG, JPEG, GIF, WebP; anything else is
// refused, whatever its name), at most `max_bytes` (20 MiB). The model reads
//   attached image <path>
// and the reply carries the item
//   {"type": "image_attachment", "path", "mime", "bytes", "data_url": "data:<mime>;base64,..."}
// The kernel takes the data_url out of the item (events only name the image) and appends a
// user message {"type":"input_image","image_url": data_url} to the history after the tool
// outputs, so the model sees the image with its next request. Nothing is published.
//
// Module configuration (optional): max_bytes (20971520).
#include <keel/sdk/tool.hpp>

#include <boost/json.hpp>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using keel::sdk::ToolContext;
using keel::sdk::ToolError;
using keel::sdk::ToolResult;

constexpr std::uint64_t kDefaultMaxBytes = 20ull * 1024 * 1024;

// The image type of `head` (the file's first bytes), or "" when it is none we accept.
std::string_view sniff_mime(std::string_view head) {
  auto starts = [&](std::string_view magic) { return head.substr(0, magic.size()) == magic; };
  if (starts(std::string_view("\x89PNG\r\n\x1a\n", 8))) return "image/png";
  if (starts("\xFF\xD8\xFF")) return "image/jpeg";
  if (starts("GIF87a") || starts("GIF89a")) return "image/gif";
  if (starts("RIFF") && head.size() >= 12 && head.substr(8, 4) == "WEBP") return "image/webp";
  return {};
}

std::string base64(std::string_view data) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    std::uint32_t v = (static_cast<unsigned char>(data[i]) << 16) | (static_cast<unsigned char>(data[i + 1]) << 8) |
                      static_cast<unsigned char>(data[i + 2]);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (std::size_t rest = data.size() - i; rest != 0) {
    std::uint32_t v = static_cast<unsigned char>(data[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(data[i + 1]) << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += rest == 2 ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::uint64_t max_bytes(const json::object& config) {
  const auto* v = config.if_contains("max_bytes");
  if (v && v->is_int64() && v->as_int64() > 0) return static_cast<std::uint64_t>(v->as_int64());
  if (v && v->is_uint64() && v->as_uint64() > 0) return v->as_uint64();
  return kDefaultMaxBytes;
}

std::string human_size(std::uint64_t bytes) {
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) == 0) return std::to_string(bytes / (1024 * 1024)) + " MiB";
  return std::to_string(bytes) + " bytes";
}

ToolResult failure(std::string message) {
  ToolResult r;
  r.success = false;
  r.output = keel::sdk::sanitize_utf8(message);
  return r;
}

ToolResult view_image(ToolContext& ctx) {
  const std::string raw = ctx.string_arg("path");
  if (raw.empty()) throw ToolError("argument 'path' must not be empty");
  fs::path path(raw);
  if (raw == "~" || raw.rfind("~/", 0) == 0)
    if (const char* home = std::getenv("HOME"); home && *home) path = fs::path(home) / raw.substr(raw.size() > 1 ? 2 : 1);
  if (path.is_relative()) {
    fs::path base = ctx.cwd;
    std::error_code ec;
    if (base.empty()) base = fs::current_path(ec);
    path = base / path;
  }
  path = path.lexically_normal();
  const std::string shown = path.string();

  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) return failure("view_image: unable to locate image at `" + shown + "`: no such file");
  if (fs::is_directory(status)) return failure("view_image: `" + shown + "` is a directory, not an image file");
  if (!fs::is_regular_file(status)) return failure("view_image: `" + shown + "` is not a regular file");
  const std::uint64_t limit = max_bytes(ctx.config);
  const std::uint64_t size = fs::file_size(path, ec);
  if (ec) return failure("view_image: cannot read `" + shown + "`: " + ec.message());
  if (size > limit)
    return failure("view_image: `" + shown + "` is " + std::to_string(size) + " bytes; images larger than " +
                   human_size(limit) + " are not attached");

  std::ifstream in(path, std::ios::binary);
  if (!in) return failure("view_image: cannot open `" + shown + "` for reading");
  std::string data;
  data.resize(static_cast<std::size_t>(size));
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<std::size_t>(in.gcount()));
  if (in.bad()) return failure("view_image: error while reading `" + shown + "`");
  // It may have grown since the size check; never attach more than the limit.
  if (in.peek() != std::char_traits<char>::eof())
    return failure("view_image: `" + shown + "` changed while it was read; try again");

  const std::string_view mime = sniff_mime(data);
  if (mime.empty())
    return failure("view_image: `" + shown +
                   "` is not a supported image (PNG, JPEG, GIF or WebP, recognised by content, not by name)");

  ToolResult r;
  r.output = "attached image " + keel::sdk::sanitize_utf8(shown);
  r.item = json::object{{"type", "image_attachment"},
                        {"path", keel::sdk::sanitize_utf8(shown)},
                        {"mime", mime},
                        {"bytes", data.size()},
                        {"data_url", "data:" + std::string(mime) + ";base64," + base64(data)}};
  return r;
}

constexpr const char* kViewImageSchema = R"({
  "type": "object",
  "properties": {
    "path": {"type": "string", "description": "Local filesystem path to an image file (PNG, JPEG, GIF or WebP)."}
  },
  "required": ["path"],
  "additionalProperties": false
})";

}  // namespace

KEEL_TOOL_MODULE("view-image", "0.1.0", "Attaches a local image to the conversation (view_image)",
                 KEEL_TOOL("view_image",
                           "Attach a local image (by filesystem path) to the conversation context for this turn.",
                           kViewImageSchema, KEEL_FLAG_PARALLEL_SAFE, view_image))
