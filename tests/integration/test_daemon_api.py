"""pyrunnerd over HTTP: every route, every request error, authentication,
CORS, the request log and the seed examples. The shared daemon has no
preload (fast start) and no rate limit, so tests do not interfere."""
import json
import os
import re
import subprocess
import time
import uuid

import pytest

from daemon_helpers import (DAEMON_BIN, PYTHON, REPO, UUID4_RE, Daemon, clean_env, daemon_fixture, free_port)

daemon = daemon_fixture("--rate-limit", 0)

INVOKE = "/system/python_executor/execute_code/invoke"
METRIC_NAMES = [
    "pyrunner_requests_total", "pyrunner_executions_total", "pyrunner_request_duration_seconds",
    "pyrunner_execution_duration_seconds", "pyrunner_queue_depth", "pyrunner_active_sandboxes",
    "pyrunner_zygote_restarts_total",
]
RUN_KEYS = {"status", "stdout", "stderr", "stdout_truncated", "stderr_truncated", "exit_code", "signal", "outputs",
            "outputs_truncated",
            "execution_time", "cpu_time", "memory_used", "error", "error_info", "result"}


def ok_run(r):
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("application/json"), r
    assert r.header("X-Request-Id"), r
    body = r.json
    assert set(body) == RUN_KEYS, body
    return body


def invoke_message(r):
    assert r.status == 200, r
    body = r.json
    assert body["status"] == "success", body
    assert UUID4_RE.match(body["invocationId"]), body
    assert len(body["response"]) == 1 and body["response"][0]["type"] == "text", body
    return body["response"][0]["message"]


def assert_error(r, code, detail_type=str):
    """Every error answer: the code, a JSON body with detail, X-Request-Id."""
    assert r.status == code, r
    assert r.header("X-Request-Id"), r
    assert r.header("Content-Type").startswith("application/json"), r
    body = r.json
    assert "detail" in body and isinstance(body["detail"], detail_type), body
    return body


# ---- 1. routes ----

def test_health(daemon):
    r = daemon.request("GET", "/")
    assert r.status == 200 and r.header("X-Request-Id"), r
    h = r.json
    assert h["service"] == "pyrunner" and h["status"] == "healthy", h
    assert re.match(r"^\d+\.\d+\.\d+", h["version"]), h
    assert "reason" not in h, h
    caps = h["capabilities"]
    assert caps["max_timeout"] == 300 and caps["max_memory_mb"] == 2048, caps
    assert caps["min_memory_mb"] == 64 and caps["default_timeout"] == 30, caps
    assert caps["default_memory_mb"] == 512 and caps["max_code_bytes"] == 1048576, caps
    assert isinstance(caps["libraries"], dict), caps      # no preload here: {}
    layers = caps["layers"]
    assert set(layers["namespaces"]) == {"user", "pid", "mount", "ipc", "uts", "network", "cgroup"}, layers
    assert layers["seccomp"] is True, layers
    assert layers["cgroup"] in ("v1", "v2", "none"), layers
    assert isinstance(layers["uid"], int) and layers["uid"] != 0, layers
    assert caps["self_test"] == {"passed": True, "failures": []}, caps
    # HEAD is GET without the body.
    r = daemon.request("HEAD", "/")
    assert r.status == 200 and r.body == b"" and r.header("X-Request-Id"), r


def test_run_success(daemon):
    body = ok_run(daemon.run("print('Hello, World!')", timeout=30, memory_limit=512))
    assert body["status"] == "success" and body["stdout"] == "Hello, World!\n", body
    assert body["stderr"] == "" and body["exit_code"] == 0 and body["signal"] is None, body
    assert body["error"] is None and body["error_info"] is None, body
    assert body["stdout_truncated"] is False and body["stderr_truncated"] is False, body
    assert body["execution_time"] >= 0 and body["cpu_time"] >= 0 and body["memory_used"] >= 0, body


def test_run_content_type_with_charset(daemon):
    r = daemon.request("POST", "/run", {"code": "print(1)"},
                       headers={"Content-Type": "application/json; charset=utf-8"})
    assert ok_run(r)["stdout"] == "1\n", r


def test_run_error(daemon):
    body = ok_run(daemon.run("1/0"))
    assert body["status"] == "error", body
    assert body["error"] == "ZeroDivisionError on line 1", body
    assert body["error_info"]["type"] == "ZeroDivisionError", body
    assert body["error_info"]["line"] == 1, body
    assert body["exit_code"] == 1, body
    assert "ZeroDivisionError" in body["stderr"], body


def test_run_timeout_1s(daemon):
    r = daemon.run("while True: pass", timeout=1)
    body = ok_run(r)
    print("timeout=1: answered in %.3f s (execution_time %.3f)" % (r.wall, body["execution_time"]))
    assert body["status"] == "timeout", body
    assert r.wall < 1.5, r.wall


def test_run_timeout_2s_answered_promptly(daemon):
    r = daemon.run("while True: pass", timeout=2)
    body = ok_run(r)
    print("timeout=2: answered in %.3f s (target 2.05 s)" % r.wall)
    assert body["status"] == "timeout", body
    assert 2.0 <= r.wall < 2.3, r.wall


def test_run_memory_exceeded(daemon):
    body = ok_run(daemon.run("x = bytearray(512 * 1024 * 1024)\nprint('survived')", memory_limit=64))
    assert body["status"] == "memory_exceeded", body
    assert "survived" not in body["stdout"], body


def test_run_stdin(daemon):
    body = ok_run(daemon.run("name = input()\nprint(f'Hello, {name}!')", stdin="Ada\n"))
    assert body["status"] == "success" and body["stdout"] == "Hello, Ada!\n", body
    body = ok_run(daemon.run("import sys\nprint(repr(sys.stdin.read()))", stdin=None))
    assert body["stdout"] == "''\n", body


def test_invoke_seed_examples(daemon):
    seen_ids = set()

    def msg(code, **kw):
        r = daemon.invoke(code, key=None, **kw)
        m = invoke_message(r)
        seen_ids.add(r.json["invocationId"])
        return m

    code = ("def custom_sum(numbers):\n    return sum(numbers)\nnumbers = [1, 2, 3, 4, 5]\n"
            "result = custom_sum(numbers)\nprint(result)")
    m = msg(code)
    assert m == "The Python code executed was:\n\n%s\n\nThe result of the execution is:\n\n15" % code, m
    assert m.endswith("15"), m

    code = ("def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n"
            "    return a\n\nresult = [fibonacci(i) for i in range(10)]")
    m = msg(code)
    assert m.endswith("The result of the execution is:\n\n[0, 1, 1, 2, 3, 5, 8, 13, 21, 34]"), m

    # Without `result`, the message shows stdout.
    assert msg("print('hi')").endswith("\n\nhi"), m

    t0 = time.monotonic()
    m = msg("while True: pass", timeout=1)
    assert re.fullmatch(r"Execution timed out after 1 seconds?", m), m
    assert time.monotonic() - t0 < 1.5

    m = msg("x = bytearray(512 * 1024 * 1024)", memory_limit=64)
    assert re.fullmatch(r"Memory limit exceeded: 64 ?MB", m), m
    # The executor API's default memory limit is 100 MB.
    m = msg("x = bytearray(512 * 1024 * 1024)")
    assert re.fullmatch(r"Memory limit exceeded: 100 ?MB", m), m

    m = msg("1/0")
    assert m == "Execution error: division by zero", m

    assert len(seen_ids) == 7, seen_ids


def test_invoke_integrations_api_key_header_ignored_without_keys(daemon):
    r = daemon.request("POST", INVOKE, {"code": "result = 6 * 7"},
                       headers={"Integrations-API-Key": "dev-only-token"})
    assert invoke_message(r).endswith("\n\n42")


def test_metrics(daemon):
    m0 = daemon.metrics()
    for name in METRIC_NAMES:
        assert any(n == name or n.startswith(name + "_") for n in m0.names()), (name, m0.text)
    for status in ("success", "error", "timeout", "memory_exceeded", "output_limit", "killed",
                   "internal_error"):
        assert m0.get("pyrunner_executions_total", status=status) is not None, (status, m0.text)
    assert m0.get("pyrunner_queue_depth") == 0 and m0.get("pyrunner_active_sandboxes") == 0, m0.text

    for _ in range(3):
        assert ok_run(daemon.run("print(1)"))["status"] == "success"
    assert ok_run(daemon.run("raise SystemExit(3)"))["status"] == "error"
    m1 = daemon.metrics()

    def delta(name, **labels):
        return m1.get(name, 0, **labels) - m0.get(name, 0, **labels)

    assert delta("pyrunner_executions_total", status="success") == 3, m1.text
    assert delta("pyrunner_executions_total", status="error") == 1, m1.text
    assert delta("pyrunner_executions_total", status="timeout") == 0, m1.text
    assert delta("pyrunner_requests_total", route="/run", code="200") == 4, m1.text
    # The /metrics request of m0 was counted before m1 was rendered.
    assert delta("pyrunner_requests_total", route="/metrics", code="200") == 1, m1.text
    assert delta("pyrunner_execution_duration_seconds_count") == 4, m1.text
    assert delta("pyrunner_request_duration_seconds_count", route="/run") == 4, m1.text
    assert m1.get("pyrunner_zygote_restarts_total") == 0, m1.text
    r = daemon.request("GET", "/metrics")
    assert r.header("Content-Type").startswith("text/plain"), r


def test_openapi_route(daemon):
    r = daemon.request("GET", "/openapi.json")
    assert r.status == 200 and r.header("Content-Type").startswith("application/json"), r
    doc = r.json
    assert doc["openapi"] == "3.1.0", doc.get("openapi")
    assert "/run" in doc["paths"] and INVOKE in doc["paths"], list(doc["paths"])
    with open(os.path.join(REPO, "src", "daemon", "openapi.json")) as f:
        assert doc == json.load(f), "served document differs from src/daemon/openapi.json (rebuild?)"


def test_starting_answers_503_until_ready():
    """With the full preload (~1.3 s), requests right after `listening`
    see the start-up state."""
    d = Daemon(preload=None).start(wait=False)
    try:
        d.wait_listening()
        r = d.request("GET", "/")
        assert r.json["status"] == "starting" and r.json["reason"], r
        assert r.status == 503 and int(r.header("Retry-After")) >= 1, r      # not healthy: 503
        r = d.run("print(1)")
        body = assert_error(r, 503)
        assert int(r.header("Retry-After")) >= 1, r
        assert "starting" in body["detail"], body
        h = d.wait_healthy(30).json
        assert set(h["capabilities"]["libraries"]) >= {"numpy", "pandas", "scipy", "sympy", "matplotlib",
                                                         "sklearn"}, h
        assert ok_run(d.run("import numpy as np\nprint(np.arange(4).sum())"))["stdout"] == "6\n"
    finally:
        assert d.stop() == 0, d.stderr_text()


# ---- 2. errors ----

@pytest.fixture(scope="module")
def small_body_daemon():
    d = Daemon("--max-body-bytes", 4096, "--rate-limit", 0).start()
    yield d
    assert d.stop() == 0, d.stderr_text()


def test_400_malformed_json(daemon):
    for path in ("/run", INVOKE):
        assert_error(daemon.request("POST", path, b'{"code": "print(1)"',
                                    headers={"Content-Type": "application/json"}), 400)
        assert_error(daemon.request("POST", path, b"", headers={"Content-Type": "application/json"}), 400)


def test_400_invalid_utf8(daemon):
    assert_error(daemon.request("POST", "/run", b'{"code": "print(\'\xff\xfe\')"}',
                                headers={"Content-Type": "application/json"}), 400)


def test_400_invalid_utf8_quoted_by_the_parser(daemon):
    """jansson's error text quotes the input near the error, here bytes that
    are not UTF-8; the reply must still be JSON. (Found by fuzz-request: the
    daemon used to crash on it.)"""
    body = b'{"code": " \\\xdf\xa3\x91\xa3\x8a\xcc\xcf\xcf0"}'     # an escape: backslash, then 0xdf
    assert_error(daemon.request("POST", "/run", body, headers={"Content-Type": "application/json"}), 400)
    assert daemon.alive()


def test_400_duplicate_keys(daemon):
    assert_error(daemon.request("POST", "/run", b'{"code": "print(1)", "code": "print(2)"}',
                                headers={"Content-Type": "application/json"}), 400)


def test_400_not_an_object(daemon):
    for body in ([{"code": "print(1)"}], "print(1)", 5, None):
        assert_error(daemon.request("POST", "/run", json.dumps(body),
                                    headers={"Content-Type": "application/json"}), 400)


def test_404_unknown_route(daemon):
    for method, path in (("GET", "/nope"), ("POST", "/run/"), ("GET", "/runs"), ("POST", "/RUN")):
        body = assert_error(daemon.request(method, path, {"code": "print(1)"} if method == "POST" else None),
                            404)
        assert body["detail"], body


def test_405_wrong_method(daemon):
    cases = [("GET", "/run", "POST"), ("PUT", "/run", "POST"), ("DELETE", INVOKE, "POST"),
             ("GET", INVOKE, "POST"), ("POST", "/", "GET, HEAD"), ("POST", "/metrics", "GET, HEAD"),
             ("DELETE", "/openapi.json", "GET, HEAD")]
    for method, path, allow in cases:
        r = daemon.request(method, path)
        assert_error(r, 405)
        assert r.header("Allow") == allow, (method, path, r)


def test_413_body_too_large(small_body_daemon):
    body = json.dumps({"code": "#" * 8192 + "\nprint(1)"})
    assert len(body) > 8192
    for path in ("/run", INVOKE):
        assert_error(small_body_daemon.request("POST", path, body,
                                               headers={"Content-Type": "application/json"}), 413)
    # Just under the limit is accepted.
    r = small_body_daemon.run("#" * 3000 + "\nprint('fits')")
    assert ok_run(r)["stdout"] == "fits\n", r


def test_415_wrong_content_type(daemon):
    body = json.dumps({"code": "print(1)"})
    for ct in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx", None):
        h = {"Content-Type": ct} if ct else {}
        for path in ("/run", INVOKE):
            assert_error(daemon.request("POST", path, body.encode(), headers=h), 415)


BAD_FIELDS = [
    ({}, "code", "missing"),
    ({"code": 5}, "code", "type_error"),
    ({"code": None}, "code", "type_error"),
    ({"code": ""}, "code", "value_error"),
    ({"code": "print(1)", "timeout": 0}, "timeout", "value_error"),
    ({"code": "print(1)", "timeout": 301}, "timeout", "value_error"),
    ({"code": "print(1)", "timeout": "5"}, "timeout", "type_error"),
    ({"code": "print(1)", "timeout": 2.5}, "timeout", "type_error"),
    ({"code": "print(1)", "timeout": True}, "timeout", "type_error"),
    ({"code": "print(1)", "memory_limit": 10}, "memory_limit", "value_error"),
    ({"code": "print(1)", "memory_limit": 4096}, "memory_limit", "value_error"),
    ({"code": "print(1)", "unknown": 1}, "unknown", "extra_forbidden"),
    ({"code": "print(1)", "stdin": 5}, "stdin", "type_error"),
    ({"code": "print(1)\u0000"}, "code", "value_error"),
    ({"code": "   "}, "code", "value_error"),
    ({"code": " \t\n\r\x0b\x0c\n"}, "code", "value_error"),
    ({"code": "\u3000\u00a0\u2028 "}, "code", "value_error"),
]


@pytest.mark.parametrize("body,field,kind", BAD_FIELDS, ids=[
    "missing-code", "code-int", "code-null", "code-empty", "timeout-0", "timeout-301", "timeout-str",
    "timeout-float", "timeout-bool", "memory-10", "memory-4096", "unknown-field", "stdin-int", "code-nul",
    "code-spaces", "code-ascii-white-space", "code-unicode-white-space"])
def test_422_run(daemon, body, field, kind):
    r = daemon.request("POST", "/run", body)
    b = assert_error(r, 422, list)
    assert len(b["detail"]) >= 1, b
    item = b["detail"][0]
    assert item["loc"] == ["body", field], b
    assert item["type"] == kind and item["msg"], b


def test_422_white_space_code_on_the_executor_route(daemon):
    r = daemon.invoke("\n\t  \n")
    item = assert_error(r, 422, list)["detail"][0]
    assert item["loc"] == ["body", "code"] and item["type"] == "value_error", item


def test_code_with_white_space_around_it_runs(daemon):
    r = daemon.run("\n\n  \nprint('x')\n\t\n")
    assert r.status == 200 and r.json["stdout"] == "x\n", r


def test_422_long_unknown_field_is_answered(daemon):
    """An unknown field whose name is long and not ASCII: the reply quotes a
    cut of it that is still valid UTF-8. (A cut in the middle of a character
    made the reply body NULL and crashed the daemon.)"""
    name = "\u20ac" * 60
    r = daemon.request("POST", "/run", {"code": "print(1)", name: 1})
    assert r.status == 422, r
    item = r.json["detail"][0]
    assert item["type"] == "extra_forbidden", item
    assert name.startswith(item["loc"][1]) and item["loc"][1], item
    assert daemon.alive()


def test_422_invoke(daemon):
    cases = [({}, "code"), ({"code": ""}, "code"), ({"code": "x", "timeout": 31}, "timeout"),
             ({"code": "x", "timeout": 0}, "timeout"), ({"code": "x", "memory_limit": 501}, "memory_limit"),
             ({"code": "x", "stdin": "no stdin here"}, "stdin")]
    for body, field in cases:
        b = assert_error(daemon.request("POST", INVOKE, body), 422, list)
        assert b["detail"][0]["loc"] == ["body", field], (body, b)


def test_errors_are_logged_with_request_id(daemon):
    r = daemon.request("GET", "/nope")
    rid = r.header("X-Request-Id")
    line = daemon.wait_log(lambda o: o.get("request_id") == rid)
    assert line["status"] == 404 and line["route"], line


# ---- 3. auth ----

@pytest.fixture(scope="module")
def auth_daemon():
    d = Daemon("--api-keys", "k1,k2", "--rate-limit", 0).start()
    yield d
    assert d.stop() == 0, d.stderr_text()


def test_auth(auth_daemon):
    d = auth_daemon
    for path in ("/run", INVOKE):
        r = d.request("POST", path, {"code": "print(1)"})
        assert_error(r, 401)
        assert r.header("WWW-Authenticate") == "Bearer", r
        r = d.request("POST", path, {"code": "print(1)"}, key="k3")
        assert_error(r, 401)
        assert r.header("WWW-Authenticate") == "Bearer", r
        r = d.request("POST", path, {"code": "print(1)"}, headers={"Integrations-API-Key": "k"})
        assert_error(r, 401)
        r = d.request("POST", path, {"code": "print(1)"}, headers={"Authorization": "Basic azE6"})
        assert_error(r, 401)
    r = d.request("POST", "/run", {"code": "print(1)"}, headers={"Authorization": "Bearer k2"})
    assert ok_run(r)["stdout"] == "1\n"
    r = d.request("POST", "/run", {"code": "print(2)"}, headers={"Integrations-API-Key": "k1"})
    assert ok_run(r)["stdout"] == "2\n"
    r = d.request("POST", INVOKE, {"code": "result = 3"}, headers={"Integrations-API-Key": "k1"})
    assert invoke_message(r).endswith("\n\n3")
    # Request errors come after auth: an unauthenticated bad body is 401.
    assert_error(d.request("POST", "/run", b"{", headers={"Content-Type": "application/json"}), 401)
    for path in ("/", "/metrics", "/openapi.json"):
        assert d.request("GET", path).status == 200, path


def _run_daemon_cli(*args, timeout=20):
    return subprocess.run([DAEMON_BIN, *[str(a) for a in args]], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, env=clean_env())


def test_non_loopback_needs_keys():
    port = free_port()
    p = _run_daemon_cli("--listen", "0.0.0.0:%d" % port, "--preload", "")
    err = p.stderr.decode()
    assert p.returncode != 0, err
    assert err.count("\n") == 1 and err.startswith("pyrunnerd: "), err
    assert "api-keys" in err or "insecure-no-auth" in err, err

    d = Daemon("--insecure-no-auth", 1, listen_host="0.0.0.0")
    d.start(wait=False)
    try:
        d.wait_listening()
        assert d.alive()
        d.wait_healthy()        # polled on 127.0.0.1 only
    finally:
        assert d.stop() == 0, d.stderr_text()


def test_non_loopback_with_keys_starts():
    d = Daemon("--api-keys", "secret", listen_host="0.0.0.0")
    d.start(wait=False)
    try:
        d.wait_listening()
        assert d.alive()
    finally:
        assert d.stop() == 0, d.stderr_text()


# ---- settings: --config FILE, PYRUNNER_* and PYTHON_EXECUTOR_* variables, flags ----

def test_settings_sources(tmp_path):
    """Defaults < --config file < PYRUNNER_<NAME> variables < flags."""
    cfg = tmp_path / "pyrunnerd.conf"
    cfg.write_text("# comment\napi-keys = cfgkey\nmax-body-bytes = 4096\ncors-origin = https://file.test\n"
                   "rate-limit = 0\n")
    d = Daemon("--config", cfg, "--cors-origin", "https://flag.test",
               env={"PYRUNNER_MAX_BODY_BYTES": "16384", "PYRUNNER_CORS_ORIGIN": "https://env.test",
                    "PYTHON_EXECUTOR_DEFAULT_TIMEOUT": "1", "PYTHON_EXECUTOR_MAX_TIMEOUT": "2"}).start()
    try:
        assert_error(d.run("print(1)"), 401)
        r = d.run("#" * 8000 + "\nprint('env beats file')", key="cfgkey")
        assert ok_run(r)["stdout"] == "env beats file\n", r
        assert r.header("Access-Control-Allow-Origin") == "https://flag.test", r
        t0 = time.monotonic()
        m = invoke_message(d.invoke("while True: pass", key="cfgkey"))
        assert re.fullmatch(r"Execution timed out after 1 seconds?", m), m
        assert time.monotonic() - t0 < 1.5
        b = assert_error(d.invoke("print(1)", key="cfgkey", timeout=3), 422, list)
        assert b["detail"][0]["loc"] == ["body", "timeout"], b
    finally:
        assert d.stop() == 0, d.stderr_text()


def test_bad_settings_fail_with_one_line():
    for args in (["--max-concurrency", "-1"], ["--no-such-setting", "1"], ["--listen", "nonsense"],
                 ["--config", "/nonexistent/pyrunnerd.conf"]):
        p = _run_daemon_cli("--preload", "", *args)
        err = p.stderr.decode()
        assert p.returncode != 0, (args, err)
        assert err.startswith("pyrunnerd: ") and err.count("\n") == 1, (args, err)


# ---- 9. logs ----

def _marked_run(d):
    m = uuid.uuid4().hex
    code = "# CODE_%s\nprint('OUT_' + '%s')\n" % (m, m)
    r = d.run(code)
    assert ok_run(r)["stdout"] == "OUT_%s\n" % m, r
    rid = r.header("X-Request-Id")
    line = d.wait_log(lambda o: o.get("request_id") == rid)
    return m, rid, line


def test_logs_one_json_line_per_request_without_code_or_output(daemon):
    r0 = daemon.request("GET", "/")            # its log line marks where this test starts
    daemon.wait_log(lambda o: o.get("request_id") == r0.header("X-Request-Id"))
    n0 = len(daemon.request_logs())
    m, rid, line = _marked_run(daemon)
    r2 = daemon.request("GET", "/")
    daemon.wait_log(lambda o: o.get("request_id") == r2.header("X-Request-Id"))
    assert line["route"] == "/run" and line["status"] == 200, line
    assert isinstance(line["duration_ms"], (int, float)) and line["duration_ms"] >= 0, line
    assert line["method"] == "POST" and line["run_status"] == "success", line
    assert [o["request_id"] for o in daemon.request_logs()].count(rid) == 1
    assert len(daemon.request_logs()) - n0 == 2
    # Every stderr line is JSON.
    for raw in daemon.stderr_text().splitlines():
        assert isinstance(json.loads(raw), dict), raw
    text = daemon.stderr_text()
    assert "CODE_" + m not in text and "OUT_" + m not in text and m not in text, "code or output logged"


def test_debug_log_shows_code_and_output():
    d = Daemon("--debug-log", 1).start()
    try:
        m, rid, line = _marked_run(d)
        text = d.stderr_text()
        assert "OUT_" + m in text, "output not in the debug log:\n" + text
        # --help: "log code and output (never in production)"
        assert "CODE_" + m in text, "code not in the debug log:\n" + text
    finally:
        assert d.stop() == 0, d.stderr_text()


# ---- 11. CORS ----

def test_cors_off_by_default(daemon):
    for r in (daemon.request("GET", "/"), daemon.run("print(1)"), daemon.request("GET", "/nope")):
        assert "access-control-allow-origin" not in r.headers, r
    r = daemon.request("OPTIONS", "/run", headers={"Origin": "https://example.test",
                                                   "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in r.headers and "access-control-allow-methods" not in r.headers, r
    assert r.status == 405, r


def test_cors_origin():
    d = Daemon("--cors-origin", "https://example.test").start()
    try:
        o = {"Origin": "https://example.test"}
        for r in (d.request("GET", "/", headers=o), d.request("POST", "/run", {"code": "print(1)"}, headers=o),
                  d.request("POST", "/run", {}, headers=o), d.request("GET", "/nope", headers=o)):
            assert r.header("Access-Control-Allow-Origin") == "https://example.test", r
        r = d.request("OPTIONS", "/run", headers={"Origin": "https://example.test",
                                                  "Access-Control-Request-Method": "POST",
                                                  "Access-Control-Request-Headers": "content-type"})
        assert r.status == 204 and r.body == b"", r
        assert r.header("Access-Control-Allow-Origin") == "https://example.test", r
        assert "POST" in r.header("Access-Control-Allow-Methods"), r
        assert "content-type" in r.header("Access-Control-Allow-Headers").lower(), r
        r = d.request("OPTIONS", "/", headers={"Origin": "https://example.test"})
        assert r.status == 204 and "GET" in r.header("Access-Control-Allow-Methods"), r
    finally:
        assert d.stop() == 0, d.stderr_text()


# ---- 12. seed examples ----

def test_seed_examples_script(daemon):
    script = os.path.join(REPO, "examples", "pyrunner_seed_examples.py")
    p = subprocess.run([PYTHON, script, "http://127.0.0.1:%d" % daemon.port], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120)
    out = p.stdout.decode()
    print(out)
    assert p.returncode == 0, out
    assert "[FAIL]" not in out and out.count("[ ok ]") >= 16, out
