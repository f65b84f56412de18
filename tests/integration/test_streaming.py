"""Streaming (Accept: text/event-stream): a run's stdout, stderr and
displays reach the client as they happen, then its full reply."""
import http.client
import json
import os
import socket
import sys
import time

import pytest

from daemon_helpers import REPO, SLOWDOWN, Daemon, daemon_fixture, poll_until
from test_deadlines import sandbox_left

sys.path.insert(0, os.path.join(REPO, "clients", "python"))
from pyrunner import Client, ProtocolError  # noqa: E402

SSE = {"Accept": "text/event-stream", "Content-Type": "application/json"}

daemon = daemon_fixture("--rate-limit", 0, "--pool-size", 0, "--output-limit", 100000, "--send-stall-s", 2,
                        preload="matplotlib")


def events(resp):
    """Parses an event stream as a browser would, one event at a time:
    (name, data text, arrival time)."""
    name, data = "message", []
    while True:
        line = resp.readline()
        if not line:
            return
        line = line.decode("utf-8").rstrip("\r\n")
        if line.startswith(":"):
            continue
        if line:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
            continue
        if data:
            yield name, "\n".join(data), time.monotonic()
        name, data = "message", []


def next_log(d, pred):
    """A wait for the first log line matching pred that is not there yet."""
    seen = len(d.logs())

    def wait(timeout=10):
        return poll_until(lambda: next((o for o in d.logs()[seen:] if pred(o)), None), timeout * SLOWDOWN,
                          what="a new log line")
    return wait


def is_499(line):
    return line.get("msg") == "request" and line.get("status") == 499


def stream(d, code, path="/run", **fields):
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
    c.request("POST", path, body=json.dumps(dict(fields, code=code)), headers=SSE)
    resp = c.getresponse()
    return c, resp


def stream_all(d, code, path="/run", **fields):
    c, resp = stream(d, code, path, **fields)
    try:
        assert resp.status == 200, resp.read()
        assert resp.getheader("Content-Type") == "text/event-stream"
        assert resp.getheader("Cache-Control") == "no-cache"
        return [(n, json.loads(t), at) for n, t, at in events(resp)]
    finally:
        c.close()


def test_a_print_arrives_before_the_run_ends(daemon):
    evs = stream_all(daemon, "import time\nprint('first')\ntime.sleep(1)\nprint('second')")
    names = [n for n, _, _ in evs]
    assert names == ["stdout", "stdout", "result"], evs
    assert evs[0][1] == {"text": "first\n"} and evs[1][1] == {"text": "second\n"}
    # The sleep lies between the first print and the end, not before both.
    assert evs[2][2] - evs[0][2] > 0.8, evs
    assert evs[2][1]["status"] == "success" and evs[2][1]["stdout"] == "first\nsecond\n"


def test_events_keep_the_order_of_the_program(daemon):
    code = ("import sys, time\nprint('a')\nprint('b', file=sys.stderr)\ndisplay(1)\n"
            "import matplotlib.pyplot as plt\nplt.plot([1, 2]); plt.show()\nprint('c')\n21 * 2")
    evs = stream_all(daemon, code)
    assert [n for n, _, _ in evs] == ["stdout", "stderr", "output", "output", "stdout", "result"], evs
    assert evs[2][1] == {"data": {"text/plain": "1"}}
    assert "image/png" in evs[3][1]["data"]
    result = evs[-1][1]
    # The last event is the reply that the call without streaming gives.
    assert result["result"] == 42 and result["stdout"] == "a\nc\n" and result["stderr"] == "b\n"
    assert [o["data"] for o in result["outputs"]] == [evs[2][1]["data"], evs[3][1]["data"]]
    plain = daemon.run(code).json
    assert set(plain) == set(result)


def test_a_character_cut_between_writes_arrives_whole(daemon):
    code = ("import sys, time\nw = sys.stdout.buffer\n"
            "w.write(b'x\\xe2\\x82'); w.flush(); time.sleep(0.3)\n"
            "w.write(b'\\xac y \\xff\\n'); w.flush(); time.sleep(0.3)\n"
            "w.write(b'end \\xf0\\x9f'); w.flush()\n")
    evs = stream_all(daemon, code)
    texts = [e["text"] for n, e, _ in evs if n == "stdout"]
    # Each event holds whole characters. A byte never valid, and the
    # character the run never finished, are U+FFFD, as in the reply.
    assert "".join(texts) == "x\u20ac y \ufffd\nend \ufffd\ufffd" == evs[-1][1]["stdout"], texts
    assert texts[0] == "x" and texts[1].startswith("\u20ac"), texts


def test_a_forged_bundle_cannot_break_the_event_framing(daemon):
    # A display bundle is JSON from the sandbox: its whitespace may hold
    # CR and LF, which end an SSE line. Each line goes in its own data
    # field, so the event still carries exactly the bundle.
    body = b'{"type":"output"}\n{"text/plain":\r\n\r\n"x"\r\r\n\n}'
    code = "import os\nb = %r\nos.write(3, len(b).to_bytes(4, 'big') + b)\nprint('after')\n" % body
    evs = stream_all(daemon, code)
    # (Unacknowledged, it may come after the print.)
    assert sorted((n, json.dumps(e)) for n, e, _ in evs[:2]) == [
        ("output", json.dumps({"data": {"text/plain": "x"}})), ("stdout", json.dumps({"text": "after\n"}))], evs
    assert evs[-1][0] == "result" and evs[-1][1]["outputs"] == [{"data": {"text/plain": "x"}}]


def test_output_past_the_limit_is_not_streamed(daemon):
    evs = stream_all(daemon, "while True:\n    print('x' * 999)\n")
    streamed = "".join(e["text"] for n, e, _ in evs if n == "stdout")
    result = evs[-1][1]
    assert result["status"] == "output_limit", result
    assert len(streamed) <= 100000 and streamed == result["stdout"]


def test_a_client_that_leaves_mid_stream_stops_the_run(daemon):
    wait_499 = next_log(daemon, is_499)
    c, resp = stream(daemon, "import time\nprint('started', flush=True)\ntime.sleep(60)")
    name, data, _ = next(events(resp))
    assert (name, json.loads(data)) == ("stdout", {"text": "started\n"})
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    log = wait_499()
    assert log["run_status"] == "killed" and log["stream"] is True, log
    poll_until(lambda: not sandbox_left(daemon), 5 * SLOWDOWN, what="the sandbox to go")
    assert daemon.run("1 + 1").json["result"] == 2


def test_a_client_that_stops_reading_is_dropped():
    # It asks for a stream and never reads it: what it leaves unread is
    # bounded by send-stall-s, then the daemon drops it and stops the run.
    d = Daemon("--rate-limit", 0, "--pool-size", 0, "--output-limit", 64 << 20, "--send-stall-s", 1)
    d.start()
    try:
        wait_499 = next_log(d, is_499)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", d.port))
        data = json.dumps({"code": "import time\nwhile True:\n    print('y' * 9999)\n    time.sleep(0.002)",
                           "timeout": 60}).encode()
        s.sendall(b"POST /run HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))
        try:
            log = d.wait_log(lambda l: l.get("msg") == "dropped a client that stopped reading its reply",
                             timeout=30)
            # Held: what the kernel did not take, up to the live-event cap.
            assert 0 < log["held_bytes"] <= 5 << 20, log
            log = wait_499()
            assert log["run_status"] == "killed" and log["stream"] is True, log
            poll_until(lambda: not sandbox_left(d), 10 * SLOWDOWN, what="the sandbox to go")
            assert d.metrics().get("pyrunner_reply_bytes_held", 0) == 0
        finally:
            s.close()
        assert d.run("1 + 1").json["result"] == 2
    finally:
        d.stop()


def test_errors_before_the_run_are_plain_json(daemon):
    c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    c.request("POST", "/run", body=json.dumps({"code": 5}), headers=SSE)
    r = c.getresponse()
    assert r.status == 422 and r.getheader("Content-Type") == "application/json"
    assert json.loads(r.read())["detail"][0]["loc"] == ["body", "code"]
    c.close()


def test_the_executor_route_does_not_stream(daemon):
    c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    c.request("POST", "/system/python_executor/execute_code/invoke", body=json.dumps({"code": "print(1)"}),
              headers=SSE)
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Type") == "application/json"
    assert json.loads(r.read())["status"] == "success"
    c.close()


def test_a_keep_alive_connection_serves_on_after_a_stream(daemon):
    c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    for i in range(3):
        c.request("POST", "/run", body=json.dumps({"code": "print(%d)" % i}), headers=SSE)
        r = c.getresponse()
        evs = [(n, json.loads(t)) for n, t, _ in events(r)]
        assert evs[0] == ("stdout", {"text": "%d\n" % i}) and evs[-1][0] == "result", evs
    c.request("GET", "/")
    assert c.getresponse().status == 200
    c.close()


def test_a_session_cell_streams_and_keeps_its_state(daemon):
    r = daemon.request("POST", "/sessions", {})
    assert r.status == 201, r
    sid = r.json["session_id"]
    try:
        evs = stream_all(daemon, "x = 5\nprint(x)", path="/sessions/%s/run" % sid)
        assert [n for n, _, _ in evs] == ["stdout", "result"] and evs[-1][1]["session_ended"] is False
        evs = stream_all(daemon, "x * 2", path="/sessions/%s/run" % sid)
        assert [n for n, _, _ in evs] == ["result"] and evs[-1][1]["result"] == 10
    finally:
        daemon.request("DELETE", "/sessions/" + sid)


def test_python_client_callbacks(daemon):
    client = Client("http://127.0.0.1:%d" % daemon.port)
    seen = []
    res = client.run("import time, sys\nprint('one')\nprint('two', file=sys.stderr)\ndisplay('d')\n"
                     "time.sleep(0.5)\n3",
                     on_stdout=lambda t: seen.append(("out", t, time.monotonic())),
                     on_stderr=lambda t: seen.append(("err", t, time.monotonic())),
                     on_output=lambda o: seen.append(("output", o, time.monotonic())))
    done = time.monotonic()
    assert [(k, v) for k, v, _ in seen] == [("out", "one\n"), ("err", "two\n"),
                                            ("output", {"data": {"text/plain": "'d'"}})], seen
    assert done - seen[0][2] > 0.4
    assert res.value == 3 and res.stdout == "one\n" and res.outputs == [{"data": {"text/plain": "'d'"}}]
    with client.session() as s:
        got = []
        s.run("y = 1\nprint(y)", on_stdout=got.append)
        assert s.run("y + 1", on_stdout=got.append).value == 2
        assert got == ["1\n"]


def test_python_client_a_callback_that_raises_stops_the_run(daemon):
    client = Client("http://127.0.0.1:%d" % daemon.port)

    def boom(text):
        raise RuntimeError("stop here")
    wait_499 = next_log(daemon, is_499)
    with pytest.raises(RuntimeError, match="stop here"):
        client.run("import time\nprint('x', flush=True)\ntime.sleep(60)", on_stdout=boom)
    log = wait_499()
    assert log["run_status"] == "killed"


def test_python_client_refuses_a_stream_without_a_result(daemon):
    import http.server
    import threading

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(b"event: stdout\ndata: {\"text\": \"hi\"}\n\n")

        def log_message(self, *a):
            pass
    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.handle_request, daemon=True).start()
    try:
        got = []
        with pytest.raises(ProtocolError, match="without a result"):
            Client("http://127.0.0.1:%d" % srv.server_port).run("1", on_stdout=got.append)
        assert got == ["hi"]
    finally:
        srv.server_close()
