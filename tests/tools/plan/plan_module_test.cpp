// The plan module (update_plan), loaded from its built file and driven through the C ABI.
#include "../apply-patch-module/tool_test_support.hpp"

#include <keel/abi.h>

#include <string>

using namespace keel::test::tools;
using keel::test::AbiTestHost;

namespace {

json::object step(const std::string& text, const std::string& status) {
  return json::object{{"step", text}, {"status", status}};
}

ToolReply update(AbiTestHost& host, const json::object& args) {
  return call_tool(host, "update_plan", function_request("update_plan", args, "/tmp"));
}

}  // namespace

TEST_CASE("plan module: update_plan is a sequential, non-mutating tool", "[plan]") {
  AbiTestHost host(KEEL_PLAN_MODULE_PATH);
  CHECK(std::string(host.module().name) == "plan");
  REQUIRE(host.module().capability_count == 1);
  const keel_capability* cap = host.capability("update_plan");
  REQUIRE(cap);
  CHECK(cap->kind == KEEL_CAP_TOOL);
  CHECK(cap->flags == 0u);
  auto schema = json::parse(cap->schema_json).as_object();
  CHECK(schema.at("required") == json::array{"plan"});
  CHECK(schema.at("properties").at("plan").at("items").at("properties").at("status").at("enum") ==
        json::array{"pending", "in_progress", "completed"});
}

TEST_CASE("plan module: a valid plan gives a todo_list item and a plan.updated event", "[plan]") {
  AbiTestHost host(KEEL_PLAN_MODULE_PATH);
  host.start();
  auto r = update(host, json::object{{"explanation", "starting"},
                                     {"plan", json::array{step("Read the code", "completed"),
                                                          step("Write the fix", "in_progress"),
                                                          step("Run the tests", "pending")}}});
  CHECK(r.status == KEEL_OK);
  CHECK(r.success());
  CHECK(r.output() == "Plan updated");
  CHECK(r.item() == json::object{{"type", "todo_list"},
                                 {"items", json::array{json::object{{"text", "Read the code"}, {"completed", true}},
                                                       json::object{{"text", "Write the fix"}, {"completed", false}},
                                                       json::object{{"text", "Run the tests"}, {"completed", false}}}}});

  auto published = host.published();
  REQUIRE(published.size() == 1);
  CHECK(published[0].topic == "event");
  auto event = json::parse(published[0].event).as_object();
  CHECK(event.at("type") == "plan.updated");
  CHECK(event.at("session_id") == "s1");
  CHECK(event.at("turn_id") == "t1");
  CHECK(event.at("call_id") == "call_1");
  CHECK(event.at("explanation") == "starting");
  CHECK(event.at("plan") == json::array{step("Read the code", "completed"), step("Write the fix", "in_progress"),
                                        step("Run the tests", "pending")});

  // An empty plan (e.g. clearing it) is fine too, and needs no explanation.
  auto empty = update(host, json::object{{"plan", json::array{}}});
  CHECK(empty.success());
  CHECK(empty.item().at("items") == json::array{});
  REQUIRE(host.published().size() == 2);
  CHECK_FALSE(json::parse(host.published()[1].event).as_object().contains("explanation"));
}

TEST_CASE("plan module: invalid plans are refused and publish nothing", "[plan]") {
  AbiTestHost host(KEEL_PLAN_MODULE_PATH);
  host.start();
  struct Case {
    const char* name;
    json::object args;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"two in progress", json::object{{"plan", json::array{step("a", "in_progress"), step("b", "in_progress")}}},
       "at most one step"},
      {"unknown status", json::object{{"plan", json::array{step("a", "done")}}}, "status 'done'"},
      {"missing status", json::object{{"plan", json::array{json::object{{"step", "a"}}}}}, "needs a 'status'"},
      {"empty step", json::object{{"plan", json::array{step("", "pending")}}}, "non-empty 'step'"},
      {"step not an object", json::object{{"plan", json::array{"just text"}}}, "must be an object"},
      {"plan not a list", json::object{{"plan", "a, b"}}, "must be a list"},
      {"no plan", json::object{{"explanation", "x"}}, "missing required argument 'plan'"},
      {"explanation not a string", json::object{{"explanation", 3}, {"plan", json::array{}}}, "'explanation'"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    auto r = update(host, c.args);
    CHECK(r.status == KEEL_OK);
    CHECK_FALSE(r.success());
    INFO(r.output());
    CHECK(r.output().find(c.message) != std::string::npos);
  }
  auto garbage = call_tool(host, "update_plan",
                           json::serialize(json::object{{"arguments", "{not json"}, {"session_id", "s1"}}));
  CHECK_FALSE(garbage.success());
  CHECK(host.published().empty());
}
