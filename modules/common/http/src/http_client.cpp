#include <keel/common/http_client.hpp>

#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/String.h>
#include <Poco/URI.h>

#include <pthread.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <istream>
#include <memory>
#include <mutex>
#include <thread>

namespace keel::common {

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() &&
        std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
        }))
      return v;
  }
  return std::nullopt;
}

std::string build_url(std::string_view url, const HttpHeaders& query) {
  try {
    Poco::URI uri{std::string(url)};
    if (uri.getScheme() != "http" && uri.getScheme() != "https")
      throw HttpError(HttpError::Kind::invalid_url, HttpError::Phase::connect,
                      "unsupported URL (want http:// or https://): " + std::string(url));
    if (uri.getHost().empty())
      throw HttpError(HttpError::Kind::invalid_url, HttpError::Phase::connect, "URL has no host: " + std::string(url));
    for (const auto& [k, v] : query) uri.addQueryParameter(k, v);
    return uri.toString();
  } catch (const Poco::Exception& e) {
    throw HttpError(HttpError::Kind::invalid_url, HttpError::Phase::connect,
                    "invalid URL '" + std::string(url) + "': " + e.displayText());
  }
}

namespace {

using Kind = HttpError::Kind;
using Phase = HttpError::Phase;

Poco::Net::Context::Ptr client_context() {
  static Poco::Net::Context::Ptr context = [] {
    Poco::Net::initializeSSL();
    // loadDefaultCAs uses OpenSSL's default verify paths, which honour SSL_CERT_FILE and
    // SSL_CERT_DIR.
    return Poco::Net::Context::Ptr(new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "",
                                                          Poco::Net::Context::VERIFY_RELAXED, 9, true));
  }();
  return context;
}

std::string env(const char* upper, const char* lower) {
  if (const char* v = std::getenv(upper); v && *v) return v;
  if (const char* v = std::getenv(lower); v && *v) return v;
  return {};
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

bool no_proxy_for(const std::string& host) {
  std::string list = env("NO_PROXY", "no_proxy");
  std::size_t pos = 0;
  while (pos <= list.size()) {
    std::size_t comma = list.find(',', pos);
    if (comma == std::string::npos) comma = list.size();
    std::string entry = list.substr(pos, comma - pos);
    pos = comma + 1;
    entry.erase(0, entry.find_first_not_of(" \t"));
    entry.erase(entry.find_last_not_of(" \t") + 1);
    if (entry.empty()) continue;
    if (entry == "*") return true;
    if (entry.front() == '.') entry.erase(0, 1);
    if (host == entry) return true;
    if (host.size() > entry.size() && host.compare(host.size() - entry.size(), entry.size(), entry) == 0 &&
        host[host.size() - entry.size() - 1] == '.')
      return true;
  }
  return false;
}

void apply_proxy(Poco::Net::HTTPClientSession& session, const Poco::URI& uri) {
  if (is_loopback(uri.getHost()) || no_proxy_for(uri.getHost())) return;
  std::string proxy = uri.getScheme() == "https" ? env("HTTPS_PROXY", "https_proxy") : env("HTTP_PROXY", "http_proxy");
  if (proxy.empty()) return;
  if (proxy.find("://") == std::string::npos) proxy = "http://" + proxy;
  try {
    Poco::URI p(proxy);
    session.setProxy(p.getHost(), p.getPort());
    if (auto info = p.getUserInfo(); !info.empty()) {
      auto colon = info.find(':');
      std::string user, pass;
      Poco::URI::decode(info.substr(0, colon), user);
      if (colon != std::string::npos) Poco::URI::decode(info.substr(colon + 1), pass);
      session.setProxyCredentials(user, pass);
    }
  } catch (const Poco::Exception&) {
    // An unparsable proxy setting is ignored rather than breaking every request.
  }
}

// Blocks SIGPIPE on this thread while a request is in flight (a write to a closed socket
// must be an error, not the death of the process) and swallows one that was raised.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGPIPE);
    blocked_ = pthread_sigmask(SIG_BLOCK, &set_, &old_) == 0 && !sigismember(&old_, SIGPIPE);
  }
  ~SigpipeGuard() {
    if (!blocked_) return;
    sigset_t pending;
    sigemptyset(&pending);
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
      timespec zero{0, 0};
      sigtimedwait(&set_, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t set_{}, old_{};
  bool blocked_ = false;
};

// Polls cancelled() from its own thread and shuts the socket down the moment it turns true,
// so a read blocked in the kernel returns at once.
class CancelWatch {
 public:
  explicit CancelWatch(const std::function<bool()>& cancelled) : cancelled_(cancelled) {
    if (cancelled_) thread_ = std::thread([this] { run(); });
  }
  ~CancelWatch() { stop(); }
  CancelWatch(const CancelWatch&) = delete;
  CancelWatch& operator=(const CancelWatch&) = delete;

  void arm(int fd) {
    std::lock_guard lock(mu_);
    fd_ = fd;
    if (fired_.load() && fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
  }
  void stop() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
      fd_ = -1;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  bool fired() const { return fired_.load(); }

 private:
  void run() {
    std::unique_lock lock(mu_);
    while (!done_) {
      cv_.wait_for(lock, std::chrono::milliseconds(20));
      if (done_) break;
      lock.unlock();
      bool cancel = false;
      try {
        cancel = cancelled_();
      } catch (...) {
      }
      lock.lock();
      if (cancel && !done_) {
        fired_ = true;
        if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
        break;
      }
    }
  }

  const std::function<bool()>& cancelled_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  int fd_ = -1;
  bool done_ = false;
  std::atomic<bool> fired_{false};
};

std::string target_of(const Poco::URI& uri) {
  return uri.getScheme() + "://" + uri.getAuthority();
}

HttpResponse perform(const HttpRequest& req, const ChunkFn* on_chunk, std::size_t max_body) {
  if (req.cancelled && req.cancelled()) throw HttpError(Kind::cancelled, Phase::connect, "request cancelled");
  Poco::URI uri(build_url(req.url, req.query));
  const std::string target = target_of(uri);

  SigpipeGuard sigpipe;
  std::unique_ptr<Poco::Net::HTTPClientSession> session;
  if (uri.getScheme() == "https")
    session = std::make_unique<Poco::Net::HTTPSClientSession>(uri.getHost(), uri.getPort(), client_context());
  else
    session = std::make_unique<Poco::Net::HTTPClientSession>(uri.getHost(), uri.getPort());
  apply_proxy(*session, uri);
  const Poco::Timespan connect_timeout(std::chrono::duration_cast<std::chrono::microseconds>(req.connect_timeout).count());
  const Poco::Timespan idle_timeout(std::chrono::duration_cast<std::chrono::microseconds>(req.idle_timeout).count());
  session->setTimeout(connect_timeout, idle_timeout, idle_timeout);
  session->setKeepAlive(false);

  CancelWatch watch(req.cancelled);  // declared after the session: stopped before it closes
  std::exception_ptr callback_error;
  bool stopped_early = false;
  Phase phase = Phase::connect;
  auto fail = [&](Kind kind, const std::string& message) {
    if (watch.fired()) return HttpError(Kind::cancelled, phase, "request cancelled");
    return HttpError(kind, phase, message);
  };

  HttpResponse out;
  try {
    std::string path = uri.getPathEtc();
    if (path.empty() || path.front() != '/') path.insert(0, "/");
    Poco::Net::HTTPRequest hreq(req.method, path, Poco::Net::HTTPMessage::HTTP_1_1);
    hreq.setKeepAlive(false);
    bool has_agent = false;
    for (const auto& [k, v] : req.headers) {
      hreq.add(k, v);
      if (Poco::icompare(k, "User-Agent") == 0) has_agent = true;
    }
    if (!has_agent) hreq.set("User-Agent", "keel/0.1");
    if (!req.body.empty() || req.method == "POST" || req.method == "PUT") {
      hreq.setContentType(req.content_type);
      hreq.setContentLength(static_cast<std::streamsize>(req.body.size()));
    }

    std::ostream& os = session->sendRequest(hreq);  // connects
    phase = Phase::send;
    watch.arm(session->socket().impl()->sockfd());
    os.write(req.body.data(), static_cast<std::streamsize>(req.body.size()));
    os.flush();
    if (!os) {
      if (const Poco::Exception* e = session->networkException()) e->rethrow();
      throw fail(Kind::io, "failed sending the request to " + target);
    }

    phase = Phase::headers;
    Poco::Net::HTTPResponse hres;
    std::istream& is = session->receiveResponse(hres);
    // Poco keeps the status in its HTTPStatus enum even when it is not one of its values
    // (529...); GCC (no -fstrict-enums) reads it back as the int it is.
    out.status = static_cast<int>(hres.getStatus());
    out.reason = hres.getReason();
    for (auto it = hres.begin(); it != hres.end(); ++it) out.headers.emplace_back(it->first, it->second);

    phase = Phase::body;
    const bool streaming = on_chunk && out.ok();
    const std::size_t limit = on_chunk ? req.max_error_body : max_body;
    std::streambuf* sb = is.rdbuf();
    char buf[16384];
    for (;;) {
      // sgetc() performs at most one read from the connection; exceptions (timeouts,
      // resets) propagate straight out of the stream buffer.
      if (sb->sgetc() == std::char_traits<char>::eof()) break;
      std::streamsize avail = std::max<std::streamsize>(sb->in_avail(), 1);
      std::streamsize n = sb->sgetn(buf, std::min<std::streamsize>(avail, sizeof buf));
      if (n <= 0) break;
      if (watch.fired()) throw fail(Kind::cancelled, "request cancelled");
      if (streaming) {
        bool more = false;
        try {
          more = (*on_chunk)(std::string_view(buf, static_cast<std::size_t>(n)));
        } catch (...) {
          callback_error = std::current_exception();
        }
        if (callback_error || !more) {
          stopped_early = true;
          break;
        }
      } else {
        if (out.body.size() + static_cast<std::size_t>(n) > limit) {
          if (on_chunk) {  // an error body: keep what fits
            out.body.append(buf, limit - out.body.size());
            break;
          }
          throw HttpError(Kind::too_large, phase, "response from " + target + " is larger than " +
                                                      std::to_string(limit) + " bytes");
        }
        out.body.append(buf, static_cast<std::size_t>(n));
      }
    }
  } catch (const HttpError&) {
    throw;
  } catch (const Poco::TimeoutException&) {
    switch (phase) {
      case Phase::connect:
        throw fail(Kind::timeout, "connecting to " + target + " timed out after " +
                                      std::to_string(req.connect_timeout.count()) + " ms");
      case Phase::send:
        throw fail(Kind::timeout, "sending the request to " + target + " timed out");
      case Phase::headers:
        throw fail(Kind::timeout, "no response from " + target + " within " +
                                      std::to_string(req.idle_timeout.count()) + " ms");
      case Phase::body:
        throw fail(Kind::timeout, "the stream from " + target + " was idle for " +
                                      std::to_string(req.idle_timeout.count()) + " ms");
    }
  } catch (const Poco::Exception& e) {
    switch (phase) {
      case Phase::connect:
        throw fail(Kind::connect, "could not connect to " + target + ": " + e.displayText());
      case Phase::send:
        throw fail(Kind::io, "failed sending the request to " + target + ": " + e.displayText());
      case Phase::headers:
        throw fail(Kind::io, "failed reading the response from " + target + ": " + e.displayText());
      case Phase::body:
        throw fail(Kind::io, "the connection to " + target + " broke mid-response: " + e.displayText());
    }
  } catch (const std::ios_base::failure& e) {
    throw fail(Kind::io, "I/O error talking to " + target + ": " + e.what());
  }
  watch.stop();
  if (callback_error) std::rethrow_exception(callback_error);
  // A shut-down socket reads as end of stream: that was the cancellation, not the server.
  if (watch.fired() && !stopped_early) throw HttpError(Kind::cancelled, phase, "request cancelled");
  return out;
}

}  // namespace

HttpResponse http_stream(const HttpRequest& request, const ChunkFn& on_chunk) {
  return perform(request, &on_chunk, 0);
}

HttpResponse http_fetch(const HttpRequest& request, std::size_t max_body) {
  return perform(request, nullptr, max_body);
}

}  // namespace keel::common
