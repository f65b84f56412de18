"""Slow and idle connections do not starve real requests (one event loop)."""
import socket
import time

from daemon_helpers import Daemon


def test_idle_and_slow_connections_do_not_block_runs():
    d = Daemon("--idle-timeout-s", "2", "--max-connections", "200")
    d.start()
    socks = []
    try:
        # 60 clients that connect and dribble half a request line, then stall.
        for _ in range(60):
            s = socket.create_connection(("127.0.0.1", d.port))
            s.sendall(b"POST /run HTTP/1.1\r\nHost: x\r\nContent-Len")
            socks.append(s)
        t = time.monotonic()
        r = d.run("print('through')")
        wall = time.monotonic() - t
        assert r.status == 200 and r.json["stdout"] == "through\n", r
        assert wall < 1.0, wall
        # The stalled ones are closed after the idle timeout.
        deadline = time.monotonic() + 5
        closed = 0
        for s in socks:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if s.recv(1024) == b"":
                    closed += 1
            except (socket.timeout, ConnectionResetError):
                pass
        assert closed >= 50, closed
    finally:
        for s in socks:
            s.close()
        assert d.stop() == 0
