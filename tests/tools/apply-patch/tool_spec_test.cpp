#include <catch2/catch.hpp>

#include <keel/tools/apply_patch.hpp>

#include <boost/json.hpp>

using namespace keel::tools::patch;
namespace json = boost::json;

TEST_CASE("tool spec: schema, freeform format and description", "[apply_patch][spec]") {
    CHECK(kToolName == "apply_patch");

    const auto schema = json::parse(kFunctionParametersSchema).as_object();
    CHECK(schema.at("type") == "object");
    CHECK(schema.at("properties").at("input").at("type") == "string");
    CHECK(schema.at("properties").at("input").at("description") == "The entire contents of the apply_patch command");
    CHECK(schema.at("required").as_array() == json::array{"input"});

    const auto format = json::parse(freeform_tool_format_json()).as_object();
    CHECK(format.at("type") == "grammar");
    CHECK(format.at("syntax") == "lark");
    CHECK(json::value_to<std::string>(format.at("definition")) == std::string(kLarkGrammar));
    for (const char* rule : {"begin_patch", "end_patch", "add_hunk", "delete_hunk", "update_hunk", "change_move",
                             "change_context", "eof_line"}) {
        CHECK_THAT(std::string(kLarkGrammar), Catch::Contains(rule));
    }

    // The description's example is itself a valid patch.
    const std::string desc(kToolDescription);
    const auto begin = desc.find("*** Begin Patch\n*** Add File");
    const auto end = desc.find("*** End Patch", begin);
    REQUIRE(begin != std::string::npos);
    REQUIRE(end != std::string::npos);
    const auto parsed = parse_patch(desc.substr(begin, end - begin + 13));
    CHECK(parsed.actions.size() == 3);
}
