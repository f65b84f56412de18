"""Helpers for the pyrunnerd (HTTP daemon) integration tests.

Stdlib only. Every test drives the real daemon binary over loopback HTTP:
$PYRUNNERD_BIN, else src/daemon/pyrunnerd of $PYRUNNER_BUILD (see conftest).

  Daemon(*flags, preload="", env=None)   a daemon on a free 127.0.0.1 port;
      .start(wait=True) / .stop() (SIGTERM, returns the exit code)
      .request(method, path, body=None, headers=None, key=None) -> Response
      .run(code, **fields) / .invoke(code, **fields) -> Response (POST JSON)
      .metrics() -> Metrics, .logs() -> parsed JSON log lines,
      .wait_log(pred), .wait_metric(name, value, **labels)
      .zygote_pid(), .descendants()
  asan_daemon(*flags)   the same from the ASan+UBSan build (build-asan)
  raw_run(port, code, **fields)   a POST /run on a raw socket, left unread
  daemon_fixture(*flags)   a pytest fixture factory: starts, yields, stops and
      asserts exit status 0.
  RECORDED      every response any Daemon received in this session, for the
      OpenAPI check (test_daemon_openapi.py).
  SchemaValidator / validate_response(spec, rec)   a small JSON-Schema
      validator (the subset openapi.json uses; unknown keywords are errors,
      never ignored) and the response-against-spec check.
"""
import atexit
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import BUILD, SLOWDOWN, _stat, cmdline, file_sanitizer_report  # noqa: E402  (shared)
from conftest import base_env as clean_env  # noqa: E402  (one environment rule)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DAEMON_BIN = os.environ.get("PYRUNNERD_BIN") or os.path.join(BUILD, "src", "daemon", "pyrunnerd")
# The ASan+UBSan build (make unit makes it), for the tests of memory-safety
# bugs; its sandboxes come from the normal zygote.
ASAN_DAEMON_BIN = os.environ.get("PYRUNNERD_ASAN_BIN") or os.path.join(REPO, "build-asan", "src", "daemon",
                                                                       "pyrunnerd")
ZYGOTE_BIN = os.path.join(os.path.dirname(os.path.dirname(DAEMON_BIN)), "sandbox", "pyrunner-zygote")
OPENAPI_PATH = os.path.join(REPO, "src", "daemon", "openapi.json")
PYTHON = "/usr/bin/python3.11"

UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

# Every response received in this session: dicts with method, path, status,
# headers (lower-case names), body (bytes), request_body.
RECORDED = []
_RECORDED_LOCK = threading.Lock()

# Daemons started by this process; any still running at exit (a test that
# failed before its cleanup) is killed, so none outlives the session.
_STARTED = []


@atexit.register
def _kill_leftover_daemons():
    for p in _STARTED:
        if p.poll() is None:
            p.kill()
            p.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status, reason, headers, body, wall):
        self.status = status
        self.reason = reason
        self.headers = headers          # lower-case name -> value (last wins)
        self.body = body
        self.wall = wall

    @property
    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "<Response %d %r %r>" % (self.status, self.headers, self.body[:600])


def record(method, path, resp, request_body=None):
    with _RECORDED_LOCK:
        RECORDED.append({"method": method, "path": path.split("?", 1)[0], "status": resp.status,
                         "headers": dict(resp.headers), "body": resp.body, "request_body": request_body})
    file_sanitizer_report(resp.body, "pyrunnerd: %s %s" % (method, path))


def http_request(port, method, path, body=None, headers=None, timeout=30, conn=None):
    """One request; a new connection unless `conn` (keep-alive) is given.
    `body` may be bytes, str, or a JSON-able object (then Content-Type is
    application/json unless the caller set one)."""
    h = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        h.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode("utf-8")
    own = conn is None
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t0 = time.monotonic()
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        wall = time.monotonic() - t0
        resp = Response(r.status, r.reason, {k.lower(): v for k, v in r.getheaders()}, data, wall)
    finally:
        if own:
            c.close()
    record(method, path, resp, body)
    return resp


def raw_run(port, code, **fields):
    """A raw HTTP/1.1 POST /run on a new socket, not read; returns the
    socket (for tests of clients that leave or stop reading)."""
    data = json.dumps(dict(fields, code=code)).encode()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /run HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
    return s


class Metrics:
    """Parsed Prometheus text: {(name, frozenset(labels.items())): value}."""
    LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
    LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

    def __init__(self, text):
        self.text = text
        self.samples = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = self.LINE.match(line)
            assert m, "unparsable metrics line: %r" % line
            labels = frozenset(self.LABEL.findall(m.group(2) or ""))
            self.samples[(m.group(1), labels)] = float(m.group(3))

    def get(self, name, default=None, **labels):
        return self.samples.get((name, frozenset((k, str(v)) for k, v in labels.items())), default)

    def names(self):
        return {n for n, _ in self.samples}


class Daemon:
    def __init__(self, *flags, preload="", env=None, listen_host="127.0.0.1", port=None, binary=None):
        self.port = port or free_port()
        self.listen = "%s:%d" % (listen_host, self.port)
        self.argv = [binary or DAEMON_BIN, "--listen", self.listen]
        if preload is not None:
            self.argv += ["--preload", preload]
        self.argv += [str(f) for f in flags]
        self.env = clean_env(env)
        self.proc = None
        self.lines = []                 # raw stderr lines (str)
        self._lock = threading.Lock()
        self._reader = None

    # ---- life cycle ----

    def start(self, wait=True, timeout=20.0):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=self.env)
        _STARTED.append(self.proc)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        if wait:
            self.wait_healthy(timeout)
        return self

    def _read_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            with self._lock:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
        self.proc.stderr.close()
        file_sanitizer_report(self.stderr_text(), "pyrunnerd's stderr")

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_listening(self, timeout=10.0):
        self.wait_log(lambda o: o.get("msg") == "listening", timeout)

    def wait_healthy(self, timeout=20.0):
        deadline = time.monotonic() + timeout * SLOWDOWN
        last = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError("pyrunnerd exited with %r before it was healthy:\n%s"
                                     % (self.proc.poll(), self.stderr_text()))
            try:
                r = http_request(self.port, "GET", "/", timeout=2)
                last = r
                if r.status == 200 and r.json.get("status") == "healthy":
                    return r
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("pyrunnerd not healthy after %.0f s (last: %r)\n%s"
                             % (timeout, last, self.stderr_text()))

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def stop(self, timeout=15.0):
        """SIGTERM, wait, return the exit status (kills it if it hangs)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("pyrunnerd did not exit %.0f s after SIGTERM\n%s" % (timeout, self.stderr_text()))
        if self._reader:
            self._reader.join(5)
        return rc

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    # ---- HTTP ----

    def request(self, method, path, body=None, headers=None, key=None, timeout=30, conn=None):
        h = dict(headers or {})
        if key is not None:
            h["Authorization"] = "Bearer " + key
        return http_request(self.port, method, path, body, h, timeout=timeout, conn=conn)

    def run(self, code, key=None, timeout_s=60, **fields):
        body = dict(fields)
        body["code"] = code
        return self.request("POST", "/run", body, key=key, timeout=timeout_s)

    def invoke(self, code, key=None, timeout_s=60, **fields):
        body = dict(fields)
        body["code"] = code
        return self.request("POST", "/system/python_executor/execute_code/invoke", body, key=key,
                            timeout=timeout_s)

    def connection(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def metrics(self):
        r = self.request("GET", "/metrics")
        assert r.status == 200, r
        return Metrics(r.body.decode("utf-8"))

    def wait_metric(self, name, pred, timeout=10.0, **labels):
        """Polls /metrics until pred(value) holds; returns the value."""
        deadline = time.monotonic() + timeout
        v = None
        while time.monotonic() < deadline:
            v = self.metrics().get(name, **labels)
            if v is not None and pred(v):
                return v
            time.sleep(0.02)
        raise AssertionError("metric %s%r stayed at %r for %.0f s" % (name, labels, v, timeout))

    # ---- logs ----

    def stderr_text(self):
        with self._lock:
            return "\n".join(self.lines)

    def logs(self):
        out = []
        with self._lock:
            lines = list(self.lines)
        for line in lines:
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if isinstance(o, dict):
                out.append(o)
        return out

    def request_logs(self):
        return [o for o in self.logs() if o.get("msg") == "request"]

    def log_for(self, request_id):
        for o in self.request_logs():
            if o.get("request_id") == request_id:
                return o
        return None

    def wait_log(self, pred, timeout=10.0):
        deadline = time.monotonic() + timeout * SLOWDOWN
        while time.monotonic() < deadline:
            for o in self.logs():
                if pred(o):
                    return o
            time.sleep(0.02)
        raise AssertionError("no matching log line in %.0f s:\n%s" % (timeout, self.stderr_text()))

    # ---- processes ----

    def descendants(self):
        return descendants(self.pid)

    def zygote_pid(self):
        """The daemon's child whose cmdline starts with pyrunner-zygote."""
        for pid in children(self.pid):
            if cmdline(pid).startswith("pyrunner-zygote"):
                return pid
        return None


def asan_daemon(*flags, env=None, **kw):
    """A Daemon from the sanitizer build: any report aborts it (so the test
    sees a dead daemon and the report is in its stderr)."""
    assert os.access(ASAN_DAEMON_BIN, os.X_OK), "no ASan build at %s (run make unit)" % ASAN_DAEMON_BIN
    e = {"PYRUNNER_ZYGOTE": ZYGOTE_BIN, "ASAN_OPTIONS": "abort_on_error=1:detect_leaks=1",
         "ASAN_SYMBOLIZER_PATH": "/usr/bin/llvm-symbolizer",
         "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}
    e.update(env or {})
    return Daemon(*flags, env=e, binary=ASAN_DAEMON_BIN, **kw)


def daemon_fixture(*flags, preload="", env=None):
    """A module-scoped fixture: a healthy daemon, stopped with SIGTERM at the
    end of the module, which must exit 0."""
    @pytest.fixture(scope="module")
    def _fixture():
        d = Daemon(*flags, preload=preload, env=env).start()
        try:
            yield d
        finally:
            rc = d.stop()
            assert rc == 0, "pyrunnerd exited %r\n%s" % (rc, d.stderr_text())
    return _fixture


# ---- /proc ----

def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = _stat(int(d))
            if st and st[0] == pid and st[1] != "Z":
                out.append(int(d))
    return out


def descendants(root):
    """Live (non-zombie) descendants of `root`: {pid: (ppid, starttime)}."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = _stat(int(d))
            if st and st[1] != "Z":
                kids.setdefault(st[0], []).append((int(d), st[0], st[2]))
    out, todo = {}, [root]
    while todo:
        for pid, ppid, start in kids.get(todo.pop(), []):
            if pid not in out:
                out[pid] = (ppid, start)
                todo.append(pid)
    return out


def pid_alive(pid, starttime):
    st = _stat(pid)
    return st is not None and st[2] == starttime and st[1] != "Z"


def pidns(pid):
    try:
        return os.readlink("/proc/%d/ns/pid" % pid)
    except OSError:
        return None


def nspid(pid):
    """The NSpid line of /proc/pid/status as a list of ints ([] if gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return [int(x) for x in line.split()[1:]]
    except OSError:
        pass
    return []


def status_kb(pid, field):
    """A kB figure of /proc/PID/status: VmRSS, VmHWM..."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_kb(pid):
    return status_kb(pid, "VmRSS")


def poll_until(pred, timeout, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("%s not met within %.1f s" % (what, timeout))


# ---- JSON Schema (the subset openapi.json uses) ----

ANNOTATIONS = {"description", "example", "examples", "default", "title", "deprecated", "readOnly",
               "writeOnly", "$comment", "format", "contentMediaType", "externalDocs", "xml", "discriminator"}
VALIDATION = {"$ref", "type", "properties", "required", "additionalProperties", "items", "prefixItems",
              "minItems", "maxItems", "uniqueItems", "enum", "const", "anyOf", "oneOf", "allOf", "not",
              "if", "then", "else", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
              "minLength", "maxLength", "pattern", "minProperties", "maxProperties"}


class SchemaError(Exception):
    pass


class SchemaValidator:
    """errors(instance, schema) -> list of "path: message". Resolves local
    $refs against `root`. An unknown keyword raises SchemaError, so a
    constraint the spec adds later is never silently ignored. format "uuid"
    is checked; other formats are annotations."""

    def __init__(self, root):
        self.root = root

    def resolve(self, ref):
        if not ref.startswith("#/"):
            raise SchemaError("non-local $ref %r" % ref)
        node = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if part not in node:
                raise SchemaError("unresolvable $ref %r" % ref)
            node = node[part]
        return node

    @staticmethod
    def _is_type(v, t):
        if t == "null":
            return v is None
        if t == "boolean":
            return isinstance(v, bool)
        if t == "integer":
            return isinstance(v, int) and not isinstance(v, bool) or (isinstance(v, float) and v.is_integer())
        if t == "number":
            return isinstance(v, (int, float)) and not isinstance(v, bool)
        if t == "string":
            return isinstance(v, str)
        if t == "array":
            return isinstance(v, list)
        if t == "object":
            return isinstance(v, dict)
        raise SchemaError("unknown type %r" % t)

    def errors(self, v, schema, path="$"):
        if schema is True:
            return []
        if schema is False:
            return ["%s: no value allowed here" % path]
        unknown = set(schema) - ANNOTATIONS - VALIDATION
        if unknown:
            raise SchemaError("%s: unsupported schema keywords %s" % (path, sorted(unknown)))
        errs = []
        if "$ref" in schema:
            errs += self.errors(v, self.resolve(schema["$ref"]), path)
        if "type" in schema:
            types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            if not any(self._is_type(v, t) for t in types):
                return errs + ["%s: %r is not of type %s" % (path, v, "/".join(types))]
        if "enum" in schema and not any(_json_equal(v, e) for e in schema["enum"]):
            errs.append("%s: %r not in %r" % (path, v, schema["enum"]))
        if "const" in schema and not _json_equal(v, schema["const"]):
            errs.append("%s: %r != const %r" % (path, v, schema["const"]))
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if "minimum" in schema and v < schema["minimum"]:
                errs.append("%s: %r < minimum %r" % (path, v, schema["minimum"]))
            if "maximum" in schema and v > schema["maximum"]:
                errs.append("%s: %r > maximum %r" % (path, v, schema["maximum"]))
            if "exclusiveMinimum" in schema and v <= schema["exclusiveMinimum"]:
                errs.append("%s: %r <= exclusiveMinimum %r" % (path, v, schema["exclusiveMinimum"]))
            if "exclusiveMaximum" in schema and v >= schema["exclusiveMaximum"]:
                errs.append("%s: %r >= exclusiveMaximum %r" % (path, v, schema["exclusiveMaximum"]))
        if isinstance(v, str):
            if "minLength" in schema and len(v) < schema["minLength"]:
                errs.append("%s: shorter than %d" % (path, schema["minLength"]))
            if "maxLength" in schema and len(v) > schema["maxLength"]:
                errs.append("%s: longer than %d" % (path, schema["maxLength"]))
            if "pattern" in schema and not re.search(schema["pattern"], v):
                errs.append("%s: %r does not match %r" % (path, v, schema["pattern"]))
            if schema.get("format") == "uuid" and not re.match(
                    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", v):
                errs.append("%s: %r is not a uuid" % (path, v))
        if isinstance(v, list):
            if "minItems" in schema and len(v) < schema["minItems"]:
                errs.append("%s: fewer than %d items" % (path, schema["minItems"]))
            if "maxItems" in schema and len(v) > schema["maxItems"]:
                errs.append("%s: more than %d items" % (path, schema["maxItems"]))
            if schema.get("uniqueItems"):
                seen = [json.dumps(x, sort_keys=True) for x in v]
                if len(set(seen)) != len(seen):
                    errs.append("%s: items are not unique" % path)
            prefix = schema.get("prefixItems", [])
            for i, item in enumerate(v):
                if i < len(prefix):
                    errs += self.errors(item, prefix[i], "%s[%d]" % (path, i))
                elif "items" in schema:
                    errs += self.errors(item, schema["items"], "%s[%d]" % (path, i))
        if isinstance(v, dict):
            props = schema.get("properties", {})
            for k in schema.get("required", []):
                if k not in v:
                    errs.append("%s: missing required %r" % (path, k))
            for k, item in v.items():
                if k in props:
                    errs += self.errors(item, props[k], "%s.%s" % (path, k))
                elif "additionalProperties" in schema:
                    errs += self.errors(item, schema["additionalProperties"], "%s.%s" % (path, k))
            if "minProperties" in schema and len(v) < schema["minProperties"]:
                errs.append("%s: fewer than %d properties" % (path, schema["minProperties"]))
            if "maxProperties" in schema and len(v) > schema["maxProperties"]:
                errs.append("%s: more than %d properties" % (path, schema["maxProperties"]))
        if "allOf" in schema:
            for i, s in enumerate(schema["allOf"]):
                errs += self.errors(v, s, path)
        if "anyOf" in schema:
            if not any(not self.errors(v, s, path) for s in schema["anyOf"]):
                errs.append("%s: %r matches none of anyOf" % (path, v))
        if "oneOf" in schema:
            n = sum(1 for s in schema["oneOf"] if not self.errors(v, s, path))
            if n != 1:
                errs.append("%s: %r matches %d of oneOf (need exactly 1)" % (path, v, n))
        if "not" in schema and not self.errors(v, schema["not"], path):
            errs.append("%s: %r matches a `not` schema" % (path, v))
        if "if" in schema:
            if not self.errors(v, schema["if"], path):
                if "then" in schema:
                    errs += self.errors(v, schema["then"], path)
            elif "else" in schema:
                errs += self.errors(v, schema["else"], path)
        return errs


def _json_equal(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def load_spec():
    with open(OPENAPI_PATH) as f:
        return json.load(f)


def _norm_media(ct):
    return ";".join(p.strip().lower() for p in (ct or "").split(";") if p.strip())


def _spec_path(spec, path):
    """The spec's path that `path` is, templates ({session_id}) matching one
    segment; else `path` itself."""
    if path in spec["paths"]:
        return path
    parts = path.split("/")
    for p in spec["paths"]:
        t = p.split("/")
        if len(t) == len(parts) and all(a == b or (a.startswith("{") and b) for a, b in zip(t, parts)):
            return p
    return path


def validate_response(spec, rec):
    """Problems of one recorded response against the spec (a list of str).
    HEAD and OPTIONS (CORS preflight) are not API operations and are
    skipped, as is 499 (logged for clients that left; never received)."""
    v = SchemaValidator(spec)
    method, path, status = rec["method"].lower(), rec["path"], rec["status"]
    where = "%s %s -> %d" % (rec["method"], path, status)
    if method in ("head", "options") or status == 499:
        return []
    path = _spec_path(spec, path)
    op = spec["paths"].get(path, {}).get(method)
    if op is None:
        if status == 404 and (path not in spec["paths"] or "{" in path):
            resp = v.resolve("#/components/responses/NotFound")
        elif status == 405 and path in spec["paths"]:
            resp = v.resolve("#/components/responses/MethodNotAllowed")
        else:
            return ["%s: no operation in the spec" % where]
    else:
        resp = op.get("responses", {}).get(str(status))
        if resp is None:
            return ["%s: status not documented (documented: %s)" % (where, sorted(op.get("responses", {})))]
    while "$ref" in resp:
        resp = v.resolve(resp["$ref"])
    problems = []
    for name, hdr in resp.get("headers", {}).items():
        while "$ref" in hdr:
            hdr = v.resolve(hdr["$ref"])
        value = rec["headers"].get(name.lower())
        if value is None:
            if hdr.get("required"):
                problems.append("%s: required header %s missing" % (where, name))
            continue
        schema = hdr.get("schema", {})
        inst = value
        if schema.get("type") == "integer":
            try:
                inst = int(value)
            except ValueError:
                problems.append("%s: header %s=%r is not an integer" % (where, name, value))
                continue
        problems += ["%s: header %s: %s" % (where, name, e) for e in v.errors(inst, schema)]
    content = resp.get("content", {})
    ct = rec["headers"].get("content-type")
    if not content:
        if rec["body"]:
            problems.append("%s: spec has no body, got %r" % (where, rec["body"][:200]))
        return problems
    media = {_norm_media(k): m for k, m in content.items()}
    m = media.get(_norm_media(ct))
    if m is None:
        return problems + ["%s: Content-Type %r not in spec %s" % (where, ct, sorted(content))]
    schema = m.get("schema", {})
    if _norm_media(ct).startswith("application/json"):
        try:
            inst = json.loads(rec["body"].decode("utf-8"))
        except ValueError as e:
            return problems + ["%s: body is not JSON: %s" % (where, e)]
    else:
        inst = rec["body"].decode("utf-8")
    problems += ["%s: %s" % (where, e) for e in v.errors(inst, schema)]
    return problems
