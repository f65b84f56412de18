"""Every request gets exactly one reply and exactly one log line, with the
same id, including requests whose client left (logged as 499, not sent);
and a reply that cannot be written does not hold up shutdown."""
import collections
import signal
import socket
import struct
import threading
import time

from daemon_helpers import Daemon, Metrics, poll_until, raw_run


def _reset(s):
    """Closes s with a RST (SO_LINGER 0): writes to it then fail at once."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def _stops_at_once(d):
    """Once nothing runs, SIGTERM stops d well before its 20 s drain deadline."""
    d.wait_metric("pyrunner_active_sandboxes", lambda v: v == 0)
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    rc = d.wait_exit(15)
    took = time.monotonic() - t0
    assert rc == 0, (rc, d.stderr_text())
    assert took < 5, "exited %.1f s after SIGTERM (drain deadline 20 s)" % took


SLEEP = "import time\ntime.sleep(%s)\nprint('slept')"


def test_one_reply_and_one_log_line_per_request():
    d = Daemon("--rate-limit", 0, "--max-concurrency", 1, "--max-queue", 2).start()
    sent = 0
    ids = []
    try:
        def req(*a, **kw):
            nonlocal sent
            sent += 1
            r = d.request(*a, **kw)
            ids.append(r.header("X-Request-Id"))
            return r

        # Answered at once: every kind of refusal and two cheap routes.
        assert req("GET", "/").status == 200
        assert req("GET", "/nope").status == 404
        assert req("GET", "/run").status == 405
        assert req("POST", "/run", b"{}", headers={"Content-Type": "text/plain"}).status == 415
        assert req("POST", "/run", b"{", headers={"Content-Type": "application/json"}).status == 400
        assert req("POST", "/run", {"code": " "}).status == 422
        assert req("GET", "/metrics").status == 200
        # One running, two queued, one refused for the full queue.
        out = {}
        t = threading.Thread(target=lambda: out.update(r=req("POST", "/run", {"code": SLEEP % 1})))
        t.start()
        d.wait_metric("pyrunner_active_sandboxes", lambda v: v == 1)
        gone_queued = raw_run(d.port, SLEEP % 0)
        sent += 1
        t2 = threading.Thread(target=lambda: out.update(q=req("POST", "/run", {"code": "print('q')"})))
        t2.start()
        d.wait_metric("pyrunner_queue_depth", lambda v: v == 2)
        assert req("POST", "/run", {"code": "print(1)"}).status == 429
        _reset(gone_queued)                 # leaves while queued: 499
        t.join(20)
        t2.join(20)
        assert out["r"].status == 200 and out["q"].status == 200, out
        # One that leaves while it runs: cancelled, 499.
        gone_running = raw_run(d.port, SLEEP % 30, timeout=60)
        sent += 1
        d.wait_metric("pyrunner_active_sandboxes", lambda v: v == 1)
        _reset(gone_running)
        d.wait_metric("pyrunner_active_sandboxes", lambda v: v == 0)
        poll_until(lambda: len(d.request_logs()) >= sent, 5, what="a log line per request")
        mr = d.request("GET", "/metrics")
        metrics_id = int(mr.header("X-Request-Id"), 16)
        m = Metrics(mr.body.decode())
    finally:
        rc = d.stop()
    lines = d.request_logs()
    logged = collections.Counter(o["request_id"] for o in lines)
    assert all(n == 1 for n in logged.values()), [i for i, n in logged.items() if n > 1]
    for i in ids:
        assert logged[i] == 1, i
    statuses = collections.Counter(o["status"] for o in lines)
    assert statuses[499] == 2, statuses
    gone = [o for o in lines if o["status"] == 499]
    assert all(o.get("client") == "disconnected" for o in gone), gone
    assert sorted(str(o.get("run_status")) for o in gone) == ["None", "killed"], gone
    # The metrics counted every request answered before them, as the log did
    # (the /metrics polls of wait_metric included).
    counted = sum(v for (name, labels), v in m.samples.items()
                  if name == "pyrunner_requests_total" and any(k == "code" for k, _ in labels))
    before = [o for o in lines if int(o["request_id"], 16) < metrics_id]
    assert counted == len(before), (counted, len(before))
    assert len(ids) + 2 <= len(lines)
    assert rc == 0, d.stderr_text()


def test_a_reply_that_cannot_be_written_does_not_hold_up_shutdown():
    """The client of a queued run leaves with a RST, so writing its reply
    fails. SIGTERM must still stop the daemon at once, not at the drain
    deadline (the reply used to stay counted as being sent)."""
    d = Daemon("--rate-limit", 0, "--max-concurrency", 1, "--drain-timeout-ms", 20000).start()
    try:
        first = raw_run(d.port, SLEEP % 0.5)
        d.wait_metric("pyrunner_active_sandboxes", lambda v: v == 1)
        queued = raw_run(d.port, "print(2)")
        d.wait_metric("pyrunner_queue_depth", lambda v: v == 1)
        _reset(queued)
        d.wait_log(lambda o: o.get("status") == 499, 5)
        first.settimeout(10)
        assert first.recv(100).startswith(b"HTTP/1.1 200"), "no reply to the first run"
        first.close()
        _stops_at_once(d)
    finally:
        if d.alive():
            d.proc.kill()
            d.proc.wait()


def test_a_reply_cut_off_mid_write_does_not_hold_up_shutdown():
    """A reply bigger than the socket buffers, whose client stops reading
    and then resets: evhttp drops the connection without saying the reply
    was sent. SIGTERM must still stop the daemon at once."""
    d = Daemon("--rate-limit", 0, "--output-limit", 32 << 20, "--drain-timeout-ms", 20000).start()
    try:
        s = raw_run(d.port, "import sys\nsys.stdout.write('x' * (24 << 20))")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        line = d.wait_log(lambda o: o.get("msg") == "request" and o.get("route") == "/run", 30)
        assert line["status"] == 200, line
        assert s.recv(100).startswith(b"HTTP/1.1 200")
        _reset(s)
        _stops_at_once(d)
    finally:
        if d.alive():
            d.proc.kill()
            d.proc.wait()
