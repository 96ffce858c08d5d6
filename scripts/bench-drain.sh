#!/usr/bin/env bash
# The teardown part of scripts/bench.sh (issue 18, BENCHMARKS.md): how long after DEL returns (or after
# `openpe-sidecar drain` returns) the ToR has withdrawn the node's host prefixes, with the ToR behind an L2 hop
# (a bridge namespace between the node's NIC and the ToR, so the NIC leaving is no carrier loss at the ToR) and
# FRR's default timers on both sides (keepalive 60 s, hold 180 s), without and with graceful restart.
#
# Namespaces: H (the node's host side, NIC `toswitch`), B (the L2 hop: a bridge with `tor-side`, the NIC's peer,
# and `b-tor`), T (the ToR: FRR AS 64512 on `tor-port`, 192.168.11.2), R (the router: FRR configured by
# openpe-sidecar from the state directory). The prefixes watched are the host's addresses the router
# originates (192.169.10.2/32, 2001:db8:10::2/128). Each round: ADD, wait until the ToR has both, then the
# action, then poll the ToR every 20 ms (one vtysh call, a few ms more under load) until both are gone.
# Variants, per graceful-restart setting:
#   del     DEL (drainTimeoutSeconds 2, the default): the sidecar closes the sessions first
#   drain   `openpe-sidecar drain` in the router namespace (a pod's preStop), then DEL
#   nodrain DEL with drainTimeoutSeconds 0 (today's behaviour); capped at BENCH_DRAIN_CAP seconds
# Then GoBGP as the host speaker (AS 64515, IPv4) through DEL/ADD cycles 6 s apart (longer than GoBGP's 5 s
# idle hold after a session ends): ADD returned -> the host session Established in the router's FRR (polled
# every 20 ms), after one warm-up cycle; with the drain, and without it (drainTimeoutSeconds 0) beside it.
# Prints a markdown table on stdout; progress on stderr. Removes everything it made on exit.
#   BENCH_PREFIX, BENCH_TMP, PLUGIN: as scripts/bench.sh sets them. BENCH_DRAIN_ROUNDS (default 5),
#   BENCH_DRAIN_NODRAIN_ROUNDS (default 1), BENCH_DRAIN_CAP (default 75), BENCH_DRAIN_GOBGP_CYCLES (default 5).
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 1; }
: "${BENCH_PREFIX:?}" "${BENCH_TMP:?}" "${PLUGIN:?}"
rounds="${BENCH_DRAIN_ROUNDS:-5}"
nodrain_rounds="${BENCH_DRAIN_NODRAIN_ROUNDS:-1}"
cap="${BENCH_DRAIN_CAP:-75}"
sidecar="$(dirname "$PLUGIN")/openpe-sidecar"
[ -x "$sidecar" ] || { echo "pending: no $sidecar"; exit 0; }
[ -x /usr/lib/frr/bgpd ] || { echo "pending: FRR is not installed"; exit 0; }

p="$BENCH_PREFIX"
H="${p}h" R="${p}r" T="${p}t" B="${p}b"
tf="${p}ft" rf="${p}fr"          # FRR pathspaces
work="$BENCH_TMP/drain"
state="$work/state"
mkdir -p "$work"
sidecar_pid=""

stop_all() {
  [ -n "$sidecar_pid" ] && kill "$sidecar_pid" 2>/dev/null && wait "$sidecar_pid" 2>/dev/null || true
  sidecar_pid=""
  for ps in "$tf" "$rf"; do
    for f in /var/run/frr/"$ps"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  done
  sleep 0.3
  [ -f /var/run/frr/"$tf"/tor.log ] && cp /var/run/frr/"$tf"/tor.log "$work/tor.log"
  for ns in "$H" "$R" "$T" "$B"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf /etc/frr/"$tf" /etc/frr/"$rf" /var/run/frr/"$tf" /var/run/frr/"$rf" "$state"
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_all
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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

setup() { # gr: 0 or 1
  local gr=$1 grline=""
  [ "$gr" = 1 ] && grline=" bgp graceful-restart"
  for ns in "$H" "$R" "$T" "$B"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
  ip -n "$H" link add toswitch type veth peer name tor-side netns "$B"
  ip -n "$H" link set toswitch mtu 1400 up
  ip -n "$H" addr add 192.168.11.3/24 dev toswitch
  ip -n "$H" addr add 2001:db8:11::3/64 dev toswitch nodad
  ip -n "$B" link add br0 type bridge
  ip -n "$B" link set br0 up
  ip -n "$B" link set tor-side master br0 up
  ip -n "$B" link add b-tor type veth peer name tor-port netns "$T"
  ip -n "$B" link set b-tor master br0 up
  ip -n "$T" link set tor-port up
  ip -n "$T" addr add 192.168.11.2/24 dev tor-port
  ip -n "$T" addr add 2001:db8:11::2/64 dev tor-port nodad
  # The ToR's bgpd logs its neighbor events with microseconds: when it cleared the router's routes.
  local log="log file /var/run/frr/$tf/tor.log
log timestamp precision 6
debug bgp neighbor-events
"
  frr_start "$tf" "$T" "${log}router bgp 64512
 bgp router-id 192.168.11.2
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
$grline
 neighbor 192.168.11.3 remote-as 64514
 neighbor 192.168.11.3 timers connect 2
 address-family ipv4 unicast
  neighbor 192.168.11.3 activate
 exit-address-family
 address-family ipv6 unicast
  neighbor 192.168.11.3 activate
 exit-address-family
exit
"
  frr_start "$rf" "$R" "! configured by openpe-sidecar
"
  : >"$work/extra.conf"
  [ "$gr" = 1 ] && printf 'router bgp 64514\n bgp graceful-restart\nexit\n' >"$work/extra.conf"
  mkdir -m 0700 -p "$state"
  ip netns exec "$R" "$sidecar" --state-dir "$state" --frr-pathspace "$rf" --frr-extra "$work/extra.conf" \
    --log-level info </dev/null >/dev/null 2>>"$work/sidecar.log" &
  sidecar_pid=$!
}

conf() { # drainTimeoutSeconds
  cat <<EOF
{"cniVersion":"1.0.0","name":"openpe","type":"openpe-passthrough","drainTimeoutSeconds":$1,
 "underlay":{"asn":64514,"nics":["toswitch"],"neighbors":[{"asn":64512,"address":"192.168.11.2"}]},
 "l3passthrough":{"hostsession":{"asn":64514,"hostasn":64515,
   "localcidr":{"ipv4":"192.169.10.0/24","ipv6":"2001:db8:10::/64"}}},
 "stateDir":"$state","hostNetns":"/var/run/netns/$H"}
EOF
}
cni() { # command drainTimeoutSeconds
  conf "$2" | env -i PATH="$PATH" CNI_COMMAND="$1" CNI_CONTAINERID=drainbench CNI_NETNS="/var/run/netns/$R" \
    CNI_IFNAME=net1 CNI_PATH=/usr/lib/cni "$PLUGIN" >/dev/null
}
now() { date +%s%N; }
# How many of the two host prefixes the ToR has (stale ones included).
at_tor() {
  { vtysh -N "$tf" -c 'show bgp ipv4 unicast json' 2>/dev/null; vtysh -N "$tf" -c 'show bgp ipv6 unicast json' 2>/dev/null; } |
    grep -cE '"(192\.169\.10\.2/32|2001:db8:10::2/128)"' || true
}
stale_at_tor() {
  vtysh -N "$tf" -c 'show bgp ipv4 unicast 192.169.10.2/32 json' 2>/dev/null | grep -c '"stale":true' || true
}
# The ToR's bgpd log: the first "Clearing_Completed" of the router's session at or after <ns since the epoch>,
# in ns since the epoch (bgpd logs local time, to the microsecond); empty if there is none.
cleared_at() {
  local since=$1 line ts
  while read -r line; do
    ts=$(date -d "$(echo "$line" | awk '{ gsub("/", "-", $1); print $1 " " $2 }')" +%s%N)
    (( ts >= since )) && { echo "$ts"; return 0; }
  done < <(grep '192.168.11.3 \[FSM\] Clearing_Completed' /var/run/frr/"$tf"/tor.log 2>/dev/null || true)
}
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) / 1e6 }'; }

# One round of a variant; prints "<ms from the action's return to withdrawn> <ms the action took>" or
# "capped <cap ms> <action ms>".
round() { # variant
  local v=$1 limit=30 t0 t1 dt
  cni ADD 2
  t0=$(now)
  [ -n "${BENCH_DRAIN_LOG:-}" ] && echo "ADD returned $(date +%T.%N)" >>"$work/rounds.log"
  until [ "$(at_tor)" = 2 ]; do
    (( $(now) - t0 > 60000000000 )) && { echo "pending: the host prefixes never reached the ToR" >&2; return 1; }
    sleep 0.05
  done
  sleep 0.5
  t0=$(now)
  case "$v" in
    del) cni DEL 2 ;;
    drain) ip netns exec "$R" "$sidecar" drain --frr-pathspace "$rf" --state-dir "$state" --timeout 5 2>>"$work/drain.log" ;;
    nodrain) cni DEL 0; limit=$cap ;;
  esac
  t1=$(now)
  [ -n "${BENCH_DRAIN_LOG:-}" ] && echo "$v started $(date -d @$((t0 / 1000000000)) +%T).${t0: -9} returned $(date +%T.%N)" >>"$work/rounds.log"
  local stale=0
  until [ "$(at_tor)" = 0 ]; do
    [ "$(stale_at_tor)" != 0 ] && stale=1
    if (( $(now) - t1 > limit * 1000000000 )); then
      echo "capped $((limit * 1000)) NA $(ms "$t0" "$t1") $stale"
      [ "$v" = drain ] && cni DEL 2
      return 0
    fi
    sleep 0.02
  done
  dt=$(ms "$t1" "$(now)")
  [ -n "${BENCH_DRAIN_LOG:-}" ] && echo "gone seen $(date +%T.%N)" >>"$work/rounds.log"
  local tc
  tc=$(cleared_at "$t0")
  [ -n "$tc" ] && tc=$(ms "$t1" "$tc") || tc=NA
  echo "$dt $tc $(ms "$t0" "$t1") $stale"
  [ "$v" = drain ] && cni DEL 2
  # Let the router's FRR drop the attachment's configuration before the next ADD.
  t0=$(now)
  while vtysh -N "$rf" -c 'show running-config' 2>/dev/null | grep -q 'neighbor 192.168.11.2 '; do
    (( $(now) - t0 > 30000000000 )) && { echo "pending: the router kept its configuration after DEL" >&2; return 1; }
    sleep 0.1
  done
  sleep 0.3
}

median_of() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
max_of() { sort -n | tail -1; }
summary() { # label results...
  local label=$1; shift
  local gone act capped stale n
  gone=$(printf '%s\n' "$@" | awk '{ print ($1 == "capped") ? $2 : $1 }')
  local logged
  logged=$(printf '%s\n' "$@" | awk '$1 != "capped" && $2 != "NA" { print $2 }')
  act=$(printf '%s\n' "$@" | awk '{ print $(NF-1) }')
  capped=$(printf '%s\n' "$@" | grep -c '^capped' || true)
  stale=$(printf '%s\n' "$@" | awk '{ s += $NF } END { print (s ? "yes" : "no") }')
  n=$#
  local note=""
  [ "$capped" != 0 ] && note=" ($capped of $n not withdrawn within the cap)"
  local lg="n/a"
  [ -n "$logged" ] && lg="$(echo "$logged" | median_of | awk '{ printf "%.3f", $1 / 1000 }') / $(echo "$logged" | max_of | awk '{ printf "%.3f", $1 / 1000 }') s"
  printf '| %s | %s | %s / %s s%s | %d | %s ms | %s |\n' "$label" "$lg" \
    "$(echo "$gone" | median_of | awk '{ printf "%.3f", $1 / 1000 }')" \
    "$(echo "$gone" | max_of | awk '{ printf "%.3f", $1 / 1000 }')" "$note" "$n" "$(echo "$act" | median_of)" "$stale"
}

echo "| after | action returned → routes cleared, per the ToR's bgpd log, median / max | action returned → host prefixes gone, polled, median / max | rounds | action wall, median | stale routes seen |"
echo "|---|---|---|---|---|---|"
for gr in ${BENCH_DRAIN_GR-0 1}; do
  name=$([ "$gr" = 1 ] && echo "with graceful restart" || echo "without graceful restart")
  echo "bench-drain: $name: setting up" >&2
  setup "$gr"
  for v in ${BENCH_DRAIN_VARIANTS:-del drain nodrain}; do
    n=$rounds
    [ "$v" = nodrain ] && n=$nodrain_rounds
    results=()
    for i in $(seq 1 "$n"); do
      r=$(round "$v") || { echo "| $v, $name | pending: a round failed | | | | |"; continue 2; }
      echo "bench-drain: $name, $v, round $i: $r (ms from the action's return: withdrawal seen by polling, the ToR's bgpd clearing the routes per its log; action ms; stale seen)" >&2
      results+=("$r")
    done
    case "$v" in
      del) label="DEL (drainTimeoutSeconds 2), $name" ;;
      drain) label="\`openpe-sidecar drain\`, $name" ;;
      nodrain) label="DEL without the drain (drainTimeoutSeconds 0), $name; capped at ${cap} s" ;;
    esac
    summary "$label" "${results[@]}"
  done
  stop_all
done

# GoBGP through DEL/ADD cycles.
gobgp_run() { # drainTimeoutSeconds cycles
  local d=$1 n=$2 t0 times=()
  cni ADD "$d"
  until vtysh -N "$rf" -c 'show bgp neighbors 192.169.10.2 json' 2>/dev/null | grep -q '"bgpState":"Established"'; do
    sleep 0.05
  done
  cni DEL "$d"
  sleep 6
  for i in $(seq 1 "$n"); do
    cni ADD "$d"
    t0=$(now)
    until vtysh -N "$rf" -c 'show bgp neighbors 192.169.10.2 json' 2>/dev/null | grep -q '"bgpState":"Established"'; do
      (( $(now) - t0 > 30000000000 )) && { echo "pending: GoBGP session not Established 30 s after ADD" >&2; return 1; }
      sleep 0.02
    done
    times+=("$(ms "$t0" "$(now)")")
    echo "bench-drain: GoBGP, drainTimeoutSeconds $d, cycle $i: Established ${times[-1]} ms after ADD returned" >&2
    cni DEL "$d"
    sleep 6
  done
  printf '| GoBGP, DEL/ADD cycles 6 s apart, drainTimeoutSeconds %s | %s ms | %s / %s s | %d |\n' "$d" \
    "$(printf '%s ' "${times[@]}" | sed 's/ $//')" \
    "$(printf '%s\n' "${times[@]}" | median_of | awk '{ printf "%.3f", $1 / 1000 }')" \
    "$(printf '%s\n' "${times[@]}" | max_of | awk '{ printf "%.3f", $1 / 1000 }')" "$n"
}
if [ -x /usr/bin/gobgpd ]; then
  echo "bench-drain: GoBGP: setting up" >&2
  setup 0
  printf '%s\n' '[global.config]' '  as = 64515' '  router-id = "192.169.10.2"' '[[neighbors]]' \
    '  [neighbors.config]' '    neighbor-address = "192.169.10.1"' '    peer-as = 64514' \
    '  [[neighbors.afi-safis]]' '    [neighbors.afi-safis.config]' '      afi-safi-name = "ipv4-unicast"' \
    >"$work/gobgpd.toml"
  ip netns exec "$H" gobgpd -t toml -f "$work/gobgpd.toml" --api-hosts 127.0.0.1:50051 --pprof-disable -p \
    </dev/null >"$work/gobgpd.log" 2>&1 &
  disown $!    # stop_all kills it with the namespace's processes
  sleep 1
  echo
  echo "| host speaker | ADD returned → host session Established, per cycle (after a warm-up cycle) | median / max | cycles |"
  echo "|---|---|---|---|"
  gobgp_run 2 "${BENCH_DRAIN_GOBGP_CYCLES:-5}" || echo "| GoBGP, drainTimeoutSeconds 2 | pending: a cycle failed | | |"
  gobgp_run 0 3 || echo "| GoBGP, drainTimeoutSeconds 0 | pending: a cycle failed | | |"
  stop_all
else
  echo
  echo "GoBGP: not installed (Debian package gobgpd); not measured"
fi
