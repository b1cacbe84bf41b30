#!/usr/bin/env bash
# The installer library a vendor links (libpa_activate.a) defines exactly the
# functions client/activate.h declares, all pa_-prefixed, and no other global
# symbol: anything else could clash with the vendor's own code. Neither the
# archive nor the installer CLI needs a server-side library (hiredis,
# libmicrohttpd).
#   exported_symbols.sh ARCHIVE HEADER [CLI]
set -euo pipefail
archive=$1 header=$2 cli=${3:-}
exported=$(nm -g --defined-only "$archive" | awk 'NF == 3 { print $3 }' | sort -u)
declared=$(grep -oE '\bpa_[a-z0-9_]+\(' "$header" | tr -d '(' | sort -u)

echo "exported symbols of $(basename "$archive"):"
printf '  %s\n' $exported
status=0
stray=$(grep -v '^pa_' <<<"$exported" || true)
if [ -n "$stray" ]; then
  printf 'FAIL: global symbol without the pa_ prefix: %s\n' $stray
  status=1
fi
missing=$(comm -13 <(echo "$exported") <(echo "$declared"))
if [ -n "$missing" ]; then
  printf 'FAIL: declared in the header but not defined: %s\n' $missing
  status=1
fi
extra=$(comm -23 <(echo "$exported") <(echo "$declared"))
if [ -n "$extra" ]; then
  printf 'FAIL: exported but not declared in the header: %s\n' $extra
  status=1
fi
server_side=$(nm -u "$archive" | awk '{ print $2 }' | grep -E '^(redis|MHD_)' | sort -u || true)
if [ -n "$server_side" ]; then
  printf 'FAIL: the archive needs a server-side library: %s\n' $server_side
  status=1
fi
if [ -n "$cli" ] && readelf -d "$cli" | grep -E 'NEEDED.*(hiredis|microhttpd)'; then
  echo "FAIL: $(basename "$cli") links a server-side library"
  status=1
fi
[ "$status" -eq 0 ] && echo "$(wc -w <<<"$exported") symbols, all declared in $(basename "$header")"
exit "$status"
