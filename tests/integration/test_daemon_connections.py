"""pyrunnerd's connection cap (max-connections): connections count from
accept to close, whether or not they send a request, and the daemon never
holds more than the cap; the rest wait in the kernel's accept queue."""
import socket

from daemon_helpers import Daemon, poll_until


def accept_queue(port):
    """Connections the kernel holds for 127.0.0.1:port, not yet accepted
    (the rx_queue of the listening socket in /proc/net/tcp)."""
    want = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want and fields[3] == "0A":
                return int(fields[4].split(":")[1], 16)
    raise AssertionError("no listening socket on port %d" % port)


GET = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def read_reply(s, timeout=10):
    """The status line of one HTTP reply on s (reads up to the body)."""
    s.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        assert chunk, "connection closed without a reply: %r" % data
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    length = next(int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length"))
    while len(rest) < length:
        rest += s.recv(4096)
    return head.split(b"\r\n", 1)[0].decode()


def test_idle_connections_count_toward_the_cap():
    """Connections that send nothing hold their slot: with the cap reached,
    a fourth connection is not accepted until one of them closes."""
    d = Daemon("--max-connections", 3).start()
    idle = []
    try:
        idle = [socket.create_connection(("127.0.0.1", d.port)) for _ in range(3)]
        late = socket.create_connection(("127.0.0.1", d.port))
        late.sendall(GET)
        # The three are accepted and the fourth stays queued in the kernel.
        poll_until(lambda: accept_queue(d.port) == 1, 5, what="the fourth connection left in the accept queue")
        idle.pop().close()
        assert read_reply(late) == "HTTP/1.1 200 OK"
        assert accept_queue(d.port) == 0
        late.close()
    finally:
        for s in idle:
            s.close()
        assert d.stop() == 0, d.stderr_text()


def test_more_connections_than_the_cap_are_all_served_in_turn():
    """Eight connections send a request at once to a daemon capped at two.
    Each is served once an earlier one closes. (The daemon used to accept
    all eight, count them at their first request in a set of 2 x 2 + 1
    slots, and spin for ever once the set was full.)"""
    d = Daemon("--max-connections", 2).start()
    socks = []
    try:
        socks = [socket.create_connection(("127.0.0.1", d.port)) for _ in range(8)]
        for s in socks:
            s.sendall(GET)
        poll_until(lambda: accept_queue(d.port) == 6, 5, what="six connections left in the accept queue")
        for s in socks:
            assert read_reply(s) == "HTTP/1.1 200 OK"
            s.close()
        r = d.request("GET", "/")
        assert r.status == 200, r
    finally:
        for s in socks:
            s.close()
        assert d.stop() == 0, d.stderr_text()


def test_slots_come_back_when_idle_connections_time_out():
    d = Daemon("--max-connections", 2, "--idle-timeout-s", 1).start()
    try:
        idle = [socket.create_connection(("127.0.0.1", d.port)) for _ in range(2)]
        late = socket.create_connection(("127.0.0.1", d.port))
        late.sendall(GET)
        # Served once the daemon closes the two idle ones after 1 s.
        assert read_reply(late, timeout=10) == "HTTP/1.1 200 OK"
        for s in idle:
            s.settimeout(5)
            assert s.recv(100) == b""
            s.close()
        late.close()
    finally:
        assert d.stop() == 0, d.stderr_text()


def _limited(soft, hard, *flags):
    d = Daemon(*flags)
    d.argv = ["prlimit", "--nofile=%d:%d" % (soft, hard), "--"] + d.argv
    return d.start()


def open_files_limit(pid):
    with open("/proc/%d/limits" % pid) as f:
        line = next(l for l in f if l.startswith("Max open files"))
    return [int(x) for x in line.split()[3:5]]


def test_the_fd_soft_limit_is_raised_to_the_hard_one():
    # The default 1,024 connections and the runs' fds do not fit in the
    # common soft limit of 1,024 (EMFILE, and an accept loop that spins).
    d = _limited(1024, 8192)
    try:
        assert open_files_limit(d.pid) == [8192, 8192]
        assert not [o for o in d.logs() if "max-connections lowered" in str(o.get("msg"))]
    finally:
        assert d.stop() == 0, d.stderr_text()


def test_connections_are_fewer_when_the_hard_limit_is_low():
    d = _limited(300, 300, "--max-concurrency", 2, "--pool-size", 0)
    try:
        # 64 + 16 fds for each of 4 sandboxes (2 runs, 2 more)
        msg = [o["msg"] for o in d.logs() if "max-connections lowered" in str(o.get("msg"))]
        assert msg == ["max-connections lowered from 1024 to 172: RLIMIT_NOFILE is 300"], msg
        socks = [socket.create_connection(("127.0.0.1", d.port)) for _ in range(180)]
        try:
            poll_until(lambda: accept_queue(d.port) == 8, 5, what="8 connections past the cap left queued")
        finally:
            for s in socks:
                s.close()
        assert d.run("print(1)").json["stdout"] == "1\n"
    finally:
        assert d.stop() == 0, d.stderr_text()
