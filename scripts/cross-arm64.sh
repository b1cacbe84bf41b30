#!/usr/bin/env bash
# Builds for 64-bit Arm (aarch64) on an x86-64 Debian machine and runs
# tests under qemu-user (README: "Building for arm64").
#
#   1. installs what is missing (scripts/deps.sh arm64): the arm64
#      architecture in dpkg, Debian's cross toolchain
#      (crossbuild-essential-arm64), qemu-user, the :arm64 -dev packages of
#      every library CMake looks for, and the host tools the build uses
#      (protoc-c)
#   2. configures build/arm64 with cmake/toolchain-aarch64-linux-gnu.cmake
#   3. builds only what the tests need: every unit test's program, and
#      libpa_activate.a and the activate CLI for client.exported_symbols
#   4. runs `ctest -L unit` under qemu-aarch64 and prints the times
#
# --bounded (scripts/test.sh runs this): steps 3 and 4 for the few unit
# tests whose code depends on byte order and alignment -- the key format
# (keystore.codec, keystore.mac_registry), the Merkle tree and the license
# checked through it (common.merkle, client.license_tree), the client's
# stored state (client.license_state) -- and the `activate` CLI run under
# qemu on a fake machine: --help, an offline request for a published key, a
# mistyped key refused (exit 3), and `machine-id`, equal to the host
# build's when build/release has one.
#
# Options: --no-install  skip step 1;  --build-only  skip step 4;
#          --bounded  as above.
# Exit status: 0 passed, 1 failed, 2 usage; with --bounded also 77 skipped
# (not installable here: not root and no sudo, no network), with the reason.
# Multi-Arch: the :arm64 -dev packages must have the same version as their
# installed host twins, so apt may upgrade host packages to the archive's
# current version (security updates of the same release) on the way.
set -euo pipefail
cd "$(dirname "$0")/.."

install=1 run=1 bounded=0
for a in "$@"; do
  case "$a" in
    --no-install) install=0 ;;
    --build-only) run=0 ;;
    --bounded) bounded=1 ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "cross-arm64.sh: unknown option '$a' (try --help)" >&2; exit 2 ;;
  esac
done

BUILD=build/arm64
JOBS=${JOBS:-$(nproc)}
# The bounded set: the code that reads and writes bytes in a fixed order.
BOUNDED_TESTS=(keystore.codec keystore.mac_registry common.merkle client.license_tree client.license_state)

say() { printf 'cross-arm64: %s\n' "$*"; }
skip() { say "SKIPPED: $*" >&2; exit 77; }

# The arm64 `activate` under qemu on a fake machine: --help, a published
# key checked locally (the offline request) and a mistyped one refused
# (exit 3), and the machine id, which must equal the host build's when
# build/release has one (the same facts, salt and hash on both).
check_cli() {  # arm64 activate
  local qemu w rc=0 host=build/release/client/activate
  qemu=$(command -v qemu-aarch64 || command -v qemu-aarch64-static)
  w=$(mktemp -d)
  mkdir -p "$w/root/sys/class/dmi/id" "$w/root/etc" "$w/state"
  echo 4c4c4544-0032-3310-8051-b4c04f4e3232 >"$w/root/sys/class/dmi/id/product_uuid"
  echo CN7016334M0123 >"$w/root/sys/class/dmi/id/board_serial"
  echo 0123456789abcdef0123456789abcdef >"$w/root/etc/machine-id"
  "$qemu" "$1" --help >"$w/help" || { say "FAILED: activate --help under qemu"; rc=1; }
  "$qemu" "$1" request --out "$w/req" --state-dir "$w/state" --facts-root "$w/root" \
    W269N-WFGWX-YVC9B-4J6C9-T83GX >"$w/req.out" 2>&1 \
    || { cat "$w/req.out"; say "FAILED: activate request of a well-formed key under qemu"; rc=1; }
  local code=0
  "$qemu" "$1" request --out "$w/req2" --state-dir "$w/state" --facts-root "$w/root" \
    W269N-WFGWX-YVC9B-4J6C9-T83GB >"$w/bad.out" 2>&1 || code=$?
  [ "$code" = 3 ] || { cat "$w/bad.out"; say "FAILED: a mistyped key gave exit $code, not 3"; rc=1; }
  "$qemu" "$1" machine-id --facts-root "$w/root" --json >"$w/id.arm64" \
    || { say "FAILED: activate machine-id under qemu"; rc=1; }
  if [ -x "$host" ]; then
    "$host" machine-id --facts-root "$w/root" --json >"$w/id.host" || rc=1
    cmp -s "$w/id.arm64" "$w/id.host" \
      || { diff "$w/id.host" "$w/id.arm64"; say "FAILED: the arm64 machine id differs from the host's"; rc=1; }
  fi
  [ "$rc" = 0 ] && say "activate under qemu: --help, request, mistyped key (exit 3), machine-id$([ -x "$host" ] && echo ' (= the host build'"'"'s)'): ok"
  rm -rf "$w"
  return "$rc"
}

# Seconds since the epoch, to print how long a step took.
now() { date +%s; }

started=$(now)
if [ "$install" -eq 1 ]; then
  if [ "$bounded" -eq 1 ]; then
    [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null || skip "installing the cross toolchain needs root or sudo"
    bash scripts/deps.sh arm64 || skip "the cross toolchain, qemu-user or the :arm64 libraries could not be installed (apt output above)"
  else
    bash scripts/deps.sh arm64
  fi
fi
t_install=$(now)
[ "$install" -eq 0 ] || say "packages: $((t_install - started)) s"

t0=$(now)
cmake -S . -B "$BUILD" --toolchain cmake/toolchain-aarch64-linux-gnu.cmake \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPA_WERROR=ON >/dev/null
if [ "$bounded" -eq 1 ]; then
  regex="^($(IFS='|'; echo "${BOUNDED_TESTS[*]//./\\.}"))\$"
  targets=("${BOUNDED_TESTS[@]//./_}" activate)
else
  regex=""
  # The unit tests' programs are the ones ctest runs under the emulator.
  mapfile -t targets < <(ctest --test-dir "$BUILD" -L unit --show-only=json-v1 | python3 -c '
import json, os, sys
for t in json.load(sys.stdin)["tests"]:
    cmd = t["command"]
    if "qemu" in os.path.basename(cmd[0]):
        print(os.path.basename(cmd[1]))')
  # client.exported_symbols inspects the vendor archive and the CLI.
  targets+=(pa_activate_archive activate)
fi
cmake --build "$BUILD" -j"$JOBS" --target "${targets[@]}"
t1=$(now)
echo "== arm64 build (configure + ${#targets[@]} targets): $((t1 - t0)) s =="
file "$BUILD/client/activate"
file -b "$BUILD/client/activate" | grep -q 'ARM aarch64' || { say "FAILED: activate is not an aarch64 program"; exit 1; }

[ "$run" -eq 1 ] || exit 0
status=0
if [ "$bounded" -eq 1 ]; then
  ctest --test-dir "$BUILD" -R "$regex" -j"$JOBS" --output-on-failure || status=$?
  [ "$(ctest --test-dir "$BUILD" -R "$regex" -N | sed -n 's/^Total Tests: //p')" = "${#BOUNDED_TESTS[@]}" ] \
    || { say "FAILED: expected the ${#BOUNDED_TESTS[@]} tests ${BOUNDED_TESTS[*]}"; status=1; }
  check_cli "$BUILD/client/activate" || status=1
else
  ctest --test-dir "$BUILD" -L unit -j"$JOBS" --output-on-failure || status=$?
fi
t2=$(now)
echo "== arm64 tests under qemu-aarch64: $((t2 - t1)) s =="
echo "== arm64 total: $((t2 - started)) s (packages $((t_install - started)) s, build $((t1 - t0)) s, tests $((t2 - t1)) s) =="
exit "$status"
