"""Clients that do not read their replies (red-team pass 2, findings 01 and
30): the daemon holds at most max-reply-bytes of unread replies, refuses
runs above that, and drops a client that takes less than 64 KiB of its
reply in send-stall-s."""
import json
import socket
import time

from conftest import SLOWDOWN
from daemon_helpers import Daemon

BIG = "return 'x' * (15 << 20)"      # a reply of 15 MiB and a bit


def unread(port, code=BIG, rcvbuf=4096):
    """A POST /run from a client (by default with a small receive buffer)
    that has not read anything yet."""
    data = json.dumps({"code": code, "timeout": 60}).encode()
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    s.sendall(b"POST /run HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
    return s


def held(d):
    return d.metrics().get("pyrunner_reply_bytes_held")


def read_reply(s, rate=None):
    """The whole reply on s (Content-Length framing), at most `rate` bytes/s."""
    s.settimeout(60)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = int([h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0])
    t0 = time.monotonic()
    while len(body) < length:
        chunk = s.recv(min(65536, length - len(body)))
        assert chunk, "connection closed after %d of %d bytes" % (len(body), length)
        body += chunk
        if rate:
            ahead = len(body) / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
    return head, body


def test_unread_replies_are_held_within_the_budget_then_dropped():
    # 16 unread 16 MiB replies held 317-333 MiB; the default of 1,024
    # connections would have held about 20 GiB.
    # Its own idle timeout off, so that the stall check is what drops them.
    d = Daemon("--max-reply-bytes", 32 << 20, "--send-stall-s", int(4 * SLOWDOWN), "--idle-timeout-s", 3600,
               "--rate-limit", 0).start()
    socks = []
    try:
        for i in range(1, 4):
            socks.append(unread(d.port))
            # Most of each reply stays here; the kernel's buffers take some.
            d.wait_metric("pyrunner_reply_bytes_held", lambda v: v > i * (12 << 20), timeout=60)
        assert held(d) > 32 << 20, held(d)
        r = d.run("print(1)")
        assert r.status == 503 and int(r.header("Retry-After")) >= 1, r
        assert r.json["detail"] == "too many replies wait for their clients to read them", r.json
        # None of them takes anything: after send-stall-s all are dropped,
        # the memory is given back, and runs are served again.
        d.wait_metric("pyrunner_reply_bytes_held", lambda v: v < 1 << 20, timeout=60)
        assert d.run("print(1)").json["stdout"] == "1\n"
        dropped = [o for o in d.logs() if o.get("msg") == "dropped a client that stopped reading its reply"]
        assert len(dropped) == 3, dropped
    finally:
        for s in socks:
            s.close()
        assert d.stop() == 0, d.stderr_text()


def test_a_trickle_reader_is_dropped_and_a_slow_one_is_served():
    d = Daemon("--send-stall-s", 2, "--rate-limit", 0).start()
    try:
        trickle = unread(d.port)
        slow = unread(d.port, rcvbuf=None)
        # 1 MiB/s is slow, but more than 64 KiB per 2 s: served in full.
        head, body = read_reply(slow, rate=1 << 20)
        assert head.startswith(b"HTTP/1.1 200") and len(body) > 15 << 20, head
        # A byte now and then kept a connection open past every timeout.
        trickle.settimeout(5)
        got = 0
        while not [o for o in d.logs() if o.get("msg") == "dropped a client that stopped reading its reply"]:
            assert trickle.recv(1), "closed after %d bytes, and not logged" % got
            got += 1
            assert got < 300, "not dropped after %d bytes in 60 s" % got
            time.sleep(0.2)
        # It was reset: what is left in this end's buffer, then no more.
        rest = b""
        try:
            while True:
                chunk = trickle.recv(1 << 20)
                if not chunk:
                    break
                rest += chunk
        except ConnectionResetError:
            pass
        assert got + len(rest) < 1 << 20, (got, len(rest))
        d.wait_metric("pyrunner_reply_bytes_held", lambda v: v < 1 << 20, timeout=10)
    finally:
        assert d.stop() == 0, d.stderr_text()


def test_sigterm_does_not_wait_for_abandoned_replies():
    # Clients that asked, then neither read nor closed: an idle daemon took
    # the whole drain timeout (11.1 s) to exit. Draining, a reply that
    # nobody takes for 1 s is dropped.
    d = Daemon("--rate-limit", 0).start()
    socks = [unread(d.port) for _ in range(3)]
    try:
        d.wait_metric("pyrunner_reply_bytes_held", lambda v: v > 3 * (12 << 20), timeout=60)
        t = time.monotonic()
        assert d.stop() == 0, d.stderr_text()
        took = time.monotonic() - t
    finally:
        for s in socks:
            s.close()
    assert took < 3, took
    dropped = [o for o in d.logs() if o.get("msg") == "dropped a client that stopped reading its reply"]
    assert len(dropped) == 3, dropped
