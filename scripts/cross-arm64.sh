#!/usr/bin/env bash
# Builds for 64-bit Arm (aarch64) on an x86-64 Debian machine and runs the
# unit tests under qemu-user (README: "Building for arm64"). Slow, and not
# part of scripts/test.sh.
#
#   1. installs what is missing: the arm64 architecture in dpkg, Debian's
#      cross toolchain (crossbuild-essential-arm64), qemu-user, and the
#      :arm64 -dev packages of every library CMake looks for, and the host
#      tools the x86-64 build uses too (protoc-c)
#   2. configures build/arm64 with cmake/toolchain-aarch64-linux-gnu.cmake
#   3. builds only what the unit tests need (the tests' programs, and
#      libpa_activate.a and the activate CLI for client.exported_symbols)
#   4. runs `ctest -L unit` under qemu-aarch64 and prints the times
#
# Options: --no-install  skip step 1;  --build-only  skip step 4.
# Multi-Arch: the :arm64 -dev packages must have the same version as their
# installed host twins, so apt may upgrade host packages to the archive's
# current version (security updates of the same release) on the way.
set -euo pipefail
cd "$(dirname "$0")/.."

install=1 run=1
for a in "$@"; do
  case "$a" in
    --no-install) install=0 ;;
    --build-only) run=0 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cross-arm64.sh: unknown option '$a' (try --help)" >&2; exit 2 ;;
  esac
done

BUILD=build/arm64
JOBS=${JOBS:-$(nproc)}
# The libraries of CMakeLists.txt's pkg_check_modules, as arm64 packages.
# libc6:arm64 gives qemu the multiarch loader (/lib/ld-linux-aarch64.so.1).
ARM64_LIBS=(
  libc6 libgrpc-dev libprotobuf-c-dev libssl-dev libhiredis-dev libcmocka-dev libmicrohttpd-dev
  libc-ares-dev libjansson-dev libargon2-dev libxlsxwriter-dev libcurl4-openssl-dev libavahi-client-dev
)
# Host tools: admin.export_writers reads its XLSX back with the host's openpyxl.
HOST_TOOLS=(crossbuild-essential-arm64 cmake pkg-config protobuf-c-compiler python3-openpyxl)
# Either qemu-user or qemu-user-static will do.
command -v qemu-aarch64 >/dev/null || command -v qemu-aarch64-static >/dev/null || HOST_TOOLS+=(qemu-user)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

install_missing() {
  local SUDO="" missing=() p
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    echo "cross-arm64: adding the arm64 architecture to dpkg" >&2
    $SUDO dpkg --add-architecture arm64
    $SUDO apt-get update -q
  fi
  for p in "${HOST_TOOLS[@]}"; do installed "$p" || missing+=("$p"); done
  for p in "${ARM64_LIBS[@]}"; do installed "$p:arm64" || missing+=("$p:arm64"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  echo "cross-arm64: installing ${missing[*]}" >&2
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  # Co-installation is checked, not assumed: each :arm64 package must now
  # be there beside its host twin.
  local refused=()
  for p in "${ARM64_LIBS[@]}"; do installed "$p:arm64" || refused+=("$p:arm64"); done
  if [ "${#refused[@]}" -gt 0 ]; then
    echo "cross-arm64: not co-installable beside the host's packages: ${refused[*]}" >&2
    exit 1
  fi
}

# Seconds since the epoch, to print how long a step took.
now() { date +%s; }

[ "$install" -eq 1 ] && install_missing

t0=$(now)
cmake -S . -B "$BUILD" --toolchain cmake/toolchain-aarch64-linux-gnu.cmake \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPA_WERROR=ON >/dev/null
# The unit tests' programs are the ones ctest runs under the emulator.
mapfile -t targets < <(ctest --test-dir "$BUILD" -L unit --show-only=json-v1 | python3 -c '
import json, os, sys
for t in json.load(sys.stdin)["tests"]:
    cmd = t["command"]
    if "qemu" in os.path.basename(cmd[0]):
        print(os.path.basename(cmd[1]))')
# client.exported_symbols inspects the vendor archive and the CLI.
targets+=(pa_activate_archive activate)
cmake --build "$BUILD" -j"$JOBS" --target "${targets[@]}"
t1=$(now)
echo "== arm64 build (configure + ${#targets[@]} targets): $((t1 - t0)) s =="
file "$BUILD/client/activate"

[ "$run" -eq 1 ] || exit 0
status=0
ctest --test-dir "$BUILD" -L unit -j"$JOBS" --output-on-failure || status=$?
t2=$(now)
echo "== arm64 unit tests under qemu-aarch64: $((t2 - t1)) s =="
exit "$status"
