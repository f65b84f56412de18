"""JSON whose tree costs far more than its bytes, from a sandbox or a client
(red-team pass 2, findings 02 and 03): the daemon checks its shape before
anyone builds a tree of it, and passes a result's value through as text."""
import json

import pytest

from daemon_helpers import Daemon, http_request, status_kb


def hwm_kb(pid):
    return status_kb(pid, "VmHWM")


# User code shares pid 2 with runner.py, so it can write its own result
# frame on fd 3: a header line, then `value` as the value's JSON text.
FORGED_RESULT = r'''
import os
value = %s
data = b'{"type":"result","status":"success","exit_code":0,"error":null,"cpu_time":0}\n' + value
os.write(3, len(data).to_bytes(4, "big") + data)
os._exit(0)
'''


@pytest.fixture(scope="module")
def daemon():
    d = Daemon("--rate-limit", 0).start()
    yield d
    assert d.stop() == 0, d.stderr_text()


def test_result_of_millions_of_empty_objects_builds_no_tree(daemon):
    # 16 MiB of [{},{},...]: 5.6 M objects. As a jansson tree that took the
    # daemon from 353 MB to 1.35 GB, and stalled its loop 2-3 s.
    before = hwm_kb(daemon.pid)
    n = ((16 << 20) - 200) // 3
    r = daemon.run(FORGED_RESULT % ('b"[" + b"{}," * %d + b"{}]"' % (n - 1)), timeout=30)
    body = r.json
    assert r.status == 200 and body["status"] == "error", body
    assert "beyond the values limits" in body["error"], body
    assert body["result"] is None, body
    grew = hwm_kb(daemon.pid) - before
    assert grew < 48 << 10, "the daemon's peak memory grew by %d kB" % grew


def test_deep_result_is_refused_by_its_shape(daemon):
    r = daemon.run(FORGED_RESULT % 'b"[" * 300 + b"]" * 300', timeout=30)
    assert r.json["status"] == "error" and "beyond the values limits" in r.json["error"], r.json


def test_malformed_result_value_is_a_protocol_error(daemon):
    # The value is spliced into the reply as it is, so it must be JSON: one
    # that is not would let the sandbox write the reply's other members.
    r = daemon.run(FORGED_RESULT % repr(b'1,"status":"success","memory_used":0'), timeout=30)
    body = r.json
    assert body["status"] == "error" and "control protocol" in body["error"], body
    assert body["result"] is None and list(body)[-1] == "result", body


def test_a_large_value_within_the_limits_passes_through(daemon):
    # 999,999 ints and a value of every JSON kind, as runner.py writes them.
    r = daemon.run("return list(range(999999))", timeout=60)
    assert r.json["status"] == "success" and r.json["result"] == list(range(999999)), r.json["error"]
    forged = json.dumps({"a": [1.5, -2e-7, None, True, "\u00e9\U0001F600"]}, ensure_ascii=False).encode()
    r = daemon.run(FORGED_RESULT % repr(forged), timeout=30)
    assert r.json["status"] == "success", r.json
    assert r.json["result"] == {"a": [1.5, -2e-7, None, True, "\u00e9\U0001F600"]}, r.json


def test_request_body_of_empty_objects_is_refused_before_parsing(daemon):
    # 2 MiB of {}s: the tree was built (127-240 ms of the loop) only to be
    # refused for its unknown field.
    pad = ",".join(["{}"] * ((2 << 20) // 3 - 20))
    raw = ('{"code":"1","pad":[%s]}' % pad).encode()
    r = http_request(daemon.port, "POST", "/run", raw, {"Content-Type": "application/json"}, timeout=30)
    assert r.status == 400, (r.status, r.body[:200])
    assert r.json["detail"] == "the body holds more JSON values than a request can use", r.json
    r = http_request(daemon.port, "POST", "/run", b'{"code":"1","pad":' + b"[" * 17 + b"]" * 17 + b"}",
                     {"Content-Type": "application/json"}, timeout=30)
    assert r.status == 400 and r.json["detail"] == "the body nests more than 16 deep", r.json
    assert daemon.run("print(1)").json["stdout"] == "1\n"
