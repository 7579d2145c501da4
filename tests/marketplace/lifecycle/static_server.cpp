#include "static_server.hpp"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <iterator>
#include <mutex>
#include <thread>

namespace keel::test {
namespace fs = std::filesystem;

struct StaticServer::Impl {
  StaticServer* self;
  fs::path root;
  std::mutex mu;
  std::condition_variable cv;
  std::string stall_suffix;
  std::uint64_t stall_bytes = 0;
  bool released = false, stopping = false;
  std::unique_ptr<Poco::Net::HTTPServer> server;
  std::uint16_t port = 0;
};

namespace {

class Handler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit Handler(StaticServer::Impl& impl) : impl_(impl) {}
  void handleRequest(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& res) override {
    ++impl_.self->requests;
    std::string path = req.getURI();
    if (auto q = path.find('?'); q != std::string::npos) path.resize(q);
    std::optional<std::string> body;
    if (impl_.self->override_body) body = impl_.self->override_body(path);
    if (!body) {
      fs::path file = impl_.root / path.substr(1);
      if (path.find("..") != std::string::npos || !fs::is_regular_file(file)) {
        res.setStatus(Poco::Net::HTTPResponse::HTTP_NOT_FOUND);
        res.send() << "not found";
        return;
      }
      std::ifstream in(file, std::ios::binary);
      body = std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    res.setContentType("application/octet-stream");
    res.setContentLength(static_cast<std::streamsize>(body->size()));
    std::ostream& out = res.send();
    std::uint64_t stall = 0;
    bool stalling = false;
    {
      std::lock_guard lock(impl_.mu);
      if (!impl_.stall_suffix.empty() && path.ends_with(impl_.stall_suffix)) {
        stalling = true;
        stall = std::min<std::uint64_t>(impl_.stall_bytes, body->size());
      }
    }
    if (!stalling) {
      out.write(body->data(), static_cast<std::streamsize>(body->size()));
      return;
    }
    out.write(body->data(), static_cast<std::streamsize>(stall));
    out.flush();
    {
      std::unique_lock lock(impl_.mu);
      impl_.cv.wait_for(lock, std::chrono::seconds(30), [&] { return impl_.released || impl_.stopping; });
      if (impl_.stopping) return;
    }
    out.write(body->data() + stall, static_cast<std::streamsize>(body->size() - stall));
  }

 private:
  StaticServer::Impl& impl_;
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit Factory(StaticServer::Impl& impl) : impl_(impl) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new Handler(impl_);
  }

 private:
  StaticServer::Impl& impl_;
};

}  // namespace

StaticServer::StaticServer(fs::path root) : impl_(std::make_unique<Impl>()) {
  impl_->self = this;
  impl_->root = std::move(root);
  Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
  impl_->port = socket.address().port();
  auto* params = new Poco::Net::HTTPServerParams;
  params->setMaxThreads(8);
  params->setKeepAlive(false);
  impl_->server = std::make_unique<Poco::Net::HTTPServer>(new Factory(*impl_), socket, params);
  impl_->server->start();
}

StaticServer::~StaticServer() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->server->stopAll(true);
}

std::uint16_t StaticServer::port() const { return impl_->port; }
std::string StaticServer::url() const { return "http://127.0.0.1:" + std::to_string(impl_->port) + "/"; }

void StaticServer::stall(std::string suffix, std::uint64_t bytes) {
  std::lock_guard lock(impl_->mu);
  impl_->stall_suffix = std::move(suffix);
  impl_->stall_bytes = bytes;
  impl_->released = false;
}

void StaticServer::release() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->released = true;
    impl_->stall_suffix.clear();
  }
  impl_->cv.notify_all();
}

}  // namespace keel::test
