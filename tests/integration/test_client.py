"""The Python client (clients/python/pyrunner) through the real binaries.

RemoteExecutor and Client talk to a real pyrunnerd (daemon_helpers.Daemon),
LocalExecutor runs the real `pyrunner` CLI; nothing of the sandbox is
mocked. Every example of the "Python Code Executors" seed must give its
documented value or error through both executors. The tests against a
hostile server use a tiny http.server that answers crafted JSON: the client
must never evaluate, import or unpickle anything it receives.

The package is imported from the source tree (clients/python), not from
whatever may be installed.
"""
import builtins
import http.server
import json
import os
import pickle
import subprocess
import sys
import threading
import tokenize

import pytest

from conftest import BIN
from daemon_helpers import REPO, Daemon, daemon_fixture, free_port

CLIENT_DIR = os.path.join(REPO, "clients", "python")
sys.path.insert(0, CLIENT_DIR)

import pyrunner  # noqa: E402
from pyrunner import (  # noqa: E402
    AuthenticationError, BaseExecutor, CLIUsageError, Client, ExecutionTimeout, InternalError,
    LocalExecutor, MemoryLimitExceeded, ProgramExited, ProtocolError, PyrunnerConnectionError,
    PyrunnerHTTPError, PyrunnerNotFoundError, RateLimitedError, RemoteError, RemoteExecutor,
    ResultError, RunResult, ServiceUnavailableError, ValidationError, ValueDecodeError,
)

assert os.path.dirname(os.path.dirname(os.path.abspath(pyrunner.__file__))) == CLIENT_DIR, \
    "testing %s, not the source tree" % pyrunner.__file__

daemon = daemon_fixture("--rate-limit", 0)
KEY = "client-test-key"
keyed_daemon = daemon_fixture("--rate-limit", 0, "--api-keys", KEY + ",other-key")


def url_of(d):
    return "http://127.0.0.1:%d" % d.port


@pytest.fixture(params=["remote", "local"])
def make_executor(request, daemon):
    """A factory of executors of the parametrized kind (same limits)."""
    def make(memory_limit=None):
        if request.param == "remote":
            return RemoteExecutor(url_of(daemon), memory_limit=memory_limit)
        return LocalExecutor(pyrunner_path=BIN, memory_limit=memory_limit)
    return make


@pytest.fixture
def executor(make_executor):
    with make_executor() as ex:
        yield ex


# ---- the seed's examples, through both executors ----

SEED_VALUES = [
    # Quick Start, method 1
    ("return 2 + 2", 4),
    # Quick Start, method 2
    ("\nnumbers = [1, 2, 3, 4, 5]\nreturn sum(numbers) * 2\n", 30),
    # Docker example (the sandbox's working directory is /tmp; no USER)
    ("\nimport os\nreturn {'working_dir': os.getcwd(), 'user': os.getenv('USER', 'unknown')}\n",
     {"working_dir": "/tmp", "user": "unknown"}),
    # Code Format: "Good - returns a value"
    ("return 42", 42),
    ("x = 10; y = 20; return x + y", 30),
    ("\nimport math\nnumbers = [1, 4, 9, 16]\nreturn [math.sqrt(n) for n in numbers]\n", [1.0, 2.0, 3.0, 4.0]),
    ("import math\nreturn [math.sqrt(x) for x in range(5)]", [0.0, 1.0, 2 ** 0.5, 3 ** 0.5, 2.0]),
    # Code Format: "Bad - no return statement" -> None
    ("print('hello')", None),
    ("x = 42", None),
    # Legacy Support
    ("return 'legacy'", "legacy"),
    # pyrunner's addition: the value of a final expression statement
    ("1 + 1", 2),
    ("import os\nreturn {'cwd': os.getcwd()}", {"cwd": "/tmp"}),
]


@pytest.mark.parametrize("code,expected", SEED_VALUES, ids=[c for c, _ in SEED_VALUES])
def test_seed_value(executor, code, expected):
    assert executor.execute_code(code) == (expected, None)
    assert executor.run(code) == expected
    rr = executor.run_result(code)
    assert rr.ok and rr.status == "success", rr
    assert rr.value == expected


def test_seed_quick_start_manual_setup(make_executor):
    ex = make_executor()
    ex.setup()
    result, error = ex.execute_code("return 2 + 2")
    assert (result, error) == (4, None)
    ex.cleanup()


def test_seed_error_handling(executor):
    """The seed: "error will be: ZeroDivisionError('division by zero')", the
    exception instance (not raised), of the class run() raises."""
    result, error = executor.execute_code("return 1 / 0")
    assert result is None
    assert type(error) is ZeroDivisionError and isinstance(error, ArithmeticError)
    assert str(error) == "division by zero" and repr(error) == "ZeroDivisionError('division by zero')"
    assert error.line == 1 and error.run_result.status == "error"
    assert pyrunner.describe_error(error) == "ZeroDivisionError: division by zero"
    assert executor.execute_python_code_with_result("return 1 / 0")[1].args == ("division by zero",)
    with pytest.raises(ZeroDivisionError) as ei:
        executor.run("return 1 / 0")
    e = ei.value
    assert type(e) is ZeroDivisionError and e.args == ("division by zero",)
    assert e.remote_type == "ZeroDivisionError" and e.remote_module == "builtins"
    assert e.line == 1 and "ZeroDivisionError" in e.remote_traceback
    assert e.__cause__ is None
    assert e.run_result.status == "error"


def test_seed_timeout(executor):
    code = '\nimport time\ntime.sleep(10)  # This will timeout\nreturn "done"\n'
    result, error = executor.execute_code(code, timeout=1.0)
    assert result is None
    assert isinstance(error, ExecutionTimeout) and isinstance(error, TimeoutError)
    assert str(error) == "Execution timed out after 1 seconds"
    assert error.run_result.status == "timeout"


def test_timeout_while_true(executor):
    with pytest.raises(ExecutionTimeout) as ei:
        executor.run("while True: pass", timeout=1)
    assert isinstance(ei.value, TimeoutError)
    assert not isinstance(ei.value, RemoteError)
    assert ei.value.run_result.status == "timeout"
    result, error = executor.execute_code("while True: pass", timeout=1)
    assert result is None and type(error) is ExecutionTimeout
    assert str(error) == "Execution timed out after 1 seconds"


def test_seed_legacy_alias(executor):
    assert executor.execute_python_code_with_result("return 'legacy'") == ("legacy", None)


def test_seed_legacy_function():
    """The module-level legacy function runs a LocalExecutor, finding the
    CLI itself ($PYRUNNER_BIN, $PATH or this checkout's build)."""
    assert pyrunner.execute_python_code_with_result("return 'legacy'") == ("legacy", None)
    result, error = pyrunner.execute_python_code_with_result("return 1 / 0")
    assert result is None and type(error) is ZeroDivisionError and str(error) == "division by zero"


def test_is_a_base_executor(executor):
    assert isinstance(executor, BaseExecutor)


def test_non_builtin_exception(executor):
    code = 'class MyErr(Exception): pass\nraise MyErr("x")'
    with pytest.raises(RemoteError) as ei:
        executor.run(code)
    e = ei.value
    cls = type(e)
    assert cls.__name__ == "MyErr" and cls.__module__ == "pyrunner.remote"
    assert cls.__mro__[1] is RemoteError
    # an empty stand-in: nothing of the program's class came back
    assert set(vars(cls)) <= {"__module__", "__qualname__", "__doc__"}
    assert str(e) == "x" and e.remote_type == "MyErr" and e.remote_module == "__main__"
    assert e.line == 2
    with pytest.raises(RemoteError) as ei2:
        executor.run(code)
    assert type(ei2.value) is cls         # cached by name
    result, error = executor.execute_code(code)
    assert result is None and type(error) is cls and str(error) == "x"


def test_builtin_exception_needing_more_args(executor):
    """UnicodeDecodeError cannot be built from a message: it comes back as a
    RemoteError stand-in that is still a UnicodeError/ValueError."""
    with pytest.raises(ValueError) as ei:
        executor.run("b'\\xff'.decode()")
    e = ei.value
    assert isinstance(e, RemoteError) and isinstance(e, UnicodeError)
    assert type(e).__name__ == "UnicodeDecodeError"
    assert "can't decode byte 0xff" in str(e)


def test_key_error_message(executor):
    result, error = executor.execute_code("{}['a']")
    assert result is None and type(error) is KeyError and error.args == ("'a'",)
    assert pyrunner.describe_error(error) == "KeyError: 'a'"


def test_memory_limit(make_executor):
    ex = make_executor(memory_limit=64)
    with pytest.raises(MemoryLimitExceeded) as ei:
        ex.run("x = bytearray(1 << 30)")
    assert isinstance(ei.value, MemoryError)
    assert ei.value.run_result.status == "memory_exceeded"
    result, error = ex.execute_code("x = b'x' * (1 << 30)")
    assert result is None and isinstance(error, MemoryLimitExceeded) and "64 MB" in str(error)


def test_program_exit(executor):
    with pytest.raises(ProgramExited) as ei:
        executor.run("import sys\nsys.exit(2)")
    assert ei.value.exit_code == 2


def test_result_error_cycle(executor):
    """A value that cannot be encoded (a cycle) is a ResultError."""
    with pytest.raises(ResultError) as ei:
        executor.run("a = []\na.append(a)\nreturn a")
    assert isinstance(ei.value, RemoteError)
    result, error = executor.execute_code("a = []\na.append(a)\nreturn a")
    assert result is None and type(error) is ResultError


# ---- Client over HTTP ----

RUN_FIELDS = ["status", "stdout", "stderr", "stdout_truncated", "stderr_truncated", "exit_code", "signal",
              "execution_time", "cpu_time", "memory_used", "error", "error_info", "result"]


def test_client_run_fields(daemon):
    c = Client(url_of(daemon))
    rr = c.run("print('hi')\nreturn {'a': [1, 2.5, 'x', None, True]}")
    assert isinstance(rr, RunResult)
    assert set(RUN_FIELDS) <= set(rr.raw), rr.raw
    assert rr.status == "success" and rr.ok
    assert rr.stdout == "hi\n" and rr.stderr == ""
    assert rr.exit_code == 0 and rr.signal is None
    assert rr.error is None and rr.error_info is None
    assert rr.value == {"a": [1, 2.5, "x", None, True]}


def test_client_run_error_is_a_result(daemon):
    rr = Client(url_of(daemon)).run("1 / 0")
    assert rr.status == "error" and not rr.ok
    assert rr.error_info["type"] == "ZeroDivisionError"
    assert rr.result is None and rr.value is None
    with pytest.raises(ZeroDivisionError):
        rr.raise_for_error()


def test_client_stdin_and_limits(daemon):
    rr = Client(url_of(daemon)).run("print(input()[::-1])", timeout=5, memory_limit=128, stdin="abc\n")
    assert rr.ok and rr.stdout == "cba\n"


def test_client_health(daemon):
    h = Client(url_of(daemon)).health()
    assert h["service"] == "pyrunner" and h["status"] == "healthy"
    assert h["capabilities"]["max_timeout"] == 300


def test_client_validation_error(daemon):
    c = Client(url_of(daemon))
    with pytest.raises(ValidationError) as ei:
        c.run("print(1)", timeout=0)
    e = ei.value
    assert e.status == 422 and e.field == "timeout" and e.error_type == "value_error"
    assert isinstance(e, PyrunnerHTTPError) and isinstance(e, ValueError)
    assert "timeout" in str(e) and e.request_id
    with pytest.raises(ValidationError) as ei:
        c.run("print(1)", memory_limit=10)
    assert ei.value.field == "memory_limit"
    with pytest.raises(ValidationError) as ei:
        RemoteExecutor(url_of(daemon)).execute_code("print(1)", timeout=0)
    assert ei.value.field == "timeout"


def test_client_api_key(keyed_daemon):
    url = url_of(keyed_daemon)
    assert Client(url, api_key=KEY).run("return 7").value == 7
    assert RemoteExecutor(url, api_key="other-key").run("return 7") == 7
    for key in ("wrong-key", None):
        with pytest.raises(AuthenticationError) as ei:
            Client(url, api_key=key).run("print(1)")
        assert ei.value.status == 401 and "API key" in ei.value.detail
        with pytest.raises(AuthenticationError):
            RemoteExecutor(url, api_key=key).execute_code("print(1)")
    # GET / needs no key
    assert Client(url, api_key="wrong-key").health()["status"] == "healthy"


def test_client_connection_refused():
    url = "http://127.0.0.1:%d" % free_port()
    with pytest.raises(PyrunnerConnectionError) as ei:
        Client(url).run("print(1)")
    assert isinstance(ei.value, ConnectionError)
    with pytest.raises(PyrunnerConnectionError):
        with RemoteExecutor(url):
            pass


def test_client_rejects_bad_url():
    for url in ("ftp://x", "127.0.0.1:8000", "http://", "http://h/?q=1"):
        with pytest.raises(ValueError):
            Client(url)


def test_setup_refuses_unhealthy_daemon():
    d = Daemon("--rate-limit", 0)
    url = "http://127.0.0.1:%d" % d.port
    d.start(wait=False)
    try:
        # Whatever the state when asked, setup() either succeeds on a healthy
        # service or raises a clear error; never anything else.
        try:
            RemoteExecutor(url).setup()
        except (ServiceUnavailableError, PyrunnerConnectionError):
            pass
        d.wait_healthy()
        RemoteExecutor(url).setup()
    finally:
        assert d.stop() == 0


# ---- LocalExecutor specifics ----

def test_local_usage_error():
    with pytest.raises(CLIUsageError) as ei:
        LocalExecutor(pyrunner_path=BIN).run("print(1)", timeout=0)
    assert "--timeout" in str(ei.value) and ei.value.returncode == 2
    with pytest.raises(CLIUsageError):
        LocalExecutor(pyrunner_path=BIN, memory_limit=10).run("print(1)")


def test_local_program_exit_2_is_not_a_usage_error():
    with pytest.raises(ProgramExited) as ei:
        LocalExecutor(pyrunner_path=BIN).run("raise SystemExit(2)")
    assert ei.value.exit_code == 2


def test_local_not_found(monkeypatch):
    with pytest.raises(PyrunnerNotFoundError):
        LocalExecutor(pyrunner_path="/nonexistent/pyrunner").run("1")
    monkeypatch.setenv("PYRUNNER_BIN", "/nonexistent/pyrunner")
    with pytest.raises(PyrunnerNotFoundError):
        with LocalExecutor():
            pass
    monkeypatch.setenv("PYRUNNER_BIN", BIN)
    assert pyrunner.find_pyrunner() == BIN


def test_local_stdin_preload_and_argv():
    ex = LocalExecutor(pyrunner_path=BIN, preload=["json", "math"], memory_limit=128)
    assert ex.argv(2) == [BIN, "run", "--json", "--timeout", "2", "--memory", "128", "--preload", "json,math", "-"]
    rr = ex.run_result("import sys\nprint(sys.stdin.read().upper())", stdin="abc")
    assert rr.ok and rr.stdout == "ABC\n"
    assert LocalExecutor(pyrunner_path=BIN).argv(0.5)[3:5] == ["--timeout", "0.5"]


# ---- a hostile server ----

class _Hostile(http.server.BaseHTTPRequestHandler):
    server_version = "hostile"

    def log_message(self, *a):
        pass

    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        srv = self.server
        srv.requests.append({"method": self.command, "path": self.path,
                             "headers": dict(self.headers), "body": body})
        status, headers, payload = srv.reply
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload).encode()
        elif isinstance(payload, str):
            payload = payload.encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer


@pytest.fixture
def hostile():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    srv.daemon_threads = True
    srv.requests = []
    srv.reply = (200, {"Content-Type": "application/json"}, {})
    srv.url = "http://127.0.0.1:%d" % srv.server_address[1]
    t = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    t.start()

    def respond(payload, status=200, headers=None):
        srv.reply = (status, dict({"Content-Type": "application/json"}, **(headers or {})), payload)
    srv.respond = respond
    yield srv
    srv.shutdown()
    srv.server_close()


def run_body(**over):
    body = {"status": "success", "stdout": "", "stderr": "", "stdout_truncated": False,
            "stderr_truncated": False, "exit_code": 0, "signal": None, "execution_time": 0.001,
            "cpu_time": 0.001, "memory_used": 2.0, "error": None, "error_info": None, "result": None}
    body.update(over)
    return body


@pytest.fixture
def tripwires(monkeypatch):
    """Makes every way of running or loading something from the answer
    fail loudly, and records imports of the canary module name."""
    calls = []

    def trip(name):
        def f(*a, **k):
            calls.append(name)
            raise AssertionError("the client called %s" % name)
        return f
    for mod, name in [(os, "system"), (os, "popen"), (subprocess, "Popen"), (pickle, "loads"),
                      (pickle, "load"), (pickle, "Unpickler"), (builtins, "eval"), (builtins, "exec")]:
        monkeypatch.setattr(mod, name, trip("%s.%s" % (mod.__name__, name)))
    real_import = builtins.__import__

    def watch_import(name, *a, **k):
        if "canary" in name:
            calls.append("import " + name)
        return real_import(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", watch_import)
    return calls


def test_hostile_unknown_type_in_result(hostile, tripwires):
    for result in ({"$type": "pickle", "data": "gASVIAAAAAAAAACMBXBvc2l4lIwGc3lzdGVtlJOUjAJpZJSFlFKULg=="},
                   {"$type": "__import__('os').system('touch /tmp/pwned')"},
                   {"$type": "pyrunner_canary_module.Thing", "state": {}}):
        hostile.respond(run_body(result=result))
        rr = Client(hostile.url).run("return 1")
        assert rr.ok and rr.result == result
        with pytest.raises(ValueDecodeError):
            rr.value
        ex = RemoteExecutor(hostile.url)
        with pytest.raises(ValueDecodeError):
            ex.run("return 1")
        value, error = ex.execute_code("return 1")
        assert value is None and type(error) is ValueDecodeError
    assert tripwires == []
    assert not os.path.exists("/tmp/pwned")


@pytest.mark.parametrize("depth", [1000, 100000])
def test_hostile_deeply_nested_result(hostile, depth):
    body = json.dumps(run_body(stdout="out\n")).replace('"result": null', '"result": ' + "[" * depth + "]" * depth)
    hostile.respond(body)
    rr = Client(hostile.url).run("return 1")
    assert rr.ok and rr.stdout == "out\n"
    with pytest.raises(ValueDecodeError):
        rr.value
    assert type(RemoteExecutor(hostile.url).execute_code("return 1")[1]) is ValueDecodeError


def test_hostile_result_of_millions_of_objects_is_not_built(hostile):
    # 16 MiB of [{},{},...]: json.loads built 5.6 M dicts (439 MiB peak).
    import tracemalloc
    n = (16 << 20) // 3
    body = json.dumps(run_body(stdout="out\n"))
    assert body.endswith('"result": null}')
    hostile.respond(body[:-len('null}')] + "[" + ",".join(["{}"] * n) + "]}")
    tracemalloc.start()
    try:
        rr = Client(hostile.url).run("return 1")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rr.ok and rr.stdout == "out\n"
    with pytest.raises(ValueDecodeError, match="more than 2000008 objects and arrays"):
        rr.value
    assert peak < 100 << 20, "the client's peak was %d MiB" % (peak >> 20)


def test_hostile_deeply_nested_elsewhere(hostile):
    hostile.respond('{"status": "success", "error_info": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(ProtocolError):
        Client(hostile.url).run("return 1")


HOSTILE_ERRORS = [
    # (error_info type, module) -> expected class name, must be a RemoteError
    ("SystemExit", "builtins", "SystemExit"),
    ("KeyboardInterrupt", "builtins", "KeyboardInterrupt"),
    ("GeneratorExit", "builtins", "GeneratorExit"),
    ("BaseException", "builtins", "BaseException"),
    ("__import__", "builtins", "__import__"),
    ("eval", "builtins", "eval"),
    ("print", "builtins", "print"),
    ("system", "os", "system"),
    ("os.system", "builtins", "RemoteError"),
    ("os.system", "os", "RemoteError"),
    ("Thing", "pyrunner_canary_module", "Thing"),
    ("ZeroDivisionError", "evil", "ZeroDivisionError"),   # not the builtin: wrong module
    ("a b", "builtins", "RemoteError"),
    ("class", "__main__", "RemoteError"),
    ("X" * 5000, "__main__", "RemoteError"),
    ("", "builtins", "RemoteError"),
]


@pytest.mark.parametrize("rtype,module,name", HOSTILE_ERRORS, ids=[h[0][:20] + "@" + h[1] for h in HOSTILE_ERRORS])
def test_hostile_error_info(hostile, tripwires, rtype, module, name):
    info = {"type": rtype, "module": module, "message": "0", "line": 1, "traceback": "tb\n"}
    hostile.respond(run_body(status="error", exit_code=1, error="x", error_info=info))
    with pytest.raises(RemoteError) as ei:
        RemoteExecutor(hostile.url).run("return 1")
    e = ei.value
    assert type(e).__name__ == name
    assert isinstance(e, Exception)
    assert not isinstance(e, (SystemExit, KeyboardInterrupt, GeneratorExit, ZeroDivisionError))
    assert type(e).__module__ in ("pyrunner.remote", "pyrunner.errors")
    assert e.remote_type == rtype and e.remote_module == module
    assert tripwires == []


def test_hostile_error_info_builtin_allowlisted(hostile, tripwires):
    info = {"type": "ValueError", "module": "builtins", "message": "bad", "line": 3, "traceback": "tb"}
    hostile.respond(run_body(status="error", exit_code=1, error="x", error_info=info))
    with pytest.raises(ValueError) as ei:
        RemoteExecutor(hostile.url).run("return 1")
    assert type(ei.value) is ValueError and ei.value.args == ("bad",)


def test_hostile_error_info_wrong_types(hostile, tripwires):
    info = {"type": {"$type": "x"}, "module": ["builtins"], "message": {"a": 1}, "line": "1", "traceback": 5}
    hostile.respond(run_body(status="error", exit_code=1, error="x", error_info=info))
    with pytest.raises(RemoteError) as ei:
        RemoteExecutor(hostile.url).run("return 1")
    assert type(ei.value) is RemoteError and ei.value.line is None and ei.value.remote_traceback is None


def test_hostile_result_error(hostile):
    info = {"type": "ResultError", "module": "pyrunner", "message": "cycle", "line": None, "traceback": None}
    hostile.respond(run_body(status="error", exit_code=1, error="x", error_info=info))
    with pytest.raises(ResultError) as ei:
        RemoteExecutor(hostile.url).run("return 1")
    assert str(ei.value) == "cycle"
    # a program's own class of that name is not the sandbox's report
    info["module"] = "__main__"
    hostile.respond(run_body(status="error", exit_code=1, error="x", error_info=info))
    with pytest.raises(RemoteError) as ei:
        RemoteExecutor(hostile.url).run("return 1")
    assert type(ei.value).__name__ == "ResultError" and not isinstance(ei.value, ResultError)


def test_hostile_unknown_status(hostile):
    hostile.respond(run_body(status="exploded", error="boom"))
    with pytest.raises(InternalError):
        RemoteExecutor(hostile.url).run("return 1")


@pytest.mark.parametrize("payload", ["not json", "[1, 2]", {"stdout": "no status"},
                                     {"status": 1}, {"status": "success", "exit_code": "0"},
                                     {"status": "success", "error_info": "x"}])
def test_hostile_malformed(hostile, payload):
    hostile.respond(payload)
    with pytest.raises(ProtocolError):
        Client(hostile.url).run("return 1")


def test_hostile_http_errors(hostile):
    c = Client(hostile.url)
    hostile.respond({"detail": "rate limit exceeded"}, 429, {"Retry-After": "7", "X-Request-Id": "00000000000000ab"})
    with pytest.raises(RateLimitedError) as ei:
        c.run("1")
    assert ei.value.retry_after == 7 and ei.value.request_id == "00000000000000ab"
    assert ei.value.detail == "rate limit exceeded"
    hostile.respond({"detail": "service is draining"}, 503, {"Retry-After": "5"})
    with pytest.raises(ServiceUnavailableError) as ei:
        c.run("1")
    assert ei.value.retry_after == 5
    hostile.respond("<html>oops</html>", 500, {"Content-Type": "text/html"})
    with pytest.raises(PyrunnerHTTPError) as ei:
        c.run("1")
    assert ei.value.status == 500 and "oops" in ei.value.detail
    hostile.respond({"detail": [{"loc": ["body", "timeout"], "msg": "m", "type": "value_error"}]}, 422)
    with pytest.raises(ValidationError) as ei:
        c.run("1")
    assert ei.value.field == "timeout"
    hostile.respond({"detail": "weird"}, 422)
    with pytest.raises(ValidationError) as ei:
        c.run("1")
    assert ei.value.field is None and "weird" in str(ei.value)


def test_hostile_redirect_not_followed(hostile):
    hostile.respond({}, 302, {"Location": hostile.url + "/stolen"})
    with pytest.raises(PyrunnerHTTPError) as ei:
        Client(hostile.url, api_key="secret").run("1")
    assert ei.value.status == 302
    assert [r["path"] for r in hostile.requests] == ["/run"]


def test_hostile_too_long(hostile):
    hostile.respond(run_body(stdout="x" * 5000))
    with pytest.raises(ProtocolError):
        Client(hostile.url, max_response_bytes=4096).run("1")
    assert Client(hostile.url).run("1").stdout == "x" * 5000


def test_request_shape(hostile):
    hostile.respond(run_body())
    Client(hostile.url + "/prefix/", api_key="k").run("print(1)", timeout=2.0, memory_limit=64, stdin="in")
    r = hostile.requests[-1]
    assert r["method"] == "POST" and r["path"] == "/prefix/run"
    assert r["headers"]["Authorization"] == "Bearer k"
    assert r["headers"]["Content-Type"] == "application/json"
    assert json.loads(r["body"]) == {"code": "print(1)", "timeout": 2, "memory_limit": 64, "stdin": "in"}
    RemoteExecutor(hostile.url).run("1", timeout=0.5)
    assert json.loads(hostile.requests[-1]["body"])["timeout"] == 1
    assert "Authorization" not in hostile.requests[-1]["headers"]


def test_client_source_loads_nothing():
    """No module of the package unpickles or evaluates; none but values.py
    imports anything at run time (values.decode imports numpy/pandas, by
    fixed name, for their own tags)."""
    forbidden = {"pickle", "marshal", "shelve", "eval", "exec", "literal_eval", "dill", "cloudpickle"}
    dynamic_import = {"__import__", "importlib", "import_module"}
    pkg = os.path.join(CLIENT_DIR, "pyrunner")
    for name in sorted(os.listdir(pkg)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(pkg, name), "rb") as f:
            names = {tok.string for tok in tokenize.tokenize(f.readline) if tok.type == tokenize.NAME}
        bad = forbidden if name == "values.py" else forbidden | dynamic_import
        assert not names & bad, (name, names & bad)


# ---- code in the sandbox that rewrites its own encoder ----

SUBVERT = """
import sys, json
enc = sys.modules["_pyrunner_values"]
enc.encode = lambda v: {"$type": "pickle", "data": "gASVAAAAAAAAAAA="}
return 1
"""

SUBVERT_JSON = """
import json
real = json.dumps
def fake(obj, *a, **k):
    if isinstance(obj, dict) and obj.get("type") == "result":
        obj["result"] = {"$type": "repr", "type": "os.system", "value": "x"}
        obj["error"] = {"type": "__import__", "module": "os", "message": "rm -rf /"}
        obj["status"] = "error"
    return real(obj, *a, **k)
json.dumps = fake
return 1
"""


def test_sandbox_rewriting_its_encoder_yields_only_safe_types(make_executor):
    with make_executor() as ex:
        # An unknown tag: refused when decoded, nothing is unpickled.
        result, error = ex.execute_code(SUBVERT)
        assert result is None and type(error) is ValueDecodeError, (result, error)
        # A forged repr and a forged exception type: a plain marked string and
        # a RemoteError stand-in, never the named objects.
        with pytest.raises(pyrunner.RemoteError) as ei:
            ex.run(SUBVERT_JSON)
        assert type(ei.value).__name__ in ("RemoteError", "__import__")
        assert not isinstance(ei.value, (ImportError, OSError))
