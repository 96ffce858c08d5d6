#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine, as root: installs what it needs, builds, checks lints and
# formatting, runs every test (unit, golden, integration with real namespaces, libcni, FRR/BIRD end to end,
# including the root-only ones that a plain `cargo test` lists as ignored), and cleans up after itself.
#   scripts/test.sh            the suite (what CI runs)
#   LONG=1 scripts/test.sh     also the long variants (crash and concurrency soaks)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/test.sh must run as root (it makes network namespaces)" >&2; exit 1; }
scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
# Golden files are rewritten only by a person, never by a test run.
unset UPDATE_GOLDEN

cargo fmt --check
cargo clippy --locked --all-targets --all-features -- -D warnings
cargo build --locked --release --bins
if [ "${LONG:-}" = 1 ]; then export OPENPE_LONG=1; fi
# The fault-injection feature arms the fault points used by tests/crash.rs; it is inert without its variables.
# Root-only tests are marked #[ignore = "needs root"]: --include-ignored runs them here.
log="$(mktemp)"
gr_log="$(mktemp)"
trap 'rm -f "$log" "$gr_log"' EXIT
cargo test --locked --features fault-injection --no-run
# The graceful-restart test spends two minutes waiting for its ToR to outgrow FRR 8.4's start-up restart bit
# (docs/routing-safety.md); it runs beside the rest instead of adding those minutes to the suite.
gr=graceful_restart_survives_a_bgpd_kill
cargo test --locked --features fault-injection --test fabric_e2e -- --include-ignored --exact "$gr" >"$gr_log" 2>&1 &
gr_pid=$!
status=0
cargo test --locked --no-fail-fast --features fault-injection -- --include-ignored --skip "$gr" 2>&1 | tee "$log" ||
  status=1
wait "$gr_pid" || status=1
tee -a "$log" <"$gr_log"
[ "$status" = 0 ] || { echo "tests: some failed (see above)" >&2; exit 1; }

# A short coverage-guided fuzzing run of the configuration parser (the long run is in fuzz/README.md).
FUZZ_SECONDS="${FUZZ_SECONDS:-20}" scripts/fuzz-smoke.sh

# One closing line for the whole suite.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
