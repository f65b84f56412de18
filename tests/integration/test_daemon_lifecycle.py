"""pyrunnerd life cycle: a client that leaves cancels its run, SIGTERM
drains, the drain deadline kills, a dead zygote is replaced."""
import http.client
import json
import os
import signal
import socket
import threading
import time

import pytest

from daemon_helpers import Daemon, cmdline, raw_run, descendants, nspid, pid_alive, pidns, poll_until


def _helpers(d):
    """The zygote and its factory (direct children of the zygote that are
    not a sandbox's pid 2): the processes that outlive runs."""
    z = d.zygote_pid()
    assert z, "no zygote under pyrunnerd %d" % d.pid
    out = {z}
    for pid, (ppid, _) in descendants(z).items():
        if ppid == z and len(nspid(pid)) == 1:      # not in a sandbox pid namespace
            out.add(pid)
    return out


def _sandbox_procs(d):
    """Descendants of the daemon that belong to sandboxes: {pid: start}."""
    keep = _helpers(d)
    return {pid: start for pid, (_, start) in d.descendants().items() if pid not in keep}


def _run_namespace_procs(d):
    """The processes of the sandbox whose program forked a child (the only
    pid namespace with a pid 3): {pid: start}, or None."""
    procs = _sandbox_procs(d)
    by_ns = {}
    for pid in procs:
        by_ns.setdefault(pidns(pid), []).append(pid)
    for ns, pids in by_ns.items():
        if ns and any(nspid(p)[-1:] == [3] for p in pids):
            return {p: procs[p] for p in pids}
    return None


def _stable_sandbox_count(d, samples=8, timeout=10):
    """Pool sandboxes start in the background: the count of sandbox
    processes once it is non-zero and unchanged over `samples` polls."""
    seen = []

    def stable():
        seen.append(len(_sandbox_procs(d)))
        tail = seen[-samples:]
        return len(tail) == samples and tail[0] > 0 and len(set(tail)) == 1 and tail[0]

    return poll_until(stable, timeout, interval=0.025, what="a stable pool")


FORK_AND_SLEEP = ("import os, time\n"
                  "if os.fork() == 0:\n"
                  "    time.sleep(30)\n"
                  "    os._exit(0)\n"
                  "time.sleep(30)\n")


# ---- 6. cancel on disconnect ----

def test_client_disconnect_cancels_run():
    d = Daemon("--rate-limit", 0).start()
    try:
        base = _stable_sandbox_count(d)
        s = raw_run(d.port, FORK_AND_SLEEP, timeout=60)
        d.wait_metric("pyrunner_active_sandboxes", lambda v: v == 1)
        run_procs = poll_until(lambda: _run_namespace_procs(d), 5, what="the run's processes")
        assert len(run_procs) >= 3, run_procs               # pid 1, pid 2, the fork
        t0 = time.monotonic()
        s.close()
        line = d.wait_log(lambda o: o.get("msg") == "request" and o.get("client") == "disconnected", 5)
        took = time.monotonic() - t0
        print("cancelled %.3f s after the client left" % took)
        assert line["run_status"] == "killed", line
        assert line["route"] == "/run", line
        d.wait_metric("pyrunner_active_sandboxes", lambda v: v == 0, timeout=5)
        poll_until(lambda: not any(pid_alive(p, st) for p, st in run_procs.items()), 5,
                   what="the sandbox's processes gone")
        # The pool is refilled, and nothing else is left over.
        poll_until(lambda: len(_sandbox_procs(d)) == base and _run_namespace_procs(d) is None, 5,
                   what="descendants back to %d" % base)
        m = d.metrics()
        assert m.get("pyrunner_executions_total", status="killed") == 1, m.text
        # The daemon still works.
        r = d.run("print('after')")
        assert r.status == 200 and r.json["stdout"] == "after\n", r
    finally:
        assert d.stop() == 0, d.stderr_text()


# ---- 7. drain on SIGTERM ----

def _probe_new_connection(port):
    """What a new client sees now: 'refused', 'answered <code>', 'closed',
    or 'hangs' (accepted by the kernel but never served within 0.5 s)."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=0.5)
    except ConnectionRefusedError:
        return "refused"
    except socket.timeout:
        return "hangs"
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        s.settimeout(0.5)
        data = s.recv(200)
        if not data:
            return "closed"
        return "answered " + data.split(b"\r\n", 1)[0].decode("latin-1")
    except ConnectionResetError:
        return "closed"
    except socket.timeout:
        return "hangs"
    finally:
        s.close()


def test_sigterm_drains_in_flight_run():
    d = Daemon("--rate-limit", 0).start()
    try:
        out = {}

        def slow():
            try:
                out["r"] = d.run('import time\ntime.sleep(1.5)\nprint("done")')
            except Exception as e:          # noqa: BLE001 - reported below
                out["e"] = e

        keep = d.connection()
        keep.request("GET", "/")
        assert keep.getresponse().read()
        t = threading.Thread(target=slow)
        t.start()
        d.wait_metric("pyrunner_active_sandboxes", lambda v: v == 1)
        t_sig = time.monotonic()
        d.signal(signal.SIGTERM)
        d.wait_log(lambda o: str(o.get("msg", "")).startswith("signal 15"), 3)

        # An existing keep-alive connection is still served: draining, no new runs.
        keep.request("GET", "/")
        r = keep.getresponse()
        health = json.loads(r.read())
        assert health["status"] == "draining" and health["reason"], health
        assert r.status == 503 and r.getheader("Retry-After"), (r.status, health)    # not healthy: 503
        keep.request("POST", "/run", body=json.dumps({"code": "print(1)"}),
                     headers={"Content-Type": "application/json"})
        r = keep.getresponse()
        detail = json.loads(r.read())
        assert r.status == 503 and r.getheader("Retry-After") == "5", (r.status, detail)
        keep.close()

        new_conn = _probe_new_connection(d.port)
        t.join(10)
        rc = d.wait_exit(10)
        print("in-flight run answered; daemon exited %.2f s after SIGTERM" % (time.monotonic() - t_sig))
        assert "e" not in out, out
        assert out["r"].status == 200, out["r"]
        assert out["r"].json["status"] == "success" and out["r"].json["stdout"] == "done\n", out["r"]
        assert rc == 0, (rc, d.stderr_text())
        assert d.stop() == 0
        assert _probe_new_connection(d.port) == "refused"
        # While draining, a new connection must be refused (or answered at once),
        # not accepted into the listen backlog and left hanging.
        assert new_conn == "refused" or new_conn.startswith("answered"), new_conn
    finally:
        if d.alive():            # a failed assertion above: do not leave it running
            d.proc.kill()
            d.proc.wait()


def test_drain_deadline_kills_runs():
    d = Daemon("--drain-timeout-ms", 500, "--rate-limit", 0).start()
    try:
        out = {}

        def slow():
            c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=15)
            try:
                c.request("POST", "/run", body=json.dumps({"code": FORK_AND_SLEEP, "timeout": 60}),
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                out["status"], out["body"] = r.status, r.read()
            except (ConnectionError, http.client.HTTPException) as e:
                out["closed"] = repr(e)
            finally:
                c.close()

        t = threading.Thread(target=slow)
        t.start()
        d.wait_metric("pyrunner_active_sandboxes", lambda v: v == 1)
        run_procs = poll_until(lambda: _run_namespace_procs(d), 5, what="the run's processes")
        everything = d.descendants()
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        rc = d.wait_exit(5)
        took = time.monotonic() - t0
        t.join(5)
        print("exited %.2f s after SIGTERM (drain-timeout-ms 500); client saw %r" % (took, out))
        assert rc == 0, (rc, d.stderr_text())
        assert took < 3.0, took
        if "closed" not in out:
            assert out.get("status") == 200, out
            assert json.loads(out["body"])["status"] == "killed", out
        d.wait_log(lambda o: o.get("msg", "").startswith("drain deadline"), 1)
        # Nothing of the daemon survives it: sandbox, fork, zygote, factory.
        poll_until(lambda: not any(pid_alive(p, st) for p, st in run_procs.items()), 3,
                   what="the sandbox's processes gone")
        poll_until(lambda: not any(pid_alive(p, st) for p, (_, st) in everything.items()), 3,
                   what="all of the daemon's descendants gone")
    finally:
        if d.alive():            # a failed assertion above: do not leave it running
            d.proc.kill()
            d.proc.wait()


# ---- 8. zygote restart ----

def test_zygote_killed_mid_run_is_replaced():
    d = Daemon("--rate-limit", 0).start()
    try:
        m0 = d.metrics()
        assert m0.get("pyrunner_zygote_restarts_total") == 0, m0.text
        z = d.zygote_pid()
        assert z and cmdline(z).startswith("pyrunner-zygote"), z
        with open("/proc/%d/stat" % z) as f:
            assert int(f.read().rsplit(")", 1)[1].split()[1]) == d.pid
        out = {}
        t = threading.Thread(target=lambda: out.update(r=d.run("import time\ntime.sleep(5)\nprint('x')")))
        t.start()
        d.wait_metric("pyrunner_active_sandboxes", lambda v: v == 1)
        t0 = time.monotonic()
        os.kill(z, signal.SIGKILL)
        t.join(10)
        r = out["r"]
        print("in-flight run answered %.3f s after the zygote was killed: %s" % (time.monotonic() - t0,
                                                                              r.json.get("status")))
        assert r.status == 200 and r.json["status"] == "internal_error", r
        assert r.json["error"], r
        assert r.wall < 4.5, r.wall             # not after the run's 5 s

        def runs_again():
            x = d.run("print('back')")
            return x if x.status == 200 and x.json["status"] == "success" else None

        r = poll_until(runs_again, 20, interval=0.1, what="a successful run after the restart")
        assert r.json["stdout"] == "back\n"
        m1 = d.metrics()
        assert m1.get("pyrunner_zygote_restarts_total") >= 1, m1.text
        assert m1.get("pyrunner_executions_total", status="internal_error") >= 1, m1.text
        z2 = d.zygote_pid()
        assert z2 and z2 != z, (z, z2)
        assert d.request("GET", "/").json["status"] == "healthy"
    finally:
        assert d.stop() == 0, d.stderr_text()
