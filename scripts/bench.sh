#!/usr/bin/env bash
# The benchmark of issue 5 (BENCHMARKS.md): openpe-passthrough against the iproute2 floor and the reference
# `ptp` + `host-local` plugins, in one run on this machine, inside throwaway namespaces (run as root).
#   scripts/bench.sh                      everything (a few minutes, most of it the first build)
#   BENCH_ITER=50 scripts/bench.sh        fewer side-by-side iterations (default 100, at least 50 for the issue)
#   BENCH_ONLY=side,scale,concurrency,bgp,drain scripts/bench.sh   a subset (drain: scripts/bench-drain.sh, the
#                                         teardown behind an L2 hop; its table is printed after the driver's)
# Everything it makes (namespaces named ob<pid>-..., a temporary directory, FRR daemons) is removed on exit,
# including on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/bench.sh must run as root (it makes network namespaces)" >&2; exit 1; }
scripts/install-deps.sh    # iproute2, containernetworking-plugins (ptp, host-local), FRR, python3; idempotent
export PATH="$HOME/.cargo/bin:$PATH"

prefix="ob$$-"    # every namespace, FRR pathspace and directory of this run starts with it
# State directories on a tmpfs, like the plugin's default /run/openpe-passthrough on a node.
tmp=$(mktemp -d "${BENCH_TMPDIR:-$([ -d /dev/shm ] && echo /dev/shm || echo /tmp)}/openpe-bench.XXXXXX")
chmod 700 "$tmp"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # FRR daemons of the BGP part: only those whose pid files this run wrote.
  # (scripts/bench-bgp.sh stops its FRR and sidecar itself; this is the fallback if it was killed.)
  for pidfile in /var/run/frr/"${prefix}"*/*.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${prefix}" || true); do
    # Processes still inside (an interrupted measurement), then the namespace.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$tmp" /etc/frr/"${prefix}"* /var/run/frr/"${prefix}"*
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building (cargo bench builds the plugin with the release settings)" >&2
cargo bench --locked --bench passthrough --no-run >&2 2>"$tmp/build.log" || { cat "$tmp/build.log" >&2; exit 1; }
# The same plugin linked statically (static-pie, glibc's libc.a): no dynamic loader at start-up, so less CPU and
# memory per call. Only this binary's final link differs (`cargo rustc`, so proc-macros stay dynamic); it lives in
# its own target directory so that it never replaces target/release/openpe-passthrough. BENCH_STATIC=0 skips it.
if [ "${BENCH_STATIC:-1}" != 0 ]; then
  echo "building the static-pie variant (target/static)" >&2
  cargo rustc --locked --release --bin openpe-passthrough --target-dir target/static \
    -- -C target-feature=+crt-static 2>"$tmp/build-static.log" || { cat "$tmp/build-static.log" >&2; exit 1; }
  export PLUGIN_STATIC="$(pwd)/target/static/release/openpe-passthrough"
fi
# PLUGIN=/path/to/openpe-passthrough compares another build (A/B of an optimisation) with the same driver.
plugin="${PLUGIN:-$(pwd)/target/release/openpe-passthrough}"
[ -x "$plugin" ] || { echo "no $plugin after the build" >&2; exit 1; }

only="${BENCH_ONLY:-}"
want() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }

# The BGP part, when an FRR lab exists (it runs first, so the table below can include it).
bgp_result="$tmp/bgp.result"
if want bgp; then
  if [ -x scripts/bench-bgp.sh ]; then
    BENCH_PREFIX="${prefix}g" BENCH_TMP="$tmp" PLUGIN="$plugin" scripts/bench-bgp.sh >"$bgp_result" || \
      echo "pending: scripts/bench-bgp.sh failed (status $?)" >"$bgp_result"
  else
    echo "no FRR lab to measure with yet" >"$bgp_result"
  fi
fi

# The teardown part (issue 18): DEL / drain → withdrawn at a ToR behind an L2 hop. Runs before the driver, like
# the BGP part; its table is printed at the end.
drain_result="$tmp/drain.result"
if want drain; then
  BENCH_PREFIX="${prefix}d" BENCH_TMP="$tmp" PLUGIN="$plugin" scripts/bench-drain.sh >"$drain_result" || \
    echo "pending: scripts/bench-drain.sh failed (status $?)" >"$drain_result"
fi

{
  echo "## Machine"
  echo
  echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores online"
  echo "- kernel: $(uname -r); $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "- memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo); load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- plugin: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src Cargo.toml 2>/dev/null || echo ' + uncommitted changes'), $("$plugin" --version)"
  echo "- reference: ptp and host-local from Debian's containernetworking-plugins $(dpkg-query -W -f='${Version}' containernetworking-plugins 2>/dev/null || echo '?'); $(ip -V)"
  echo "- command: scripts/bench.sh$( [ -n "$only" ] && echo " (BENCH_ONLY=$only)")$( [ -n "${BENCH_ITER:-}" ] && echo " (BENCH_ITER=$BENCH_ITER)"); $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
}

# The driver: benches/passthrough.rs. `cargo bench` runs it with the environment below.
driver_only=$(echo ",$only," | sed 's/,bgp,/,/; s/,drain,/,/; s/^,//; s/,$//')
[ -n "$only" ] && [ -z "$driver_only" ] && driver_only=none
want bgp && export BENCH_BGP_RESULT="$bgp_result"
BENCH_PREFIX="$prefix" BENCH_TMP="$tmp" PLUGIN="$plugin" BENCH_ONLY="$driver_only" \
  cargo bench --locked --bench passthrough

if want drain; then
  echo
  echo "## Teardown: DEL and drain → withdrawn at a ToR behind an L2 hop (scripts/bench-drain.sh)"
  echo
  cat "$drain_result"
fi
