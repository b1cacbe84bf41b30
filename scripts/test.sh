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
#   5. the bounded versions of the slow suites (scripts/slow-bounded.sh):
#      packages (from step 3's tree), arm64 under qemu-user, containers
#
# Every test that needs Redis starts its own private redis-server on a free
# loopback port; apart from Debian's mirror (packages the steps install,
# step 5's images and roots) nothing outside this machine is contacted.
# Options: --quick  only steps 2 and 3;  --sanitize-only  only step 4;
#          --no-slow  without step 5 (also PA_NO_SLOW=1);  --slow-only
#          only step 5 (step 3's tree is used, and built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=all slow=1
for a in "$@"; do
  case "$a" in
    --quick) mode=quick ;;
    --sanitize-only) mode=sanitize ;;
    --slow-only) mode=slow ;;
    --no-slow) slow=0 ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option '$a' (try --help)" >&2; exit 2 ;;
  esac
done
[ "${PA_NO_SLOW:-0}" = 0 ] || slow=0
[ "$mode" = all ] || [ "$mode" = slow ] || slow=0
[ "$mode" != slow ] || [ "$slow" = 1 ] || { echo "test.sh: --slow-only and --no-slow contradict each other" >&2; exit 2; }

if [ "$mode" = slow ]; then
  exec bash scripts/slow-bounded.sh
fi

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
  # Step 5 makes the packages from this tree: installed under /usr, and
  # cpack not walking the whole tree again (scripts/packages-test.sh; both
  # change the units' paths and the install step only, no compiled file).
  run_suite build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc -DPA_WERROR=ON \
    -DCMAKE_INSTALL_PREFIX:PATH=/usr -DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY:BOOL=ON
fi
if [ "$mode" != quick ]; then
  echo "== clang build with ASan + UBSan + libFuzzer, full suite =="
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    run_suite build/sanitize -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
      -DPA_SANITIZE=ON -DPA_FUZZ=ON -DPA_WERROR=ON
fi
if [ "$slow" = 1 ]; then
  bash scripts/slow-bounded.sh
fi
