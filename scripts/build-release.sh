#!/usr/bin/env bash
# The binaries to ship, in target/dist/, both linked statically (static-pie against glibc's libc.a):
# - openpe-passthrough: no dynamic loader at start-up, which is most of the plugin's CPU above the kernel work
#   (BENCHMARKS.md); the build that meets the CPU target;
# - openpe-sidecar: runs from the image (Containerfile) on any FRR base, FRR's official Alpine (musl) image
#   included, where a glibc-linked binary would find no loader.
# `cargo build --release` still gives working, dynamically linked binaries in target/release/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# -C target-feature=+crt-static goes to each binary's final link only: Cargo would also pass a package-wide
# setting to the proc-macro crates, which rustc refuses on this target.
for bin in openpe-passthrough openpe-sidecar; do
  cargo rustc --locked --release --bin "$bin" --target-dir target/static -- -C target-feature=+crt-static
done
mkdir -p target/dist
install -m 0755 target/static/release/openpe-passthrough target/static/release/openpe-sidecar target/dist/
echo "target/dist/openpe-passthrough and target/dist/openpe-sidecar (static-pie)" >&2
