#!/bin/busybox sh
# Stage 1, the guest's /init (in the initramfs, with busybox): the host's
# root over 9p, read-only, under a tmpfs overlay, then stage 2 in it.
# Nothing is written back to the host.
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /lower /upper /newroot
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci netfs fscache \
         9pnet 9pnet_virtio 9p overlay; do
    insmod /modules/$m.ko || echo "guest: insmod $m failed"
done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /lower || {
    echo "guest: cannot mount the host's root"; echo o > /proc/sysrq-trigger; }
mount -t tmpfs -o size=75% tmpfs /upper
mkdir -p /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot || {
    echo "guest: cannot mount the overlay"; echo o > /proc/sysrq-trigger; }
stage2=$(sed -n 's/.*pyrunner.stage2=\([^ ]*\).*/\1/p' /proc/cmdline)
umount /proc /sys
mount --move /dev /newroot/dev 2>/dev/null
exec switch_root /newroot "$stage2"
