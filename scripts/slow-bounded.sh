#!/usr/bin/env bash
# The bounded versions of the slow suites, the last step of scripts/test.sh
# (so CI runs them; docs/testing.md, "What CI runs"):
#
#   packages     scripts/packages-test.sh --bounded: the .debs and .rpms
#                from the suite's gcc tree, checked, lintian, installed and
#                run in a fresh Debian root, purged
#   arm64        scripts/cross-arm64.sh --bounded: the byte-order-sensitive
#                unit tests and the activate CLI, cross-built, under qemu-user
#   containers   scripts/containers-test.sh --bounded: the images built and
#                the compose deployment run
#
# The packages every chosen suite needs are installed first, one apt run
# after another (scripts/deps.sh); then packages and arm64 run side by side
# (the one waits mostly on the mirror and dpkg, the other compiles), each
# into a log printed under its heading when both are done, and containers
# runs alone after them (its build stage compiles too), its output as it
# comes. Exit 77 from one is
# "skipped": its reason is printed and repeated in the summary; any other
# non-zero exit fails this script, after the others have run. The full
# versions run on their own: the same scripts without --bounded.
#
# Usage: scripts/slow-bounded.sh [NAME...]   (default: all three)
# Environment: PA_CONTAINERS_DIR, the image store and Debian base image
# both podman users share (default /var/tmp/pa-containers).
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A SCRIPT=([packages]=scripts/packages-test.sh [arm64]=scripts/cross-arm64.sh
                   [containers]=scripts/containers-test.sh)
declare -A DEPS=([packages]="packages containers" [arm64]=arm64 [containers]=containers)
case "${1:-}" in -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;; esac
names=("$@")
[ "${#names[@]}" -gt 0 ] || names=(packages arm64 containers)
for n in "${names[@]}"; do
  [ -n "${SCRIPT[$n]:-}" ] || { echo "slow-bounded.sh: unknown suite '$n' (packages, arm64, containers)" >&2; exit 2; }
done
chosen() { [[ " ${names[*]} " == *" $1 "* ]]; }

all_started=$(date +%s)
LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT

# One apt at a time: the suites would otherwise queue on dpkg's lock. A
# failure here is left to the suite, which skips with the reason.
groups=()
for n in "${names[@]}"; do read -r -a g <<<"${DEPS[$n]}"; groups+=("${g[@]}"); done
echo "== bounded slow suites: what ${names[*]} need (scripts/deps.sh ${groups[*]}) =="
bash scripts/deps.sh "${groups[@]}" || echo "(installing failed; each suite tries again and says why)"

declare -A RESULT TOOK
heading() { echo; echo "== bounded slow suite: $1 (${SCRIPT[$1]} --bounded) =="; }
run_one() {  # name [tee]: runs it into $LOGS/NAME.log (and the terminal), its exit status into NAME.rc
  local started rc=0
  started=$(date +%s)
  if [ "${2:-}" = tee ]; then
    bash "${SCRIPT[$1]}" --bounded 2>&1 | tee "$LOGS/$1.log" || rc=${PIPESTATUS[0]}
  else
    bash "${SCRIPT[$1]}" --bounded >"$LOGS/$1.log" 2>&1 || rc=$?
  fi
  echo "$rc $(($(date +%s) - started))" >"$LOGS/$1.rc"
}
report() {  # name: its result line (and its log, unless printed already)
  local rc took result
  read -r rc took <"$LOGS/$1.rc"
  [ "${2:-}" = printed ] || { heading "$1"; cat "$LOGS/$1.log"; }
  case "$rc" in
    0) result="passed" ;;
    77) result="SKIPPED: $(grep -m1 -o 'SKIPPED: .*' "$LOGS/$1.log" | sed 's/^SKIPPED: //' || echo 'no reason given')" ;;
    *) result="FAILED (exit $rc)" ;;
  esac
  RESULT[$1]=$result TOOK[$1]=$took
  echo "== $1: $result, $took s =="
}

side=()
for n in packages arm64; do chosen "$n" && side+=("$n"); done
if [ "${#side[@]}" -gt 0 ]; then
  echo "== bounded slow suites: ${side[*]} side by side; each one's output follows when all are done =="
  pids=()
  for n in "${side[@]}"; do run_one "$n" & pids+=($!); done
  wait "${pids[@]}"
  for n in "${side[@]}"; do report "$n"; done
fi
if chosen containers; then
  heading containers
  run_one containers tee
  report containers printed
fi

echo
echo "== bounded slow suites: $(($(date +%s) - all_started)) s =="
failed=0
for n in "${names[@]}"; do
  printf '  %-11s %4d s  %s\n' "$n" "${TOOK[$n]}" "${RESULT[$n]}"
  case "${RESULT[$n]}" in passed|SKIPPED*) ;; *) failed=1 ;; esac
done
exit "$failed"
