#!/usr/bin/env bash
# Builds the benchmarks and prints one table per benchmark executable (docs/PERFORMANCE.md).
# Not part of the tests; ctest never runs these.
#
#   tools/dev/bench.sh                       everything: keel-bench (every group), then
#                                            keel-bench-providers, keel-memory-bench and the
#                                            marketplace bench (when keel-bench lacks that group)
#   tools/dev/bench.sh dispatch sandbox      only these keel-bench groups (keel-bench --list);
#                                            "providers" and "memory" select the other two
#
# KEEL_BUILD_DIR (default ./build) is the build tree; KEEL_BENCH_NO_BUILD=1 skips the build.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${KEEL_BUILD_DIR:-$root/build}"

if [ -z "${KEEL_BENCH_NO_BUILD:-}" ]; then
  if [ ! -f "$build/build.ninja" ]; then
    "$root/tools/dev/setup.sh"
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  known="$(cmake --build "$build" --target help 2>/dev/null || true)"
  targets=()
  for t in keel keel-home keel-bench keel-bench-providers keel-memory-bench keel-bench-marketplace; do
    if grep -Eq "(^|/)$t: " <<<"$known"; then targets+=("$t"); fi
  done
  cmake --build "$build" --target "${targets[@]}" -- ${KEEL_BUILD_JOBS:+-j "$KEEL_BUILD_JOBS"} >/dev/null
fi

bench="$build/tests/bench/keel-bench"
providers="$build/tests/providers/keel-bench-providers"
memory="$build/tests/memory/keel-memory-bench"
marketplace="$build/tests/marketplace/lifecycle/keel-bench-marketplace"

header() {
  printf '\n## %s\n\n' "$1"
  printf '| %-58s | %10s | %-5s | %-10s |\n' benchmark median unit target
  printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..60})" "$(printf -- '-%.0s' {1..12})" \
    "$(printf -- '-%.0s' {1..7})" "$(printf -- '-%.0s' {1..12})"
}

# Rows as printed by tests/bench/bench.hpp pass through; any other line becomes a note.
as_rows() {
  awk '/^\|/ && !/^\| benchmark / && !/^\|-/ { print; next }
       NF { printf "| %-58s | %10s | %-5s | %-10s |\n", "note: " $0, "-", "", "" }'
}

# keel-bench-providers prints free text; turn it into rows.
providers_rows() {
  awk '
    /^sse_parse chunk=/ {
      split($2, c, "="); sub(":", "", c[2]);
      printf "| %-58s | %10.1f | %-5s | %-10s |\n", "SSE parse throughput, " c[2] "-byte chunks", $3, "MB/s", ">= 300"; next }
    /^request_roundtrip/ {
      name = $2  # request_roundtrip <wire> (loopback, tiny response): ...
      for (i = 1; i <= NF; ++i) {
        if ($i ~ /^p50=/) { split($i, a, "="); p50 = a[2] }
        if ($i ~ /^p99=/) { split($i, a, "="); p99 = a[2] }
      }
      printf "| %-58s | %10.3f | %-5s | %-10s |\n", "provider round trip (loopback, tiny reply), " name " (p50)", p50, "ms", "";
      printf "| %-58s | %10.3f | %-5s | %-10s |\n", "provider round trip (loopback, tiny reply), " name " (p99)", p99, "ms", ""; next }
    NF { printf "| %-58s | %10s | %-5s | %-10s |\n", "note: " $0, "-", "", "" }'
}

groups=()
want_providers=0 want_memory=0 want_marketplace=0
if [ $# -eq 0 ]; then
  want_providers=1 want_memory=1 want_marketplace=1
else
  for a in "$@"; do
    case "$a" in
      providers) want_providers=1 ;;
      memory) want_memory=1 ;;
      *) groups+=("$a") ;;
    esac
  done
fi

status=0
if [ $# -eq 0 ] || [ ${#groups[@]} -gt 0 ]; then
  printf '## keel-bench %s\n\n' "${groups[*]:-(all groups)}"
  "$bench" "${groups[@]}" || status=1
  # The marketplace bench on its own, when keel-bench was built without that group.
  if [ "$want_marketplace" = 1 ] && ! "$bench" --list | grep -qx marketplace && [ -x "$marketplace" ]; then
    header "keel-bench-marketplace"
    "$marketplace" | as_rows || status=1
  fi
fi
if [ "$want_providers" = 1 ]; then
  header "keel-bench-providers"
  if [ -x "$providers" ]; then "$providers" | providers_rows || status=1; else echo "(not built: $providers)"; fi
fi
if [ "$want_memory" = 1 ]; then
  header "keel-memory-bench"
  if [ -x "$memory" ]; then "$memory" | as_rows || status=1; else echo "(not built: $memory)"; fi
fi
exit "$status"
