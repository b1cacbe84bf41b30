#!/usr/bin/env bash
# The full test suite, the way CI runs it (README: "Run the tests").
#
#   1. installs missing Debian packages (scripts/deps.sh)
#   2. checks the format of the lines changed since .clang-format was added
#      (scripts/check-format.sh)
#   3. builds with gcc (RelWithDebInfo, warnings are errors) and runs every
#      ctest test
#   4. builds again with clang, AddressSanitizer + UndefinedBehaviorSanitizer
#      and libFuzzer, and runs every test again there, fuzzers included
#
# Every test that needs Redis starts its own private redis-server on a free
# loopback port; nothing outside this machine is contacted.
# Options: --quick  only steps 2 and 3;  --sanitize-only  only step 4.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=all
case "${1:-}" in
  --quick) mode=quick ;;
  --sanitize-only) mode=sanitize ;;
  -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "test.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
esac

bash scripts/deps.sh
bash scripts/build-console.sh  # the web console: console.browser tests it in chromium
jobs=$(nproc)

run_suite() {  # build-dir, then cmake options
  local dir=$1; shift
  cmake -S . -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  ctest --test-dir "$dir" --output-on-failure -j"$jobs" --timeout 600
}

if [ "$mode" != sanitize ]; then
  echo "== format of changed lines =="
  bash scripts/check-format.sh
  echo "== gcc build, full suite =="
  run_suite build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc -DPA_WERROR=ON
fi
if [ "$mode" != quick ]; then
  echo "== clang build with ASan + UBSan + libFuzzer, full suite =="
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    run_suite build/sanitize -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
      -DPA_SANITIZE=ON -DPA_FUZZ=ON -DPA_WERROR=ON
fi
