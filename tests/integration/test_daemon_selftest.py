"""The start-up self-test program (src/daemon/selftest.py) finds the escapes
it looks for: run outside a sandbox (as root, in a network namespace of its
own so that nothing leaves the machine), it must report them. Inside the
sandbox it reports none (GET / says so in the other tests)."""
import json
import os
import subprocess

from daemon_helpers import PYTHON, REPO

SELFTEST = os.path.join(REPO, "src", "daemon", "selftest.py")


def test_selftest_reports_escapes_outside_the_sandbox():
    assert os.geteuid() == 0, "needs root, as make check does"
    p = subprocess.run(["unshare", "--net", PYTHON, SELFTEST], capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    found = json.loads(p.stdout)
    for want in ("user code runs as uid 0", "CapEff is not empty", "no seccomp filter", "no_new_privs is off",
                 "unshare(CLONE_NEWUSER) not refused", "other processes visible"):
        assert want in found, (want, found)
    assert "network reachable" not in found, found
