#!/usr/bin/env bash
# The BGP part of scripts/bench.sh (BENCHMARKS.md): how long after ADD returns the host sessions (IPv4 and IPv6)
# are Established, and the CPU openpe-sidecar and its children spend per apply, with FRR, BIRD and GoBGP as the
# host's speaker, for the sidecar's delta path and, in the same run, the frr-reload.py path (`--full-reload`).
#
# The lab is the one of tests/bgp_e2e.rs: a host namespace whose speaker (AS 64515) peers with 192.169.10.1 and
# 2001:db8:10::1, a router namespace whose FRR starts empty and is configured by openpe-sidecar (watch mode) from
# the state directory, and a ToR namespace holding the NIC's peer (no speaker there: the underlay session is not
# measured). Each round: ADD, wait until the router's bgpd has logged both host sessions Established, DEL, wait
# until the sidecar has applied "no attachment". The time is bgpd's own log timestamp (`log timestamp precision
# 6`, `debug bgp neighbor-events`, given through --frr-extra, which stays constant) minus the moment ADD
# returned: no polling error. FRR and BIRD keep running through the rounds (repeated DEL/ADD cycles); GoBGP is
# started afresh for each round (its repeated cycles need DEL to close the session first: issue 18).
# CPU per apply: user + system time of the sidecar and its reaped children (vtysh, frr-reload.py and its vtysh
# processes) from /proc/<pid>/stat over all rounds, divided by the applies (two per round), idle ticks and the
# drain DEL asks for (shutting the attachment's neighbors down before it goes) included.
#
# stdout: "<median s> <p90 s> <rounds>" of FRR with the delta path (scripts/bench.sh's summary line).
# BENCH_BGP_TABLE (a file): the markdown table of every speaker and path, and the rounds.
#   BENCH_PREFIX, BENCH_TMP, PLUGIN: as scripts/bench.sh sets them. BENCH_BGP_ROUNDS (default 20),
#   BENCH_BGP_SPEAKERS (default "frr bird gobgp"), BENCH_BGP_PATHS (default "delta full").
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 1; }
: "${BENCH_PREFIX:?}" "${BENCH_TMP:?}" "${PLUGIN:?}"
rounds="${BENCH_BGP_ROUNDS:-20}"
speakers="${BENCH_BGP_SPEAKERS:-frr bird gobgp}"
paths="${BENCH_BGP_PATHS:-delta full}"
table="${BENCH_BGP_TABLE:-/dev/null}"
sidecar="$(dirname "$PLUGIN")/openpe-sidecar"
[ -x "$sidecar" ] || { echo "pending: no $sidecar" ; exit 0; }
[ -x /usr/lib/frr/bgpd ] || { echo "pending: FRR is not installed"; exit 0; }

p="$BENCH_PREFIX"
H="${p}h" R="${p}r" T="${p}t"
hf="${p}fh" rf="${p}fr"          # FRR pathspaces
state="$BENCH_TMP/bgp-state"
work="$BENCH_TMP/bgp"
mkdir -p "$work"
sidecar_pid="" bird_pid="" gobgp_pid=""
rlog="/var/run/frr/$rf/bench-bgpd.log"   # the router's bgpd log (written by the frr user)

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in "$sidecar_pid" "$bird_pid" "$gobgp_pid"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
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
frr_stop() { # pathspace
  for f in /var/run/frr/"$1"/bgpd.pid /var/run/frr/"$1"/zebra.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  sleep 0.5
}

frr_start "$rf" "$R" "! configured by openpe-sidecar
"
# Constant through the run, so every change is the attachment's own: bgpd's session events with microseconds.
cat >"$work/extra.frr" <<EOF
log file $rlog
log timestamp precision 6
debug bgp neighbor-events
EOF
mkdir -m 0700 -p "$state"

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
now() { date +%s%N; }
# The host sessions' "went from OpenConfirm to Established" lines of the router's bgpd so far.
established_lines() {
  grep -E ' (192\.169\.10\.2|2001:db8:10::2) went from [A-Za-z]+ to Established' "$rlog" 2>/dev/null || true
}
# Epoch nanoseconds of such a line ("2026/12/01 10:03:04.123456 BGP: ...").
line_ns() { date -d "$(echo "$1" | awk '{print $1 " " $2}')" +%s%N; }
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13 + $14 + $15}'; }
applies_for_nothing() { grep -c 'the configuration for no attachment' "$work/sidecar.log" || true; }
applies_for_attachment() { grep -c 'the configuration for attachment' "$work/sidecar.log" || true; }

start_host() { # speaker
  case "$1" in
    frr)
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
" ;;
    bird)
      cat >"$work/bird.conf" <<'EOF'
router id 192.169.10.2;
protocol device {}
protocol bgp r4 { local as 64515; neighbor 192.169.10.1 as 64514; connect retry time 2; ipv4 { import all; export none; }; }
protocol bgp r6 { local as 64515; neighbor 2001:db8:10::1 as 64514; connect retry time 2; ipv6 { import all; export none; }; }
EOF
      ip netns exec "$H" bird -c "$work/bird.conf" -s "$work/bird.ctl" -P "$work/bird.pid"
      bird_pid=$(cat "$work/bird.pid") ;;
    gobgp)
      cat >"$work/gobgpd.toml" <<'EOF'
[global.config]
  as = 64515
  router-id = "192.169.10.2"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "192.169.10.1"
    peer-as = 64514
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "2001:db8:10::1"
    peer-as = 64514
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
EOF
      ip netns exec "$H" gobgpd -f "$work/gobgpd.toml" --api-hosts 127.0.0.1:50051 --pprof-disable -l warn \
        </dev/null >"$work/gobgpd.log" 2>&1 &
      gobgp_pid=$!
      sleep 0.5 ;;
  esac
}
stop_host() { # speaker
  case "$1" in
    frr) frr_stop "$hf"; rm -rf /etc/frr/"$hf" /var/run/frr/"$hf" ;;
    bird) kill "$bird_pid" 2>/dev/null || true; bird_pid=""; sleep 0.3 ;;
    gobgp) kill "$gobgp_pid" 2>/dev/null || true; wait "$gobgp_pid" 2>/dev/null || true; gobgp_pid="" ;;
  esac
}

# "<median> <p90>" (nearest rank) of the numbers on stdin.
stats() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) { print "- -"; exit }
  m = v[int((NR + 1) / 2)]; i = int(0.9 * NR); if (i < 0.9 * NR) i++; printf "%s %s\n", m, v[i] }'; }

rows=()
rounds_log="$work/rounds.txt"
: >"$rounds_log"
summary=""
for speaker in $speakers; do
  [ "$speaker" = gobgp ] && ! command -v gobgpd >/dev/null && { rows+=("| $speaker | - | pending: gobgpd not installed | | | |"); continue; }
  [ "$speaker" = bird ] && ! command -v bird >/dev/null && { rows+=("| $speaker | - | pending: bird not installed | | | |"); continue; }
  [ "$speaker" != gobgp ] && start_host "$speaker"
  for path in $paths; do
    flag=()
    [ "$path" = full ] && flag=(--full-reload)
    : >"$work/sidecar.log"
    ip netns exec "$R" "$sidecar" --state-dir "$state" --frr-pathspace "$rf" --frr-extra "$work/extra.frr" \
      --log-level info "${flag[@]}" </dev/null >/dev/null 2>"$work/sidecar.log" &
    sidecar_pid=$!
    # Start-up: the first apply (frr-reload.py, "no attachment") is not measured.
    until [ "$(applies_for_nothing)" -ge 1 ]; do sleep 0.05; done
    sleep 0.5
    times=() ; cpu0=$(cpu_ticks "$sidecar_pid")
    for i in $(seq 1 "$rounds"); do
      [ "$speaker" = gobgp ] && start_host gobgp
      before=$(established_lines | wc -l)
      a0=$(applies_for_attachment)
      cni ADD
      t0=$(now)
      until [ "$(established_lines | wc -l)" -ge $((before + 2)) ]; do
        (( $(now) - t0 > 30000000000 )) && { echo "pending: $speaker/$path: sessions not Established 30 s after ADD (round $i)"; exit 0; }
        sleep 0.02
      done
      t1=0
      while read -r l; do ns=$(line_ns "$l"); (( ns > t1 )) && t1=$ns; done < <(established_lines | tail -n 2)
      dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
      # The sidecar logs its apply after checking FRR's running configuration, which may be after the sessions
      # came up.
      until [ "$(applies_for_attachment)" -gt "$a0" ]; do sleep 0.01; done
      applied=$(grep 'the configuration for attachment' "$work/sidecar.log" | tail -n 1 | sed -n 's/.* in \([0-9]*\) ms.*/\1/p' || true)
      echo "bench-bgp: $speaker/$path round $i: both host sessions Established ${dt} s after ADD returned (the sidecar's apply took ${applied:-?} ms)" | tee -a "$rounds_log" >&2
      times+=("$dt")
      n0=$(applies_for_nothing)
      cni DEL
      t2=$(now)
      until [ "$(applies_for_nothing)" -gt "$n0" ]; do
        (( $(now) - t2 > 30000000000 )) && { echo "pending: $speaker/$path: BGP configuration not removed after DEL (round $i)"; exit 0; }
        sleep 0.01
      done
      [ "$speaker" = gobgp ] && stop_host gobgp
      sleep 0.5
    done
    cpu1=$(cpu_ticks "$sidecar_pid")
    kill "$sidecar_pid"; wait "$sidecar_pid" 2>/dev/null || true; sidecar_pid=""
    grep -q 'by one configuration transaction' "$work/sidecar.log" && used=delta || used=full
    [ "$path" = full ] && grep -q 'by one configuration transaction' "$work/sidecar.log" && used="delta (unexpected)"
    # Every apply after start-up took the path asked for (frr-reload.py when a delta falls back: counted).
    fallbacks=$(grep -c 'applying the whole file with frr-reload.py instead' "$work/sidecar.log" || true)
    read -r med p90 < <(printf '%s\n' "${times[@]}" | stats)
    apply_ms=$(grep -E 'the configuration for (attachment|no attachment)' "$work/sidecar.log" | tail -n +2 |
      sed -n 's/.* in \([0-9]*\) ms.*/\1/p' | stats)
    cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$(getconf CLK_TCK)" -v n="$((2 * rounds))" \
      'BEGIN { printf "%.3f", (b - a) / hz / n }')
    verdict() { awk -v m="$med" -v p="$p90" -v c="$cpu" 'BEGIN { print (m <= 0.1 && p <= 0.2 && c <= 0.1) ? "PASS" : "MISS" }'; }
    v=$(verdict); [ "$path" = full ] && v="(reference)"
    rows+=("| $speaker | $used | $med / $p90 s | ${apply_ms% *} / ${apply_ms#* } ms | $cpu s | $fallbacks | $v |")
    [ "$speaker" = frr ] && [ "$path" = delta ] && summary="$med $p90 $rounds"
  done
  [ "$speaker" != gobgp ] && stop_host "$speaker"
done

{
  echo "| host speaker | path | ADD returned → both host sessions Established, median / p90 of $rounds | the sidecar's apply, median / p90 | CPU per apply (sidecar + children) | fallbacks to frr-reload.py | target (≤ 0.1 / 0.2 s, CPU ≤ 0.1 s) |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "FRR and BIRD as the host speaker: repeated DEL/ADD cycles, the host speaker running through all $rounds rounds;"
  echo "GoBGP: started afresh for each round (its repeated cycles depend on DEL closing the host session first)."
  echo
  echo '```text'
  cat "$rounds_log"
  echo '```'
} >"$table"
echo "${summary:-pending: no FRR delta measurement}"
