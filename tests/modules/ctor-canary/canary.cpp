// ctor-canary: a tool module whose library leaves a mark the moment it is mapped. Its
// load-time constructor creates "$KEEL_TEST_CANARY_DIR/ctor-canary.ran", so a test can tell
// whether the host ever mapped (let alone ran) a library whose signature does not verify.
#include <keel/sdk/tool.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

__attribute__((constructor)) static void keel_test_canary_sings() {
  const char* dir = std::getenv("KEEL_TEST_CANARY_DIR");
  if (!dir || !*dir) return;
  char path[4096];
  std::size_t n = std::strlen(dir);
  static const char name[] = "/ctor-canary.ran";
  if (n + sizeof name > sizeof path) return;
  std::memcpy(path, dir, n);
  std::memcpy(path + n, name, sizeof name);
  int fd = ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd >= 0) {
    (void)::write(fd, "x", 1);
    ::close(fd);
  }
}

namespace {
keel::sdk::ToolResult canary(keel::sdk::ToolContext&) {
  keel::sdk::ToolResult r;
  r.output = "tweet";
  return r;
}
}  // namespace

KEEL_TOOL_MODULE("ctor-canary", "1.0.0", "Test module that marks a file when it is mapped",
                 KEEL_TOOL("canary", "Says tweet.", R"({"type":"object","properties":{}})", KEEL_FLAG_PARALLEL_SAFE, canary))
