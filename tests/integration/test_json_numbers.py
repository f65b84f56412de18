"""JSON numbers are written in their shortest form that reads back as the
same double (0.003518188, not 0.0035181879999999998): in every daemon reply
and log line, and in `pyrunner run --json`."""
import re
import subprocess

import pytest

from conftest import BIN, base_env
from daemon_helpers import Daemon

# A number token outside strings (strings are skipped whole, escapes included).
TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)')


def real_tokens(text):
    return [m.group(1) for m in TOKEN.finditer(text) if m.group(1) and re.search(r"[.eE]", m.group(1))]


def significant(tok):
    mantissa = re.split(r"[eE]", tok)[0].lstrip("-").replace(".", "")
    return mantissa.strip("0") or "0"


def assert_shortest(text):
    reals = real_tokens(text)
    for tok in reals:
        assert significant(tok) == significant(repr(float(tok))), "not shortest: %s in %s" % (tok, text[:300])
    return reals


# Computes for a while, so the timings have many digits; returns a float.
CODE = "x = sum(i * 0.1 for i in range(20000))\nprint(x)\nx / 3\n"


def test_cli_json_numbers_are_shortest(tmp_path):
    f = tmp_path / "p.py"
    f.write_text(CODE)
    p = subprocess.run([BIN, "run", "--json", str(f)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=base_env(), timeout=60)
    assert p.returncode == 0, p.stderr
    reals = assert_shortest(p.stdout.decode())
    assert len(reals) >= 3, p.stdout          # execution_time, cpu_time, memory_used at least


@pytest.fixture(scope="module")
def daemon():
    d = Daemon("--rate-limit", 0).start()
    yield d
    assert d.stop() == 0, d.stderr_text()


@pytest.mark.parametrize("route", ["run", "invoke"])
def test_daemon_replies_and_logs_are_shortest(daemon, route):
    r = getattr(daemon, route)(CODE)
    assert r.status == 200, r
    assert_shortest(r.body.decode())
    line = daemon.wait_log(lambda o: o.get("request_id") == r.header("X-Request-Id"))
    raw = next(l for l in daemon.stderr_text().splitlines() if r.header("X-Request-Id") in l)
    reals = assert_shortest(raw)
    assert "duration_ms" in line and len(reals) >= 2, raw
    if route == "run":
        assert len(real_tokens(r.body.decode())) >= 3, r.body
    assert_shortest(daemon.request("GET", "/").body.decode())
