#!/usr/bin/env bash
# The systemd units of client/systemd pass `systemd-analyze verify` without a
# single complaint about them: each unit is configured as CMake installs it
# (@CMAKE_INSTALL_FULL_BINDIR@ pointing at the built `activate`, which verify
# requires to exist) into a scratch directory and verified there; any line of
# output that names one of our units fails the test. Lines about the host's
# own units are not ours to fix and are ignored. A deliberately broken copy
# is verified first, to show the check does catch a warning.
#   systemd_verify.sh UNIT_SOURCE_DIR ACTIVATE_BINARY
set -euo pipefail
src=$1 activate=$2
if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze is not installed"
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bindir=$(cd "$(dirname "$activate")" && pwd)

# Verifies the given units; prints every output line that names one of them.
complaints() {
  local names
  names=$(for u in "$@"; do basename "$u"; done | paste -sd'|')
  { systemd-analyze verify --man=no "$@" 2>&1 || true; } | grep -E "(^|/)($names)" || true
}

mkdir "$work/control"
sed "s|@CMAKE_INSTALL_FULL_BINDIR@|$bindir|g" "$src/activate.service.in" >"$work/control/activate-control.service"
printf '[Service]\nNoSuchSetting=yes\n' >>"$work/control/activate-control.service"
if [ -z "$(complaints "$work/control/activate-control.service")" ]; then
  echo "FAIL: a unit with an unknown setting passed verify: the check cannot see warnings"
  exit 1
fi

units=()
for f in "$src"/*; do
  name=$(basename "$f" .in)
  sed "s|@CMAKE_INSTALL_FULL_BINDIR@|$bindir|g" "$f" >"$work/$name"
  units+=("$work/$name")
done
echo "verifying: ${units[*]##*/}"
found=$(complaints "${units[@]}")
if [ -n "$found" ]; then
  echo "FAIL: systemd-analyze verify complains about our units:"
  echo "$found"
  exit 1
fi
grep -q 'activate --non-interactive --wait-online 120 maintain --key-file /var/lib/activate/product-key' \
  "$work/activate-boot.service" || { echo "FAIL: activate-boot.service does not run the boot step"; exit 1; }
echo "ok: ${#units[@]} units verify cleanly"
