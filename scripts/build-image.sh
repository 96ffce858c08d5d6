#!/usr/bin/env bash
# Builds the image the manifests name (netconf/k8s/*.yaml): FRR with openpe-sidecar and the openpe-passthrough
# plugin, both statically linked (Containerfile, docs/image.md).
#
#   scripts/build-image.sh [IMAGE]
#       Builds IMAGE (default localhost/openpe-passthrough:0.1.0, the name in the manifests) on FRR's official
#       image, FRR_IMAGE (default quay.io/frrouting/frr:9.1.0), which podman pulls.
#   scripts/build-image.sh --debian-base DIR [IMAGE]
#       Pulls nothing: makes the base from Debian 12's packages (debootstrap --variant=minbase bookworm with frr
#       and frr-pythontools, from the Debian mirror apt uses here, or DEBIAN_MIRROR), imports it as
#       localhost/openpe-frr-base:bookworm and builds on it. Everything is written under DIR (an empty or new
#       directory; remove it afterwards), which keeps the base as DIR/base.tar. This is what CI does
#       (tests/router_pod.rs).
#   scripts/build-image.sh --base-tar FILE [IMAGE]
#       The same on a base made before (DIR/base.tar of an earlier --debian-base run): no debootstrap.
#
# Environment:
#   FRR_IMAGE=REF       another base (it needs /usr/lib/frr/frrinit.sh, vtysh, frr-reload.py with Python)
#   PODMAN="..."        the podman command, e.g. "podman --root R --runroot RR --storage-driver vfs" (default podman)
#   NO_CARGO=1          use target/dist as it is instead of running scripts/build-release.sh
#   DEBIAN_MIRROR=URL   the mirror debootstrap uses with --debian-base
# Needs root (debootstrap; podman as root), podman and, with --debian-base, debootstrap
# (scripts/install-image-deps.sh). Prints each step's duration on stderr, and the image's name on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

DEFAULT_IMAGE=localhost/openpe-passthrough:0.1.0
BASE_TAG=localhost/openpe-frr-base:bookworm
say() { printf 'build-image: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
step() { # what command...: runs it and says how long it took
  local what=$1 t0 t1
  shift
  t0=$(date +%s.%N)
  "$@"
  t1=$(date +%s.%N)
  say "$(awk -v a="$t0" -v b="$t1" -v w="$what" 'BEGIN {printf "%s: %.1f s", w, b - a}')"
}

debian_dir=
base_tar=
image=
pull=missing
while (($#)); do
  case $1 in
    --debian-base) [ $# -ge 2 ] || die "--debian-base needs a directory"; debian_dir=$2; shift 2 ;;
    --base-tar) [ $# -ge 2 ] || die "--base-tar needs a file"; base_tar=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$image" ] || die "one image name only"; image=$1; shift ;;
  esac
done
image=${image:-$DEFAULT_IMAGE}
read -r -a podman <<<"${PODMAN:-podman}"

# The mirror of Debian's main archive that apt uses here: the first `deb` source listing bookworm, in deb822
# (*.sources) or one-line (sources.list) form.
debian_mirror() {
  local f found=
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    found=$(awk 'function flush() { if (deb && bookworm && uri != "") { print uri; found = 1; exit } deb = bookworm = 0; uri = "" }
      /^[ \t]*$/ { flush(); next }
      tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
      tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == "bookworm") bookworm = 1 }
      tolower($1) == "uris:" { uri = $2 }
      END { if (!found) flush() }' "$f")
    [ -z "$found" ] || break
  done
  if [ -z "$found" ]; then
    found=$({ cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } |
      awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ } if ($(i + 1) == "bookworm") { print $i; exit } }')
  fi
  printf '%s\n' "$found"
}

# debootstrap in two stages, so that dpkg can be told, between them, to skip its fsync calls (force-unsafe-io):
# most of the time of the second stage otherwise. A private mount namespace: the /proc and /sys debootstrap
# mounts in the target go away with it, even on failure.
debootstrap_base() { # rootfs mirror
  unshare -m --propagation private sh -ec '
    debootstrap --foreign --variant=minbase --include=frr,frr-pythontools bookworm "$1" "$2"
    echo force-unsafe-io > "$1/etc/dpkg/dpkg.cfg.d/openpe-build-unsafe-io"
    chroot "$1" /debootstrap/debootstrap --second-stage
    rm -f "$1/etc/dpkg/dpkg.cfg.d/openpe-build-unsafe-io"' sh "$1" "$2"
}

make_debian_base() { # dir
  local dir mirror
  dir=$(realpath -m "$1") # podman may run elsewhere (PODMAN=nsenter ...): absolute paths only
  command -v debootstrap >/dev/null || die "debootstrap is missing: run scripts/install-image-deps.sh"
  mirror=${DEBIAN_MIRROR:-$(debian_mirror)}
  [ -n "$mirror" ] || die "no Debian mirror for bookworm in /etc/apt/sources.list*: set DEBIAN_MIRROR"
  mkdir -p "$dir"
  [ ! -e "$dir/rootfs" ] || die "$dir/rootfs exists already: give an empty or new directory"
  say "making the base from Debian's packages ($mirror) in $dir/rootfs (log: $dir/debootstrap.log)"
  step "debootstrap (minbase bookworm, frr, frr-pythontools)" debootstrap_logged "$dir" "$mirror"
  # What a container never uses: downloaded packages, package lists, documentation, translations.
  rm -rf "$dir/rootfs/var/cache/apt/archives/"*.deb "$dir/rootfs/var/lib/apt/lists/"* \
    "$dir/rootfs/usr/share/doc" "$dir/rootfs/usr/share/man" "$dir/rootfs/usr/share/locale"
  step "tar of the base" tar -C "$dir/rootfs" --numeric-owner -cf "$dir/base.tar" .
  rm -rf "$dir/rootfs"
  import_base "$dir/base.tar"
}

debootstrap_logged() { # dir mirror
  debootstrap_base "$1/rootfs" "$2" >"$1/debootstrap.log" 2>&1 ||
    { tail -n 20 "$1/debootstrap.log" >&2; die "debootstrap failed (whole log in $1/debootstrap.log)"; }
}

import_base() { # tarball of a root file system
  # An imported image has no environment: give it Debian's PATH, as Debian's own images have.
  step "podman import" "${podman[@]}" import \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "$1" "$BASE_TAG" >/dev/null
  FRR_IMAGE=$BASE_TAG
  pull=never # the base is local: never reach for a registry
}

if [ -n "$debian_dir" ]; then
  make_debian_base "$debian_dir"
elif [ -n "$base_tar" ]; then
  import_base "$(realpath "$base_tar")"
fi
frr_image=${FRR_IMAGE:-quay.io/frrouting/frr:9.1.0}

if [ "${NO_CARGO:-}" != 1 ]; then
  step "static binaries (scripts/build-release.sh)" scripts/build-release.sh
fi
for b in openpe-passthrough openpe-sidecar; do
  [ -x "target/dist/$b" ] || die "target/dist/$b is missing: run scripts/build-release.sh"
done

# The build context holds the two binaries only (never the repository with its target/ directory).
context=$(mktemp -d "${TMPDIR:-/tmp}/openpe-image.XXXXXX")
trap 'rm -rf "$context"' EXIT
install -m 0755 target/dist/openpe-passthrough target/dist/openpe-sidecar "$context/"
# --network none: the build's one RUN step checks the base and needs no network (and, with podman's CNI backend,
# makes no bridge).
step "podman build $image on $frr_image" \
  "${podman[@]}" build --network none --pull="$pull" --build-arg "FRR_IMAGE=$frr_image" -f "$PWD/Containerfile" -t "$image" "$context" >&2
echo "$image"
