"""Limits: hostile or runaway programs end in a well-defined result."""
import json
import os
import time

import pytest

from conftest import RESULT_KEYS, SLOWDOWN, STATUSES, Tracker, descendants, finish, popen, run, wait_gone


def test_memory_limit():
    r = run("x = bytearray(1024 * 1024 * 1024)\nprint(len(x))\n", "--memory", 128)
    assert r.status == "memory_exceeded" and r.returncode == 125, r
    assert r["stdout"] == "", r
    assert r["memory_used"] <= 128 + 1, r
    assert r["error"] == "Memory limit of 128 MB exceeded", r


def test_memory_limit_gradual_allocation():
    r = run("chunks = []\nwhile True:\n    chunks.append(b'x' * (8 << 20))\n", "--memory", 64)
    assert r.status == "memory_exceeded" and r.returncode == 125, r


def test_fork_until_failure_hits_pids_max():
    r = run(r'''
import errno, os, time
n, err = 0, None
while n < 1000:
    try:
        pid = os.fork()
    except OSError as e:
        err = errno.errorcode[e.errno]
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    n += 1
print(n, err)
''', "--pids-max", 16, "--timeout", 10)
    assert r.status in ("success", "error"), r
    n, err = r.out.split()
    assert err == "EAGAIN", r
    assert 1 <= int(n) <= 15, r
    assert r.wall < 5, r


def _init_cpu_ticks(p):
    """utime + stime of the sandbox's pid 1 (a process below CLI `p` that is
    pid 1 of its own pid namespace), read until it is gone."""
    ticks = None
    while p.poll() is None:
        for pid in descendants(p.pid):
            try:
                with open("/proc/%d/status" % pid) as f:
                    nspid = [l for l in f if l.startswith("NSpid:")][0].split()[1:]
                if len(nspid) >= 2 and nspid[-1] == "1":
                    with open("/proc/%d/stat" % pid) as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    ticks = int(fields[11]) + int(fields[12])
            except (OSError, IndexError):
                pass
        time.sleep(0.05)
    return ticks


def test_signals_to_pid1_cost_it_nothing():
    # pid 1 is outside the run's cgroup: a SIGCHLD flood from pid 2 made it
    # use 1.07-2.46 s of CPU in 2.5 s, in no run's cpu_time or quota.
    p = popen(r'''
import os, signal, time
end = time.monotonic() + 2
n = 0
while time.monotonic() < end:
    for s in (signal.SIGCHLD, signal.SIGUSR1, signal.SIGTERM):
        os.kill(1, s)
    n += 3
print(n)
''', "--timeout", 20)
    ticks = _init_cpu_ticks(p)
    r = finish(p)
    assert r.status == "success" and int(r.out) > 10000, r
    assert ticks is not None, "pid 1 never seen"
    assert ticks < os.sysconf("SC_CLK_TCK") // 10, "pid 1 used %d ticks" % ticks


def test_fork_bomb_is_contained():
    # Every process forks forever; the run ends at its timeout and takes
    # the whole tree with it.
    r = run(r'''
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
''', "--timeout", 1)
    assert r.status == "timeout" and r.returncode == 124, r
    assert r.wall < 1 + 2.5 * SLOWDOWN, r


def test_busy_loop_ignoring_signals_times_out():
    r = run(r'''
import signal
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM, signal.SIGHUP, signal.SIGUSR1):
    signal.signal(s, signal.SIG_IGN)
while True:
    pass
''', "--timeout", 1)
    assert r.status == "timeout" and r.returncode == 124, r
    assert r["signal"] == 9 and r["exit_code"] is None, r
    assert r.wall < 1 + 1.5 * SLOWDOWN, r
    assert 1.0 <= r["execution_time"] <= 1 + 0.1 * SLOWDOWN, r
    assert r["error"] == "Execution timed out after 1 s", r


def test_catastrophic_regex_times_out():
    r = run("import re\nprint(re.match(r'(a+)+$', 'a' * 40 + 'b'))\n", "--timeout", 1)
    assert r.status == "timeout" and r.returncode == 124, r
    assert r.wall < 1 + 1.5 * SLOWDOWN, r


def test_output_flood_stdout():
    r = run("while True:\n    print('x' * 99)\n")
    assert r.status == "output_limit" and r.returncode == 126, r
    assert r["stdout_truncated"] is True and r["stderr_truncated"] is False, r
    assert 0 < len(r.out) <= 1048576, r
    assert set(r.out) <= {"x", "\n"}, r


def test_output_flood_stderr_with_small_limit():
    r = run("import sys\nwhile True:\n    sys.stderr.write('e' * 100)\n", "--output-limit", 4096)
    assert r.status == "output_limit" and r.returncode == 126, r
    assert r["stderr_truncated"] is True and len(r["stderr"]) == 4096, r


def test_output_exactly_at_limit_is_kept():
    r = run("import sys\nsys.stdout.write('a' * 4096)\n", "--output-limit", 4096)
    assert r.status == "success" and r.out == "a" * 4096 and not r["stdout_truncated"], r


def test_disk_fill_is_caught():
    r = run(r'''
import errno
written = 0
try:
    with open("/tmp/fill", "wb") as f:
        while True:
            f.write(b"\0" * (1 << 20))
            f.flush()
            written += 1
except OSError as e:
    print("caught", errno.errorcode[e.errno], written)
''', "--tmpfs-mb", 8)
    assert r.status == "success", r
    word, err, mib = r.out.split()
    assert word == "caught" and err in ("EFBIG", "ENOSPC"), r
    assert int(mib) <= 8, r


def test_inode_fill_is_caught():
    r = run(r'''
import errno
n = 0
try:
    while True:
        open("/tmp/f%d" % n, "w").close()
        n += 1
except OSError as e:
    print("caught", errno.errorcode[e.errno], n)
''', "--tmpfs-inodes", 64)
    assert r.status == "success", r
    word, err, n = r.out.split()
    assert word == "caught" and err == "ENOSPC" and int(n) < 64, r


FD_EXHAUSTION = r'''
import errno, os
fds = []
try:
    while True:
        fds.append(os.open("/dev/null", os.O_RDONLY))
except OSError as e:
    print("caught", errno.errorcode[e.errno], len(fds))
'''


def test_fd_exhaustion_is_caught():
    r = run(FD_EXHAUSTION)
    assert r.status == "success", r
    word, err, n = r.out.split()
    assert word == "caught" and err == "EMFILE" and 200 <= int(n) < 256, r


def test_small_nofile_setting_is_usable():
    # --nofile accepts 16..65536, and a run with a small value must work
    # (and hit EMFILE below it), not fail to set up the sandbox.
    r = run(FD_EXHAUSTION, "--nofile", 64)
    assert r.status == "success", r
    word, err, n = r.out.split()
    assert word == "caught" and err == "EMFILE" and 50 <= int(n) < 64, r


@pytest.mark.parametrize("seed", [1, 2])
def test_garbage_into_every_fd(seed):
    # Random bytes into fds 0..63, including fd 3, the control channel to
    # the engine. The result must still be well-formed.
    r = run(r'''
import os, random
random.seed(%d)
print("before")
for fd in range(64):
    try:
        os.write(fd, random.randbytes(512))
    except OSError:
        pass
print("after")
''' % seed)
    assert r.data is not None, r
    assert set(r.data) == RESULT_KEYS, r
    assert r.status in ("error", "success"), r
    assert r.status in STATUSES and r.status != "internal_error", r
    json.dumps(r.data)


def test_background_child_is_killed_when_main_exits():
    p = popen(r'''
import os, time
pid = os.fork()
if pid == 0:
    time.sleep(100)
    os._exit(0)
print("main done")
''')
    t = Tracker(p)
    r = finish(p)
    t.join()
    assert r.status == "success" and r.out == "main done\n", r
    assert r.wall < 3, r
    assert wait_gone(t.seen) == {}, "processes left behind"
