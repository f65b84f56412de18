"""Sessions: one sandbox kept alive for many cells, over HTTP."""
import base64
import threading
import time

import pytest

from daemon_helpers import SLOWDOWN, Daemon, daemon_fixture, poll_until
from test_deadlines import sandbox_left

KEY, OTHER = "session-key-1", "session-key-2"

daemon = daemon_fixture("--api-keys", KEY + "," + OTHER, "--max-sessions-per-key", 3, "--rate-limit", 0,
                        "--pool-size", 0,  # so that sandbox_left() sees only sessions
                        preload="matplotlib")


def new(d, key=KEY, **body):
    r = d.request("POST", "/sessions", body, key=key)
    assert r.status == 201, r
    return r.json["session_id"]


def cell(d, sid, code, key=KEY, **fields):
    r = d.request("POST", "/sessions/%s/run" % sid, dict(code=code, **fields), key=key, timeout=60)
    assert r.status == 200, r
    return r.json


def delete(d, sid, key=KEY):
    return d.request("DELETE", "/sessions/%s" % sid, key=key).status


def test_state_survives_between_cells(daemon):
    sid = new(daemon)
    try:
        j = cell(daemon, sid, "import json, threading, time\nx = 41\nopen('kept.txt', 'w').write('kept')\n"
                              "t = threading.Thread(target=time.sleep, args=(1000,), daemon=True)\nt.start()\n")
        assert j["status"] == "success" and j["session_ended"] is False, j
        j = cell(daemon, sid, "print(json.dumps(x + 1), open('kept.txt').read(), t.is_alive())")
        assert j["stdout"] == "42 kept True\n", j
        j = cell(daemon, sid, "x = x + 1\nx")
        assert j["result"] == 42 and j["outputs"] == [], j
        info = daemon.request("GET", "/sessions/" + sid, key=KEY).json
        assert info["state"] == "idle" and info["runs"] == 3, info
    finally:
        assert delete(daemon, sid) == 204


def test_a_cell_timeout_keeps_the_state(daemon):
    sid = new(daemon)
    try:
        cell(daemon, sid, "y = 7")
        t0 = time.monotonic()
        j = cell(daemon, sid, "import time\ntime.sleep(300)", timeout=3)
        assert j["status"] == "timeout" and j["session_ended"] is False, j
        assert "KeyboardInterrupt" in j["stderr"], j
        assert time.monotonic() - t0 < 3 + 1 * SLOWDOWN
        t1 = time.monotonic()
        j = cell(daemon, sid, "1 + 1 + y - y")
        assert j["result"] == 2, j
        assert time.monotonic() - t1 < 1 * SLOWDOWN
    finally:
        delete(daemon, sid)


def test_code_that_ignores_the_interrupt_ends_the_session(daemon):
    sid = new(daemon)
    cell(daemon, sid, "1")
    j = cell(daemon, sid, "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass",
             timeout=1)
    t_reply = time.monotonic()
    assert j["status"] == "timeout" and j["session_ended"] is True, j
    assert daemon.request("GET", "/sessions/" + sid, key=KEY).status == 404
    r = daemon.request("POST", "/sessions/%s/run" % sid, {"code": "1"}, key=KEY)
    assert r.status == 404, r
    poll_until(lambda: not sandbox_left(daemon), 2, what="the session sandbox to go")
    assert time.monotonic() - t_reply < 2 * SLOWDOWN


def test_sessions_are_apart_and_belong_to_their_key(daemon):
    a, b = new(daemon), new(daemon)
    other = new(daemon, key=OTHER)
    try:
        cell(daemon, a, "secret = 'a'\nopen('a.txt', 'w').write('a')")
        j = cell(daemon, b, "import os\nprint('secret' in globals(), os.path.exists('a.txt'))")
        assert j["stdout"] == "False False\n", j
        for method, path in [("GET", ""), ("POST", "/run"), ("POST", "/interrupt"), ("DELETE", "")]:
            r = daemon.request(method, "/sessions/" + a + path, {"code": "secret"}, key=OTHER)
            assert r.status == 404, (method, path, r)
        listed = daemon.request("GET", "/sessions", key=OTHER).json["sessions"]
        assert [s["session_id"] for s in listed] == [other], listed
        assert daemon.request("GET", "/sessions/" + a).status == 401
        assert cell(daemon, a, "secret")["result"] == "a"
    finally:
        for sid in (a, b):
            delete(daemon, sid)
        delete(daemon, other, key=OTHER)


def test_a_memory_kill_ends_just_that_session(daemon):
    a, b = new(daemon, memory_limit=128), new(daemon)
    try:
        cell(daemon, b, "z = 5")
        j = cell(daemon, a, "x = bytearray(400 << 20)")
        assert j["status"] == "memory_exceeded" and j["session_ended"] is True, j
        assert daemon.request("GET", "/sessions/" + a, key=KEY).status == 404
        assert cell(daemon, b, "z")["result"] == 5
    finally:
        delete(daemon, b)


def test_delete_ends_it_and_leaves_nothing(daemon):
    sid = new(daemon)
    cell(daemon, sid, "import subprocess\np = subprocess.Popen(['sleep', '1000'])")
    assert sandbox_left(daemon)
    assert delete(daemon, sid) == 204
    assert daemon.request("GET", "/sessions/" + sid, key=KEY).status == 404
    poll_until(lambda: not sandbox_left(daemon), 2, what="the session sandbox to go")


def test_one_cell_at_a_time_and_interrupt(daemon):
    sid = new(daemon)
    try:
        cell(daemon, sid, "1")  # started: a cell then runs at once
        out = {}
        t = threading.Thread(target=lambda: out.update(j=cell(daemon, sid, "import time\ntime.sleep(60)")))
        t.start()
        poll_until(lambda: daemon.request("GET", "/sessions/" + sid, key=KEY).json["state"] == "running", 10,
                   what="the cell to run")
        r = daemon.request("POST", "/sessions/%s/run" % sid, {"code": "1"}, key=KEY)
        assert r.status == 409, r
        r = daemon.request("POST", "/sessions/%s/interrupt" % sid, key=KEY)
        assert r.status == 200 and r.json == {"interrupted": True}, r
        t.join(10)
        assert out["j"]["status"] == "timeout" and out["j"]["session_ended"] is False, out
        assert daemon.request("POST", "/sessions/%s/interrupt" % sid, key=KEY).status == 409
        assert cell(daemon, sid, "2")["result"] == 2
    finally:
        delete(daemon, sid)


def test_plots_and_files_in_a_session(daemon):
    sid = new(daemon)
    try:
        j = cell(daemon, sid, "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()\n"
                              "d = open('in.txt').read()", files=[{"path": "in.txt", "content": "data"}])
        assert len(j["outputs"]) == 1 and "image/png" in j["outputs"][0]["data"], j
        j = cell(daemon, sid, "plt.plot([2, 1])\nopen('out.txt', 'w').write(d * 2)", return_files=True)
        assert len(j["outputs"]) == 1, j
        assert [(f["path"], base64.b64decode(f["content"])) for f in j["files"]] == [("out.txt", b"datadata")]
    finally:
        delete(daemon, sid)


def test_session_limits(daemon):
    ids = [new(daemon) for _ in range(3)]
    try:
        r = daemon.request("POST", "/sessions", {}, key=KEY)
        assert r.status == 429 and "max-sessions-per-key" in r.json["detail"], r
        new_other = new(daemon, key=OTHER)
        delete(daemon, new_other, key=OTHER)
    finally:
        for sid in ids:
            delete(daemon, sid)


@pytest.mark.parametrize("body, status", [
    ({"memory_limit": 1}, 422), ({"memory_limit": "1"}, 422), ({"idle_timeout": 0}, 422),
    ({"idle_timeout": 10 ** 6}, 422), ({"colour": 1}, 422), ([1], 400),
])
def test_bad_session_bodies(daemon, body, status):
    r = daemon.request("POST", "/sessions", body, key=KEY)
    assert r.status == status and "detail" in r.json, r


def test_bad_cells_and_paths(daemon):
    sid = new(daemon)
    try:
        for body in [{"code": "1", "memory_limit": 256}, {"code": "1", "stdin": "x"}, {"code": ""}]:
            r = daemon.request("POST", "/sessions/%s/run" % sid, body, key=KEY)
            assert r.status == 422, (body, r)
        for path in ["/sessions/" + "0" * 32, "/sessions/" + sid + "/nope", "/sessions/x/run"]:
            assert daemon.request("GET", path, key=KEY).status == 404, path
        r = daemon.request("PUT", "/sessions/" + sid, {}, key=KEY)
        assert r.status == 405 and "DELETE" in r.header("Allow"), r
        r = daemon.request("GET", "/sessions/%s/run" % sid, key=KEY)
        assert r.status == 405, r
        assert cell(daemon, sid, "1")["result"] == 1
    finally:
        delete(daemon, sid)


def test_one_shot_runs_have_no_session_field(daemon):
    r = daemon.run("1", key=KEY)
    assert "session_ended" not in r.json, r.json


def test_idle_timeout_and_lifetime_clean_up():
    d = Daemon("--session-max-lifetime-s", 3, "--max-sessions", 2, "--pool-size", 0).start()
    try:
        idle = new(d, key=None, idle_timeout=1)
        busy = new(d, key=None)
        assert d.request("POST", "/sessions", {}).status == 429
        cell(d, busy, "1")
        poll_until(lambda: d.request("GET", "/sessions/" + idle).status == 404, 5 * SLOWDOWN, what="idle expiry")
        assert d.request("GET", "/sessions/" + busy).status == 200
        poll_until(lambda: d.request("GET", "/sessions/" + busy).status == 404, 5 * SLOWDOWN, what="lifetime expiry")
        poll_until(lambda: not sandbox_left(d), 2, what="the sandboxes to go")
    finally:
        assert d.stop() == 0


def test_python_client_session(daemon):
    import os
    import sys
    from daemon_helpers import REPO
    sys.path.insert(0, os.path.join(REPO, "clients", "python"))
    from pyrunner import Client, Session
    c = Client("http://127.0.0.1:%d" % daemon.port, api_key=KEY)
    with c.session(memory_limit=256, idle_timeout=60) as s:
        assert isinstance(s, Session) and s.info["memory_limit"] == 256
        assert s.run("x = 40").ok
        rr = s.run("import matplotlib.pyplot as plt\nplt.plot([x])\nx + 2", files={"b.bin": b"\x00"},
                   return_files=["*.bin"])
        assert rr.value == 42 and len(rr.images) == 1 and rr.files == {"b.bin": b"\x00"}, rr
        assert rr.raw["session_ended"] is False
        assert s.interrupt() is False
        sid = s.id
    assert daemon.request("GET", "/sessions/" + sid, key=KEY).status == 404
