#!/bin/sh
# Usage: nsenter --net=/run/netns/HOSTNS unshare -m --propagation private scripts/runtimes/private-ns.sh HOSTNS CMD...
#
# Makes the private mount namespace a container runtime can run in without touching this machine: called
# inside a network namespace HOSTNS (the "host" of a test node) and a fresh private mount namespace, it
#  - mounts a sysfs of HOSTNS over /sys, as `ip netns exec` does, but keeps the cgroup mounts runc needs
#    (`ip netns exec` itself would hide them: runc then fails with "no cgroup mount found in mountinfo");
#  - mounts tmpfs over /run (runc's, containerd's and podman's runtime state, the runtimes' network
#    namespaces under /run/netns), /var/lib/cni (libcni's result cache), /var/lib/containers and /dev/shm,
#    and binds HOSTNS back at /run/netns/HOSTNS so configurations can name it;
#  - then execs CMD (a shell, or `sleep infinity` to hold the namespace while other commands enter it with
#    `nsenter -t PID -m -n`).
# Everything vanishes with the mount namespace, when its last process exits. /var/lib/cni and
# /var/lib/containers must exist (they are only mounted over). Mounts use -n: no /run/mount/utab on the host.
set -eu
hostns=$1
shift
[ -d /var/lib/cni ] && [ -d /var/lib/containers ] || { echo "private-ns.sh: create /var/lib/cni and /var/lib/containers first" >&2; exit 1; }
stash=$(mktemp -d /tmp/private-ns.XXXXXX)
mount -n --rbind /sys/fs/cgroup "$stash"
mount -n -t sysfs sysfs /sys
mount -n --move "$stash" /sys/fs/cgroup
rmdir "$stash"
mount -n -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/netns /run/lock
ln -s /dev/shm /run/shm
touch "/run/netns/$hostns"
mount -n --bind /proc/self/ns/net "/run/netns/$hostns"
for d in /var/lib/cni /var/lib/containers /dev/shm; do
  mount -n -t tmpfs -o mode=0755 tmpfs "$d"
done
chmod 1777 /dev/shm
echo ready
exec "$@"
