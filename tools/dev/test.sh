#!/usr/bin/env bash
# Builds keel and runs every test (ctest). The README's test command; .ci/run calls it.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
"$root/tools/dev/build.sh"
build="${KEEL_BUILD_DIR:-$root/build}"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" "$@"
