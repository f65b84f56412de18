"""Edges of the engine seen from outside: large results under concurrency,
memory given back after them, a zygote of another protocol version, and
callbacks that must come later."""
import concurrent.futures
import os
import stat
import subprocess
import sys
import tempfile
import time

from conftest import BIN, base_env
from daemon_helpers import Daemon, poll_until, rss_kb

BIG = "return 'x' * (6 << 20)\n"


def test_large_results_are_not_lost_under_concurrency():
    # A result frame larger than one 16 KiB read may still be in the socket
    # when both exits are seen: it is read before the sandbox goes.
    d = Daemon("--max-concurrency", 16, "--max-result-bytes", 32 << 20, "--rate-limit", 0).start()
    try:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            rs = list(pool.map(lambda _: d.run(BIG, timeout=30, timeout_s=120), range(48)))
        bad = [(r.status, r.json.get("status"), len(r.json.get("result") or "")) for r in rs
               if r.status != 200 or r.json.get("status") != "success" or r.json.get("result") != "x" * (6 << 20)]
        assert bad == [], bad
    finally:
        assert d.stop() == 0


def test_idle_daemon_gives_back_the_memory_of_big_results():
    # 16 at once of a 5 MiB string and of half a million ints: the daemon
    # parses each result frame into a tree of small allocations. glibc kept
    # those pages after they were freed: 33 MB resident, 120 kB in use.
    d = Daemon("--max-concurrency", 16, "--rate-limit", 0).start()
    try:
        assert d.run("return 1").json["status"] == "success"
        time.sleep(1.3)         # past the daemon's 1 s idle trim: both figures come after one
        before = rss_kb(d.pid)
        progs = ["return 'x' * (5 << 20)", "return list(range(500000))"] * 8
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            for _ in range(3):
                rs = list(pool.map(lambda c: d.run(c, timeout=30, timeout_s=120), progs))
                assert [r.json.get("status") for r in rs] == ["success"] * 16
        d.wait_metric("pyrunner_active_sandboxes", lambda v: v == 0)
        poll_until(lambda: rss_kb(d.pid) - before < 2048, timeout=3,
                   what="RSS back within 2 MB of its %d kB before" % before)
    finally:
        assert d.stop() == 0


FAKE_ZYGOTE = r'''#!/usr/bin/python3.11
import socket, struct
s = socket.socket(fileno=3)
# READY of protocol version 1: type, version, factory pid, reserved, info.
s.send(struct.pack("=IIiI", 1, 1, 0, 0) + b'{"python": "0"}\0')
s.recv(1)
'''


def test_a_zygote_of_another_protocol_version_is_refused():
    with tempfile.TemporaryDirectory() as tmp:
        fake = os.path.join(tmp, "pyrunner-zygote")
        with open(fake, "w") as f:
            f.write(FAKE_ZYGOTE)
        os.chmod(fake, stat.S_IRWXU)
        prog = os.path.join(tmp, "p.py")
        with open(prog, "w") as f:
            f.write("print(1)\n")
        p = subprocess.run([BIN, "run", prog], env=base_env({"PYRUNNER_ZYGOTE": fake}),
                           capture_output=True, timeout=30, text=True)
    assert p.returncode != 0, p
    assert "zygote protocol 1, expected 2" in p.stderr, p.stderr
    assert p.stderr.count("\n") == 1, p.stderr
