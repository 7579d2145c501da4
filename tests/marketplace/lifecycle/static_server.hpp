// A static file server on 127.0.0.1 (Poco HTTPServer) for marketplace tests, with faults:
// stall a response after N bytes (until released), or serve other bytes for a path.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace keel::test {

class StaticServer {
 public:
  explicit StaticServer(std::filesystem::path root);
  ~StaticServer();
  StaticServer(const StaticServer&) = delete;
  StaticServer& operator=(const StaticServer&) = delete;

  std::uint16_t port() const;
  std::string url() const;  // "http://127.0.0.1:PORT/"

  // Responses for paths ending in `suffix` send `bytes` bytes, then wait until release().
  void stall(std::string suffix, std::uint64_t bytes);
  void release();
  // Replaces the body served for `path` ("/x.keelpkg"); nullopt = serve the file.
  std::function<std::optional<std::string>(const std::string& path)> override_body;
  std::atomic<int> requests{0};

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::test
