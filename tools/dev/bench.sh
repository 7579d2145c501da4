#!/usr/bin/env bash
# Builds keel and prints the benchmark table (see docs/PERFORMANCE.md). Not part of the tests.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
"$root/tools/dev/build.sh" >/dev/null
build="${KEEL_BUILD_DIR:-$root/build}"
"$build/tests/bench/keel-bench" "$@"
