"""Short passes of tools/soak.py, the outside-in soak and chaos harness
(`make soak` and `make chaos` are the long ones). The harness starts its own
pyrunnerd, drives it over HTTP, and exits non-zero on any unanswered
request, wrong status, leak, slow recovery or daemon death; its report is
the assertion message."""
import os
import subprocess

from daemon_helpers import DAEMON_BIN, PYTHON, REPO, clean_env

SOAK = os.path.join(REPO, "tools", "soak.py")


def run_harness(*args, bound):
    """Runs the harness, bounded by `bound` seconds of load (it stops itself
    300 s past that at the latest); returns (exit status, report)."""
    p = subprocess.run([PYTHON, SOAK, "--daemon", DAEMON_BIN, "--seconds", str(bound)] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=clean_env(), timeout=bound + 360)
    out = p.stdout.decode("utf-8", "replace")
    print(out)
    return p.returncode, out


def tail(out, n=12000):
    return out if len(out) <= n else "...\n" + out[-n:]


def test_soak_short():
    # Up to 3000 runs at 1, 4, 8 and 16 concurrent clients, every hostile
    # program of the suite among them (the warm-up runs each twice), then the
    # leak checks. 90 s of load: on 2 busy cores that is under 1000 runs.
    rc, out = run_harness("--runs", "3000", "--concurrency", "1,4,8,16", bound=90)
    assert rc == 0, tail(out)


def test_chaos_short():
    # Each fault three times under load; each recovery within 1 s.
    rc, out = run_harness("--chaos", "--repeat", "3", bound=400)
    assert rc == 0, tail(out)
