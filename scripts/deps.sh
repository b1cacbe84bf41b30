#!/usr/bin/env bash
# Installs the Debian packages the project needs, and only those missing.
# Used by scripts/run.sh and scripts/test.sh; safe to run again.
#
# Usage: scripts/deps.sh [GROUP...]
# Without a group: what building, running and testing need. Optional
# groups, each used only by its own script:
#   containers   podman and podman-compose to run docker/ (scripts/containers-test.sh)
#   packages     the .deb/.rpm tools and a root to install into (scripts/packages-test.sh)
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
# aardvark-dns give compose's network its service names.
CONTAINER_PACKAGES=(podman podman-compose runc netavark aardvark-dns debootstrap curl openssl python3)
# file: CPack finds the ELF files for dpkg-shlibdeps with it.
PACKAGE_PACKAGES=(dpkg-dev file lintian rpm debootstrap systemd)

[ $# -eq 0 ] || PACKAGES=()
for group in "$@"; do
  case "$group" in
    containers) PACKAGES+=("${CONTAINER_PACKAGES[@]}") ;;
    packages) PACKAGES+=("${PACKAGE_PACKAGES[@]}") ;;
    *) echo "deps.sh: unknown group '$group' (containers, packages)" >&2; exit 2 ;;
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

if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  # Another apt run (unattended upgrades, a parallel install) holds the lock
  # for a while: wait for it rather than fail.
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
fi
