#include "rollout.hpp"

#include <keel/abi.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <optional>
#include <set>
#include <tuple>
#include <vector>

namespace keel::memory {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPrefix = "rollout-";
constexpr std::size_t kTimeLen = 19;  // YYYY-MM-DDThh-mm-ss
constexpr std::string_view kSuffix = ".jsonl";
constexpr std::size_t kHeadBytes = 256 * 1024;  // list reads at most this much of each file
constexpr std::size_t kFirstPromptMax = 1000;

std::string errno_text(int e) { return std::strerror(e); }

std::string str(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string{};
}

// "2025-01-02T03:04:05.123Z"
std::string iso_utc(std::chrono::system_clock::time_point tp) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

std::tm local_tm(std::chrono::system_clock::time_point tp) {
  std::time_t secs = std::chrono::system_clock::to_time_t(tp);
  std::tm tm{};
  ::localtime_r(&secs, &tm);
  return tm;
}

std::string two(int v) {
  char b[8];
  std::snprintf(b, sizeof b, "%02d", v);
  return b;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The session id a rollout file name carries, or "" if the name is not a rollout's.
std::string id_from_name(std::string_view name) {
  if (!name.starts_with(kPrefix) || !name.ends_with(kSuffix)) return {};
  std::size_t head = kPrefix.size() + kTimeLen + 1;
  if (name.size() <= head + kSuffix.size() || name[head - 1] != '-') return {};
  return std::string(name.substr(head, name.size() - head - kSuffix.size()));
}

std::string time_from_name(std::string_view name) {
  return name.size() >= kPrefix.size() + kTimeLen ? std::string(name.substr(kPrefix.size(), kTimeLen)) : std::string{};
}

// Sorted child directory names (all digits), newest first.
std::vector<std::string> digit_dirs_desc(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    auto name = it->path().filename().string();
    if (all_digits(name) && it->is_directory(ec)) out.push_back(name);
  }
  std::sort(out.begin(), out.end(), std::greater<>());
  return out;
}

// Every day directory (sessions/YYYY/MM/DD), newest first.
std::vector<fs::path> day_dirs_desc(const fs::path& sessions) {
  std::vector<fs::path> out;
  for (auto& y : digit_dirs_desc(sessions))
    for (auto& m : digit_dirs_desc(sessions / y))
      for (auto& d : digit_dirs_desc(sessions / y / m)) out.push_back(sessions / y / m / d);
  return out;
}

// Rollout files of one day directory, newest name first.
std::vector<fs::path> rollouts_desc(const fs::path& day) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(day, ec), end; !ec && it != end; it.increment(ec))
    if (!id_from_name(it->path().filename().string()).empty() && it->is_regular_file(ec)) out.push_back(it->path());
  std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) { return a.filename() > b.filename(); });
  return out;
}

std::string normalize_dir(const std::string& p) {
  if (p.empty()) return p;
  std::string s = fs::path(p).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

std::string truncate_utf8(std::string s, std::size_t max) {
  if (s.size() <= max) return s;
  std::size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  s.resize(cut);
  return s + "…";
}

// The text of a user message, or nullopt if the item is none (or is injected context).
std::optional<std::string> user_text(const json::object& item) {
  if (str(item, "type") != "message" || str(item, "role") != "user") return std::nullopt;
  std::string text;
  if (auto* c = item.if_contains("content"); c && c->is_array()) {
    for (auto& part : c->as_array()) {
      if (!part.is_object() || str(part.as_object(), "type") != "input_text") continue;
      if (!text.empty()) text += "\n";
      text += str(part.as_object(), "text");
    }
  } else if (c && c->is_string()) {
    text = std::string(c->as_string());
  }
  if (text.starts_with("<environment_context>") || text.starts_with("<user_instructions>")) return std::nullopt;
  return text;
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw RolloutError(KEEL_ERR_UNAVAILABLE, "cannot write the rollout: " + errno_text(errno));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

std::string read_whole(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw RolloutError(KEEL_ERR_NOT_FOUND, "cannot read " + path.string() + ": " + errno_text(errno));
  std::string text;
  in.seekg(0, std::ios::end);
  auto size = in.tellg();
  in.seekg(0, std::ios::beg);
  if (size > 0) text.resize(static_cast<std::size_t>(size));
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return text;
}

// The summary `list` shows for one rollout, from its first lines only.
struct Summary {
  json::object row;
  std::string name_time, meta_time, name;
};

Summary summarize(const fs::path& path) {
  Summary s;
  s.name = path.filename().string();
  s.name_time = time_from_name(s.name);
  json::object meta;
  std::string first_prompt;
  bool have_prompt = false;

  // Read in small blocks, only as far as the first user message (or kHeadBytes).
  std::ifstream in(path, std::ios::binary);
  std::string buf;
  std::size_t consumed = 0, total = 0;
  bool first = true;
  char block[16 * 1024];
  while (!have_prompt && total < kHeadBytes && in) {
    in.read(block, sizeof block);
    auto n = static_cast<std::size_t>(in.gcount());
    if (n == 0) break;
    total += n;
    buf.append(block, n);
    for (;;) {
      auto nl = buf.find('\n', consumed);
      if (nl == std::string::npos || have_prompt) break;
      std::string_view line(buf.data() + consumed, nl - consumed);
      consumed = nl + 1;
      boost::system::error_code ec;
      auto v = json::parse(line, ec);
      bool is_first = first;
      first = false;
      if (ec || !v.is_object()) continue;
      auto& o = v.as_object();
      auto type = str(o, "type");
      if (is_first && type == "session_meta") {
        meta = o;
      } else if (type == "item") {
        if (auto* item = o.if_contains("item"); item && item->is_object())
          if (auto t = user_text(item->as_object())) {
            first_prompt = truncate_utf8(*t, kFirstPromptMax);
            have_prompt = true;
          }
      }
    }
    buf.erase(0, consumed);
    consumed = 0;
  }
  std::string id = str(meta, "session_id");
  if (id.empty()) id = id_from_name(s.name);
  s.meta_time = str(meta, "timestamp");
  json::value forked = json::value(nullptr);
  if (auto* f = meta.if_contains("forked_from"); f && f->is_string()) forked = *f;
  s.row = json::object{{"session_id", id},
                       {"path", path.string()},
                       {"started_at", meta.contains("started_at") ? meta.at("started_at") : json::value(s.meta_time)},
                       {"cwd", str(meta, "cwd")},
                       {"model", str(meta, "model")},
                       {"provider", str(meta, "provider")},
                       {"first_prompt", have_prompt ? json::value(first_prompt) : json::value(nullptr)},
                       {"forked_from", forked}};
  return s;
}

bool newer(const Summary& a, const Summary& b) {
  return std::tie(a.name_time, a.meta_time, a.name) > std::tie(b.name_time, b.meta_time, b.name);
}

}  // namespace

bool valid_session_id(std::string_view id) {
  if (id.empty() || id.size() > 128 || id.front() == '.' || id.front() == '-') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
  });
}

// ---------------------------------------------------------------------------------------------
// Reconstruction

Reconstruction reconstruct(std::string_view text, std::string_view name) {
  Reconstruction r;
  r.turn_context = nullptr;
  auto warn = [&](std::size_t line, const std::string& message) {
    r.warnings.emplace_back(std::string(name) + ":" + std::to_string(line) + ": " + message);
  };
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    ++line_no;
    auto nl = text.find('\n', pos);
    bool terminated = nl != std::string_view::npos;
    std::string_view line = text.substr(pos, terminated ? nl - pos : std::string_view::npos);
    pos = terminated ? nl + 1 : text.size();
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;

    boost::system::error_code ec;
    auto v = json::parse(line, ec);
    if (ec) {
      if (!terminated)
        warn(line_no, "torn last line (" + std::to_string(line.size()) +
                          " bytes without an end; keel probably stopped while writing it), skipped");
      else
        warn(line_no, "not valid JSON (" + ec.message() + "; a torn write from a crash?), skipped");
      continue;
    }
    if (!v.is_object() || !v.as_object().contains("type") || !v.as_object().at("type").is_string()) {
      warn(line_no, "not a rollout record (no \"type\"), skipped");
      continue;
    }
    auto& o = v.as_object();
    auto type = str(o, "type");
    if (type == "session_meta") {
      if (r.session.empty()) {
        r.session = o;
        r.session.erase("type");
      } else {
        warn(line_no, "a second session_meta record, ignored");
      }
    } else if (type == "item") {
      auto* item = o.if_contains("item");
      if (!item || !item->is_object()) {
        warn(line_no, "an item record without an item object, skipped");
        continue;
      }
      r.items.push_back(*item);
    } else if (type == "compaction") {
      auto* rh = o.if_contains("replacement_history");
      if (rh && rh->is_array()) {
        r.items = rh->as_array();
      } else if (auto summary = str(o, "summary"); !summary.empty()) {
        // An older marker without the history itself: keep the summary as the only context.
        r.items = json::array{json::object{
            {"type", "message"},
            {"role", "user"},
            {"content", json::array{json::object{{"type", "input_text"}, {"text", summary}}}}}};
        warn(line_no, "compaction record without replacement_history; the history is its summary");
      } else {
        warn(line_no, "compaction record with neither replacement_history nor summary, ignored");
      }
    } else if (type == "turn_context") {
      r.turn_context = o;
    }
    // "event" and unknown record types carry nothing for the history.
  }
  if (r.session.empty()) r.warnings.emplace_back(std::string(name) + ": no session_meta record");

  // A tool call without its output: keel stopped while it ran. Close it, right after the call,
  // so the model sees what happened and the history stays well-formed for every provider.
  std::set<std::string> answered;
  for (auto& v : r.items) {
    if (!v.is_object()) continue;
    auto type = str(v.as_object(), "type");
    if (type == "function_call_output" || type == "custom_tool_call_output")
      answered.insert(str(v.as_object(), "call_id"));
  }
  json::array closed;
  closed.reserve(r.items.size());
  for (auto& v : r.items) {
    closed.push_back(v);
    if (!v.is_object()) continue;
    auto& item = v.as_object();
    auto type = str(item, "type");
    if (type != "function_call" && type != "custom_tool_call") continue;
    auto call_id = str(item, "call_id");
    if (answered.contains(call_id)) continue;
    answered.insert(call_id);  // one synthesized output per call id
    closed.push_back(json::object{{"type", type == "function_call" ? "function_call_output" : "custom_tool_call_output"},
                                  {"call_id", call_id},
                                  {"output", kInterruptedOutput}});
    r.warnings.emplace_back(std::string(name) + ": tool call " + call_id + " (" + str(item, "name") +
                            ") has no output; marked as interrupted");
  }
  r.items = std::move(closed);
  return r;
}

// ---------------------------------------------------------------------------------------------
// The store

struct RolloutStore::Session {
  std::string id;
  fs::path path;
  int fd = -1;
  std::mutex mu;
  ~Session() {
    if (fd >= 0) ::close(fd);
  }
};

RolloutStore::RolloutStore(fs::path keel_home, bool fsync_each_write)
    : sessions_dir_(std::move(keel_home) / "sessions"), fsync_(fsync_each_write) {}

RolloutStore::~RolloutStore() = default;

std::shared_ptr<RolloutStore::Session> RolloutStore::find_open(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = open_.find(id);
  return it == open_.end() ? nullptr : it->second;
}

fs::path RolloutStore::find_file(std::string_view id) const {
  if (!valid_session_id(id)) throw RolloutError(KEEL_ERR_INVALID_ARGUMENT, "invalid session id '" + std::string(id) + "'");
  std::vector<fs::path> prefixed;
  for (auto& day : day_dirs_desc(sessions_dir_)) {
    for (auto& file : rollouts_desc(day)) {
      auto fid = id_from_name(file.filename().string());
      if (fid == id) return file;
      if (fid.starts_with(id)) prefixed.push_back(file);
    }
  }
  if (prefixed.size() == 1) return prefixed.front();
  if (prefixed.empty())
    throw RolloutError(KEEL_ERR_NOT_FOUND, "no session '" + std::string(id) + "' in " + sessions_dir_.string());
  std::string names;
  for (auto& p : prefixed) names += "\n  " + id_from_name(p.filename().string());
  throw RolloutError(KEEL_ERR_INVALID_ARGUMENT, "'" + std::string(id) + "' matches several sessions:" + names);
}

json::object RolloutStore::open(const json::object& request) {
  std::string id = str(request, "session_id");
  if (!valid_session_id(id))
    throw RolloutError(KEEL_ERR_INVALID_ARGUMENT,
                       "open needs a session_id of letters, digits, '-', '_' or '.' (got '" + id + "')");
  bool resumed = false;
  if (auto* r = request.if_contains("resumed"); r && r->is_bool()) resumed = r->as_bool();

  std::lock_guard lock(mu_);
  if (resumed) {
    if (auto it = open_.find(id); it != open_.end())
      return json::object{{"path", it->second->path.string()}, {"session_id", id}};
    fs::path path = find_file(id);
    std::string real_id = id_from_name(path.filename().string());
    if (auto it = open_.find(real_id); it != open_.end())
      return json::object{{"path", it->second->path.string()}, {"session_id", real_id}};
    auto s = std::make_shared<Session>();
    s->id = real_id;
    s->path = path;
    s->fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
    if (s->fd < 0) throw RolloutError(KEEL_ERR_UNAVAILABLE, "cannot open " + path.string() + ": " + errno_text(errno));
    // A crash may have left a torn last line; end it so the next record starts on a line of
    // its own (the fragment stays, and is skipped with a warning on load).
    struct stat st {};
    if (::fstat(s->fd, &st) == 0 && st.st_size > 0) {
      char last = 0;
      if (::pread(s->fd, &last, 1, st.st_size - 1) == 1 && last != '\n') write_all(s->fd, "\n");
    }
    open_[real_id] = s;
    return json::object{{"path", path.string()}, {"session_id", real_id}};
  }

  if (open_.contains(id))
    throw RolloutError(KEEL_ERR_INVALID_ARGUMENT, "session " + id + " is already open (pass resumed: true to reopen it)");
  auto now = std::chrono::system_clock::now();
  std::tm tm = local_tm(now);
  std::string year = std::to_string(tm.tm_year + 1900), month = two(tm.tm_mon + 1), day = two(tm.tm_mday);
  fs::path dir = sessions_dir_ / year / month / day;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw RolloutError(KEEL_ERR_UNAVAILABLE, "cannot create " + dir.string() + ": " + ec.message());
  std::string stamp = year + "-" + month + "-" + day + "T" + two(tm.tm_hour) + "-" + two(tm.tm_min) + "-" + two(tm.tm_sec);
  fs::path path = dir / ("rollout-" + stamp + "-" + id + ".jsonl");

  auto s = std::make_shared<Session>();
  s->id = id;
  s->path = path;
  s->fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
  if (s->fd < 0) {
    int e = errno;
    throw RolloutError(e == EEXIST ? KEEL_ERR_INVALID_ARGUMENT : KEEL_ERR_UNAVAILABLE,
                       "cannot create " + path.string() + ": " + errno_text(e));
  }
  json::object meta{{"timestamp", iso_utc(now)}, {"type", "session_meta"}};
  for (auto& [key, value] : request)
    if (key != "resumed" && key != "timestamp" && key != "type") meta[key] = value;
  if (!meta.contains("started_at")) meta["started_at"] = meta["timestamp"];
  try {
    write_all(s->fd, json::serialize(meta) + "\n");
    if (fsync_) {
      ::fsync(s->fd);
      fsync_dir(dir);
    }
  } catch (...) {
    ::unlink(path.c_str());
    throw;
  }
  open_[id] = s;
  return json::object{{"path", path.string()}, {"session_id", id}};
}

json::object RolloutStore::append(const json::object& request) {
  std::string id = str(request, "session_id");
  auto s = find_open(id);
  if (!s) throw RolloutError(KEEL_ERR_NOT_FOUND, "session '" + id + "' is not open here (open it first)");
  auto* rv = request.if_contains("record");
  if (!rv || !rv->is_object()) throw RolloutError(KEEL_ERR_INVALID_ARGUMENT, "append needs a \"record\" object");
  auto& record = rv->as_object();
  std::string type = str(record, "type");
  if (type.empty()) throw RolloutError(KEEL_ERR_INVALID_ARGUMENT, "a record needs a string \"type\"");
  if (type == "session_meta") throw RolloutError(KEEL_ERR_INVALID_ARGUMENT, "session_meta is written by open, not append");
  if (type == "item") {
    auto* item = record.if_contains("item");
    if (!item || !item->is_object() || str(item->as_object(), "type").empty())
      throw RolloutError(KEEL_ERR_INVALID_ARGUMENT, "an item record needs an \"item\" object with a \"type\"");
  }
  if (type == "compaction")
    if (auto* rh = record.if_contains("replacement_history"); rh && !rh->is_array())
      throw RolloutError(KEEL_ERR_INVALID_ARGUMENT, "replacement_history must be a list of items");

  json::object line{{"timestamp", iso_utc(std::chrono::system_clock::now())}};
  for (auto& [key, value] : record)
    if (key != "timestamp") line[key] = value;
  std::string text = json::serialize(line);
  text.push_back('\n');

  std::lock_guard lock(s->mu);
  struct stat st {};
  off_t before = ::fstat(s->fd, &st) == 0 ? st.st_size : -1;
  try {
    write_all(s->fd, text);
  } catch (...) {
    // Leave no half line behind for the next record to be glued to.
    if (before >= 0 && ::ftruncate(s->fd, before) != 0) {
    }
    throw;
  }
  if (fsync_ && ::fdatasync(s->fd) != 0)
    throw RolloutError(KEEL_ERR_UNAVAILABLE, "cannot flush the rollout: " + errno_text(errno));
  return {};
}

json::object RolloutStore::close(const json::object& request) {
  std::string id = str(request, "session_id");
  std::lock_guard lock(mu_);
  open_.erase(id);  // the fd closes when the last append using it is done
  return {};
}

json::object RolloutStore::load(const json::object& request) {
  fs::path path;
  if (auto p = str(request, "path"); !p.empty()) {
    path = p;
  } else if (auto id = str(request, "session_id"); !id.empty()) {
    if (auto s = find_open(id)) path = s->path;
    else path = find_file(id);
  } else if (auto* last = request.if_contains("last"); last && last->is_bool() && last->as_bool()) {
    json::object q{{"limit", 1}};
    if (auto* cwd = request.if_contains("cwd"); cwd && cwd->is_string()) q["cwd"] = *cwd;
    auto sessions = list(q).at("sessions").as_array();
    if (sessions.empty())
      throw RolloutError(KEEL_ERR_NOT_FOUND, q.contains("cwd") ? "no session recorded in " + str(q, "cwd")
                                                               : std::string("no session recorded yet"));
    path = std::string(sessions[0].as_object().at("path").as_string());
  } else {
    throw RolloutError(KEEL_ERR_INVALID_ARGUMENT, "load needs a session_id, or last: true");
  }
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw RolloutError(KEEL_ERR_NOT_FOUND, "no rollout at " + path.string());
  auto r = reconstruct(read_whole(path), path.filename().string());
  if (!r.session.contains("session_id")) r.session["session_id"] = id_from_name(path.filename().string());
  json::object out{{"session", std::move(r.session)}, {"path", path.string()}, {"items", std::move(r.items)},
                   {"warnings", std::move(r.warnings)}};
  if (!r.turn_context.is_null()) out["turn_context"] = std::move(r.turn_context);
  return out;
}

json::object RolloutStore::list(const json::object& request) {
  std::size_t limit = 50;
  if (auto* l = request.if_contains("limit")) {
    if (l->is_int64()) limit = l->as_int64() <= 0 ? SIZE_MAX : static_cast<std::size_t>(l->as_int64());
    else if (l->is_uint64()) limit = static_cast<std::size_t>(l->as_uint64());
  }
  std::string cwd = normalize_dir(str(request, "cwd"));
  json::array rows;
  // Days newest first; within a day, names carry the start time to the second, so only the
  // files down to the limit-th one (and its second's peers) are read at all.
  for (auto& day : day_dirs_desc(sessions_dir_)) {
    auto files = rollouts_desc(day);
    for (std::size_t i = 0; i < files.size() && rows.size() < limit;) {
      std::string second = time_from_name(files[i].filename().string());
      std::vector<Summary> group;
      for (; i < files.size() && time_from_name(files[i].filename().string()) == second; ++i) {
        auto s = summarize(files[i]);
        if (!cwd.empty() && normalize_dir(str(s.row, "cwd")) != cwd) continue;
        group.push_back(std::move(s));
      }
      std::sort(group.begin(), group.end(), newer);
      for (auto& s : group)
        if (rows.size() < limit) rows.push_back(std::move(s.row));
    }
    if (rows.size() >= limit) break;
  }
  return json::object{{"sessions", std::move(rows)}};
}

}  // namespace keel::memory
