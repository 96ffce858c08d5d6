#!/usr/bin/env bash
# A short fuzzing run for CI: each cargo-fuzz target (fuzz/) for FUZZ_SECONDS seconds (default 25), starting
# from the committed corpus. Only stable Rust is needed: RUSTC_BOOTSTRAP=1 unlocks the sanitizer flags cargo-fuzz
# passes. New inputs go to a scratch directory, so the committed corpus is left as reviewed; a crash leaves its
# reproducer in fuzz/artifacts/<target>/ (ignored by git) and fails the script.
#   scripts/fuzz-smoke.sh               both targets, 25 s each
#   FUZZ_SECONDS=600 scripts/fuzz-smoke.sh   a long run (see fuzz/README.md)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
seconds="${FUZZ_SECONDS:-25}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz (about a minute and a half on 2 cores)" >&2
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

cd fuzz
declare -A max_len=([config]=8192 [cni_args]=1024)
for target in config cni_args; do
    mkdir -p "$scratch/$target"
    echo "fuzz-smoke: $target for ${seconds}s" >&2
    # -a: debug assertions and overflow checks on, as in the long runs.
    cargo fuzz run -a "$target" "$scratch/$target" "corpus/$target" "seeds/$target" -- \
        -dict="$target.dict" -max_len="${max_len[$target]}" -max_total_time="$seconds" -print_final_stats=1
done
echo "fuzz-smoke: no crash" >&2
