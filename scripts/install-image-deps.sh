#!/usr/bin/env bash
# Installs what building the image (scripts/build-image.sh) and the router pod test (tests/router_pod.rs) need on
# a fresh Debian 12 machine, as root. Idempotent: installs only what is missing, and runs `apt-get update` only
# then. Nothing comes from an image registry: the base is made from Debian's packages with debootstrap.
#   podman 4.3 (its CNI backend) with runc, conmon and catatonit (the infra process of pods)
#   debootstrap and Debian's archive keyring: the FRR base (frr, frr-pythontools) from Debian's packages
#   util-linux (unshare, nsenter), tar, iproute2
set -euo pipefail

packages=(
  podman runc conmon catatonit containernetworking-plugins
  debootstrap debian-archive-keyring
  util-linux tar iproute2
)
# shellcheck source=lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"
install_missing "${packages[@]}"
# The test runs private podman instances; never leave the distribution's own socket or service running.
if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
  systemctl disable --now podman.socket podman.service >/dev/null 2>&1 || true
fi
