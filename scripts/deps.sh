#!/usr/bin/env bash
# Installs the Debian packages the project needs, and only those missing.
# Used by scripts/run.sh and scripts/test.sh; safe to run again.
#
# Usage: scripts/deps.sh [GROUP...]
# Without a group: what building, running and testing need. Optional
# groups, each used only by its own script:
#   containers   podman and podman-compose to run docker/ (scripts/containers-test.sh)
#   packages     the .deb/.rpm tools and a root to install into (scripts/packages-test.sh)
#   arm64        the arm64 architecture in dpkg, the cross toolchain, qemu-user
#                and the :arm64 -dev packages (scripts/cross-arm64.sh)
# apt waits up to 10 minutes for another apt or dpkg to finish rather than
# failing at once on its lock (several installs may run on one machine).
set -euo pipefail

PACKAGES=(
  # build
  gcc clang cmake make pkg-config libclang-rt-14-dev clang-format git binutils
  # libraries
  libgrpc-dev libprotobuf-c-dev protobuf-c-compiler libssl-dev libhiredis-dev
  libcmocka-dev libmicrohttpd-dev libc-ares-dev libjansson-dev libargon2-dev libxlsxwriter-dev
  libcurl4-openssl-dev
  # DNS-SD over mDNS (the on-premises server's announcement, the client's browse)
  libavahi-client-dev
  # servers and tools the system and its tests run for real
  redis-server openssl dnsmasq-base procps iproute2
  # client.mdns: a D-Bus system bus and an Avahi daemon in each network namespace
  dbus avahi-daemon avahi-utils
  # interop clients that are not ours (Python and Node.js)
  python3 python3-grpcio python3-protobuf protobuf-compiler nodejs npm
  # the console's browser test and the XLSX read-back
  chromium python3-openpyxl
)
# runc: crun refuses the cgroup v1 layout of some hosts; netavark and
# aardvark-dns give compose's network its service names, and netavark sets
# the containers' bridge up with iptables (only recommended, so not pulled
# in: without it every container with a network fails with "netavark: No
# such file or directory").
CONTAINER_PACKAGES=(podman podman-compose runc netavark aardvark-dns iptables debootstrap curl openssl python3)
# file: CPack finds the ELF files for dpkg-shlibdeps with it.
PACKAGE_PACKAGES=(dpkg-dev file lintian rpm debootstrap systemd)
# The libraries of CMakeLists.txt's pkg_check_modules, as arm64 packages
# (Multi-Arch: each must have the version of its installed host twin, so
# apt may upgrade host packages to the release's current security update).
# libc6:arm64 gives qemu the multiarch loader (/lib/ld-linux-aarch64.so.1).
# Host tools: code generation (protoc-c) runs on the build machine, and
# admin.export_writers reads its XLSX back with the host's openpyxl.
ARM64_PACKAGES=(crossbuild-essential-arm64 cmake pkg-config protobuf-c-compiler python3-openpyxl file)
for p in libc6 libgrpc-dev libprotobuf-c-dev libssl-dev libhiredis-dev libcmocka-dev libmicrohttpd-dev \
  libc-ares-dev libjansson-dev libargon2-dev libxlsxwriter-dev libcurl4-openssl-dev libavahi-client-dev; do
  ARM64_PACKAGES+=("$p:arm64")
done
# Either qemu-user or qemu-user-static will do.
command -v qemu-aarch64 >/dev/null || command -v qemu-aarch64-static >/dev/null || ARM64_PACKAGES+=(qemu-user)

[ $# -eq 0 ] || PACKAGES=()
for group in "$@"; do
  case "$group" in
    containers) PACKAGES+=("${CONTAINER_PACKAGES[@]}") ;;
    packages) PACKAGES+=("${PACKAGE_PACKAGES[@]}") ;;
    arm64) PACKAGES+=("${ARM64_PACKAGES[@]}") ;;
    *) echo "deps.sh: unknown group '$group' (containers, packages, arm64)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# A node/npm outside Debian's packages (e.g. preinstalled) is fine too.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs/}"); missing=("${missing[@]/npm/}")
fi
read -r -a missing <<<"${missing[*]:-}"

[ "${#missing[@]}" -gt 0 ] || exit 0
echo "deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
APT=(-q -o DPkg::Lock::Timeout=600)
# A foreign architecture's packages need it in dpkg before apt lists them.
if [[ " ${missing[*]}" == *:arm64* ]] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "deps: adding the arm64 architecture to dpkg" >&2
  $SUDO dpkg --add-architecture arm64
fi
$SUDO apt-get update "${APT[@]}"
$SUDO apt-get install -y "${APT[@]}" --no-install-recommends "${missing[@]}"
# Co-installation is checked, not assumed: each package asked for is there
# now (a :arm64 one beside its host twin).
refused=()
for p in "${missing[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || refused+=("$p")
done
if [ "${#refused[@]}" -gt 0 ]; then
  echo "deps: not installed after apt-get install: ${refused[*]}" >&2
  exit 1
fi
