// The configurations in docs/providers/*.md work: each page's first TOML block is used as
// config.toml as it stands; only base_url is pointed at the mock model server (-c), and the
// key variable it names is set. The request must reach the wire the page promises, with the
// page's model.
#include "e2e_support.hpp"

#include <regex>

using namespace keel::e2e;

namespace {

struct Page {
  std::string file, wire_path, builtin_key;
};

std::string first_toml_block(const std::string& markdown) {
  auto start = markdown.find("```toml\n");
  if (start == std::string::npos) return {};
  start += 8;
  auto end = markdown.find("```", start);
  return markdown.substr(start, end - start);
}

std::string toml_string(const std::string& toml, const std::string& key) {
  std::smatch m;
  std::regex re("(^|\\n)" + key + " *= *\"([^\"]*)\"");
  return std::regex_search(toml, m, re) ? m[2].str() : std::string{};
}

}  // namespace

TEST_CASE("docs/providers: each page's configuration runs a session", "[e2e][providers][docs]") {
  const fs::path docs = fs::path(KEEL_SOURCE_DIR) / "docs" / "providers";
  for (const auto& page : {Page{"openai.md", "/v1/responses", "OPENAI_API_KEY"},
                           Page{"anthropic.md", "/v1/messages", "ANTHROPIC_API_KEY"},
                           Page{"ollama.md", "/v1/chat/completions", ""},
                           Page{"llama-cpp.md", "/v1/chat/completions", ""},
                           Page{"vllm.md", "/v1/chat/completions", ""},
                           Page{"lm-studio.md", "/v1/chat/completions", ""},
                           Page{"openrouter.md", "/v1/chat/completions", ""}}) {
    DYNAMIC_SECTION(page.file) {
      std::string toml = first_toml_block(read_file(docs / page.file));
      INFO(toml);
      REQUIRE(!toml.empty());
      std::string provider = toml_string(toml, "model_provider");
      std::string model = toml_string(toml, "model");
      REQUIRE(!provider.empty());
      REQUIRE(!model.empty());
      std::string key_var = toml_string(toml, "env_key");
      if (key_var.empty()) key_var = page.builtin_key;

      TempDir dir{"keel-e2e"};
      MockServer server(dir.path(), "{\"text\": \"Configured.\"}\n", /*require_key=*/false);
      Home home(toml);
      std::map<std::string, std::string> env;
      if (!key_var.empty()) env[key_var] = "docs-test-key";
      auto r = run_keel(home,
                        {"exec", "--json", "-C", home.work.string(), "-c",
                         "model_providers." + provider + ".base_url=\"" + server.url() + "/v1\"", "say hi"},
                        env);
      INFO(r.describe());
      CHECK(r.exit_code == 0);
      auto reqs = server.model_requests();
      REQUIRE(reqs.size() == 1);
      CHECK(str(reqs[0], "path") == page.wire_path);
      CHECK(str(reqs[0].at("body").as_object(), "model") == model);
      CHECK_FALSE(contains(r.out + r.err, "docs-test-key"));
      if (page.file == "openrouter.md") {
        auto& headers = reqs[0].at("headers").as_object();
        std::string title;
        for (auto& [k, v] : headers)
          if (lower(std::string(k)) == "x-title") title = std::string(v.as_string());
        CHECK(title == "keel");
      }
    }
  }
}
