#!/usr/bin/python3.11
"""Runs a command in a guest that boots as a fresh Debian 12 machine does:
Debian 12's own kernel (6.1), cgroup v2 only, no systemd. qemu with
software emulation (nested KVM does not boot on these machines).

The guest's root is the host's own /, read-only over 9p, under a tmpfs
overlay: it sees this checkout and its builds, and writes nothing back.
The console is our stdout; the guest's /dev/ttyS1 is written to --out (the
tests' JUnit XML). Exit status: the command's, or 3 when no guest could be
booted (the reason on stderr).

  guest.py [--out FILE] [--timeout S] -- COMMAND...

The kernel, its modules and busybox come from build/guest/ (`make
guest-deps` unpacks them there from Debian's packages, installing nothing
in /boot), else from the host's /boot, /lib/modules and busybox-static.
"""
import argparse
import glob
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MODULES = ["virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci", "netfs",
           "fscache", "9pnet", "9pnet_virtio", "9p", "overlay"]


class NoGuest(Exception):
    pass


def find_kernel(root):
    """(vmlinuz, modules dir) of the newest 6.1 kernel under root."""
    kernels = sorted(glob.glob(os.path.join(root, "boot", "vmlinuz-6.1.*-amd64")))
    if not kernels:
        return None
    k = kernels[-1]
    mods = os.path.join(root, "lib", "modules", os.path.basename(k)[len("vmlinuz-"):])
    return (k, mods) if os.path.isdir(mods) else None


def find_parts(cache):
    found = find_kernel(cache) or find_kernel("/")
    if not found:
        raise NoGuest("no Debian 12 kernel (linux-image-6.1.*-amd64): run make guest-deps")
    busybox = os.path.join(cache, "bin", "busybox")
    if not os.access(busybox, os.X_OK):
        # The system's is static only from busybox-static.
        st = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "busybox-static"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL).stdout
        busybox = "/bin/busybox" if st.endswith(b"installed") else None
    if not busybox:
        raise NoGuest("no static busybox: run make guest-deps")
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        raise NoGuest("no qemu-system-x86_64 (package qemu-system-x86): run make guest-deps")
    return found[0], found[1], busybox, qemu


def module_path(mods, name):
    hits = glob.glob(os.path.join(mods, "kernel", "**", name + ".ko"), recursive=True)
    if not hits:
        raise NoGuest("kernel module %s.ko not found under %s" % (name, mods))
    return hits[0]


def build_initramfs(work, mods, busybox):
    root = os.path.join(work, "initramfs")
    os.makedirs(os.path.join(root, "bin"))
    os.makedirs(os.path.join(root, "modules"))
    shutil.copy(busybox, os.path.join(root, "bin", "busybox"))
    shutil.copy(os.path.join(HERE, "init.sh"), os.path.join(root, "init"))
    os.chmod(os.path.join(root, "init"), 0o755)
    for m in MODULES:
        shutil.copy(module_path(mods, m), os.path.join(root, "modules", m + ".ko"))
    out = os.path.join(work, "initramfs.cpio")
    files = subprocess.run(["find", "."], cwd=root, stdout=subprocess.PIPE, check=True).stdout
    with open(out, "wb") as f:
        subprocess.run(["cpio", "--quiet", "-o", "-H", "newc"], cwd=root, input=files, stdout=f, check=True)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", help="file for what the guest writes to /dev/ttyS1")
    p.add_argument("--timeout", type=float, default=3600, help="seconds before the guest is killed")
    p.add_argument("--memory", default="6144", help="guest RAM in MiB")
    p.add_argument("--cpus", default="2")
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        p.error("no command")
    try:
        kernel, mods, busybox, qemu = find_parts(os.path.join(REPO, "build", "guest"))
    except NoGuest as e:
        print("guest: cannot boot a guest: %s" % e, file=sys.stderr)
        return 3
    if " " in REPO:
        print("guest: the checkout's path has a space, which the kernel command line cannot carry", file=sys.stderr)
        return 3
    # Host paths the guest sees as they are (its root is ours, read-only).
    work = tempfile.mkdtemp(prefix="run-", dir=os.path.join(REPO, "build", "guest"))
    try:
        initrd = build_initramfs(work, mods, busybox)
        cmdfile = os.path.join(work, "cmd.sh")
        with open(cmdfile, "w") as f:
            f.write(" ".join(shlex.quote(c) for c in cmd) + "\n")
        out = a.out or os.path.join(work, "ttyS1")
        if a.out and os.path.exists(a.out):
            os.unlink(a.out)
        append = ("console=ttyS0 panic=-1 cgroup_no_v1=all edd=off quiet pyrunner.stage2=%s pyrunner.cmd=%s "
                  "pyrunner.cwd=%s" % (os.path.join(HERE, "stage2.sh"), cmdfile, REPO))
        # -cpu max: qemu64 lacks instructions that Debian's libraries use
        # and real machines have (an illegal instruction in matplotlib's
        # PNG writer killed the zygote).
        argv = [qemu, "-accel", "tcg", "-cpu", "max", "-m", a.memory, "-smp", a.cpus, "-nographic", "-no-reboot",
                "-kernel", kernel, "-initrd", initrd, "-append", append, "-nic", "none",
                "-serial", "mon:stdio", "-serial", "file:%s" % out,
                "-virtfs", "local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,"
                           "multidevs=remap"]
        print("guest: %s, %s MiB, %s CPUs, software emulation" % (os.path.basename(kernel), a.memory, a.cpus),
              flush=True)
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        rc = None
        # A guest that hangs silently is killed too.
        timer = threading.Timer(a.timeout, proc.kill)
        timer.start()
        try:
            for raw in iter(proc.stdout.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                print(line, flush=True)
                if line.startswith("GUEST-EXIT "):
                    rc = int(line.split()[1])
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        if time.monotonic() - t0 >= a.timeout:
            print("guest: over its %.0f s; killed" % a.timeout, flush=True)
        print("guest: %s after %.0f s" % ("exit %d" % rc if rc is not None else "no exit status",
                                          time.monotonic() - t0), flush=True)
        return rc if rc is not None else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
