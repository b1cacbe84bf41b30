#!/usr/bin/env bash
# The bounded versions of the slow suites, one after the other, as the last
# step of scripts/test.sh (so CI runs them; docs/testing.md, "What CI runs"):
#
#   packages     scripts/packages-test.sh --bounded: the .debs and .rpms
#                from the suite's gcc tree, checked, lintian, installed and
#                run in a fresh Debian root, purged
#   arm64        scripts/cross-arm64.sh --bounded: the byte-order-sensitive
#                unit tests and the activate CLI, cross-built, under qemu-user
#   containers   scripts/containers-test.sh --bounded: the images built and
#                the compose deployment run
#
# Each gets a heading and its time. Exit 77 from one is "skipped" (its
# reason is in its output, and repeated in the summary); any other non-zero
# exit fails this script, after the others have run. The full versions run
# on their own: the same scripts without --bounded.
#
# Usage: scripts/slow-bounded.sh [NAME...]   (default: all three, in that order)
# Environment: PA_CONTAINERS_DIR, the image store and Debian base image
# both podman users share (default /var/tmp/pa-containers).
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A SCRIPT=([packages]=scripts/packages-test.sh [arm64]=scripts/cross-arm64.sh
                   [containers]=scripts/containers-test.sh)
names=("$@")
[ "${#names[@]}" -gt 0 ] || names=(packages arm64 containers)
for n in "${names[@]}"; do
  [ -n "${SCRIPT[$n]:-}" ] || { echo "slow-bounded.sh: unknown suite '$n' (packages, arm64, containers)" >&2; exit 2; }
done

summary=() failed=0
all_started=$(date +%s)
for n in "${names[@]}"; do
  log=$(mktemp)
  echo
  echo "== bounded slow suite: $n (${SCRIPT[$n]} --bounded) =="
  started=$(date +%s)
  rc=0
  bash "${SCRIPT[$n]}" --bounded 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
  took=$(($(date +%s) - started))
  case "$rc" in
    0) result="passed" ;;
    77) result="SKIPPED: $(grep -m1 -o 'SKIPPED: .*' "$log" | sed 's/^SKIPPED: //' || echo 'no reason given')" ;;
    *) result="FAILED (exit $rc)"; failed=1 ;;
  esac
  rm -f "$log"
  echo "== $n: $result, $took s =="
  summary+=("$(printf '%-11s %4d s  %s' "$n" "$took" "$result")")
done
echo
echo "== bounded slow suites: $(($(date +%s) - all_started)) s =="
printf '  %s\n' "${summary[@]}"
exit "$failed"
