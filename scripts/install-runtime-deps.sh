#!/usr/bin/env bash
# Installs what the container-runtime tests (tests/runtimes.rs) need on a fresh Debian 12 machine, as root.
# Idempotent: installs only what is missing, and runs `apt-get update` only then. Nothing is pulled from an
# image registry: the tests build their rootfs from busybox-static and their pause image locally.
#   podman 4.3 (CNI backend) with runc, conmon and catatonit (the infra process of pods)
#   containerd 1.6 (its CRI plugin), ctr to import the locally built pause image
#   python3-grpcio + python3-protobuf + protoc: the small CRI client scripts/runtimes/cri.py
#   containernetworking-plugins: ptp, host-local, loopback (the CRI network chains the plugin after ptp)
set -euo pipefail

packages=(
  podman runc conmon catatonit busybox-static
  containerd
  containernetworking-plugins iproute2 util-linux procps coreutils
  python3 python3-grpcio python3-protobuf protobuf-compiler
)
# shellcheck source=lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"
install_missing "${packages[@]}"
# The tests start private containerd instances; never leave the distribution's own running.
if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
  systemctl disable --now containerd >/dev/null 2>&1 || true
  systemctl disable --now podman.socket podman.service >/dev/null 2>&1 || true
fi
