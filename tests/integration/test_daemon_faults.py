"""pyrunnerd when runs end at awkward moments: inside the call that
submitted them, inside a walk over the requests, or with the engine unable
to start a sandbox. Each test once found a use-after-free (they use the
ASan build, which aborts on one) or a request left without a reply."""
import contextlib
import os
import resource
import signal
import threading

from daemon_helpers import ZYGOTE_BIN, asan_daemon, nspid, poll_until, rss_kb


@contextlib.contextmanager
def no_free_fds(pid):
    """While the block runs, pid cannot open any file: its RLIMIT_NOFILE is
    its lowest free descriptor. Connections made before still work."""
    fds = {int(x) for x in os.listdir("/proc/%d/fd" % pid)}
    lowest_free = min(set(range(len(fds) + 1)) - fds)
    old = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (lowest_free, old[1]))
    try:
        yield
    finally:
        if os.path.exists("/proc/%d" % pid):
            resource.prlimit(pid, resource.RLIMIT_NOFILE, old)


def _answered(d, conn, code):
    try:
        return d.request("POST", "/run", {"code": code}, conn=conn, timeout=20)
    except OSError as e:
        raise AssertionError("no reply (%s); daemon alive: %s\n%s" % (e, d.alive(), d.stderr_text()[-4000:]))


def test_sandbox_that_cannot_be_made_at_submit():
    """The engine fails the run inside engine_submit (no fd left for the
    sandbox's pipes), so its done callback has freed the request before
    engine_submit returns. The daemon used to write to it afterwards, and
    to count -1 runs in flight."""
    d = asan_daemon("--rate-limit", 0, "--pool-size", 0).start()
    conn = d.connection()
    try:
        assert d.request("GET", "/", conn=conn).status == 200
        with no_free_fds(d.pid):
            r = _answered(d, conn, "print(1)")
        assert r.status == 200, r
        assert r.json["status"] == "internal_error", r.json
        assert d.alive(), d.stderr_text()
        m = d.metrics()
        assert m.get("pyrunner_active_sandboxes") == 0, m.text
        assert m.get("pyrunner_executions_total", status="internal_error") == 1, m.text
        r = d.run("print(2)")
        assert r.status == 200 and r.json["stdout"] == "2\n", r
    finally:
        conn.close()
        assert d.stop() == 0, d.stderr_text()


# Holds 40 MiB, which only the user's code does, then sleeps.
RUNNING_MARK = "import time\nb = b'x' * (40 << 20)\ntime.sleep(1)\nprint('first')"


def _user_code_running(d):
    # A sandbox's pid 2 (pid 2 of a nested pid namespace), not the zygote:
    # under ASan the zygote alone can be over 40 MB.
    for pid in d.descendants():
        try:
            if nspid(pid)[1:] == [2] and rss_kb(pid) > 40 << 10:
                return True
        except OSError:
            pass
    return False


def test_queue_drained_into_failing_submits():
    """Runs waiting in the daemon's queue are submitted when the running one
    ends; each submit fails at once. Every one is answered, the chain does
    not recurse, and the counters end at zero."""
    d = asan_daemon("--rate-limit", 0, "--pool-size", 0, "--max-concurrency", 1).start()
    conns = [d.connection() for _ in range(6)]
    out = {}
    try:
        for c in conns:
            assert d.request("GET", "/", conn=c).status == 200
        first = threading.Thread(target=lambda: out.update(first=_answered(d, conns[0], RUNNING_MARK)))
        first.start()
        # Until its code runs, the first run needs fds (the sandbox's pidfd);
        # without them the engine declares the zygote dead (reported).
        poll_until(lambda: _user_code_running(d), 10, what="the first run's code running")
        waiting = [threading.Thread(target=lambda i=i: out.update({i: _answered(d, conns[i], "print(%d)" % i)}))
                   for i in range(1, 6)]
        for t in waiting:
            t.start()
        d.wait_metric("pyrunner_queue_depth", lambda v: v == 5, timeout=30)
        with no_free_fds(d.pid):
            first.join(20)
            for t in waiting:
                t.join(20)
        assert out["first"].status == 200 and out["first"].json["stdout"] == "first\n", out["first"]
        for i in range(1, 6):
            assert out[i].status == 200 and out[i].json["status"] == "internal_error", out[i]
        m = d.metrics()
        assert m.get("pyrunner_active_sandboxes") == 0 and m.get("pyrunner_queue_depth") == 0, m.text
        r = d.run("print('after')")
        assert r.status == 200 and r.json["stdout"] == "after\n", r
    finally:
        for c in conns:
            c.close()
        assert d.stop() == 0, d.stderr_text()


def test_drain_deadline_cancels_runs_the_engine_still_queues(tmp_path):
    """At the drain deadline the daemon cancels every run it submitted. A run
    the engine still queues (no zygote to run it) ends inside engine_cancel,
    which frees its request; the daemon used to read the freed request to
    walk on to the next one."""
    zygote = tmp_path / "zygote"
    zygote.symlink_to(ZYGOTE_BIN)
    d = asan_daemon("--rate-limit", 0, "--drain-timeout-ms", 300, "--spare-zygote", 0,
                    env={"PYRUNNER_ZYGOTE": str(zygote)}).start()
    try:
        # From now on no zygote can start: the next one is /bin/false.
        zygote.unlink()
        zygote.symlink_to("/bin/false")
        z = d.zygote_pid()
        os.kill(z, signal.SIGKILL)
        poll_until(lambda: not os.path.exists("/proc/%d" % z) or _zombie(z), 5, what="the zygote gone")
        out = {}
        threads = [threading.Thread(target=lambda i=i: out.update({i: d.run("print(%d)" % i, timeout_s=20)}))
                   for i in range(3)]
        for t in threads:
            t.start()
        d.wait_metric("pyrunner_active_sandboxes", lambda v: v == 3)
        d.signal(signal.SIGTERM)
        for t in threads:
            t.join(20)
        for i in range(3):
            assert out[i].status == 200 and out[i].json["status"] == "killed", out[i]
        assert d.wait_exit(10) == 0, d.stderr_text()[-4000:]
    finally:
        assert d.stop() == 0, d.stderr_text()[-4000:]


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
