#!/usr/bin/env bash
# Builds the admin server's web console: console/ -> console/dist
# (docs/admin.md, "Web console"), which `admin-server --console-dir` serves.
#
#   1. `npm ci` in console/ when node_modules is missing or was installed
#      from another package-lock.json (a stamp records which); with a
#      matching node_modules nothing is fetched, so it works offline
#   2. `npm run build` (vite) into console/dist (never committed)
#
# The same node_modules holds playwright-core for the browser test
# (tests/console). Options: -h, --help  this text.
# Exit codes: 0 built, 1 failed, 2 usage.
set -euo pipefail
case "${1:-}" in
  -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "build-console.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/../console"
command -v npm >/dev/null || { echo "build-console.sh: npm not found (scripts/deps.sh installs it)" >&2; exit 1; }

stamp=node_modules/.pa-package-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund --prefer-offline --loglevel=error
  echo "$want" >"$stamp"
fi
npm run --silent build -- --logLevel warn
test -f dist/index.html || { echo "build-console.sh: vite wrote no dist/index.html" >&2; exit 1; }
echo "console built: $PWD/dist"
