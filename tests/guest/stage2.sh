#!/bin/sh
# Stage 2, pid 1 of the guest, in the overlay over the host's root: a
# fresh machine as Debian 12 boots it (cgroup v2 only, no systemd), then the
# command that the host named on the kernel command line, then power off.
# The host reads the console: "GUEST-EXIT <status>" is the last word.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
arg() { sed -n "s/.*pyrunner.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
cwd=$(arg cwd)
# A fresh /tmp and /var/tmp, but a checkout in one of them (a clean clone
# in /tmp/x) is kept, moved onto the new one.
mkdir -p /run/checkout
mount --bind "$cwd" /run/checkout
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /var/tmp
[ -d "$cwd" ] || { mkdir -p "$cwd" && mount --move /run/checkout "$cwd"; }
mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up
hostname pyrunner-guest

cmd=$(arg cmd)
echo "GUEST-START kernel $(uname -r), cgroup controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
# In its own session, so that what it leaves behind can be killed.
setsid sh -c 'cd "$1" && exec sh "$2"' sh "$cwd" "$cmd" </dev/null 2>&1 &
wait $!
rc=$?
echo "GUEST-EXIT $rc"
kill -9 -1 2>/dev/null
sync
echo o > /proc/sysrq-trigger
sleep 10
