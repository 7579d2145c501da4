// Sandbox escape tests through full sessions (issue 5), for each backend: the real
// `keel exec --json --replay` runs a scripted model whose shell commands try to write outside
// the workspace, into the workspace's .git, into $KEEL_HOME (inside a writable root), to
// delete a fake ~, to connect to a TCP listener on 127.0.0.1 (directly and from a child of a
// child). The test checks the filesystem and the listener afterwards, and that the output
// the model got names the sandbox; work inside the workspace succeeds; and with
// sandbox_workspace_write.network_access = true the loopback connection gets through.
#include "session_support.hpp"

using namespace keel;
using namespace keel::session_test;

namespace {

std::string shell_call(const std::string& call_id, const std::string& script) {
  json::object args{{"command", json::array{"bash", "-c", json::value(script)}}, {"timeout_ms", 15000}};
  return json::serialize(json::object{{"tool_calls", json::array{json::object{
                                                         {"name", "shell"}, {"call_id", call_id}, {"arguments", args}}}}});
}

// The escape tree: KEEL_HOME lives in extra/, a writable root, so only its protection keeps it
// read-only; the fake ~ and outside/ are not writable at all.
struct EscapeTree {
  Scratch s{"escape"};
  fs::path extra = s.base / "extra";
  fs::path keel_home = extra / "keel-home";
  fs::path head = s.ws / ".git" / "HEAD";
  std::string head_before;

  EscapeTree() {
    Scratch::copy_home(keel_home);
    write_file(keel_home / "config.toml", "# the user's configuration\n");
    write_file(s.fake_home / "notes.txt", "precious\n");
    write_file(s.fake_home / "projects" / "a.txt", "a\n");
    write_file(s.outside / "keep.txt", "keep\n");
    write_file(s.ws / "top.txt", "top\n");
    head_before = read_file(head);
  }

  RunResult exec(const std::string& backend, const fs::path& script, const std::vector<std::string>& extra_args = {}) {
    std::vector<std::string> args{"exec", "--json", "-c", "sandbox=" + backend, "-c",
                                  "sandbox_workspace_write.writable_roots=[" + jstr(extra.string()) + "]"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    args.insert(args.end(), {"--replay", script.string(), "try to get out"});
    return run_keel(s, args, 50s, s.ws, {{"KEEL_HOME", keel_home.string()}});
  }

  // What the model was told for each call, from the session's rollout.
  std::map<std::string, std::string> outputs() const {
    std::map<std::string, std::string> out;
    std::error_code ec;
    if (!fs::exists(keel_home / "sessions", ec)) return out;
    for (auto& e : fs::recursive_directory_iterator(keel_home / "sessions"))
      if (e.is_regular_file() && e.path().extension() == ".jsonl")
        for (auto& v : rollout_items(e.path())) {
          auto& o = v.as_object();
          if (str(o, "type") == "function_call_output") out[str(o, "call_id")] = str(o, "output");
        }
    return out;
  }
};

// A script for bash that a child of a child runs: bash -c → sh net.sh → bash -c → connect.
void write_net_helper(const fs::path& ws, int port) {
  write_file(ws / "net.sh", "bash -c 'exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(port) + " && cat <&3'\n");
}

}  // namespace

TEST_CASE("escapes through a full session are blocked by each sandbox backend", "[session][sandbox][escape]") {
  auto backend = GENERATE(std::string("bwrap"), std::string("landlock"));
  INFO("sandbox " << backend);
  EscapeTree t;
  Listener listener;
  write_net_helper(t.s.ws, listener.port());
  const std::string port = std::to_string(listener.port());
  auto script = t.s.script(
      "escape.jsonl",
      {shell_call("call_outside", "echo escaped > " + (t.s.outside / "escape.txt").string() + " && echo WROTE"),
       shell_call("call_outside_edit", "echo changed > " + (t.s.outside / "keep.txt").string() + " && echo WROTE"),
       shell_call("call_git", "echo evil > .git/HEAD && echo WROTE"),
       shell_call("call_git_hook", "echo evil > .git/pre-commit && echo WROTE"),
       shell_call("call_keel_home", "echo 'sandbox_mode = \"danger-full-access\"' >> " +
                                        (t.keel_home / "config.toml").string() + " && echo WROTE"),
       shell_call("call_keel_home_new", "touch " + (t.keel_home / "evil.toml").string() + " && echo WROTE"),
       shell_call("call_home", "cd / && rm -rf " + t.s.fake_home.string() + " && echo DELETED"),
       shell_call("call_tcp", "exec 3<>/dev/tcp/127.0.0.1/" + port + " && cat <&3"),
       shell_call("call_grandchild", "sh net.sh"),
       shell_call("call_inside", "mkdir -p made && echo inside > made/ok.txt && echo top2 > top.txt && cat made/ok.txt"),
       R"({"text":"tried everything","expect":{"output_contains":"inside"}})"});
  auto r = t.exec(backend, script);
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  auto outputs = t.outputs();
  std::string all;
  for (auto& [id, o] : outputs) all += "--- " + id + "\n" + o + "\n";
  INFO("what the model was told:\n" << all);
  REQUIRE(outputs.size() == 10);

  // Nothing outside the workspace changed.
  CHECK_FALSE(fs::exists(t.s.outside / "escape.txt"));
  CHECK(read_file(t.s.outside / "keep.txt") == "keep\n");
  CHECK(read_file(t.head) == t.head_before);
  CHECK_FALSE(fs::exists(t.s.ws / ".git" / "pre-commit"));
  CHECK(read_file(t.keel_home / "config.toml") == "# the user's configuration\n");
  CHECK_FALSE(fs::exists(t.keel_home / "evil.toml"));
  CHECK(read_file(t.s.fake_home / "notes.txt") == "precious\n");
  CHECK(fs::exists(t.s.fake_home / "projects" / "a.txt"));
  CHECK(listener.connections() == 0);

  // Every blocked command failed, and the model was told the sandbox did it.
  for (auto id : {"call_outside", "call_outside_edit", "call_git", "call_git_hook", "call_keel_home", "call_keel_home_new",
                  "call_home", "call_tcp", "call_grandchild"}) {
    INFO("call " << id << ":\n" << outputs[id]);
    CHECK_FALSE(contains(outputs[id], "Exit code: 0\n"));
    CHECK_FALSE(contains(outputs[id], "WROTE"));
    CHECK_FALSE(contains(outputs[id], "DELETED"));
    CHECK_FALSE(contains(outputs[id], "hello-from-listener"));
    CHECK(contains(outputs[id], "sandbox"));
  }
  CHECK(contains(outputs["call_tcp"], "network"));
  CHECK(contains(outputs["call_grandchild"], "network"));

  // Work inside the workspace succeeds.
  CHECK(contains(outputs["call_inside"], "Exit code: 0"));
  CHECK(read_file(t.s.ws / "made" / "ok.txt") == "inside\n");
  CHECK(read_file(t.s.ws / "top.txt") == "top2\n");

  // The exec --json items carry the sandbox's explanation too.
  int blocked_items = 0;
  for (auto& e : jsonl(r.out))
    if (str(e, "type") == "item.completed" && str(e.at("item").as_object(), "type") == "command_execution") {
      auto& item = e.at("item").as_object();
      if (auto* b = item.if_contains("sandbox_blocked"); b && b->is_bool() && b->as_bool()) ++blocked_items;
    }
  CHECK(blocked_items == 9);
}

TEST_CASE("network_access = true lets the loopback connection through, and only that", "[session][sandbox][escape]") {
  auto backend = GENERATE(std::string("bwrap"), std::string("landlock"));
  INFO("sandbox " << backend);
  EscapeTree t;
  Listener listener;
  write_net_helper(t.s.ws, listener.port());
  const std::string port = std::to_string(listener.port());
  auto script = t.s.script(
      "network.jsonl",
      {shell_call("call_tcp", "exec 3<>/dev/tcp/127.0.0.1/" + port + " && cat <&3"),
       shell_call("call_grandchild", "sh net.sh"),
       shell_call("call_outside", "echo escaped > " + (t.s.outside / "escape.txt").string() + " && echo WROTE"),
       R"({"text":"connected"})"});
  auto r = t.exec(backend, script, {"-c", "sandbox_workspace_write.network_access=true"});
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  auto outputs = t.outputs();
  std::string all;
  for (auto& [id, o] : outputs) all += "--- " + id + "\n" + o + "\n";
  INFO("what the model was told:\n" << all);
  CHECK(listener.connections() == 2);
  CHECK(contains(outputs["call_tcp"], "Exit code: 0"));
  CHECK(contains(outputs["call_tcp"], "hello-from-listener"));
  CHECK(contains(outputs["call_grandchild"], "hello-from-listener"));
  // The filesystem is still confined.
  CHECK_FALSE(fs::exists(t.s.outside / "escape.txt"));
  CHECK(contains(outputs["call_outside"], "sandbox"));
}

// Links: a symlink in the workspace pointing outside, and a hard link to a file outside (a
// classic way past path-based rules). Nothing outside may change.
TEST_CASE("links out of the workspace do not let a sandboxed command write outside", "[session][sandbox][escape]") {
  auto backend = GENERATE(std::string("bwrap"), std::string("landlock"));
  INFO("sandbox " << backend);
  EscapeTree t;
  auto script = t.s.script(
      "links.jsonl",
      {shell_call("call_symlink", "ln -s " + t.s.outside.string() + " outlink && echo x > outlink/sym.txt && echo WROTE"),
       shell_call("call_hardlink", "ln " + (t.s.outside / "keep.txt").string() +
                                       " hard.txt && echo changed > hard.txt && echo WROTE"),
       shell_call("call_git_symlink", "ln -s .git gitlink && echo evil > gitlink/HEAD && echo WROTE"),
       R"({"text":"tried links"})"});
  auto r = t.exec(backend, script);
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  auto outputs = t.outputs();
  std::string all;
  for (auto& [id, o] : outputs) all += "--- " + id + "\n" + o + "\n";
  INFO("what the model was told:\n" << all);
  REQUIRE(outputs.size() == 3);
  CHECK_FALSE(fs::exists(t.s.outside / "sym.txt"));
  CHECK(read_file(t.s.outside / "keep.txt") == "keep\n");
  CHECK(read_file(t.head) == t.head_before);
  for (auto id : {"call_symlink", "call_hardlink", "call_git_symlink"}) {
    INFO("call " << id);
    CHECK_FALSE(contains(outputs[id], "WROTE"));
  }
}

// Regression: a hard link to a file outside fails with EXDEV under both backends (bwrap: the
// workspace is a bind mount of its own; landlock: no REFER right outside the writable roots).
// It used to get no explanation under bwrap, and under landlock a wrong one about the .git
// next to the link ("entries cannot be created ..."); it is the sandbox's doing, naming the
// file outside. A rename (move) out of outside/ is explained too (EXDEV under bwrap).
TEST_CASE("a hard link out of the workspace is explained as the sandbox's doing", "[session][sandbox][escape]") {
  auto backend = GENERATE(std::string("bwrap"), std::string("landlock"));
  INFO("sandbox " << backend);
  EscapeTree t;
  const std::string keep = (t.s.outside / "keep.txt").string();
  auto script = t.s.script(
      "hardlink.jsonl",
      {shell_call("call_hardlink", "ln " + keep + " hard.txt && echo WROTE"),
       shell_call("call_rename", "python3 -c 'import os; os.rename(\"" + keep + "\", \"moved.txt\")' && echo WROTE"),
       R"({"text":"tried"})"});
  auto r = t.exec(backend, script);
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  auto outputs = t.outputs();
  for (auto id : {"call_hardlink", "call_rename"}) {
    auto out = outputs[id];
    INFO(id << ":\n" << out);
    CHECK_FALSE(contains(out, "WROTE"));
    CHECK(contains(out, "sandbox"));
    CHECK(contains(out, "outside the workspace"));
    CHECK_FALSE(contains(out, "entries cannot be created"));
  }
  CHECK(contains(outputs["call_hardlink"], keep + " is outside the workspace"));
  CHECK(read_file(t.s.outside / "keep.txt") == "keep\n");
  CHECK_FALSE(fs::exists(t.s.ws / "hard.txt"));
  CHECK_FALSE(fs::exists(t.s.ws / "moved.txt"));
}
