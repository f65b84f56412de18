#!/usr/bin/python3.11
"""Runs a program as a child subreaper and reports, as one JSON line, every
process that was left to it: a process whose parent died before reaping it
is reparented here (not to init), so nothing a program leaves behind is
missed, however fast it exits.

    subreaper.py [--signal SIG] -- ARGV...
        runs ARGV; with --signal, sends it SIG once it has a sandbox
    subreaper.py --zygote PATH UID
        starts the zygote PATH on a socket as the engine does, waits for its
        READY, closes the socket and waits for the zygote to exit

Prints {"rc": ..., "orphans": ["comm", ...], "stdout": ..., "stderr": ...}.
Bounded: everything must be over within 60 s (SIGALRM kills this script).
"""
import ctypes
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

PR_SET_CHILD_SUBREAPER = 36
ZYG_MSG_READY = 1


def become_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("prctl(PR_SET_CHILD_SUBREAPER): errno %d" % ctypes.get_errno())


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


def reap_orphans():
    """Waits for every remaining child (all of them orphans adopted here)."""
    orphans = []
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            return orphans
        orphans.append(comm(info.si_pid))
        os.waitpid(info.si_pid, 0)


def has_sandbox(root):
    """True once a descendant of `root` is some sandbox's pid 2."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/status" % d) as f:
                fields = dict(line.split(":", 1) for line in f)
        except (OSError, ValueError):
            continue
        nspid = fields.get("NSpid", "").split()
        pid = int(d)
        if len(nspid) >= 2 and nspid[-1] == "2":
            while pid > 1:
                try:
                    with open("/proc/%d/stat" % pid) as f:
                        pid = int(f.read().rsplit(")", 1)[1].split()[1])
                except OSError:
                    break
                if pid == root:
                    return True
    return False


def run_program(argv, sig):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if sig:
        while p.poll() is None and not has_sandbox(p.pid):
            time.sleep(0.01)
        p.send_signal(sig)
    out, err = p.communicate()
    return p.returncode, out, err


def run_zygote(path, uid):
    engine, zygote = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen([path, str(zygote.fileno()), "", uid, "1"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=err, pass_fds=[zygote.fileno()],
                             env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        zygote.close()
        msg = engine.recv(65536)
        ready = len(msg) >= 4 and struct.unpack("=I", msg[:4])[0] == ZYG_MSG_READY
        engine.close()              # EOF: the engine is gone
        p.wait()
        err.seek(0)
        return p.returncode, b"READY" if ready else msg, err.read()


def main():
    signal.alarm(60)
    become_subreaper()
    args = sys.argv[1:]
    if args[0] == "--zygote":
        rc, out, err = run_zygote(args[1], args[2])
    else:
        sig = None
        if args[0] == "--signal":
            sig, args = int(args[1]), args[2:]
        assert args[0] == "--", args
        rc, out, err = run_program(args[1:], sig)
    print(json.dumps({"rc": rc, "orphans": reap_orphans(), "stdout": out.decode("utf-8", "replace"),
                      "stderr": err.decode("utf-8", "replace")}))


if __name__ == "__main__":
    main()
