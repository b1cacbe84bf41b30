#!/usr/bin/env bash
# Builds the .deb and .rpm packages and proves the .debs on a fresh Debian
# (README: "Packages and containers"):
#
#   1. installs the packaging tools if missing (scripts/deps.sh packages
#      containers: dpkg-dev, lintian, rpm, systemd, podman, debootstrap)
#   2. configures build/pkg for /usr, builds the programs and runs
#      `cpack -G DEB` (cmake/packaging.cmake: five packages, dependencies
#      from dpkg-shlibdeps) and prints each package's Depends
#   3. runs lintian on every .deb and prints its findings (they do not fail
#      the test; an error-free lintian is not claimed)
#   4. in a fresh Debian root (a podman container from the debootstrap base
#      image of scripts/podman-env.sh, with a network namespace of its own,
#      so the daemons keep their default ports) runs
#      scripts/packages-check-root.sh: install with apt, `systemd-analyze
#      verify` on every daemon unit, the users and conffiles, two Redis
#      instances and the three daemons as their units run them, a key
#      activated with the packaged `activate` over TLS and its audit
#      verdict, then purge and a check that nothing of ours is left
#   5. runs `cpack -G RPM` and checks each .rpm's contents and dependencies
#      (`rpm -qp --list`, `--requires`)
#
# Exit status: 0 passed, 1 failed, 77 skipped (not root, tools not
# installable, podman unable to run a container), 2 usage.
#
# Options:
#   --build-dir DIR   the packaging build tree (default build/pkg)
#   --cache-dir DIR   podman's image store (default /var/tmp/pa-containers,
#                     or PA_CONTAINERS_DIR), shared with containers-test.sh
#   -h, --help        this text
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SKIP=77

build_dir=$ROOT/build/pkg
cache=${PA_CONTAINERS_DIR:-/var/tmp/pa-containers}
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) [ $# -ge 2 ] || { echo "packages-test.sh: --build-dir needs a directory" >&2; exit 2; }
                 build_dir=$2; shift 2 ;;
    --cache-dir) [ $# -ge 2 ] || { echo "packages-test.sh: --cache-dir needs a directory" >&2; exit 2; }
                 cache=$2; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "packages-test.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf 'packages-test: %s\n' "$*"; }
skip() { say "SKIPPED: $*" >&2; exit "$SKIP"; }
fail() { say "FAILED: $*" >&2; exit 1; }
started=$(date +%s)
elapsed() { echo "$(($(date +%s) - started)) s"; }

[ "$(id -u)" -eq 0 ] || skip "installing packages into a root and running podman needs root; run this as root"
bash scripts/deps.sh packages containers || skip "the packaging tools could not be installed"
for t in cpack dpkg-shlibdeps lintian rpm podman debootstrap systemd-analyze; do
  command -v "$t" >/dev/null || skip "$t is not installed"
done

# --- build and package ---------------------------------------------------------
say "building into $build_dir"
cmake -S . -B "$build_dir" -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=gcc >/dev/null
nice -n 19 cmake --build "$build_dir" -j2 \
  --target activation-server audit-server admin-server keystore activate pa_activate_archive >/dev/null
OUT=$build_dir/packages
rm -rf "$OUT"; mkdir -p "$OUT"
(cd "$build_dir" && nice -n 19 cpack -G DEB -B "$OUT" >"$OUT/cpack-deb.log" 2>&1) \
  || { tail -30 "$OUT/cpack-deb.log" >&2; fail "cpack -G DEB failed"; }
mapfile -t DEBS < <(ls "$OUT"/*.deb)
[ "${#DEBS[@]}" = 5 ] || fail "expected 5 .deb packages, got ${#DEBS[@]}: ${DEBS[*]}"
for d in "${DEBS[@]}"; do
  say "$(dpkg-deb -f "$d" Package) $(dpkg-deb -f "$d" Version), $(($(stat -c %s "$d") / 1024)) KiB"
  say "  Depends: $(dpkg-deb -f "$d" Depends)"
done
# Library dependencies must have come from dpkg-shlibdeps.
dpkg-deb -f "$OUT"/pa-activation-server_*.deb Depends | grep -q libgrpc29 \
  || fail "pa-activation-server does not depend on libgrpc29 (dpkg-shlibdeps did not run?)"
dpkg-deb -f "$OUT"/pa-keystore_*.deb Depends | grep -q libhiredis \
  || fail "pa-keystore does not depend on libhiredis"
dpkg-deb -f "$OUT"/pa-client_*.deb Depends | grep -q libhiredis \
  && fail "pa-client depends on hiredis: the installer must not pull in server-side code"

# --- lintian ---------------------------------------------------------------------
say "lintian findings:"
lintian --tag-display-limit 0 "${DEBS[@]}" >"$OUT/lintian.txt" 2>&1 || true
sed 's/^/  /' "$OUT/lintian.txt"
say "lintian: $(grep -c '^E:' "$OUT/lintian.txt" || true) errors, $(grep -c '^W:' "$OUT/lintian.txt" || true) warnings"

# --- a fresh Debian root --------------------------------------------------------
PA_CACHE=$cache
. scripts/podman-env.sh
pa_podman_env
podman info >/dev/null 2>"$cache/podman-info.err" || skip "podman cannot start here: $(tail -1 "$cache/podman-info.err")"
pa_base_images
name=pa-pkgtest-$$
trap 'podman rm -f "$name" >/dev/null 2>&1 || true' EXIT
trap 'exit 1' INT TERM
say "installing into a fresh Debian root (container $name)"
podman run --name "$name" --rm --hostname pkgtest \
  -v "$OUT:/pkgs:ro" -v "$ROOT/scripts:/src/scripts:ro" -v "$ROOT/docker/redis:/src/docker/redis:ro" \
  "$PA_BASE" bash /src/scripts/packages-check-root.sh 2>&1 | sed 's/^/  /' | tee "$OUT/root.log"
grep -q '^  packages-check-root: PASSED' "$OUT/root.log" || fail "the packages did not work in the fresh root (above)"

# --- rpm ---------------------------------------------------------------------------
(cd "$build_dir" && nice -n 19 cpack -G RPM -B "$OUT" >"$OUT/cpack-rpm.log" 2>&1) \
  || { tail -30 "$OUT/cpack-rpm.log" >&2; fail "cpack -G RPM failed"; }
mapfile -t RPMS < <(ls "$OUT"/*.rpm)
[ "${#RPMS[@]}" = 5 ] || fail "expected 5 .rpm packages, got ${#RPMS[@]}"
for r in "${RPMS[@]}"; do
  say "$(rpm -qp --qf '%{NAME} %{VERSION}-%{RELEASE} %{ARCH}' "$r" 2>/dev/null), $(($(stat -c %s "$r") / 1024)) KiB"
  say "  files: $(rpm -qp --list "$r" 2>/dev/null | tr '\n' ' ')"
  say "  requires: $(rpm -qp --requires "$r" 2>/dev/null | grep -v '^rpmlib(' | tr '\n' ' ')"
done
# Each query into a file first: `grep -q` on a pipe may close it early,
# and with pipefail rpm's SIGPIPE would count as a failure.
rpm_q() {  # component, query option -> file
  local f=$OUT/rpm-$1$2
  rpm -qp "$2" "$(ls "$OUT"/pa-"$1"-[0-9]*.rpm)" 2>/dev/null >"$f"
  echo "$f"
}
grep -qx /usr/bin/activation-server "$(rpm_q activation-server --list)" \
  || fail "the activation-server rpm lacks /usr/bin/activation-server"
grep -qx /usr/lib/systemd/system/pa-activation-server.service "$(rpm_q activation-server --list)" \
  || fail "the activation-server rpm lacks its unit"
grep -qx /etc/product-activation/activation-server.conf "$(rpm_q activation-server --configfiles)" \
  || fail "the activation-server rpm does not mark its configuration as %config"
grep -q '^libgrpc.so.29' "$(rpm_q activation-server --requires)" \
  || fail "the activation-server rpm does not require libgrpc.so.29"
grep -q '/libpa_activate.a$' "$(rpm_q client --list)" || fail "the client rpm lacks libpa_activate.a"
grep -q hiredis "$(rpm_q client --requires)" && fail "the client rpm requires hiredis"

say "PASSED: 5 .deb (installed, run, purged clean) and 5 .rpm ($(elapsed))"
