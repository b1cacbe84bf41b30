#!/usr/bin/env bash
# Runs inside a fresh Debian root (scripts/packages-test.sh starts it as a
# podman container, as root, with /pkgs holding the .debs and /src the
# repository's scripts/ and docker/redis/): what an administrator does with
# the packages, checked at each step.
#
#   1. apt-get install the five packages (their dependencies come from the
#      Debian mirror), redis-server, openssl and systemd (for
#      systemd-analyze; it is not running here)
#   2. the daemon users, the conffiles, `systemd-analyze verify` of every
#      daemon unit
#   3. secrets into /etc/product-activation/<daemon>/ as each .conf says;
#      Redis A and B from docker/redis/ templates; the three daemons started
#      as their units run them (ExecStart as User=, umask 0077, no new
#      privileges) since systemd is not PID 1 in a container
#   4. a group and a key (keystore), the key activated with the packaged
#      `activate` over TLS, the audit server's verdict on it, an admin login
#   5. daemons stopped with SIGTERM (each must exit 0), `apt-get purge` of
#      the five packages, and nothing of ours left: no file of theirs, no
#      /etc/product-activation, no user, no file owned by a removed user
# Prints "packages-check-root: PASSED" at the end; exits 1 on the first failure.
set -euo pipefail
say() { printf 'packages-check-root: %s\n' "$*"; }
fail() { say "FAILED: $*"; exit 1; }
export DEBIAN_FRONTEND=noninteractive
CONF=/etc/product-activation
PKGS=(pa-activation-server pa-audit-server pa-admin-server pa-keystore pa-client)
DAEMONS=(audit-server activation-server admin-server)
declare -A USER_OF=([activation-server]=pa-activation [audit-server]=pa-audit [admin-server]=pa-admin)

# --- 1. install ---------------------------------------------------------------
apt-get update -q >/tmp/apt.log 2>&1 || { cat /tmp/apt.log; fail "apt-get update"; }
apt-get install -y -q --no-install-recommends /pkgs/*.deb redis-server openssl systemd curl python3 \
  >>/tmp/apt.log 2>&1 || { tail -30 /tmp/apt.log; fail "apt-get install of the packages"; }
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" | grep -q "install ok installed" || fail "$p is not installed"
done
say "installed: ${PKGS[*]}"
# What the packages own, to check after the purge.
for p in "${PKGS[@]}"; do dpkg -L "$p"; done | sort -u >/tmp/owned.txt

# --- 2. users, conffiles, units ----------------------------------------------------
for d in "${DAEMONS[@]}"; do
  u=${USER_OF[$d]}
  getent passwd "$u" | grep -q ':/usr/sbin/nologin$' || fail "no system user $u with nologin shell"
  [ "$(stat -c '%U %a' "$CONF/$d")" = "$u 700" ] || fail "$CONF/$d is not mode 700 owned by $u"
  dpkg-query -W -f='${Conffiles}' "pa-$d" | grep -q "$CONF/$d.conf" || fail "$CONF/$d.conf is not a conffile of pa-$d"
  grep -q "^User=$u$" "/usr/lib/systemd/system/pa-$d.service" || fail "pa-$d.service does not run as $u"
done
say "users, secrets directories and conffiles: ok"
units=(/usr/lib/systemd/system/pa-{activation,audit,admin}-server.service /usr/lib/systemd/system/activate.service
       /usr/lib/systemd/system/activate-renew.service /usr/lib/systemd/system/activate-renew.timer)
if ! systemd-analyze verify "${units[@]}" >/tmp/verify.log 2>&1; then
  cat /tmp/verify.log; fail "systemd-analyze verify"
fi
say "systemd-analyze verify ${units[*]##*/}: $(wc -l </tmp/verify.log) messages"
sed 's/^/  /' /tmp/verify.log
for d in "${DAEMONS[@]}"; do
  say "pa-$d.service sandbox (systemd-analyze security): $(systemd-analyze security --offline=yes "/usr/lib/systemd/system/pa-$d.service" 2>/dev/null | tail -1 | sed 's/^-> //')"
done

# --- 3. secrets, stores, daemons ---------------------------------------------------
secret() {  # daemon, file name; reads the content on stdin
  install -m 0600 -o "${USER_OF[$1]}" -g "${USER_OF[$1]}" /dev/stdin "$CONF/$1/$2"
}
umask 077
W=/tmp/pkgtest; mkdir -p "$W"
keystore kek create "$W/activation.kek" >/dev/null
keystore kek create "$W/audit.kek" >/dev/null
secret activation-server activation.kek <"$W/activation.kek"
secret audit-server audit.kek <"$W/audit.kek"
openssl genpkey -algorithm ed25519 -out "$W/signing.pem" 2>/dev/null
openssl pkey -in "$W/signing.pem" -pubout -out "$W/signing.pub.pem"
secret activation-server license-signing.pem <"$W/signing.pem"
for u in keystore activation audit admin; do openssl rand -hex 24 >"$W/$u.pw"; done
secret activation-server redis.password <"$W/activation.pw"
secret audit-server redis.password <"$W/audit.pw"
secret admin-server redis.password <"$W/admin.pw"
bash /src/scripts/make-certs.sh "$W/audit-tls" >/dev/null
bash /src/scripts/make-certs.sh "$W/installer-tls" >/dev/null
bash /src/scripts/make-certs.sh "$W/admin-tls" >/dev/null
secret audit-server ca.pem <"$W/audit-tls/ca.pem"
secret audit-server audit-server.pem <"$W/audit-tls/audit-server.pem"
secret audit-server audit-server.key <"$W/audit-tls/audit-server.key"
secret activation-server audit-ca.pem <"$W/audit-tls/ca.pem"
secret activation-server audit-client.pem <"$W/audit-tls/activation-client.pem"
secret activation-server audit-client.key <"$W/audit-tls/activation-client.key"
secret activation-server tls.pem <"$W/installer-tls/audit-server.pem"
secret activation-server tls.key <"$W/installer-tls/audit-server.key"
secret admin-server tls.pem <"$W/admin-tls/audit-server.pem"
secret admin-server tls.key <"$W/admin-tls/audit-server.key"
# The administrator's one edit: the activation server's audit link.
sed -i -e 's/^# \(audit-[a-z]* = \)/\1/' -e 's/audit.internal:50052/127.0.0.1:50052/' "$CONF/activation-server.conf"
grep -q '^audit-target = 127.0.0.1:50052$' "$CONF/activation-server.conf" || fail "could not set audit-target"

pids=()
stop_all() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
}
trap stop_all EXIT
wait_port() {  # port, name, log
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  tail -20 "$3"; fail "$2 did not listen on $1"
}
redis_store() {  # name, port, acl template, appendfsync
  local dir=/var/lib/pa-test-redis-$1
  install -d -m 0700 -o redis -g redis "$dir"
  grep -v '^#' "/src/docker/redis/$3" \
    | sed -e "s/@KEYSTORE_PASSWORD@/$(cat "$W/keystore.pw")/" -e "s/@ACTIVATION_PASSWORD@/$(cat "$W/activation.pw")/" \
          -e "s/@AUDIT_PASSWORD@/$(cat "$W/audit.pw")/" -e "s/@ADMIN_PASSWORD@/$(cat "$W/admin.pw")/" \
    | install -m 0600 -o redis -g redis /dev/stdin "$dir/users.acl"
  sed -e "s|@PORT@|$2|" -e "s|@DIR@|$dir|" -e "s|@ACLFILE@|$dir/users.acl|" -e "s|@LOGFILE@|$dir/redis.log|" \
      -e "s|@APPENDFSYNC@|$4|" /src/docker/redis/redis.conf.in | install -m 0600 -o redis -g redis /dev/stdin "$dir/redis.conf"
  setpriv --reuid=redis --regid=redis --init-groups redis-server "$dir/redis.conf" &
  pids+=($!)
  wait_port "$2" "redis ($1)" "$dir/redis.log"
}
redis_store a 6379 activation.acl.in everysec
redis_store b 6380 audit.acl.in always

declare -A PID_OF
start_unit() {  # daemon, port: ExecStart= as User=, as systemd would
  local unit=/usr/lib/systemd/system/pa-$1.service exec user
  exec=$(sed -n 's/^ExecStart=//p' "$unit")
  user=$(sed -n 's/^User=//p' "$unit")
  # shellcheck disable=SC2086  # ExecStart is split into words, as systemd does
  (umask 0077; exec setpriv --reuid="$user" --regid="$user" --init-groups --no-new-privs $exec) 2>"$W/$1.log" &
  PID_OF[$1]=$!
  pids+=($!)
  wait_port "$2" "$1" "$W/$1.log"
  [ "$(stat -c %U "/proc/${PID_OF[$1]}")" = "$user" ] || fail "$1 does not run as $user"
  say "$1 runs as $user (pid ${PID_OF[$1]})"
}
start_unit audit-server 50052
start_unit activation-server 50051
start_unit admin-server 8443

# --- 4. a key, activated, audited ----------------------------------------------------
export PA_KEYSTORE_ACTIVATION_REDIS=redis://keystore@127.0.0.1:6379 PA_KEYSTORE_AUDIT_REDIS=redis://keystore@127.0.0.1:6380
export PA_KEYSTORE_ACTIVATION_REDIS_PASSWORD_FILE=$W/keystore.pw PA_KEYSTORE_AUDIT_REDIS_PASSWORD_FILE=$W/keystore.pw
export PA_KEYSTORE_ACTIVATION_KEK=$W/activation.kek PA_KEYSTORE_AUDIT_KEK=$W/audit.kek
keystore group create --id 4747 --product "Package Demo" --edition Pro --channel retail \
  --max-machines 2 --features export --audit-rate 100 >/dev/null || fail "keystore group create"
keystore keys generate --group 4747 --count 1 --out "$W/keys.txt" >/dev/null || fail "keystore keys generate"
KEY=$(head -1 "$W/keys.txt")
SERIAL=$(keystore key decode "$KEY" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["serial"])')
[ -s /etc/machine-id ] || systemd-machine-id-setup >/dev/null 2>&1 || true
activate --server 127.0.0.1:50051 --tls-ca "$W/installer-tls/ca.pem" --public-key "$W/signing.pub.pem" \
  --state-dir "$W/client" "$KEY" >"$W/activate.out" 2>&1 || { cat "$W/activate.out"; tail "$W/activation-server.log"; fail "activate"; }
activate --public-key "$W/signing.pub.pem" --state-dir "$W/client" status --json | grep -q '"product":"Package Demo"' \
  || fail "activate status does not show the license"
say "key of group 4747 serial $SERIAL activated with the packaged activate over TLS"
verdict=""
for _ in $(seq 100); do
  verdict=$(audit-server trail --group 4747 --serial "$SERIAL" --redis-url redis://audit@127.0.0.1:6380 \
              --redis-password-file "$W/audit.pw" 2>/dev/null || true)
  [ -n "$verdict" ] && break
  sleep 0.2
done
say "audit verdict: ${verdict:-none}"
[[ "$verdict" == *'"verdict":"genuine"'* ]] || { tail "$W/activation-server.log" "$W/audit-server.log"; fail "no genuine verdict"; }
openssl rand -hex 12 >"$W/login.pw"
admin-server user add pkg-operator --role viewer --password-file "$W/login.pw" \
  --redis-url redis://admin@127.0.0.1:6379 --redis-password-file "$CONF/admin-server/redis.password" >/dev/null \
  || fail "admin-server user add"
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$W/admin-tls/ca.pem" -H 'Content-Type: application/json' \
  --data "{\"user\":\"pkg-operator\",\"password\":\"$(cat "$W/login.pw")\"}" https://127.0.0.1:8443/api/v1/session) || code=none
say "admin login: $code"
case "$code" in 2??) ;; *) tail "$W/admin-server.log"; fail "admin login answered $code" ;; esac

# --- 5. stop, purge, nothing left ---------------------------------------------------
for d in activation-server admin-server audit-server; do
  kill -TERM "${PID_OF[$d]}"
  rc=0; wait "${PID_OF[$d]}" || rc=$?
  [ "$rc" = 0 ] || { tail "$W/$d.log"; fail "$d exited $rc on SIGTERM"; }
done
say "daemons stopped with SIGTERM, exit 0 each"
stop_all; trap - EXIT; sleep 0.5
rm -rf "$W" /var/lib/pa-test-redis-a /var/lib/pa-test-redis-b
apt-get purge -y -q "${PKGS[@]}" >/tmp/purge.log 2>&1 || { cat /tmp/purge.log; fail "apt-get purge"; }
grep -i 'warning' /tmp/purge.log | sed 's/^/  purge: /' || true
left=0
while read -r f; do
  [ -e "$f" ] || continue
  [ -d "$f" ] && [ -n "$(dpkg -S "$f" 2>/dev/null)" ] && continue   # a directory other packages own (/usr/bin)
  say "left after purge: $f"; left=1
done </tmp/owned.txt
[ ! -e "$CONF" ] || { ls -la "$CONF"; fail "$CONF is still there"; }
for u in pa-activation pa-audit pa-admin; do
  getent passwd "$u" >/dev/null && fail "user $u is still there"
  getent group "$u" >/dev/null && fail "group $u is still there"
done
orphans=$(find / -xdev \( -nouser -o -nogroup \) -print 2>/dev/null | head -5)
[ -z "$orphans" ] || fail "files of removed users: $orphans"
[ "$left" = 0 ] || fail "the purge left files of the packages"
say "purged: no file, directory, user or group of the packages left"
say "PASSED"
