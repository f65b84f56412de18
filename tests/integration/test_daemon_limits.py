"""pyrunnerd admission control: the per-key rate limit, the concurrency cap
and the bounded run queue."""
import socket
import threading
import time

import pytest

from daemon_helpers import Daemon, poll_until


def _retry_after(r):
    v = r.header("Retry-After")
    assert v is not None and v.isdigit() and int(v) >= 1, r
    return int(v)


# ---- 4. rate limiting ----

@pytest.fixture
def rate_daemon():
    d = Daemon("--rate-limit", 2, "--rate-burst", 3, "--api-keys", "ka,kb").start()
    yield d
    assert d.stop() == 0, d.stderr_text()


def test_rate_limit_per_key(rate_daemon):
    d = rate_daemon
    statuses = [d.run("print(1)", key="ka").status for _ in range(3)]
    assert statuses == [200, 200, 200], statuses
    r = d.run("print(1)", key="ka")
    assert r.status == 429, r
    assert r.json["detail"] and r.header("X-Request-Id"), r
    _retry_after(r)
    # The invoke route shares the key's bucket.
    r = d.invoke("print(1)", key="ka")
    assert r.status == 429, r
    # Another key has its own bucket.
    r = d.run("print(2)", key="kb")
    assert r.status == 200 and r.json["stdout"] == "2\n", r
    # Health and metrics are not rate limited.
    for _ in range(5):
        assert d.request("GET", "/").status == 200
        assert d.request("GET", "/metrics").status == 200
    # Tokens come back at 2/s: ka is served again within about half a second.
    t0 = time.monotonic()
    r = poll_until(lambda: (lambda x: x if x.status == 200 else None)(d.run("print(3)", key="ka")), 3.0,
                   interval=0.05, what="a token for ka")
    assert r.json["stdout"] == "3\n"
    assert time.monotonic() - t0 < 1.5
    m = d.metrics()
    assert m.get("pyrunner_requests_total", route="/run", code="429") >= 1, m.text


def test_rate_limit_per_client_without_keys():
    d = Daemon("--rate-limit", 1, "--rate-burst", 2).start()
    try:
        statuses = [d.run("print(1)").status for _ in range(3)]
        assert statuses == [200, 200, 429], statuses
    finally:
        assert d.stop() == 0, d.stderr_text()


def _burst(d, n, key=None):
    """n requests on one keep-alive connection, as fast as they go; each
    takes a token (they stop at 415, after the rate limit). The statuses."""
    c = d.connection()
    h = {"Content-Type": "text/plain"}
    if key:
        h["Authorization"] = "Bearer " + key
    try:
        return [d.request("POST", "/run", b"{}", headers=h, conn=c).status for _ in range(n)]
    finally:
        c.close()


def test_default_rate_limit_spares_loopback_clients():
    """A default daemon (no API keys, loopback) does not rate-limit: 500
    requests in a row, over the default burst of 200, get no 429. Nor does a
    daemon with keys for its loopback clients. (The defaults used to refuse
    a local benchmark.)"""
    for flags, key in (((), None), (("--api-keys", "k1"), "k1")):
        d = Daemon(*flags).start()
        try:
            statuses = _burst(d, 500, key)
            assert statuses.count(415) == 500, {s: statuses.count(s) for s in set(statuses)}
        finally:
            assert d.stop() == 0, d.stderr_text()


def test_explicit_rate_limit_applies_to_loopback_too(tmp_path):
    """A rate set by flag, PYRUNNER_RATE_LIMIT or the config file applies to
    every client, loopback included, with or without keys."""
    conf = tmp_path / "pyrunnerd.conf"
    conf.write_text("rate-limit = 1\n")
    for flags, env, key in ((("--rate-limit", 1), None, None),
                            ((), {"PYRUNNER_RATE_LIMIT": "1"}, None),
                            (("--config", conf, "--api-keys", "k1"), None, "k1")):
        d = Daemon("--rate-burst", 5, *flags, env=env).start()
        try:
            statuses = _burst(d, 8, key)
            assert statuses[:5] == [415] * 5 and 429 in statuses[5:], (flags, env, statuses)
        finally:
            assert d.stop() == 0, d.stderr_text()


# ---- 5. concurrency cap and queue ----

@pytest.fixture
def one_slot_daemon():
    d = Daemon("--max-concurrency", 1, "--max-queue", 1, "--rate-limit", 0).start()
    yield d
    assert d.stop() == 0, d.stderr_text()


def test_concurrency_cap_and_queue(one_slot_daemon):
    d = one_slot_daemon
    results = {}

    def slow(i):
        results[i] = d.run("import time\ntime.sleep(1)\nprint(%d)" % i)

    t1 = threading.Thread(target=slow, args=(1,))
    t1.start()
    d.wait_metric("pyrunner_active_sandboxes", lambda v: v == 1)
    t2 = threading.Thread(target=slow, args=(2,))
    t2.start()
    q = d.wait_metric("pyrunner_queue_depth", lambda v: v == 1)
    m = d.metrics()
    assert m.get("pyrunner_active_sandboxes") == 1 and m.get("pyrunner_queue_depth") == 1, m.text
    r = d.run("print(3)")
    assert r.status == 429, r
    assert r.json["detail"] and r.header("X-Request-Id"), r
    _retry_after(r)
    assert r.wall < 0.5, r.wall          # refused at once, not after the queue drained
    t1.join(10)
    t2.join(10)
    for i in (1, 2):
        assert results[i].status == 200 and results[i].json["stdout"] == "%d\n" % i, results[i]
    # Run 2 waited for run 1.
    assert results[2].wall > 1.5, results[2].wall
    m = d.metrics()
    assert m.get("pyrunner_active_sandboxes") == 0 and m.get("pyrunner_queue_depth") == 0, m.text
    assert q == 1


def test_queued_client_that_leaves_is_dropped(one_slot_daemon):
    """A client that disconnects while its run waits in the queue leaves the
    queue (logged as 499) and its code never runs."""
    d = one_slot_daemon
    out = {}
    t1 = threading.Thread(target=lambda: out.update(r=d.run("import time\ntime.sleep(1)\nprint('first')")))
    t1.start()
    d.wait_metric("pyrunner_active_sandboxes", lambda v: v == 1)
    s = socket.create_connection(("127.0.0.1", d.port))
    body = b'{"code": "print(\'queued-and-gone\')"}'
    s.sendall(b"POST /run HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
              % (len(body), body))
    d.wait_metric("pyrunner_queue_depth", lambda v: v == 1)
    s.close()
    d.wait_metric("pyrunner_queue_depth", lambda v: v == 0, timeout=3)
    line = d.wait_log(lambda o: o.get("msg") == "request" and o.get("status") == 499, timeout=3)
    assert line.get("client") == "disconnected", line
    t1.join(10)
    assert out["r"].status == 200 and out["r"].json["stdout"] == "first\n", out
    m = d.metrics()
    assert m.get("pyrunner_executions_total", status="success") == 1, m.text
    assert m.get("pyrunner_requests_total", route="/run", code="499") == 1, m.text


def test_rate_limit_keys_with_a_common_prefix_have_their_own_buckets():
    """Two distinct API keys (e.g. per-tenant keys sharing a long prefix)
    must not share a token bucket."""
    prefix = "tenant-key-" + "0" * 40
    ka, kb = prefix + "-alpha", prefix + "-beta"
    d = Daemon("--rate-limit", 1, "--rate-burst", 1, "--api-keys", "%s,%s" % (ka, kb)).start()
    try:
        assert d.run("print(1)", key=ka).status == 200
        r = d.run("print(1)", key=kb)
        assert r.status == 200, "key B was throttled by key A's requests: %r" % r
    finally:
        assert d.stop() == 0, d.stderr_text()
