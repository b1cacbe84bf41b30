#!/usr/bin/env bash
# Brings the whole system up on this machine and shows it working
# (README: "Run it"):
#
#   1. installs missing Debian packages and builds (build/release)
#   2. makes the secrets a real deployment has, under .run/ (mode 0700):
#      two KEKs, the license signing key, mTLS certificates for the audit
#      link, a TLS certificate for installers (its own CA), Redis passwords
#   3. starts two private redis-server instances on loopback: the
#      activation store (Redis A) and the audit store (Redis B), each with
#      its own ACL users and AOF on
#   4. starts the audit server (mutual TLS only) and the activation server
#      (TLS for installers)
#   5. creates a demo product group and three demo keys, and activates one
#      with the installer CLI (`activate`); then a volume group, a volume
#      key and a vendor-signed order for it (docs/volume.md), imports the
#      order and activates a second machine state under it
#   6. starts the admin server (HTTPS, its own CA) with the web console,
#      creates a demo operator account and imports the demo order through
#      its API (docs/admin.md)
#   7. stays up until interrupted (Ctrl-C stops everything)
#
# Options:
#   --check      stop after step 6 (used by the test suite)
#   --port-base N  ports N (activation gRPC), N+1 (audit gRPC), N+2/N+3
#                (Redis A/B), N+4/N+5 (metrics of activation/audit), N+6
#                (admin HTTPS), N+7 (admin metrics); default 50051 .. 50058
#   -h, --help   this text
# Environment: PA_RUN_BUILD_DIR=DIR uses programs already built in DIR
# (skips package installation and the build).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

check=0
base=50051
while [ $# -gt 0 ]; do
  case "$1" in
    --check) check=1; shift ;;
    --port-base) [[ "${2:-}" =~ ^[0-9]+$ ]] || { echo "run.sh: --port-base needs a number" >&2; exit 2; }
                 base=$2; shift 2 ;;
    -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done
ACT_PORT=$base; AUDIT_PORT=$((base + 1)); REDIS_A_PORT=$((base + 2)); REDIS_B_PORT=$((base + 3))
ACT_METRICS=$((base + 4)); AUDIT_METRICS=$((base + 5)); ADMIN_PORT=$((base + 6)); ADMIN_METRICS=$((base + 7))

if [ -n "${PA_RUN_BUILD_DIR:-}" ]; then
  BIN=$PA_RUN_BUILD_DIR     # the test suite runs this script on its own build
else
  bash scripts/deps.sh
  cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc >/dev/null
  cmake --build build/release -j"$(nproc)" \
    --target activation-server audit-server admin-server keystore activate >/dev/null
  bash scripts/build-console.sh >/dev/null
  BIN=$ROOT/build/release
fi

for p in $ACT_PORT $AUDIT_PORT $REDIS_A_PORT $REDIS_B_PORT $ACT_METRICS $AUDIT_METRICS $ADMIN_PORT $ADMIN_METRICS; do
  if ss -Hltn "sport = :$p" | grep -q .; then
    echo "run.sh: port $p is in use; pick other ports with --port-base N" >&2; exit 1
  fi
done

RUN=$ROOT/.run/$base
rm -rf "$RUN"; mkdir -p "$RUN"; chmod 700 "$ROOT/.run" "$RUN"
# Components run in sessions of their own, so a Ctrl-C reaches only this
# script, which then stops them newest first: the activation server flushes
# its outbox while the audit server is still up, and the stores go last.
pids=()
stopping=0
start_bg() { setsid "$@" & pids+=($!); }
cleanup() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'stopping=1; exit 0' INT TERM

say() { printf '%s\n' "$*"; }
wait_port() {  # port, name, log
  for _ in $(seq 100); do
    ss -Hltn "sport = :$1" | grep -q . && return 0
    sleep 0.1
  done
  echo "run.sh: $2 did not come up; its log ($3):" >&2; tail -20 "$3" >&2; exit 1
}

# --- secrets ----------------------------------------------------------------
umask 077
"$BIN/keystore/keystore" kek create "$RUN/activation.kek" >/dev/null
"$BIN/keystore/keystore" kek create "$RUN/audit.kek" >/dev/null
openssl genpkey -algorithm ed25519 -out "$RUN/signing.pem" 2>/dev/null
openssl pkey -in "$RUN/signing.pem" -pubout -out "$RUN/signing.pub.pem"
# The vendor's order-signing key: a key pair of its own, never the license key.
openssl genpkey -algorithm ed25519 -out "$RUN/order-key.pem" 2>/dev/null
openssl pkey -in "$RUN/order-key.pem" -pubout -out "$RUN/order.pub.pem"
# What installers trust: the vendor's license and order keys.
cat "$RUN/signing.pub.pem" "$RUN/order.pub.pem" >"$RUN/vendor-keys.pem"
bash scripts/make-certs.sh "$RUN/certs" >/dev/null
# Installers' TLS gets a CA of its own: installers trust it, while the audit
# CA stays the audit server's access list. make-certs.sh names its server
# certificate for the audit server; here it serves installers (localhost,
# 127.0.0.1, ::1), so it is renamed, and the client certificate is not needed.
bash scripts/make-certs.sh "$RUN/installer-tls" >/dev/null
mv "$RUN/installer-tls/audit-server.pem" "$RUN/installer-tls/activation-server.pem"
mv "$RUN/installer-tls/audit-server.key" "$RUN/installer-tls/activation-server.key"
rm -f "$RUN/installer-tls/activation-client.pem" "$RUN/installer-tls/activation-client.key"
ACT_CA=$RUN/installer-tls/ca.pem
for u in keystore activation audit admin; do openssl rand -hex 24 >"$RUN/$u.pw"; done

# --- the two stores ---------------------------------------------------------
start_redis() {  # name, port, acl template, appendfsync
  local dir=$RUN/redis-$1
  mkdir -p "$dir"
  grep -v '^#' "docker/redis/$3" \
    | sed -e "s/@KEYSTORE_PASSWORD@/$(cat "$RUN/keystore.pw")/" \
          -e "s/@ACTIVATION_PASSWORD@/$(cat "$RUN/activation.pw")/" \
          -e "s/@AUDIT_PASSWORD@/$(cat "$RUN/audit.pw")/" \
          -e "s/@ADMIN_PASSWORD@/$(cat "$RUN/admin.pw")/" >"$dir/users.acl"
  sed -e "s|@PORT@|$2|" -e "s|@DIR@|$dir|" -e "s|@ACLFILE@|$dir/users.acl|" \
      -e "s|@LOGFILE@|$dir/redis.log|" -e "s|@APPENDFSYNC@|$4|" docker/redis/redis.conf.in >"$dir/redis.conf"
  start_bg redis-server "$dir/redis.conf"
  wait_port "$2" "redis ($1)" "$dir/redis.log"
}
start_redis activation "$REDIS_A_PORT" activation.acl.in everysec
start_redis audit "$REDIS_B_PORT" audit.acl.in always   # verdicts and revocations on disk before the answer

# --- the two daemons --------------------------------------------------------
start_bg "$BIN/audit-server/audit-server" --listen "127.0.0.1:$AUDIT_PORT" \
  --redis-url "redis://audit@127.0.0.1:$REDIS_B_PORT" --redis-password-file "$RUN/audit.pw" \
  --kek "$RUN/audit.kek" --tls-cert "$RUN/certs/audit-server.pem" \
  --tls-key "$RUN/certs/audit-server.key" --tls-client-ca "$RUN/certs/ca.pem" \
  --allow-client activation-server --allow-client admin-server --allow-revoke-client admin-server \
  --metrics-listen "127.0.0.1:$AUDIT_METRICS" 2>"$RUN/audit-server.log"
wait_port "$AUDIT_PORT" "audit server" "$RUN/audit-server.log"

start_bg "$BIN/activation-server/activation-server" --listen "127.0.0.1:$ACT_PORT" --listen "[::1]:$ACT_PORT" \
  --redis-url "redis://activation@127.0.0.1:$REDIS_A_PORT" \
  --redis-password-file "$RUN/activation.pw" --kek "$RUN/activation.kek" \
  --signing-key "$RUN/signing.pem" --order-public-key "$RUN/order.pub.pem" \
  --metrics-listen "127.0.0.1:$ACT_METRICS" \
  --tls-cert "$RUN/installer-tls/activation-server.pem" --tls-key "$RUN/installer-tls/activation-server.key" \
  --audit-target "127.0.0.1:$AUDIT_PORT" --audit-ca "$RUN/certs/ca.pem" \
  --audit-cert "$RUN/certs/activation-client.pem" --audit-key "$RUN/certs/activation-client.key" \
  2>"$RUN/activation-server.log"
wait_port "$ACT_PORT" "activation server" "$RUN/activation-server.log"

# --- a demo product ---------------------------------------------------------
export PA_KEYSTORE_ACTIVATION_REDIS="redis://keystore@127.0.0.1:$REDIS_A_PORT"
export PA_KEYSTORE_ACTIVATION_REDIS_PASSWORD_FILE="$RUN/keystore.pw"
export PA_KEYSTORE_AUDIT_REDIS="redis://keystore@127.0.0.1:$REDIS_B_PORT"
export PA_KEYSTORE_AUDIT_REDIS_PASSWORD_FILE="$RUN/keystore.pw"
export PA_KEYSTORE_ACTIVATION_KEK="$RUN/activation.kek"
export PA_KEYSTORE_AUDIT_KEK="$RUN/audit.kek"
"$BIN/keystore/keystore" group create --id 4242 --product "Demo Writer" --edition Pro \
  --channel retail --max-machines 2 --features spellcheck,export-pdf --audit-rate 100 >/dev/null
"$BIN/keystore/keystore" keys generate --group 4242 --count 3 --out "$RUN/demo-keys.txt"

# A volume order: a volume group and its key, sold as 25 concurrent seats.
"$BIN/keystore/keystore" group create --id 4343 --product "Demo Writer" --edition Enterprise \
  --channel volume --max-machines 0 --features spellcheck,export-pdf,admin-templates >/dev/null
"$BIN/keystore/keystore" keys generate --group 4343 --count 1 --out "$RUN/demo-volume-key.txt"
DEMO_ORDER=20261201
"$BIN/keystore/keystore" order create --order-key "$RUN/order-key.pem" --serial "$DEMO_ORDER" \
  --customer "Demo Corp" --vendor "Demo Vendor" --group 4343 --product "Demo Writer" --edition Enterprise \
  --features spellcheck,export-pdf,admin-templates --mode concurrent --seats 25 --seat-warning 5 --heartbeat-s 60 \
  --valid-from "$(date -u +%Y-%m-%d)" --valid-until "$(date -u -d '+1 year' +%Y-%m-%d)" \
  --out "$RUN/demo-order.license" >/dev/null
"$BIN/activation-server/activation-server" order import "$RUN/demo-order.license" \
  --redis-url "redis://keystore@127.0.0.1:$REDIS_A_PORT" --redis-password-file "$RUN/keystore.pw" \
  --order-public-key "$RUN/order.pub.pem" --signing-key "$RUN/signing.pem" >/dev/null

# --- the admin server and its console --------------------------------------
# Its HTTPS certificate comes from a CA of its own (operators trust it); it
# reaches Redis A as user admin and the audit server with a client
# certificate that may only revoke (docs/admin.md).
bash scripts/make-certs.sh "$RUN/admin-tls" >/dev/null
mv "$RUN/admin-tls/audit-server.pem" "$RUN/admin-tls/admin-server.pem"
mv "$RUN/admin-tls/audit-server.key" "$RUN/admin-tls/admin-server.key"
rm -f "$RUN/admin-tls/"*-client.pem "$RUN/admin-tls/"*-client.key
ADMIN_CA=$RUN/admin-tls/ca.pem
admin_opts=(--redis-url "redis://admin@127.0.0.1:$REDIS_A_PORT" --redis-password-file "$RUN/admin.pw")
ADMIN_USER=demo-operator
openssl rand -base64 18 | tr -d '/+=' >"$RUN/admin-login.pw"
"$BIN/admin-server/admin-server" user add "$ADMIN_USER" --role operator --password-file "$RUN/admin-login.pw" \
  "${admin_opts[@]}" >/dev/null
start_bg "$BIN/admin-server/admin-server" --listen "127.0.0.1:$ADMIN_PORT" "${admin_opts[@]}" \
  --tls-cert "$RUN/admin-tls/admin-server.pem" --tls-key "$RUN/admin-tls/admin-server.key" \
  --console-dir "$ROOT/console/dist" --order-public-key "$RUN/order.pub.pem" \
  --audit-address "127.0.0.1:$AUDIT_PORT" --audit-ca "$RUN/certs/ca.pem" \
  --audit-cert "$RUN/certs/admin-client.pem" --audit-key "$RUN/certs/admin-client.key" \
  --metrics-listen "127.0.0.1:$ADMIN_METRICS" 2>"$RUN/admin-server.log"
wait_port "$ADMIN_PORT" "admin server" "$RUN/admin-server.log"

say ""
say "activation server: 127.0.0.1:$ACT_PORT"
say "activation CA: $ACT_CA"
say "audit server: 127.0.0.1:$AUDIT_PORT (mutual TLS; certificates in $RUN/certs)"
say "activation store (Redis A): 127.0.0.1:$REDIS_A_PORT   audit store (Redis B): 127.0.0.1:$REDIS_B_PORT"
say "metrics: http://127.0.0.1:$ACT_METRICS/metrics  http://127.0.0.1:$AUDIT_METRICS/metrics"
say "vendor public key: $RUN/signing.pub.pem"
say "order public key: $RUN/order.pub.pem"
say "admin console: https://127.0.0.1:$ADMIN_PORT/"
say "admin login: $ADMIN_USER $(cat "$RUN/admin-login.pw")"
say "admin CA: $ADMIN_CA"
while read -r key; do say "demo key: $key"; done <"$RUN/demo-keys.txt"
first_key=$(head -1 "$RUN/demo-keys.txt")
volume_key=$(head -1 "$RUN/demo-volume-key.txt")
say "demo order: $DEMO_ORDER ($RUN/demo-order.license)"
say "demo volume key: $volume_key"

say ""
say "Activating the first demo key with the installer CLI:"
say "  $BIN/client/activate --server 127.0.0.1:$ACT_PORT --tls-ca $ACT_CA --public-key $RUN/signing.pub.pem --state-dir $RUN/client $first_key"
"$BIN/client/activate" --server "127.0.0.1:$ACT_PORT" --tls-ca "$ACT_CA" --public-key "$RUN/signing.pub.pem" \
  --state-dir "$RUN/client" "$first_key"
say ""
"$BIN/client/activate" --public-key "$RUN/signing.pub.pem" --state-dir "$RUN/client" status

say ""
say "Activating another machine state under the volume order (concurrent seats: the daemon would"
say "send a heartbeat every 60 s):"
"$BIN/client/activate" --server "127.0.0.1:$ACT_PORT" --tls-ca "$ACT_CA" --public-key "$RUN/vendor-keys.pem" \
  --state-dir "$RUN/client-volume" "$volume_key"
say ""
"$BIN/client/activate" --public-key "$RUN/vendor-keys.pem" --state-dir "$RUN/client-volume" status
say ""
say "The demo order as the activation server holds it:"
"$BIN/activation-server/activation-server" order show "$DEMO_ORDER" \
  --redis-url "redis://keystore@127.0.0.1:$REDIS_A_PORT" --redis-password-file "$RUN/keystore.pw"
say ""
say "Its machine table:"
"$BIN/activation-server/activation-server" order machines "$DEMO_ORDER" \
  --redis-url "redis://keystore@127.0.0.1:$REDIS_A_PORT" --redis-password-file "$RUN/keystore.pw"

# The admin API as the console uses it: log in, then the demo order's seats
# (the volume activation above holds one of them).
say ""
say "The demo order through the admin API (what the console shows):"
jar=$RUN/admin-cookies.txt
curl -sS --fail-with-body --cacert "$ADMIN_CA" -c "$jar" -H 'Content-Type: application/json' \
  --data "{\"user\":\"$ADMIN_USER\",\"password\":\"$(cat "$RUN/admin-login.pw")\"}" \
  "https://127.0.0.1:$ADMIN_PORT/api/v1/session" >/dev/null
curl -sS --fail-with-body --cacert "$ADMIN_CA" -b "$jar" \
  "https://127.0.0.1:$ADMIN_PORT/api/v1/orders/$DEMO_ORDER" | python3 -c '
import json, sys
o = json.load(sys.stdin); s = o["seats_status"]
print("  order %s (%s): %d seats, %d used, %d free (the console warns below %d free)" % (
    o.get("service_serial", "?"), o.get("customer", "?"), s["total"], s["used"], s["free"], s["seat_warning"]))'

# The demo group audits every activation (--audit-rate 100, offline): the
# request went to the outbox, and the activation server forwards it to the
# audit server, which checks the second security value.
say ""
say "Audit trail of the demo group (the audit server's verdicts):"
trail=""
for _ in $(seq 50); do
  trail=$("$BIN/audit-server/audit-server" trail --group 4242 \
            --redis-url "redis://audit@127.0.0.1:$REDIS_B_PORT" --redis-password-file "$RUN/audit.pw")
  [ -n "$trail" ] && break
  sleep 0.1
done
say "${trail:-  (no verdict yet; see $RUN/audit-server.log)}"

if [ "$check" = 1 ]; then
  say ""; say "run.sh --check: the system works; stopping."
  exit 0
fi
say ""
say "Up. Logs: $RUN/*.log. Press Ctrl-C to stop everything."
wait -n "${pids[@]}" || true
[ "$stopping" = 1 ] && exit 0
echo "run.sh: a component exited; see the logs in $RUN" >&2
exit 1
