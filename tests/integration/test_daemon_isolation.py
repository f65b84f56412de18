"""What one run can learn of another through the zygote they share (red-team
pass 2, findings 17 and 18): only the daemon's runs share one, so these go
through pyrunnerd."""
import os
import threading

import pytest

from daemon_helpers import Daemon, poll_until

# Scans the zygote binary's writable data and bss in this process (a copy
# of the zygote's) for {pid_t pid; 4 bytes of padding; uint64_t run id}
# with a pid of PIDS: the zygote's table of live sandboxes.
SCAN = r'''
import struct
PIDS = set(%r)
hits = []
exe = open("/proc/self/maps").readline().split()[-1]
with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb") as mem:
    prev = None
    for line in maps:
        f = line.split()
        name = f[5] if len(f) >= 6 else ""
        # The bss is the nameless mapping right after the binary's data.
        ours = "w" in f[1] and (name == exe or (name == "" and prev == exe))
        prev = name
        if not ours:
            continue
        a, b = (int(x, 16) for x in f[0].split("-"))
        mem.seek(a)
        data = mem.read(b - a)
        for off in range(0, len(data) - 16, 8):
            pid, pad, rid = struct.unpack_from("=iIQ", data, off)
            if pid in PIDS and pad == 0 and 0 < rid < 10**9:
                hits.append((pid, rid))
print(hits)
'''


@pytest.fixture(scope="module")
def daemon():
    # multiprocessing preloaded, as numpy's and pandas' imports do.
    d = Daemon("--rate-limit", 0, "--pool-size", 0, preload="multiprocessing").start()
    yield d
    assert d.stop() == 0, d.stderr_text()


def test_zygote_memory_names_no_other_sandbox(daemon):
    other = threading.Thread(target=daemon.run, args=("import time\ntime.sleep(8)",))
    other.start()
    try:
        daemon.wait_metric("pyrunner_active_sandboxes", lambda v: v == 1, timeout=30)
        pids = sorted(daemon.descendants())
        r = daemon.run(SCAN % (pids,), timeout=60).json
        assert r["status"] == "success", r
        assert r["stdout"] == "[]\n", "the zygote's table of other sandboxes: " + r["stdout"]
    finally:
        other.join(60)


def test_multiprocessing_authkey_differs_between_runs(daemon):
    code = "import multiprocessing\nprint(multiprocessing.current_process().authkey.hex())"
    keys = [daemon.run(code).json["stdout"] for _ in range(3)]
    assert all(len(k) == 65 for k in keys) and len(set(keys)) == 3, keys


def _pid2s(d):
    """Host pid -> host uid of every sandbox's pid 2 below daemon d."""
    out = {}
    for pid in d.descendants():
        try:
            with open("/proc/%d/status" % pid) as f:
                st = {l.split(":")[0]: l.split()[1:] for l in f if ":" in l}
            if len(st.get("NSpid", [])) >= 2 and st["NSpid"][-1] == "2":
                out[pid] = int(st["Uid"][0])
        except OSError:
            pass
    return out


PIPE_HOG = r'''
import fcntl, os, time
pipes = []
for i in range(64):
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, 1031, 1 << 20)        # F_SETPIPE_SZ: 256 pages each
    except OSError:
        break
    pipes.append((r, w))
with open("/tmp/ready.part", "w") as f:
    f.write(str(len(pipes)))
os.rename("/tmp/ready.part", "/tmp/ready")        # whole when it appears
time.sleep(%d)
'''


def test_each_live_sandbox_has_its_own_host_uid(daemon):
    # Per-user kernel counters (pipe pages, epoll watches, fds in flight,
    # pending signals) were one pool for all sandboxes: a run that took the
    # uid's 16,384 pipe pages left every other run 8 KiB pipes.
    hog = threading.Thread(target=daemon.run, args=(PIPE_HOG % 8,))
    hog.start()
    try:
        daemon.wait_metric("pyrunner_active_sandboxes", lambda v: v == 1, timeout=30)
        pid = poll_until(lambda: next(iter(_pid2s(daemon)), None), 10, what="the hog's pid 2")
        poll_until(lambda: os.path.exists("/proc/%d/root/tmp/ready" % pid), 10, what="the hog's pipes")
        with open("/proc/%d/root/tmp/ready" % pid) as f:
            assert int(f.read()) >= 50
        code = "import fcntl, os\nr, w = os.pipe()\nprint(fcntl.fcntl(w, 1032), os.getuid())"   # F_GETPIPE_SZ
        out = daemon.run(code).json["stdout"].split()
        assert out == ["65536", "1000"], out
        uids = set(_pid2s(daemon).values())
        assert uids and all(101000 <= u < 101000 + 1024 for u in uids), uids
    finally:
        hog.join(60)
