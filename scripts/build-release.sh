#!/usr/bin/env bash
# The binaries to ship, in target/dist/:
# - openpe-passthrough linked statically (static-pie against glibc's libc.a): no dynamic loader at start-up, which
#   is most of the plugin's CPU above the kernel work (BENCHMARKS.md); the build that meets the CPU target;
# - openpe-sidecar, as cargo builds it (a long-running process: start-up cost does not matter).
# `cargo build --release` still gives a working, dynamically linked target/release/openpe-passthrough.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# -C target-feature=+crt-static goes to the plugin's final link only: Cargo would also pass a package-wide
# setting to the proc-macro crates, which rustc refuses on this target.
cargo rustc --locked --release --bin openpe-passthrough --target-dir target/static -- -C target-feature=+crt-static
cargo build --locked --release --bin openpe-sidecar
mkdir -p target/dist
install -m 0755 target/static/release/openpe-passthrough target/release/openpe-sidecar target/dist/
echo "target/dist/openpe-passthrough (static-pie) and target/dist/openpe-sidecar" >&2
