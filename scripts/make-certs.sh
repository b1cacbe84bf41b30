#!/usr/bin/env bash
# make-certs.sh -- the certificates the audit server's mutual TLS needs,
# made with the openssl command line only.
#
# The audit server accepts a connection only when the client presents a
# certificate that chains to the CA it is configured with, so the CA made
# here is the whole access list: whoever holds a client certificate signed by
# it may call the audit API. Keep ca.key offline once the certificates exist.
#
# Usage: scripts/make-certs.sh [OPTIONS] DIR
#
# Writes into DIR (created if missing, mode 0700):
#   ca.pem, ca.key                          the certificate authority
#   audit-server.pem, audit-server.key      server certificate, SAN localhost,
#                                           127.0.0.1, ::1 (and --server-name)
#   activation-client.pem, activation-client.key
#                                           client certificate, CN activation-server
#   admin-client.pem, admin-client.key      client certificate, CN admin-server
#                                           (the admin server's revocations)
# Private keys are mode 0600. Existing files are never overwritten unless
# --force is given.
#
# Options:
#   --days N             validity of every certificate (default 825)
#   --server-name NAME   an extra DNS name or IP address for the server
#                        certificate (repeatable)
#   --client-cn NAME     common name of the client certificate
#                        (default activation-server)
#   --force              replace existing files
#   -h, --help           this text
#
# Then run the audit server with
#   --tls-cert DIR/audit-server.pem --tls-key DIR/audit-server.key
#   --tls-client-ca DIR/ca.pem
# and give activation servers DIR/ca.pem, DIR/activation-client.pem and
# DIR/activation-client.key; the admin server DIR/ca.pem and DIR/admin-client.*
# (the audit server names it with --allow-client and --allow-revoke-client).
set -euo pipefail

usage() { sed -n '2,38p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "make-certs.sh: $*" >&2; exit 2; }

days=825
client_cn=activation-server
force=0
extra_names=()
dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --days) [ $# -ge 2 ] || die "--days needs a number"; days=$2; shift 2 ;;
    --server-name) [ $# -ge 2 ] || die "--server-name needs a name"; extra_names+=("$2"); shift 2 ;;
    --client-cn) [ $# -ge 2 ] || die "--client-cn needs a name"; client_cn=$2; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option '$1' (try --help)" ;;
    *) [ -z "$dir" ] || die "only one DIR, got '$dir' and '$1'"; dir=$1; shift ;;
  esac
done
[ -n "$dir" ] || { usage >&2; exit 2; }
[[ "$days" =~ ^[1-9][0-9]{0,4}$ ]] || die "--days must be a whole number of days, got '$days'"
[[ "$client_cn" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || die "--client-cn must be 1-64 letters, digits, '.', '_' or '-'"
command -v openssl >/dev/null || die "the openssl command is not installed"

files=(ca.pem ca.key audit-server.pem audit-server.key activation-client.pem activation-client.key
       admin-client.pem admin-client.key)
if [ "$force" -eq 0 ]; then
  for f in "${files[@]}"; do
    [ ! -e "$dir/$f" ] || die "$dir/$f exists (use --force to replace it)"
  done
fi

umask 077
mkdir -p "$dir"
work=$(mktemp -d "$dir/.make-certs.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Subject alternative names of the server certificate.
san="DNS:localhost,IP:127.0.0.1,IP:::1"
for n in "${extra_names[@]}"; do
  if [[ "$n" =~ ^[0-9.]+$ || "$n" == *:* ]]; then san="$san,IP:$n"; else san="$san,DNS:$n"; fi
done

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# 1. The CA: self-signed, may sign end-entity certificates only.
newkey "$work/ca.key"
openssl req -new -x509 -key "$work/ca.key" -out "$work/ca.pem" -days "$days" -sha256 \
  -subj "/CN=product-activation audit CA" \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1

sign() {  # name, subject, extensions
  local name=$1 subj=$2 ext=$3
  newkey "$work/$name.key"
  openssl req -new -key "$work/$name.key" -out "$work/$name.csr" -subj "$subj" 2>/dev/null
  printf '%b' "$ext" >"$work/$name.ext"
  openssl x509 -req -in "$work/$name.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
    -CAcreateserial -CAserial "$work/ca.srl" -out "$work/$name.pem" -days "$days" -sha256 \
    -extfile "$work/$name.ext" 2>/dev/null
}

# 2. The audit server: a TLS server certificate for loopback and localhost.
sign audit-server "/CN=audit-server" \
  "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=$san\n"
# 3. The activation server's client certificate; its CN appears in the audit log.
sign activation-client "/CN=$client_cn" \
  "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
# 4. The admin server's client certificate: it may only revoke keys.
sign admin-client "/CN=admin-server" \
  "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"

for f in audit-server activation-client admin-client; do
  openssl verify -CAfile "$work/ca.pem" "$work/$f.pem" >/dev/null || die "self-check of $f.pem failed"
done
for f in "${files[@]}"; do
  mv -f "$work/$f" "$dir/$f"
done
chmod 0600 "$dir"/*.key
chmod 0644 "$dir"/*.pem
echo "make-certs.sh: wrote CA, audit-server, activation-client ($client_cn) and admin-client certificates to $dir"
