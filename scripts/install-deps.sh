#!/usr/bin/env bash
# Installs everything the demo and the tests need on a fresh Debian 12 machine (run as root). Idempotent.
set -euo pipefail

packages=(
  iproute2 iputils-ping tcpdump jq procps psmisc
  frr frr-pythontools bird2 gobgpd
  containernetworking-plugins golang-go golang-github-appc-cni-dev
  build-essential pkg-config ca-certificates curl python3 python3-yaml
)
# shellcheck source=lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"
install_missing "${packages[@]}"
# The container runtimes the runtime tests drive (podman, containerd and what they need).
"$(dirname "$0")/install-runtime-deps.sh"
# What the router image is built with (debootstrap, podman).
"$(dirname "$0")/install-image-deps.sh"
# Never leave the distribution's own FRR or BIRD running: tests and demo start private instances.
if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
  systemctl disable --now frr bird >/dev/null 2>&1 || true
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "installing the Rust toolchain with rustup" >&2
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
# The suite runs clippy and rustfmt; a minimal rustup profile has neither.
if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy >&2
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt >&2
fi
cargo --version >&2
