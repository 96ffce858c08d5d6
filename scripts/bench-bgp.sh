#!/usr/bin/env bash
# The BGP part of scripts/bench.sh (BENCHMARKS.md): how long after ADD returns the host sessions (IPv4 and IPv6)
# are Established, with real FRR, as in tests/bgp_e2e.rs: a host namespace whose FRR (AS 64515) peers with
# 192.169.10.1 and 2001:db8:10::1, a router namespace whose FRR starts empty and is configured by openpe-sidecar
# (watch mode) from the state directory, and a ToR namespace holding the NIC's peer (no BGP speaker there: the
# underlay session is not measured). Each round: ADD, poll the host's FRR every 20 ms until both sessions are
# Established (also noting when the sidecar's configuration reached the router's FRR), DEL, wait until the
# sidecar has removed the router's BGP configuration. The polling (one vtysh call, then 20 ms of sleep) makes
# each time late by at most one poll.
# Prints "<median s> <p90 s> <rounds>" on stdout; progress on stderr. Removes everything it made on exit.
#   BENCH_PREFIX, BENCH_TMP, PLUGIN: as scripts/bench.sh sets them. BENCH_BGP_ROUNDS (default 10).
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 1; }
: "${BENCH_PREFIX:?}" "${BENCH_TMP:?}" "${PLUGIN:?}"
rounds="${BENCH_BGP_ROUNDS:-10}"
sidecar="$(dirname "$PLUGIN")/openpe-sidecar"
[ -x "$sidecar" ] || { echo "pending: no $sidecar" ; exit 0; }
[ -x /usr/lib/frr/bgpd ] || { echo "pending: FRR is not installed"; exit 0; }

p="$BENCH_PREFIX"
H="${p}h" R="${p}r" T="${p}t"
hf="${p}fh" rf="${p}fr"          # FRR pathspaces
state="$BENCH_TMP/bgp-state"
work="$BENCH_TMP/bgp"
mkdir -p "$work"
sidecar_pid=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$sidecar_pid" ] && kill "$sidecar_pid" 2>/dev/null || true
  for ps in "$hf" "$rf"; do
    for f in /var/run/frr/"$ps"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  done
  sleep 0.3
  for ns in "$H" "$R" "$T"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf /etc/frr/"$hf" /etc/frr/"$rf" /var/run/frr/"$hf" /var/run/frr/"$rf"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for ns in "$H" "$R" "$T"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$H" link add toswitch type veth peer name tor-side netns "$T"
ip -n "$H" link set toswitch mtu 1400 up
ip -n "$H" addr add 192.168.11.3/24 dev toswitch
ip -n "$H" addr add 2001:db8:11::3/64 dev toswitch nodad
ip -n "$T" link set tor-side up
ip -n "$T" addr add 192.168.11.2/24 dev tor-side

frr_start() { # pathspace namespace config
  local ps=$1 ns=$2 conf=$3
  mkdir -p /etc/frr/"$ps" /var/run/frr/"$ps"
  echo "service integrated-vtysh-config" >/etc/frr/"$ps"/vtysh.conf
  echo "bgpd=yes" >/etc/frr/"$ps"/daemons
  printf '%s' "$conf" >/etc/frr/"$ps"/frr.conf
  chown -R frr:frr /etc/frr/"$ps" /var/run/frr/"$ps"
  chmod 0750 /etc/frr/"$ps"; chmod 0640 /etc/frr/"$ps"/*
  ip netns exec "$ns" /usr/lib/frr/zebra -N "$ps" -d -F traditional -P 0 -s 90000000
  ip netns exec "$ns" /usr/lib/frr/bgpd -N "$ps" -d -F traditional -P 0
  vtysh -N "$ps" -b >/dev/null
}

frr_start "$rf" "$R" "! configured by openpe-sidecar
"
frr_start "$hf" "$H" "router bgp 64515
 bgp router-id 192.169.10.2
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor 192.169.10.1 remote-as 64514
 neighbor 192.169.10.1 timers connect 2
 neighbor 2001:db8:10::1 remote-as 64514
 neighbor 2001:db8:10::1 timers connect 2
 address-family ipv4 unicast
  neighbor 192.169.10.1 activate
 exit-address-family
 address-family ipv6 unicast
  neighbor 2001:db8:10::1 activate
 exit-address-family
exit
"
mkdir -m 0700 -p "$state"
ip netns exec "$R" "$sidecar" --state-dir "$state" --frr-pathspace "$rf" --log-level info \
  </dev/null >/dev/null 2>"$work/sidecar.log" &
sidecar_pid=$!

conf=$(cat <<EOF
{"cniVersion":"1.0.0","name":"openpe","type":"openpe-passthrough",
 "underlay":{"asn":64514,"nics":["toswitch"],"neighbors":[{"asn":64512,"address":"192.168.11.2"}]},
 "l3passthrough":{"hostsession":{"asn":64514,"hostasn":64515,
   "localcidr":{"ipv4":"192.169.10.0/24","ipv6":"2001:db8:10::/64"}}},
 "stateDir":"$state","hostNetns":"/var/run/netns/$H"}
EOF
)
cni() {
  echo "$conf" | env -i PATH="$PATH" CNI_COMMAND="$1" CNI_CONTAINERID=bgpbench CNI_NETNS="/var/run/netns/$R" \
    CNI_IFNAME=net1 CNI_PATH=/usr/lib/cni "$PLUGIN" >/dev/null
}
# Both host sessions Established, as the host's FRR sees them (it has exactly these two neighbors). grep, not a
# JSON parser, keeps each poll cheap (one vtysh call, a few milliseconds).
both_up() {
  [ "$(vtysh -N "$hf" -c 'show bgp neighbors json' 2>/dev/null | grep -o '"bgpState":"Established"' | wc -l)" = 2 ]
}
any_up() {
  vtysh -N "$hf" -c 'show bgp neighbors json' 2>/dev/null | grep -q '"bgpState":"Established"'
}
router_configured() {
  vtysh -N "$rf" -c 'show running-config' 2>/dev/null | grep -q '^router bgp'
}
now() { date +%s%N; }

times=()
for i in $(seq 1 "$rounds"); do
  cni ADD
  t0=$(now)
  tc=""
  until both_up; do
    (( $(now) - t0 > 30000000000 )) && { echo "pending: sessions not Established 30 s after ADD (round $i)"; exit 0; }
    # For the diagnosis: when the sidecar's configuration reached the router's FRR.
    [ -z "$tc" ] && router_configured && tc=$(now)
    sleep 0.02
  done
  t1=$(now)
  [ -z "$tc" ] && tc=$t1
  dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  dc=$(awk -v a="$t0" -v b="$tc" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  echo "bench-bgp: round $i: both host sessions Established ${dt} s after ADD returned (router's FRR configured by the sidecar after ${dc} s)" >&2
  times+=("$dt")
  cni DEL
  t2=$(now)
  while any_up || router_configured; do
    (( $(now) - t2 > 30000000000 )) && { echo "pending: BGP configuration not removed after DEL (round $i)"; exit 0; }
    sleep 0.1
  done
  sleep 0.5
done
printf '%s\n' "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END {
  m = v[int((NR + 1) / 2)]; i = int(0.9 * NR); if (i < 0.9 * NR) i++; printf "%s %s %d\n", m, v[i], NR }'
