#!/usr/bin/env bash
# The lab on one machine: a ToR running FRR, a node's host namespace with its underlay NIC `toswitch`, and a
# router namespace built by the plugin's ADD, where FRR and openpe-sidecar run as in a pod. A BGP speaker in the
# host namespace (FRR, AS 64515) peers with the router. Prints a report, then tears everything down with DEL.
#
#   scripts/demo.sh              build, run the lab, print the report, tear down
#   scripts/demo.sh up           build, run the lab and print the report, but leave it running to explore
#   scripts/demo.sh down         remove everything an interrupted run left (namespaces, daemons, FRR dirs)
#   scripts/demo.sh bench [N]    run the lab N times (default 5); print the median time from ADD returning
#                                to each host session Established
#   NETCONF=netconf/10-openpe-ipv4.conf scripts/demo.sh    another sample configuration
#   FRR_EXTRA=FILE scripts/demo.sh     lines the sidecar appends to the router's FRR configuration (e.g. debugs)
#
# Needs root and Debian's frr and frr-pythontools (scripts/install-deps.sh). Touches nothing outside its own
# namespaces, /run/openpe-demo, and the FRR instance directories /etc/frr/openpe-demo-* and
# /var/run/frr/openpe-demo-*.
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=openpe-demo
NS_TOR=$PREFIX-tor
NS_HOST=$PREFIX-host
NS_ROUTER=$PREFIX-router
WORK=/run/openpe-demo
STATE=$WORK/state
NETCONF=${NETCONF:-netconf/10-openpe-dualstack.conf}
PROFILE=${PROFILE:-release}
BIN=target/$PROFILE
PLUGIN=$BIN/openpe-passthrough
SIDECAR=$BIN/openpe-sidecar
CONTAINER=openpe-demo-router

say() { printf '%s\n' "$*" >&2; }
die() { say "demo: $*"; exit 1; }
now() { date +%s.%N; }

[ "$(id -u)" = 0 ] || die "run as root (it makes network namespaces)"
export PATH="$HOME/.cargo/bin:$PATH"

# --- FRR instances, one per namespace, each with its own pathspace ---------------------------------------------

frr_start() { # namespace pathspace config-text [bfdd]
  local ns=$1 name=$2 conf=$3 bfd=${4:-}
  install -d -o frr -g frr -m 0750 "/etc/frr/$name"
  install -d -o frr -g frr -m 0755 "/var/run/frr/$name"
  printf 'service integrated-vtysh-config\n' > "/etc/frr/$name/vtysh.conf"
  printf 'bgpd=yes\n' > "/etc/frr/$name/daemons"
  [ -z "$bfd" ] || printf 'bfdd=yes\n' >> "/etc/frr/$name/daemons"
  printf '%s\n' "$conf" > "/etc/frr/$name/frr.conf"
  chown frr:frr /etc/frr/"$name"/*
  chmod 0640 /etc/frr/"$name"/*
  # (zebra says once that this kernel has no MPLS: not an error)
  ip netns exec "$ns" /usr/lib/frr/zebra -N "$name" -d -F traditional -P 0 -s 90000000 2>/dev/null
  ip netns exec "$ns" /usr/lib/frr/bgpd -N "$name" -d -F traditional -P 0
  # BFD needs bfdd: the sidecar refuses to apply BFD settings that FRR would silently drop without it.
  [ -z "$bfd" ] || ip netns exec "$ns" /usr/lib/frr/bfdd -N "$name" -d -F traditional -P 0
  vtysh -N "$name" -b >/dev/null
}

frr_stop() { # pathspace
  local name=$1 pid d
  for d in bfdd bgpd zebra; do
    [ -r "/var/run/frr/$name/$d.pid" ] || continue
    pid=$(cat "/var/run/frr/$name/$d.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null && [ "$(ps -o stat= -p "$pid" | cut -c1)" != Z ] || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "/etc/frr/$name" "/var/run/frr/$name"
}

# --- up and down ---------------------------------------------------------------------------------------------

conf() { # the sample configuration with this lab's state directory and host namespace
  jq --arg s "$STATE" --arg h "/var/run/netns/$NS_HOST" '. + {stateDir: $s, hostNetns: $h}' "$NETCONF"
}

cni() { # verb
  conf | env -i PATH="$PATH" CNI_COMMAND="$1" CNI_CONTAINERID=$CONTAINER CNI_NETNS="/var/run/netns/$NS_ROUTER" \
    CNI_IFNAME=net1 CNI_PATH="$PWD/$BIN" "$PLUGIN"
}

down() {
  if [ -r "$WORK/sidecar.pid" ]; then kill "$(cat "$WORK/sidecar.pid")" 2>/dev/null || true; fi
  if [ -x "$PLUGIN" ] && ip netns list | grep -qw "$NS_ROUTER" && [ -d "$STATE" ]; then
    cni DEL >/dev/null 2>&1 || say "demo: DEL failed; removing the namespaces anyway"
  fi
  local n
  for n in tor host router; do frr_stop "$PREFIX-$n"; done
  for n in $NS_TOR $NS_HOST $NS_ROUTER; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$WORK"
}

TOR_CONF="router bgp 64512
 bgp router-id 192.168.11.2
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 no bgp network import-check
 neighbor 192.168.11.3 remote-as 64514
 neighbor 192.168.11.3 timers 1 3
 neighbor 192.168.11.3 timers connect 1
 address-family ipv4 unicast
  network 172.30.0.0/24
  neighbor 192.168.11.3 activate
 exit-address-family
 address-family ipv6 unicast
  network 2001:db8:99::/64
  neighbor 192.168.11.3 activate
 exit-address-family
exit"

host_conf() { # host-ip4 host-ip6(or empty)
  local c="router bgp 64515
 bgp router-id $1
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 no bgp network import-check
 neighbor 192.169.10.1 remote-as 64514
 neighbor 192.169.10.1 timers connect 1
 address-family ipv4 unicast
  network 172.31.0.0/24
  neighbor 192.169.10.1 activate
 exit-address-family"
  if [ -n "$2" ]; then
    c="$c
 neighbor 2001:db8:10::1 remote-as 64514
 neighbor 2001:db8:10::1 timers connect 1
 address-family ipv6 unicast
  network 2001:db8:88::/64
  neighbor 2001:db8:10::1 activate
 exit-address-family"
  fi
  printf '%s\nexit\n' "$c"
}

build() {
  scripts/install-deps.sh
  say "demo: building ($PROFILE)"
  if [ "$PROFILE" = release ]; then cargo build --locked --release --bins >&2; else cargo build --locked --bins >&2; fi
}

status_json() { "$SIDECAR" status --json --frr-pathspace "$PREFIX-router" 2>/dev/null || echo '{}'; }

# Runs the lab up to convergence; leaves the times in $WORK/times (neighbor seconds-after-ADD).
up() {
  mkdir -p "$WORK"; chmod 0700 "$WORK"
  for n in $NS_TOR $NS_HOST $NS_ROUTER; do ip netns add "$n"; ip -n "$n" link set lo up; done
  # The node's underlay NIC: a veth whose other end is the ToR's port.
  ip -n "$NS_HOST" link add toswitch type veth peer name tor-side netns "$NS_TOR"
  ip -n "$NS_HOST" addr add 192.168.11.3/24 dev toswitch
  ip -n "$NS_HOST" addr add 2001:db8:11::3/64 dev toswitch nodad
  ip -n "$NS_HOST" link set toswitch up
  ip -n "$NS_TOR" addr add 192.168.11.2/24 dev tor-side
  ip -n "$NS_TOR" addr add 2001:db8:11::2/64 dev tor-side nodad
  ip -n "$NS_TOR" link set tor-side up
  ip -n "$NS_TOR" addr add 172.30.0.1/32 dev lo
  ip -n "$NS_TOR" addr add 2001:db8:99::1/128 dev lo
  ip -n "$NS_HOST" addr add 172.31.0.1/32 dev lo
  ip -n "$NS_HOST" addr add 2001:db8:88::1/128 dev lo
  frr_start "$NS_TOR" "$PREFIX-tor" "$TOR_CONF"

  # ADD, as a runtime would call it.
  local result t_add host4 host6
  result=$(cni ADD) || die "ADD failed: $result"
  t_add=$(now)
  # The node's host addresses, as the plugin gave them to pt-host.
  host4=$(ip -n "$NS_HOST" -4 -j addr show dev pt-host | jq -r '.[0].addr_info[0].local // empty')
  host6=$(ip -n "$NS_HOST" -6 -j addr show dev pt-host scope global | jq -r '.[0].addr_info[0].local // empty')
  printf '%s\n' "$host4" > "$WORK/host4"; printf '%s\n' "$host6" > "$WORK/host6"

  # As in a pod: FRR first, then the sidecar, in the router namespace.
  frr_start "$NS_ROUTER" "$PREFIX-router" "! configured by openpe-sidecar" \
    "$(jq -r 'if [.. | objects | select(has("bfd") and .bfd != null)] | length > 0 then "bfdd" else "" end' "$NETCONF")"
  ip netns exec "$NS_ROUTER" "$SIDECAR" --state-dir "$STATE" --frr-pathspace "$PREFIX-router" ${FRR_EXTRA:+--frr-extra "$FRR_EXTRA"} \
    >/dev/null 2>"$WORK/sidecar.log" </dev/null &
  echo $! > "$WORK/sidecar.pid"

  # The host's BGP speaker.
  frr_start "$NS_HOST" "$PREFIX-host" "$(host_conf "${host4:-192.169.10.2}" "$host6")"

  # Wait for every session, noting when each is first Established.
  local want=(192.168.11.2) deadline n st t
  [ -n "$host4" ] && want+=("$host4")
  [ -n "$host6" ] && want+=("$host6")
  : > "$WORK/times"
  deadline=$(( $(date +%s) + 60 ))
  while :; do
    # One vtysh call per round keeps the measurement's own lag small (openpe-sidecar status asks twice).
    st=$(vtysh -N "$PREFIX-router" -c 'show bgp vrf default summary json' 2>/dev/null || true); t=$(now)
    up_now=$(jq -r '[.[]?.peers? // {} | to_entries[] | select(.value.state == "Established") | .key] | unique | .[]' \
      <<<"${st:-null}" 2>/dev/null || true)
    for n in "${want[@]}"; do
      grep -q "^$n " "$WORK/times" && continue
      if grep -qx "$n" <<<"$up_now"; then
        awk -v n="$n" -v a="$t" -v b="$t_add" 'BEGIN {printf "%s %.2f\n", n, a - b}' >> "$WORK/times"
      fi
    done
    [ "$(wc -l < "$WORK/times")" -ge "${#want[@]}" ] && break
    [ "$(date +%s)" -lt "$deadline" ] || { cat "$WORK/sidecar.log" >&2; die "sessions did not come up within 60 s: $(status_json)"; }
    sleep 0.02
  done
  # And routes both ways.
  for _ in $(seq 100); do
    if ip -n "$NS_HOST" route show 172.30.0.0/24 | grep -q . &&
      vtysh -N "$PREFIX-tor" -c 'show bgp ipv4 unicast json' | jq -e --arg h "$host4/32" \
        '.routes["172.31.0.0/24"] and .routes[$h]' >/dev/null; then
      [ -z "$host6" ] && break
      ip -n "$NS_HOST" -6 route show 2001:db8:99::/64 | grep -q . &&
        vtysh -N "$PREFIX-tor" -c 'show bgp ipv6 unicast json' | jq -e --arg h "$host6/128" \
          '.routes["2001:db8:88::/64"] and .routes[$h]' >/dev/null && break
    fi
    sleep 0.1
  done
}

report() {
  local host4 host6
  host4=$(cat "$WORK/host4"); host6=$(cat "$WORK/host6")
  echo "== BGP sessions of the router (openpe-sidecar status)"
  "$SIDECAR" status --frr-pathspace "$PREFIX-router" | sed 's/^/   /'
  echo "== The ToR's prefix in the host namespace's kernel routing table"
  ip -n "$NS_HOST" route show 172.30.0.0/24 | sed 's/^/   /'
  [ -n "$host6" ] && ip -n "$NS_HOST" -6 route show 2001:db8:99::/64 | sed 's/^/   /'
  echo "== The host's prefix and host address at the ToR"
  vtysh -N "$PREFIX-tor" -c 'show bgp ipv4 unicast' | grep -E "172\.31\.0\.0/24|$host4/32" | sed 's/^/   /'
  # (a long IPv6 prefix puts its next hop on the following line)
  [ -n "$host6" ] && vtysh -N "$PREFIX-tor" -c 'show bgp ipv6 unicast' |
    awk -v a="2001:db8:88::/64" -v b="$host6/128" '$2 == a || $2 == b {print; if (NF <= 2) {getline; print}}' |
    sed 's/^/   /'
  echo "== Ping from the host namespace to the ToR's prefix"
  ip netns exec "$NS_HOST" ping -c 2 -W 2 172.30.0.1 | sed -n '1p;/packet loss/p' | sed 's/^/   /'
  [ -n "$host6" ] && ip netns exec "$NS_HOST" ping -6 -c 2 -W 2 2001:db8:99::1 | sed -n '1p;/packet loss/p' | sed 's/^/   /'
  echo "== Time from ADD returning to each session Established"
  while read -r n t; do printf '   %-18s %s s\n' "$n" "$t"; done < "$WORK/times"
}

teardown() {
  echo "== DEL"
  cni DEL >/dev/null && echo "   DEL done"
  sleep 1
  if vtysh -N "$PREFIX-tor" -c 'show bgp ipv4 unicast json' | jq -e '.routes["172.31.0.0/24"]' >/dev/null; then
    echo "   the ToR still has 172.31.0.0/24 (it learns on its next keepalive)"
  else
    echo "   the ToR no longer has the host's prefixes"
  fi
  down
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }

case "${1:-run}" in
  down) down; say "demo: cleaned up" ;;
  up)
    build; down
    up; report
    say "demo: the lab keeps running (vtysh -N $PREFIX-router, ip netns exec $NS_HOST ...); scripts/demo.sh down removes it"
    ;;
  run)
    build; down
    trap 'down' EXIT
    up; report; teardown
    trap - EXIT
    ;;
  bench)
    runs=${2:-5}; build; down
    trap 'down' EXIT
    : > /tmp/openpe-demo-bench.$$
    for i in $(seq "$runs"); do
      up
      h4=$(cat "$WORK/host4"); h6=$(cat "$WORK/host6")
      line="run $i:"
      while read -r n t; do line="$line $n=${t}s"; done < "$WORK/times"
      say "$line"
      for n in "$h4" "$h6" 192.168.11.2; do
        [ -n "$n" ] && awk -v n="$n" -v k="${n}" '$1 == n {print k, $2}' "$WORK/times" >> /tmp/openpe-demo-bench.$$
      done
      cni DEL >/dev/null; down
    done
    trap - EXIT
    for n in $(awk '{print $1}' /tmp/openpe-demo-bench.$$ | sort -u); do
      printf 'median over %s runs, ADD returned -> %s Established: %s s\n' "$runs" "$n" \
        "$(awk -v n="$n" '$1 == n {print $2}' /tmp/openpe-demo-bench.$$ | median)"
    done
    rm -f /tmp/openpe-demo-bench.$$
    ;;
  *) die "unknown command $1 (use: run, up, down, bench [N])" ;;
esac
