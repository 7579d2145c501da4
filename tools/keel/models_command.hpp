// `keel models [--provider NAME] [--json] [refresh]`: the models a provider offers, with what
// keel knows about each (context window, output limit, parallel tool calls, reasoning
// effort, images) — the provider's models endpoint enriched with built-in presets, cached
// under $KEEL_HOME/cache for 24 hours, with [models.<id>] configuration overrides applied.
#pragma once
#include "cli_args.hpp"

namespace keel::cli {
int run_models(const Options& o);
}  // namespace keel::cli
