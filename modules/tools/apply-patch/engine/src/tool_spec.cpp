// Tool specification helpers for the module wrapper.
#include <keel/tools/apply_patch.hpp>

namespace keel::tools::patch {

namespace {

std::string json_string(std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out = "\"";
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out.push_back(kHex[c >> 4]);
                    out.push_back(kHex[c & 0xF]);
                } else {
                    out.push_back(ch);
                }
        }
    }
    out.push_back('"');
    return out;
}

}  // namespace

std::string freeform_tool_format_json() {
    return R"({"type":"grammar","syntax":"lark","definition":)" + json_string(kLarkGrammar) + "}";
}

}  // namespace keel::tools::patch
