#!/usr/bin/env bash
# Builds the .deb and .rpm packages and proves the .debs on a fresh Debian
# (README: "Packages and containers"):
#
#   1. installs the packaging tools if missing (scripts/deps.sh packages
#      containers: dpkg-dev, lintian, rpm, systemd, podman, debootstrap)
#   2. configures build/pkg for /usr, builds the programs and runs
#      `cpack -G DEB` (cmake/packaging.cmake: five packages, dependencies
#      from dpkg-shlibdeps); checks each package's files (`dpkg-deb -c`)
#      and control data (`dpkg-deb -I`: Depends, conffiles, maintainer
#      scripts), and that pa-client depends on no server library
#   3. runs lintian on every .deb and prints its findings; an error (E:)
#      fails the test, warnings do not
#   4. runs `cpack -G RPM` and checks each .rpm's contents and dependencies
#      (`rpm -qp --list`, `--requires`)
#   5. in a fresh Debian root (a podman container from the debootstrap base
#      image of scripts/podman-env.sh, with a network namespace of its own,
#      so the daemons keep their default ports) runs
#      scripts/packages-check-root.sh: install with apt, `systemd-analyze
#      verify` on every daemon unit, the users and conffiles, two Redis
#      instances and the three daemons as their units run them, a key
#      activated with the packaged `activate` over TLS and its audit
#      verdict, then purge and a check that nothing of ours is left
#
# Steps 3, 4 and 5 run at once (lintian here, the other two in the
# background), each one's output printed in that order when it is done.
#
# --bounded (scripts/test.sh runs this): the same checks, made quick. The
# packages come from the suite's own gcc tree (build/release, which
# scripts/test.sh configures for /usr; only the packaged targets are built
# if missing), not from a tree of their own, and the fresh root's apt keeps
# the .debs it downloads and its package lists in the cache directory, so a
# second run downloads next to nothing. Where Debian's mirror cannot be
# reached (debootstrap and the root's apt need it) or podman cannot run,
# step 5 is skipped after steps 1-4 and the exit status is 77.
#
# Exit status: 0 passed, 1 failed, 77 skipped (not root, tools not
# installable, podman unable to run a container, no mirror), 2 usage.
#
# Options:
#   --bounded         as above
#   --build-dir DIR   the packaging build tree (default build/pkg;
#                     with --bounded build/release)
#   --cache-dir DIR   podman's image store and the root's apt cache (default
#                     /var/tmp/pa-containers, or PA_CONTAINERS_DIR), shared
#                     with containers-test.sh
#   -h, --help        this text
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SKIP=77

bounded=0
build_dir=""
cache=${PA_CONTAINERS_DIR:-/var/tmp/pa-containers}
while [ $# -gt 0 ]; do
  case "$1" in
    --bounded) bounded=1; shift ;;
    --build-dir) [ $# -ge 2 ] || { echo "packages-test.sh: --build-dir needs a directory" >&2; exit 2; }
                 build_dir=$2; shift 2 ;;
    --cache-dir) [ $# -ge 2 ] || { echo "packages-test.sh: --cache-dir needs a directory" >&2; exit 2; }
                 cache=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "packages-test.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$build_dir" ]; then
  build_dir=$ROOT/build/pkg
  [ "$bounded" = 0 ] || build_dir=$ROOT/build/release
fi

say() { printf 'packages-test: %s\n' "$*"; }
skip() { say "SKIPPED: $*" >&2; exit "$SKIP"; }
fail() { say "FAILED: $*" >&2; exit 1; }
started=$(date +%s)
elapsed() { echo "$(($(date +%s) - started)) s"; }
lap=$started
step_done() {  # what was done: prints it with the seconds it took
  local now; now=$(date +%s)
  say "$1: $((now - lap)) s"
  lap=$now
}

[ "$(id -u)" -eq 0 ] || skip "installing packages into a root and running podman needs root; run this as root"
bash scripts/deps.sh packages containers || skip "the packaging tools could not be installed"
for t in cpack dpkg-shlibdeps lintian rpm podman debootstrap systemd-analyze curl; do
  command -v "$t" >/dev/null || skip "$t is not installed"
done
step_done "tools"

# --- build and package ---------------------------------------------------------
# The full run yields the CPU to whatever else runs; the bounded one runs
# beside the arm64 build (scripts/slow-bounded.sh) and must not wait for it.
NICE=(nice -n 19)
[ "$bounded" = 0 ] || NICE=(env)
PACKAGED=(activation-server audit-server admin-server keystore activate pa_activate_archive)
# What packaging needs of a tree: the /usr prefix, and cpack's install step
# not building every target first (`preinstall` would then walk the whole
# tree, about 20 s per generator even when all is built): the packaged
# programs are built just below. Neither changes a compiled file.
PKG_FLAGS=(-DCMAKE_INSTALL_PREFIX:PATH=/usr -DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY:BOOL=ON)
if [ "$bounded" = 1 ] && [ -f "$build_dir/CMakeCache.txt" ]; then
  say "packaging the tree $build_dir"
  { grep -qx 'CMAKE_INSTALL_PREFIX:PATH=/usr' "$build_dir/CMakeCache.txt" \
      && grep -Eqx 'CMAKE_SKIP_INSTALL_ALL_DEPENDENCY:[A-Z]+=ON' "$build_dir/CMakeCache.txt"; } \
    || cmake -S . -B "$build_dir" "${PKG_FLAGS[@]}" >/dev/null
elif [ "$bounded" = 1 ]; then
  say "building the packaged programs into $build_dir, configured as scripts/test.sh does"
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc -DPA_WERROR=ON \
    "${PKG_FLAGS[@]}" >/dev/null
else
  say "building into $build_dir"
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=gcc "${PKG_FLAGS[@]}" >/dev/null
fi
"${NICE[@]}" cmake --build "$build_dir" -j"$(nproc)" --target "${PACKAGED[@]}" >"$build_dir/packages-build.log" 2>&1 \
  || { tail -30 "$build_dir/packages-build.log" >&2; fail "building the packaged programs failed"; }
OUT=$build_dir/packages
rm -rf "$OUT"; mkdir -p "$OUT"
step_done "programs built"
(cd "$build_dir" && "${NICE[@]}" cpack -G DEB -B "$OUT" >"$OUT/cpack-deb.log" 2>&1) \
  || { tail -30 "$OUT/cpack-deb.log" >&2; fail "cpack -G DEB failed"; }
mapfile -t DEBS < <(ls "$OUT"/*.deb)
[ "${#DEBS[@]}" = 5 ] || fail "expected 5 .deb packages, got ${#DEBS[@]}: ${DEBS[*]}"
for d in "${DEBS[@]}"; do
  say "$(dpkg-deb -f "$d" Package) $(dpkg-deb -f "$d" Version), $(($(stat -c %s "$d") / 1024)) KiB"
  say "  Depends: $(dpkg-deb -f "$d" Depends)"
done
step_done "cpack -G DEB"

# Each listing into a file first: `grep -q` on a pipe may close it early,
# and with pipefail the writer's SIGPIPE would count as a failure.
deb_of() { ls "$OUT"/pa-"$1"_[0-9]*.deb; }
deb_list() {  # component -> file with the package's paths, one a line, without the leading "."
  local f=$OUT/deb-$1.list
  dpkg-deb -c "$(deb_of "$1")" | awk '{ sub(/^\./, "", $6); print $6 }' >"$f"
  echo "$f"
}
deb_info() {  # component -> file with `dpkg-deb -I` (control fields and the member list)
  local f=$OUT/deb-$1.info
  dpkg-deb -I "$(deb_of "$1")" >"$f"
  echo "$f"
}
deb_has() {  # component, path
  grep -qx "$2" "$(deb_list "$1")" || fail "pa-$1 lacks $2"
}
for d in activation-server audit-server admin-server; do
  deb_has "$d" "/usr/bin/$d"
  deb_has "$d" "/usr/lib/systemd/system/pa-$d.service"
  deb_has "$d" "/etc/product-activation/$d.conf"
  deb_has "$d" "/usr/share/doc/pa-$d/copyright"
  info=$(deb_info "$d")
  for member in postinst prerm postrm conffiles; do
    grep -Eq "^ +[0-9]+ bytes, +[0-9]+ lines +\*? *$member( |$)" "$info" || fail "pa-$d has no $member"
  done
  dpkg-deb --ctrl-tarfile "$(deb_of "$d")" | tar -xO ./conffiles | grep -qx "/etc/product-activation/$d.conf" \
    || fail "pa-$d does not mark /etc/product-activation/$d.conf as a conffile"
  grep -q '^ Depends:.*adduser' "$info" || fail "pa-$d does not depend on adduser (its postinst runs it)"
done
deb_has keystore /usr/bin/keystore
deb_has client /usr/bin/activate
deb_has client /usr/include/activate.h
grep -q '/libpa_activate\.a$' "$(deb_list client)" || fail "pa-client lacks libpa_activate.a"
deb_has client /usr/lib/systemd/system/activate.service
# Library dependencies must have come from dpkg-shlibdeps.
grep -q '^ Depends:.*libgrpc29' "$(deb_info activation-server)" \
  || fail "pa-activation-server does not depend on libgrpc29 (dpkg-shlibdeps did not run?)"
grep -q '^ Depends:.*libhiredis' "$(deb_info keystore)" || fail "pa-keystore does not depend on libhiredis"
grep -q '^ Depends:.*libmicrohttpd' "$(deb_info admin-server)" || fail "pa-admin-server does not depend on libmicrohttpd"
if grep -Eq '^ Depends:.*(libhiredis|libmicrohttpd|libargon2|libxlsxwriter)' "$(deb_info client)"; then
  fail "pa-client depends on a server library: the installer must not pull in server-side code"
fi
say "contents and control data of the five .debs: ok (pa-client depends on no server library)"

# --- the rest at once -----------------------------------------------------------
# lintian, `cpack -G RPM` and the fresh root need only the .debs and each
# other's nothing, so the two last run in the background while lintian runs
# here; their output is printed when each is done, in this order.
root_skip=""
if ! curl -sfI --max-time 20 http://deb.debian.org/debian/dists/bookworm/InRelease >/dev/null; then
  # Both debootstrap and the root's apt fetch from Debian's mirror.
  root_skip="Debian's mirror (deb.debian.org) cannot be reached"
else
  PA_CACHE=$cache
  . scripts/podman-env.sh
  pa_podman_env
  podman info >/dev/null 2>"$cache/podman-info.err" \
    || root_skip="podman cannot start here: $(tail -1 "$cache/podman-info.err")"
fi
name=pa-pkgtest-$$
jobs_started=()
cleanup() {
  local p
  for p in "${jobs_started[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$root_skip" ] || podman rm -f "$name" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# cpack -G RPM, in the background: its log and exit status into $OUT.
(cd "$build_dir" && "${NICE[@]}" cpack -G RPM -B "$OUT" >"$OUT/cpack-rpm.log" 2>&1; echo $? >"$OUT/cpack-rpm.rc") &
jobs_started+=($!); rpm_pid=$!

# The fresh root, in the background: the base image (debootstrap once),
# then packages-check-root.sh in a container. Its output into root.log.
fresh_root() {
  local t; t=$(date +%s)
  pa_base_images
  # The root's downloaded .debs and package lists survive in the cache (apt
  # checks them against the mirror's signed index as it would its own).
  mkdir -p "$cache/pkgtest-apt/archives/partial" "$cache/pkgtest-apt/lists/partial"
  say "base image ready; installing into a fresh Debian root (container $name)"
  podman run --name "$name" --rm --hostname pkgtest \
    -v "$OUT:/pkgs:ro" -v "$ROOT/scripts:/src/scripts:ro" -v "$ROOT/docker/redis:/src/docker/redis:ro" \
    -v "$cache/pkgtest-apt/archives:/var/cache/apt/archives" -v "$cache/pkgtest-apt/lists:/var/lib/apt/lists" \
    "$PA_BASE" bash /src/scripts/packages-check-root.sh 2>&1 | sed 's/^/  /'
  say "fresh root (base image, install, run, activate, purge): $(($(date +%s) - t)) s"
}
if [ -z "$root_skip" ]; then
  fresh_root >"$OUT/root.log" 2>&1 &
  jobs_started+=($!); root_pid=$!
fi

# --- lintian ---------------------------------------------------------------------
say "lintian findings:"
lintian --tag-display-limit 0 "${DEBS[@]}" >"$OUT/lintian.txt" 2>&1 || true
sed 's/^/  /' "$OUT/lintian.txt"
lintian_errors=$(grep -c '^E:' "$OUT/lintian.txt" || true)
say "lintian: $lintian_errors errors, $(grep -c '^W:' "$OUT/lintian.txt" || true) warnings"
step_done "lintian"

# --- rpm ---------------------------------------------------------------------------
wait "$rpm_pid" || true
[ "$(cat "$OUT/cpack-rpm.rc" 2>/dev/null)" = 0 ] || { tail -30 "$OUT/cpack-rpm.log" >&2; fail "cpack -G RPM failed"; }
mapfile -t RPMS < <(ls "$OUT"/*.rpm)
[ "${#RPMS[@]}" = 5 ] || fail "expected 5 .rpm packages, got ${#RPMS[@]}"
for r in "${RPMS[@]}"; do
  say "$(rpm -qp --qf '%{NAME} %{VERSION}-%{RELEASE} %{ARCH}' "$r" 2>/dev/null), $(($(stat -c %s "$r") / 1024)) KiB"
  say "  files: $(rpm -qp --list "$r" 2>/dev/null | tr '\n' ' ')"
  say "  requires: $(rpm -qp --requires "$r" 2>/dev/null | grep -v '^rpmlib(' | tr '\n' ' ')"
done
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
grep -Eq 'hiredis|microhttpd' "$(rpm_q client --requires)" && fail "the client rpm requires a server library"
step_done "cpack -G RPM and its checks (begun with lintian)"
# A lintian error fails the test, but only now: the .rpm findings above are
# worth seeing too, and the root below has been running meanwhile.
[ "$lintian_errors" = 0 ] || fail "lintian found $lintian_errors errors (above)"

# --- a fresh Debian root --------------------------------------------------------
[ -z "$root_skip" ] || skip ".debs and .rpms checked, but not installed and run: $root_skip ($(elapsed))"
rc=0; wait "$root_pid" || rc=$?
cat "$OUT/root.log"
grep -q '^  packages-check-root: PASSED' "$OUT/root.log" || fail "the packages did not work in the fresh root (above; exit $rc)"
step_done "waited for the fresh root"

say "PASSED: 5 .deb (installed, run, purged clean) and 5 .rpm ($(elapsed))"
