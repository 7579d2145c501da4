#!/usr/bin/env bash
# keel's main job, end to end: a replayed coding session in a scratch directory. The agent
# writes a Fibonacci program with apply_patch, runs it, checks its output and reports —
# every step a real tool call through the real kernel, bus and signed modules.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
"$root/tools/dev/build.sh" >/dev/null
build="${KEEL_BUILD_DIR:-$root/build}"
export KEEL_HOME="$build/keel-home"   # the build-tree home: first-party modules, signed by the build key
work="$(mktemp -d "${TMPDIR:-/tmp}/keel-demo.XXXXXX")"
echo "scratch directory: $work" >&2
"$build/tools/keel/keel" exec -C "$work" --replay "$root/tools/dev/demo/fibonacci.jsonl" \
  "Write a Python program fib.py that prints the first N Fibonacci numbers, run it for N=10, check its output and report."
echo "--- $work/fib.py" >&2
cat "$work/fib.py" >&2
