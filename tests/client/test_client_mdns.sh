#!/usr/bin/env bash
# test_client_mdns.sh -- finding an on-premises server on the LAN by mDNS,
# for real: two network namespaces joined by a veth pair, each with its own
# D-Bus system bus and Avahi daemon, as two machines on one LAN.
#   A (10.231.7.1, host pa-mdns-a.local): Redis, an activation server with
#     --mdns-announce and a certificate for pa-mdns-a.local
#   B (10.231.7.2, host pa-mdns-b.local): the `activate` CLI with --mdns
# This script builds the LAN; the program (client_mdns, test_client_mdns.c)
# starts the services in A, runs the client in B and asserts.
#
# Needs root (ip netns, mounts), ip, dbus-daemon and avahi-daemon; skips with
# 77 (ctest SKIP_RETURN_CODE) naming what is missing. Everything it makes --
# namespaces, the veth pair, every process inside them, the temp dir -- is
# removed on every exit (trap); namespaces a killed run left behind are
# removed at the next start. Each step is bounded by a timeout.
#   test_client_mdns.sh PROGRAM
#   test_client_mdns.sh --restart-avahi DIR ID SIDE   (the program restarts A's Avahi)
set -uo pipefail

skip() { echo "SKIP: client.mdns: $*"; exit 77; }

# Kills every process in namespace $1 (only ours run there), then removes it.
drop_netns() {
  local ns=$1 pids
  pids=$(ip netns pids "$ns" 2>/dev/null)
  # shellcheck disable=SC2086
  [ -n "$pids" ] && kill -TERM $pids 2>/dev/null
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break
    sleep 0.2
  done
  pids=$(ip netns pids "$ns" 2>/dev/null)
  # shellcheck disable=SC2086
  [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
  ip netns delete "$ns" 2>/dev/null
}

# A private system bus per machine: its own socket, a policy that lets the
# (root) daemons own their names.
start_bus() {
  local side=$1 ns=$tag-$1
  cat >"$dir/bus-$side.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$dir/bus-$side</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
EOF
  ip netns exec "$ns" timeout 10 dbus-daemon --config-file="$dir/bus-$side.conf" --fork --nopidfile \
    >"$dir/bus-$side.log" 2>&1 || { cat "$dir/bus-$side.log"; return 1; }
}

# Avahi on the veth only, host pa-mdns-SIDE. Its pid file path is fixed
# (/run/avahi-daemon/pid), so it runs in a mount namespace of its own with
# a tmpfs on /run: the host's /run is never touched. Its pid (every step
# execs the next) is kept for a restart.
start_avahi() {
  local side=$1 ns=$tag-$1
  cat >"$dir/avahi-$side.conf" <<EOF
[server]
host-name=pa-mdns-$side
domain-name=local
use-ipv4=yes
use-ipv6=no
allow-interfaces=pm$id$side
enable-dbus=yes
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
EOF
  DBUS_SYSTEM_BUS_ADDRESS=unix:path=$dir/bus-$side ip netns exec "$ns" unshare -m --propagation private \
    sh -c 'mount -t tmpfs tmpfs /run && mkdir /run/avahi-daemon &&
           exec avahi-daemon --no-drop-root --no-chroot --no-rlimits --no-proc-title -f "$1"' \
    sh "$dir/avahi-$side.conf" >"$dir/avahi-$side.log" 2>&1 &
  echo $! >"$dir/avahi-$side.pid"
  for _ in $(seq 1 50); do
    grep -q "Server startup complete" "$dir/avahi-$side.log" && return 0
    sleep 0.2
  done
  cat "$dir/avahi-$side.log"
  return 1
}

if [ "${1:-}" = --restart-avahi ]; then
  dir=$2 id=$3 side=$4 tag=pa-mdns-$3
  pid=$(cat "$dir/avahi-$side.pid") || exit 1
  kill "$pid" && timeout 10 tail --pid="$pid" -f /dev/null
  start_avahi "$side"
  exit
fi

prog=${1:?usage: test_client_mdns.sh PROGRAM}
[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, mounts)"
for tool in ip dbus-daemon avahi-daemon avahi-browse unshare mount timeout; do
  command -v "$tool" >/dev/null ||
    skip "$tool is missing (packages: iproute2, dbus, avahi-daemon, avahi-utils, util-linux; scripts/deps.sh)"
done

id=$$ tag=pa-mdns-$$
ns_a=$tag-a ns_b=$tag-b
veth_a=pm$$a veth_b=pm$$b
addr_a=10.231.7.1 addr_b=10.231.7.2

cleanup() {
  drop_netns "$ns_a"
  drop_netns "$ns_b" # the veth pair goes with its namespaces
  [ -n "${dir:-}" ] && rm -rf "$dir"
}

# Namespaces of earlier runs whose script is gone (killed by a timeout).
for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep -E '^pa-mdns-[0-9]+-[ab]$'); do
  pid=${ns#pa-mdns-}
  pid=${pid%-*}
  kill -0 "$pid" 2>/dev/null || { drop_netns "$ns"; rm -rf /tmp/pa-mdns-"$pid".*; }
done

trap cleanup EXIT
trap 'exit 130' INT TERM HUP

ip netns add "$ns_a" 2>/dev/null || skip "cannot create a network namespace (ip netns add)"
ip netns add "$ns_b" || exit 1
ip link add "$veth_a" type veth peer name "$veth_b" || skip "cannot create a veth pair"
dir=$(mktemp -d /tmp/pa-mdns-$id.XXXXXX) || exit 1
set -e
ip link set "$veth_a" netns "$ns_a"
ip link set "$veth_b" netns "$ns_b"
ip -n "$ns_a" addr add "$addr_a/24" dev "$veth_a"
ip -n "$ns_b" addr add "$addr_b/24" dev "$veth_b"
for side in a b; do
  ip -n "$tag-$side" link set lo up
  ip -n "$tag-$side" link set "pm$id$side" up
done
set +e

for side in a b; do
  start_bus "$side" || skip "dbus-daemon does not start in a network namespace"
  start_avahi "$side" || skip "avahi-daemon does not start in a network namespace (log above)"
done

start=$(date +%s%N)
PA_MDNS_NETNS_A=$ns_a PA_MDNS_NETNS_B=$ns_b PA_MDNS_BUS_A=unix:path=$dir/bus-a PA_MDNS_BUS_B=unix:path=$dir/bus-b \
  PA_MDNS_ADDR_A=$addr_a PA_MDNS_HOST_A=pa-mdns-a.local \
  PA_MDNS_SCRIPT=$0 PA_MDNS_DIR=$dir PA_MDNS_ID=$id \
  timeout -k 5 150 "$prog"
rc=$?
echo "client.mdns: $(( ($(date +%s%N) - start) / 1000000 )) ms in the namespaces (rc $rc)"
exit "$rc"
