#!/usr/bin/env bash
# Configures (once) and builds keel with Ninja and ccache into ./build.
# Installs missing system packages first (tools/dev/setup.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
"$root/tools/dev/setup.sh"
build="${KEEL_BUILD_DIR:-$root/build}"
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -- ${KEEL_BUILD_JOBS:+-j "$KEEL_BUILD_JOBS"}
