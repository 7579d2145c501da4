#include "cli_args.hpp"

namespace keel::cli {

const char* usage() {
  return "usage: keel [options]                       an interactive conversation (at a terminal)\n"
         "       keel chat [options] [PROMPT]       the same, optionally starting with PROMPT\n"
         "       keel resume (--last | ID) [options] [PROMPT]   continue a recorded session interactively\n"
         "       keel exec [options] [PROMPT | -]   run one prompt non-interactively\n"
         "       keel exec resume (--last | ID) [options] [PROMPT | -]   continue a recorded session\n"
         "       keel fork ID [options] [PROMPT | -]  a new session starting from a copy of another\n"
         "       keel sessions [--json]             recorded sessions, newest first\n"
         "       keel execpolicy check [--rules FILE] -- CMD...   what the exec policy decides\n"
         "       keel modules [--json]              list installed modules: loaded, refused and why\n"
         "       keel models [--provider NAME] [--json] [refresh]   models of a provider\n"
         "       keel plugin COMMAND ...            marketplaces and plugins (keel plugin --help)\n"
         "       keel trust add|list|remove ...     publishers' keys (keel trust --help)\n"
         "       keel --version\n"
         "\n"
         "options:\n"
         "  -m, --model MODEL          model to use\n"
         "      --provider NAME        model provider (openai, anthropic, ollama, lmstudio, replay, or\n"
         "                             any [model_providers.NAME])\n"
         "  -p, --profile NAME         apply [profiles.NAME] from the configuration\n"
         "  -c, --config KEY=VALUE     override a configuration value (dotted key; TOML value)\n"
         "  -C, --cd DIR               working directory of the session\n"
         "      --json                 print events as JSON lines\n"
         "  -o, --output-last-message FILE   write the last agent message to FILE\n"
         "      --replay FILE          use the replay provider with this JSONL script\n"
         "      --ui NAME              front end module (default: chat, or exec for keel exec)\n"
         "  -s, --sandbox MODE         read-only | workspace-write (default) | danger-full-access\n"
         "  -a, --ask-for-approval MODE  untrusted | on-request | on-failure | never\n"
         "      --full-auto            workspace-write sandbox, approvals on request\n"
         "      --dangerously-bypass-approvals-and-sandbox   no sandbox, never ask (only in a VM)\n"
         "\n"
         "The prompt may also come on standard input. KEEL_HOME (default ~/.keel) holds the\n"
         "configuration, trusted keys and installed modules.\n";
}

Options parse(int argc, char** argv) {
  Options o;
  int i = 1;
  auto value = [&](const std::string& flag) -> std::string {
    if (i + 1 >= argc) throw UsageError("option " + flag + " needs a value");
    return argv[++i];
  };
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--version" || a == "-V") o.command = "version";
    else if (a == "-h" || a == "--help") o.command = "help";
    else if (a == "-m" || a == "--model") o.model = value(a);
    else if (a == "--provider") o.provider = value(a);
    else if (a == "-p" || a == "--profile") o.profile = value(a);
    else if (a == "-c" || a == "--config") o.overrides.push_back(value(a));
    else if (a == "-C" || a == "--cd") o.cwd = value(a);
    else if (a == "--json") o.json = true;
    else if (a == "-o" || a == "--output-last-message") o.output_last_message = value(a);
    else if (a == "--replay") o.replay = value(a);
    else if (a == "--ui") o.ui = value(a);
    else if (a == "-s" || a == "--sandbox") o.sandbox_mode = value(a);
    else if (a == "-a" || a == "--ask-for-approval") o.approval_policy = value(a);
    else if (a == "--full-auto") {
      o.sandbox_mode = "workspace-write";
      o.approval_policy = "on-request";
    } else if (a == "--dangerously-bypass-approvals-and-sandbox") {
      o.sandbox_mode = "danger-full-access";
      o.approval_policy = "never";
    } else if (a == "--last") o.last = true;
    else if (a == "--rules") o.rules_file = value(a);
    else if (a == "--") {
      for (++i; i < argc; ++i) o.positional.push_back(argv[i]);
    } else if (a.size() > 1 && a[0] == '-' && a != "-") throw UsageError("unknown option " + a);
    else if (o.command.empty()) o.command = a;
    else o.positional.push_back(a);
  }
  return o;  // no command: main decides between a conversation and the usage
}

}  // namespace keel::cli
