"""cgroup v2 as a fresh Debian 12 machine has it (kernel 6.1, no systemd, the
daemon started by root from a shell as `make run` does). These run only in
the guest of tests/guest/guest.py (`make check-v2`); the deny, allow, limit
and sabotage checks of tests/integration run there too."""
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration"))
from conftest import BIN, run  # noqa: E402
from daemon_helpers import Daemon, poll_until  # noqa: E402

CG = "/sys/fs/cgroup"


def read(path):
    with open(path) as f:
        return f.read()


def test_the_guest_is_cgroup_v2_only_on_debian_12s_kernel():
    assert os.uname().release.startswith("6.1."), os.uname().release
    assert os.path.exists(os.path.join(CG, "cgroup.controllers"))
    assert not os.path.exists("/sys/fs/cgroup/memory/memory.limit_in_bytes")
    info = json.loads(subprocess.run([BIN, "info"], stdout=subprocess.PIPE, check=True).stdout)
    assert info["layers"]["cgroup"] == "v2", info


def sandbox_procs():
    out = []
    for p in os.listdir("/proc"):
        try:
            if p.isdigit() and 101000 <= os.stat("/proc/" + p).st_uid < 101000 + 1024:
                out.append(p)
        except OSError:
            pass
    return out


def _run_dirs(root):
    return sorted(d for d in os.listdir(root) if d.startswith("run-"))


def test_the_delegation_layout_and_its_cleanup():
    d = Daemon("--pool-size", 0, "--cpu-percent", 50).start(timeout=300)
    try:
        root = os.path.join(CG, "pyrunner-%d" % d.pid)
        # The parent only hands controllers on (no internal processes in
        # v2). The daemon and its zygotes stay where they were if that
        # cgroup delegates (the root cgroup may hold processes), else they
        # move into the supervisor leaf.
        assert read(os.path.join(root, "cgroup.procs")).split() == []
        assert set(read(os.path.join(root, "cgroup.subtree_control")).split()) >= {"memory", "pids", "cpu"}
        own = read("/proc/%d/cgroup" % d.pid).strip()
        assert own in ("0::/", "0::/pyrunner-%d/supervisor" % d.pid), own
        assert read("/proc/%d/cgroup" % d.zygote_pid()).strip() == own
        out = {}
        t = threading.Thread(target=lambda: out.update(r=d.run("import time\ntime.sleep(3)", memory_limit=128)))
        t.start()
        def running_leaf():
            # Set up (limits written, the run's processes in it), not only made.
            for name in _run_dirs(root):
                try:
                    if read(os.path.join(root, name, "cgroup.procs")).split():
                        return os.path.join(root, name)
                except OSError:
                    pass
            return None
        leaf = poll_until(running_leaf, timeout=120, what="a run-<id> leaf with the run's processes")
        assert read(os.path.join(leaf, "memory.max")).strip() == str(128 << 20)
        assert read(os.path.join(leaf, "memory.swap.max")).strip() == "0"
        assert read(os.path.join(leaf, "memory.oom.group")).strip() == "1"
        assert read(os.path.join(leaf, "pids.max")).strip() == "64"
        assert read(os.path.join(leaf, "cpu.max")).split() == ["50000", "100000"]
        assert os.path.exists(os.path.join(leaf, "cgroup.kill"))
        t.join(120)
        assert out["r"].json["status"] == "success", out["r"].json
        poll_until(lambda: not _run_dirs(root), timeout=30, what="the run's leaf removed")
    finally:
        assert d.stop() == 0
    assert not os.path.exists(root), os.listdir(root)


def test_memory_peak_is_the_runs_memory_used():
    # memory.peak exists on 6.1 (5.19+): the reported figure is the run's.
    r = run("x = bytearray(100 << 20)\nx[::4096] = b'1' * len(x[::4096])\nprint(len(x))", "--memory", "256",
            timeout=300)
    assert r["status"] == "success", r.data
    assert 100 <= r["memory_used"] < 200, r.data


def test_the_memory_limit_kills_on_v2_without_swap():
    r = run("x = bytearray(300 << 20)\nx[::4096] = b'1' * len(x[::4096])", "--memory", "128", timeout=300)
    assert r["status"] == "memory_exceeded", r.data


def test_the_pids_limit_holds_on_v2():
    r = run("import os\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            import time\n"
            "            time.sleep(30)\n        n += 1\nexcept OSError as e:\n    print(n, e.errno)",
            "--timeout", "60", timeout=300)
    assert r["status"] == "success", r.data
    forked, errno = map(int, r["stdout"].split())
    assert errno == 11 and 50 <= forked < 64, r.data


def test_the_cpu_quota_holds_on_v2():
    # Half a core for 3 s of wall time: at most about 1.5 s of CPU.
    r = run("import time\nt = time.monotonic()\nwhile time.monotonic() - t < 3: pass", "--cpu-percent", "50",
            "--timeout", "60", timeout=300)
    assert r["status"] == "success", r.data
    assert r["cpu_time"] < 2.0, r.data


def test_a_fork_bomb_is_killed_whole_with_cgroup_kill():
    d = Daemon("--pool-size", 0).start(timeout=300)
    try:
        root = os.path.join(CG, "pyrunner-%d" % d.pid)
        t0 = time.monotonic()
        r = d.run("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
                  timeout=3, timeout_s=300)
        assert r.json["status"] == "timeout", r.json
        poll_until(lambda: not _run_dirs(root), timeout=30, what="the run's leaf removed")
        assert time.monotonic() - t0 < 60
        # No process of the run is left anywhere (the pool is off, so no
        # process of the sandbox uid at all).
        poll_until(lambda: not sandbox_procs(), timeout=30, what="no process of the sandbox uid")
    finally:
        assert d.stop() == 0


def test_the_default_daemon_serves_the_readme_examples():
    # `make run`: pyrunnerd with its defaults (the six libraries preloaded,
    # the font cache built on this fresh machine's first start).
    d = Daemon(preload=None).start(timeout=900)
    try:
        h = d.request("GET", "/")
        assert h.status == 200 and h.json["status"] == "healthy", h.json
        assert h.json["capabilities"]["layers"]["cgroup"] == "v2"
        assert set(h.json["capabilities"]["libraries"]) >= {"numpy", "pandas", "matplotlib"}
        r = d.run('print("Hello, PyRunner!")')
        assert r.json["status"] == "success" and r.json["stdout"] == "Hello, PyRunner!\n", r.json
        r = d.run("while True: pass", timeout=2, memory_limit=256, timeout_s=120)
        assert r.json["status"] == "timeout" and r.json["error"] == "Execution timed out after 2 s", r.json
        r = d.run("import numpy as np\nprint(np.arange(10).sum())")
        assert r.json["stdout"] == "45\n", r.json
    finally:
        assert d.stop() == 0
