// Tokens of the rules-file language (a Starlark subset); private to the engine.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace keel::policy::detail {

enum class Tok { ident, string, lparen, rparen, lbrack, rbrack, comma, equals, semicolon, end };

struct Token {
  Tok kind = Tok::end;
  std::string text;  // identifier name, or the string's value
  int line = 1;
  int col = 1;
};

// Throws RulesError naming `file`, line and column.
std::vector<Token> lex_rules(std::string_view text, const std::string& file);

// "'('", "string", "identifier" ...: for error messages.
std::string describe(const Token& t);

}  // namespace keel::policy::detail
