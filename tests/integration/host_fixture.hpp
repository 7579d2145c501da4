// A ModuleHost over a temporary KEEL_HOME, with the host's log captured, and a way to call
// a tool over the bus the way the turn loop does.
#pragma once

#include "support.hpp"

#include <keel/kernel/bus.hpp>
#include <keel/kernel/module_host.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <mutex>

namespace keel::itest {

struct LoadedHome {
  explicit LoadedHome(const fs::path& home, bool allow_legacy = false) {
    ModuleHostOptions o;
    o.keel_home = home;
    o.allow_legacy_signatures = allow_legacy;
    o.log = [this](keel_log_level, std::string_view m) {
      std::lock_guard lock(mu);
      log.emplace_back(m);
    };
    host = std::make_unique<ModuleHost>(bus, std::move(o));
    host->load_all();
  }
  ~LoadedHome() { host.reset(); }  // stop modules while the bus is alive

  // A copy: modules() may return a snapshot.
  ModuleInfo info(const std::string& name) const {
    std::optional<ModuleInfo> found;
    for (auto& m : host->modules())
      if (m.name == name) {
        INFO("module " << name << " is listed twice");
        REQUIRE(!found);
        found = m;
      }
    INFO("module " << name << " is not listed at all");
    REQUIRE(found);
    return *found;
  }

  // The log lines that mention `name` as a module.
  std::vector<std::string> log_about(const std::string& name) {
    std::lock_guard lock(mu);
    std::vector<std::string> out;
    for (auto& l : log)
      if (l.find("module " + name + " ") != std::string::npos) out.push_back(l);
    return out;
  }

  std::string all_log() {
    std::lock_guard lock(mu);
    std::string s;
    for (auto& l : log) s += l + "\n";
    return s;
  }

  std::mutex mu;
  std::vector<std::string> log;
  Bus bus;
  std::unique_ptr<ModuleHost> host;
};

struct ToolReply {
  int status = -1;
  boost::json::object body;
};

// Calls tool `name` over the bus ("tool.<name>.call") with JSON `arguments`.
inline ToolReply call_tool(Bus& bus, const std::string& name, const std::string& arguments, const std::string& cwd = "/") {
  boost::json::object payload{{"call_id", "call_test"}, {"name", name}, {"arguments", arguments}, {"cwd", cwd}};
  auto promise = std::make_shared<std::promise<ToolReply>>();
  auto future = promise->get_future();
  bus.request("tool." + name + ".call", boost::json::serialize(payload), nullptr,
              [promise](int status, std::string_view body) {
                ToolReply r;
                r.status = status;
                boost::system::error_code ec;
                auto v = boost::json::parse(body, ec);
                if (!ec && v.is_object()) r.body = v.as_object();
                promise->set_value(std::move(r));
              });
  REQUIRE(future.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  return future.get();
}

// A refusal is one line that names the module and gives the reason.
inline void check_refusal_line(LoadedHome& h, const std::string& name, const std::string& reason_part) {
  auto m = h.info(name);
  INFO("module " << name << ": reason '" << m.reason << "'\nhost log:\n" << h.all_log());
  CHECK(m.state != ModuleState::loaded);
  CHECK(m.reason.find(reason_part) != std::string::npos);
  CHECK(m.reason.find('\n') == std::string::npos);
  CHECK_FALSE(h.bus.has_server("tool." + name));  // the probes name their tool after themselves
  auto lines = h.log_about(name);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find(reason_part) != std::string::npos);
  CHECK(lines[0].find('\n') == std::string::npos);
}

}  // namespace keel::itest
