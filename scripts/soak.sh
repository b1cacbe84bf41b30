#!/usr/bin/env bash
# The soak: the activation service (Redis A and B, audit server, activation
# server, all started privately on loopback) at half of its peak Activate
# rate for a while, printing each daemon's RSS and open files and Redis's
# used_memory at the start, after warm-up, at points between and at the end
# (docs/testing.md, "Fault matrix"). Fails on a failed call, or when a
# daemon's open files grew after warm-up; RSS is printed, not judged.
#
#   scripts/soak.sh [--seconds N] [--build-dir DIR]
#     --seconds N      how long at half of the peak (default 600)
#     --build-dir DIR  a configured build tree (default build/release; the
#                      faults_soak program is built there first)
# The bounded version runs in the test suite as ctest faults.soak (60 s).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=600
build=build/release
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
    --build-dir) build=${2:?--build-dir needs a directory}; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done
case "$seconds" in
  ''|*[!0-9]*) echo "soak.sh: --seconds: expected a whole number of seconds, got '$seconds'" >&2; exit 2 ;;
esac
if [ ! -f "$build/CMakeCache.txt" ]; then
  echo "soak.sh: $build is not a configured build tree (README: \"Build\")" >&2
  exit 2
fi
cmake --build "$build" -j"$(nproc)" --target faults_soak >/dev/null
PA_BUILD_DIR="$(cd "$build" && pwd)" PA_SOURCE_DIR="$(pwd)" \
  exec "$build/tests/faults/faults_soak" --seconds "$seconds" --check
