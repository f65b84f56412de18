"""Edges of the engine seen from outside: large results under concurrency,
a zygote of another protocol version, and callbacks that must come later."""
import concurrent.futures
import os
import stat
import subprocess
import sys
import tempfile

from conftest import BIN, base_env
from daemon_helpers import Daemon

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
