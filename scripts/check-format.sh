#!/usr/bin/env bash
# Checks that the C lines changed since BASE follow .clang-format; prints the
# fix as a diff and exits 1 when they do not. Lines nobody touched are left
# as they are: the rule applies to code as it is changed.
#
#   scripts/check-format.sh [BASE]
#
# BASE defaults to the commit that added .clang-format, so every line
# written or changed since then is checked. Run by scripts/test.sh (CI).
# To fix: git clang-format BASE  (formats only the changed lines).
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
base=${1:-$(git log --diff-filter=A --format=%H -- .clang-format | tail -n 1)}
if [ -z "$base" ]; then
  echo "check-format: .clang-format is not committed; nothing to compare against" >&2
  exit 2
fi
fmt=$(command -v git-clang-format || command -v git-clang-format-14 || true)
if [ -z "$fmt" ]; then
  echo "check-format: git-clang-format not found (Debian package clang-format)" >&2
  exit 2
fi
out=$("$fmt" --binary "$(command -v clang-format)" --style file --extensions c,h --diff "$base" -- \
  ':!build' 2>&1) || true
if grep -q '^diff ' <<<"$out"; then
  echo "check-format: lines changed since ${base:0:12} do not follow .clang-format:"
  echo "$out"
  exit 1
fi
echo "check-format: lines changed since ${base:0:12} follow .clang-format"
