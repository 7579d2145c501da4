#include <keel/common/http_client.hpp>
#include <keel/market/source.hpp>

#include <openssl/evp.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

namespace keel::market {
namespace fs = std::filesystem;

namespace {

bool starts_with_icase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  return true;
}

// Collects the bytes of one fetch, enforcing the cap while they arrive.
class Sink {
 public:
  Sink(const std::string& what, const FetchOptions& o, int fd) : what_(what), o_(o), fd_(fd) {
    if (o_.sha256) {
      // OpenSSL's SHA-256 (SHA extensions where the CPU has them), hashed as the bytes arrive.
      md_ = EVP_MD_CTX_new();
      if (!md_ || EVP_DigestInit_ex(md_, EVP_sha256(), nullptr) != 1) throw FetchError("cannot initialise SHA-256");
    }
  }
  ~Sink() { EVP_MD_CTX_free(md_); }
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  void write(const char* data, std::size_t n) {
    if (done_ + n > o_.max_bytes)
      throw FetchError(what_ + " is larger than " + (o_.exact ? "the " : "") + std::to_string(o_.max_bytes) +
                       (o_.exact ? " bytes the index declares" : " bytes allowed") + "; refused");
    if (md_) EVP_DigestUpdate(md_, data, n);
    if (fd_ >= 0) {
      while (n > 0) {
        ssize_t w = ::write(fd_, data, n);
        if (w < 0) {
          if (errno == EINTR) continue;
          throw FetchError("cannot write " + what_ + ": " + std::strerror(errno));
        }
        data += w;
        n -= static_cast<std::size_t>(w);
        done_ += static_cast<std::uint64_t>(w);
      }
    } else {
      bytes_.insert(bytes_.end(), reinterpret_cast<const std::uint8_t*>(data),
                    reinterpret_cast<const std::uint8_t*>(data) + n);
      done_ += n;
    }
    if (o_.progress) o_.progress(done_, o_.expected ? o_.expected : (o_.exact ? o_.max_bytes : 0));
    if (o_.after_chunk) o_.after_chunk(done_);
  }

  void finish() {
    if (o_.exact && done_ != o_.max_bytes)
      throw FetchError(what_ + " is " + std::to_string(done_) + " bytes, but the index declares " +
                       std::to_string(o_.max_bytes) + " (truncated download?); refused");
    if (md_) {
      unsigned char digest[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      EVP_DigestFinal_ex(md_, digest, &len);
      static constexpr char hex[] = "0123456789abcdef";
      o_.sha256->clear();
      for (unsigned i = 0; i < len; ++i) {
        o_.sha256->push_back(hex[digest[i] >> 4]);
        o_.sha256->push_back(hex[digest[i] & 15]);
      }
    }
  }

  std::vector<std::uint8_t> take() { return std::move(bytes_); }

 private:
  std::string what_;
  const FetchOptions& o_;
  int fd_;
  std::uint64_t done_ = 0;
  std::vector<std::uint8_t> bytes_;
  EVP_MD_CTX* md_ = nullptr;
};

void fetch_http(const std::string& url, Sink& sink) {
  common::HttpRequest req;
  req.method = "GET";
  req.url = url;
  req.connect_timeout = std::chrono::milliseconds(15000);
  req.idle_timeout = std::chrono::milliseconds(60000);
  req.max_error_body = 4096;
  common::HttpResponse r;
  try {
    r = common::http_stream(req, [&](std::string_view chunk) {
      sink.write(chunk.data(), chunk.size());
      return true;
    });
  } catch (const common::HttpError& e) {
    throw FetchError(std::string("cannot fetch ") + url + ": " + e.what());
  }
  if (!r.ok())
    throw FetchError("cannot fetch " + url + ": HTTP " + std::to_string(r.status) + " " + r.reason);
}

void fetch_local(const fs::path& path, Sink& sink) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FetchError("cannot read " + path.string() + ": " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) throw FetchError(path.string() + " is not a regular file");
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw FetchError("cannot read " + path.string() + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    sink.write(buf, static_cast<std::size_t>(n));
  }
}

class AnySource final : public Source {
 public:
  AnySource(std::string location, bool url) : location_(std::move(location)), url_(url) {}

  std::string location() const override { return location_; }

  std::vector<std::uint8_t> fetch(const std::string& ref, const FetchOptions& options) override {
    Sink sink(display(ref), options, -1);
    run(ref, sink);
    sink.finish();
    return sink.take();
  }

  void fetch_to_file(const std::string& ref, const fs::path& out, const FetchOptions& options) override {
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw FetchError("cannot create " + out.string() + ": " + std::strerror(errno));
    try {
      Sink sink(display(ref), options, fd);
      run(ref, sink);
      sink.finish();
      if (options.sync && ::fsync(fd) != 0) throw FetchError("cannot write " + out.string() + ": " + std::strerror(errno));
    } catch (...) {
      ::close(fd);
      throw;
    }
    if (::close(fd) != 0) throw FetchError("cannot write " + out.string() + ": " + std::strerror(errno));
  }

 private:
  static std::string display(const std::string& ref) { return ref; }

  void run(const std::string& ref, Sink& sink) const {
    if (Source::is_url(ref)) return fetch_http(ref, sink);
    if (ref.empty() || ref.front() == '/' || (ref + "/").find("../") == 0 || ref.find("/../") != std::string::npos ||
        ref.ends_with("/.."))
      throw FetchError("refusing to fetch '" + ref + "': not a plain path below the index");
    if (url_) return fetch_http(location_ + ref, sink);
    fetch_local(fs::path(location_) / ref, sink);
  }

  std::string location_;
  bool url_;
};

}  // namespace

bool Source::is_url(const std::string& location) {
  return starts_with_icase(location, "http://") || starts_with_icase(location, "https://");
}

std::unique_ptr<Source> Source::open(const std::string& location) {
  if (location.empty()) throw FetchError("empty marketplace location");
  if (is_url(location)) {
    std::string url = location;
    if (auto q = url.find_first_of("?#"); q != std::string::npos)
      throw FetchError("a marketplace URL names a folder; drop the query or fragment: " + location);
    if (url.ends_with("/index.json")) url.resize(url.size() - std::string_view("index.json").size());
    if (!url.ends_with("/")) url += "/";
    try {
      common::build_url(url, {});
    } catch (const std::exception& e) {
      throw FetchError(e.what());
    }
    return std::make_unique<AnySource>(url, true);
  }
  std::string dir = location;
  if (dir.starts_with("file://")) dir = dir.substr(7);
  std::error_code ec;
  fs::path p = fs::absolute(dir, ec);
  if (ec) throw FetchError("bad marketplace location '" + location + "': " + ec.message());
  p = p.lexically_normal();
  if (p.filename() == "index.json" || fs::is_regular_file(p, ec)) p = p.parent_path();
  if (p.has_filename() == false && p != p.root_path()) p = p.parent_path();  // drop a trailing '/'
  if (!fs::is_directory(p, ec))
    throw FetchError("marketplace location '" + location + "' is neither a directory nor an http(s) URL");
  return std::make_unique<AnySource>(p.string(), false);
}

}  // namespace keel::market
