"""src/daemon/openapi.json against the live daemon: every response received
in this session (this module runs after the other test_daemon_* modules,
which record theirs in daemon_helpers.RECORDED) must match the schema and
headers documented for its route and status; request bodies the server
accepts must be exactly those the request schemas accept; the document's
own examples must match their schemas."""
import json

import pytest

from daemon_helpers import (ANNOTATIONS, RECORDED, VALIDATION, Daemon, SchemaValidator, daemon_fixture, load_spec, validate_response)

INVOKE = "/system/python_executor/execute_code/invoke"

daemon = daemon_fixture("--rate-limit", 0, "--max-body-bytes", 4096, "--output-limit", 1024)


@pytest.fixture(scope="module")
def spec():
    return load_spec()


def test_validator_works(spec):
    v = SchemaValidator(spec)
    s = {"type": "object", "required": ["a"], "additionalProperties": False,
         "properties": {"a": {"type": ["integer", "null"], "minimum": 1}, "b": {"enum": ["x"]},
                        "c": {"type": "array", "prefixItems": [{"const": "body"}], "items": False}}}
    assert v.errors({"a": 1}, s) == []
    assert v.errors({"a": None, "b": "x", "c": ["body"]}, s) == []
    assert v.errors({"a": True}, s)                  # bool is not an integer
    assert v.errors({"a": 0}, s)
    assert v.errors({}, s)
    assert v.errors({"a": 1, "z": 1}, s)
    assert v.errors({"a": 1, "b": "y"}, s)
    assert v.errors({"a": 1, "c": ["body", "extra"]}, s)
    assert v.errors({"a": 1, "c": ["nobody"]}, s)
    assert v.errors("x", {"anyOf": [{"type": "integer"}, {"type": "null"}]})
    assert v.errors(1, {"oneOf": [{"type": "integer"}, {"type": "number"}]})
    assert not v.errors({"status": "healthy"}, {"if": {"properties": {"status": {"const": "healthy"}}},
                                                 "then": {"not": {"required": ["reason"]}},
                                                 "else": {"required": ["reason"]}})
    assert v.errors({"status": "healthy", "reason": "r"}, {"if": {"properties": {"status": {"const": "healthy"}}},
                                                           "then": {"not": {"required": ["reason"]}}})
    # Every keyword the document uses is one the validator implements.
    n = 0
    for where, schema in _schemas(spec):
        n += 1
        unknown = set(schema) - ANNOTATIONS - VALIDATION
        assert not unknown, "%s: keywords the validator does not implement: %s" % (where, sorted(unknown))
    assert n > 20, n


def _schemas(spec):
    """(where, schema object) for every schema in the document."""
    todo = [("#/components/schemas/" + k, s) for k, s in spec["components"]["schemas"].items()]

    def find(node, path):
        if isinstance(node, dict):
            for k, child in node.items():
                if k == "schema" and isinstance(child, dict):
                    todo.append((path + "/schema", child))
                else:
                    find(child, "%s/%s" % (path, k))
        elif isinstance(node, list):
            for i, child in enumerate(node):
                find(child, "%s/%d" % (path, i))

    find(spec["paths"], "#/paths")
    find({k: v for k, v in spec["components"].items() if k != "schemas"}, "#/components")
    while todo:
        where, s = todo.pop()
        if not isinstance(s, dict):
            continue
        yield where, s
        for k in ("items", "not", "if", "then", "else", "additionalProperties"):
            if isinstance(s.get(k), dict):
                todo.append(("%s/%s" % (where, k), s[k]))
        for k in ("prefixItems", "anyOf", "oneOf", "allOf"):
            for i, sub in enumerate(s.get(k, [])):
                todo.append(("%s/%s/%d" % (where, k, i), sub))
        for k, sub in s.get("properties", {}).items():
            todo.append(("%s/properties/%s" % (where, k), sub))


def _examples(node, path=""):
    """(where, schema, example value) for every media type example."""
    if isinstance(node, dict):
        if "schema" in node and ("example" in node or "examples" in node):
            if "example" in node:
                yield path, node["schema"], node["example"]
            for k, e in node.get("examples", {}).items():
                if "value" in e:
                    yield "%s/examples/%s" % (path, k), node["schema"], e["value"]
        for k, child in node.items():
            yield from _examples(child, "%s/%s" % (path, k))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from _examples(child, "%s/%d" % (path, i))


def test_spec_examples_match_their_schemas(spec):
    v = SchemaValidator(spec)
    problems, n = [], 0
    for where, schema, value in _examples(spec["paths"], "#/paths"):
        n += 1
        problems += ["%s: %s" % (where, e) for e in v.errors(value, schema)]
    for name, schema in spec["components"]["schemas"].items():
        if "example" in schema:
            n += 1
            problems += ["#/components/schemas/%s/example: %s" % (name, e) for e in v.errors(schema["example"], schema)]
    assert n > 5
    assert not problems, "\n".join(problems)


RUN_BODIES = [
    {"code": "print(1)"}, {"code": "print(1)", "timeout": 1}, {"code": "print(1)", "timeout": 300},
    {"code": "print(1)", "memory_limit": 64}, {"code": "print(1)", "memory_limit": 2048},
    {"code": "print(1)", "stdin": ""}, {"code": "print(1)", "stdin": "x"},
    {}, {"code": 5}, {"code": None}, {"code": ""}, {"code": "print(1)", "timeout": 0},
    {"code": "print(1)", "timeout": 301}, {"code": "print(1)", "timeout": "5"}, {"code": "print(1)", "timeout": 2.5},
    {"code": "print(1)", "timeout": True}, {"code": "print(1)", "timeout": None},
    {"code": "print(1)", "memory_limit": 63}, {"code": "print(1)", "memory_limit": 2049},
    {"code": "print(1)", "memory_limit": 10}, {"code": "print(1)", "memory_limit": 4096},
    {"code": "print(1)", "unknown": 1}, {"code": "print(1)", "stdin": 5},
]
INVOKE_BODIES = [
    {"code": "result = 1"}, {"code": "result = 1", "timeout": 1}, {"code": "result = 1", "timeout": 30},
    {"code": "result = 1", "timeout": 31}, {"code": "result = 1", "timeout": 0},
    {"code": "result = 1", "memory_limit": 64}, {"code": "result = 1", "memory_limit": 500},
    {"code": "result = 1", "memory_limit": 63}, {"code": "result = 1", "memory_limit": 501},
    {"code": "result = 1", "memory_limit": 1}, {"code": "result = 1", "stdin": "x"}, {}, {"code": ""},
    {"code": 1}, {"code": "result = 1", "timeout": "5"},
]


@pytest.mark.parametrize("path,schema,bodies", [("/run", "RunRequest", RUN_BODIES),
                                                (INVOKE, "InvokeRequest", INVOKE_BODIES)])
def test_request_schema_matches_server(daemon, spec, path, schema, bodies):
    """The server accepts a body (200) exactly when the request schema does
    (else 422), for the default limits."""
    v = SchemaValidator(spec)
    problems = []
    for body in bodies:
        r = daemon.request("POST", path, body)
        errs = v.errors(body, {"$ref": "#/components/schemas/" + schema})
        if r.status not in (200, 422):
            problems.append("%r: HTTP %d" % (body, r.status))
        elif (r.status == 200) != (not errs):
            problems.append("%r: server %d, schema says %s" % (body, r.status, errs or "valid"))
    assert not problems, "\n".join(problems)


def test_representative_responses(daemon):
    """One of each documented outcome, recorded for the check below."""
    d = daemon
    assert d.run("print(1)").json["status"] == "success"
    assert d.run("1/0").json["status"] == "error"
    assert d.run("import time\ntime.sleep(5)", timeout=1).json["status"] == "timeout"
    assert d.run("x = bytearray(256 << 20)", memory_limit=64).json["status"] == "memory_exceeded"
    assert d.run("print('x' * 5000)").json["status"] == "output_limit"
    for code in ("result = 1", "1/0", "print('x' * 5000)"):
        assert d.invoke(code).status == 200
    for path in ("/", "/metrics", "/openapi.json"):
        assert d.request("GET", path).status == 200
    assert d.request("GET", "/nope").status == 404
    for method, path in (("GET", "/run"), ("POST", "/"), ("PUT", "/metrics"), ("DELETE", "/openapi.json"),
                         ("GET", INVOKE)):
        assert d.request(method, path).status == 405
    for path in ("/run", INVOKE):
        assert d.request("POST", path, b"{", headers={"Content-Type": "application/json"}).status == 400
        assert d.request("POST", path, b"{}", headers={"Content-Type": "text/plain"}).status == 415
        assert d.request("POST", path, {"code": "#" * 8000}).status == 413
        assert d.request("POST", path, {}).status == 422

    a = Daemon("--api-keys", "k", "--rate-limit", 1, "--rate-burst", 1).start()
    try:
        for path in ("/run", INVOKE):
            assert a.request("POST", path, {"code": "print(1)"}).status == 401
        assert a.run("print(1)", key="k").status == 200
        assert a.run("print(1)", key="k").status == 429
    finally:
        assert a.stop() == 0, a.stderr_text()

    s = Daemon(preload=None).start(wait=False)        # full preload: a start-up window
    try:
        s.wait_listening()
        assert s.request("GET", "/").json["status"] == "starting"
        assert s.run("print(1)").status == 503
        assert s.invoke("print(1)").status == 503
    finally:
        assert s.stop() == 0, s.stderr_text()


def test_every_recorded_response_matches_the_spec(spec):
    assert RECORDED, "no responses recorded"
    problems = []
    seen = set()
    for rec in RECORDED:
        seen.add((rec["method"], rec["path"], rec["status"]))
        problems += validate_response(spec, rec)
    documented = set()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if isinstance(op, dict) and "responses" in op:
                for code in op["responses"]:
                    if code not in ("405", "500"):      # other methods; engine failure
                        documented.add((method.upper(), path, int(code)))
    print("%d responses checked; documented (method, path, status) never observed: %s"
          % (len(RECORDED), sorted(documented - seen)))
    # Deduplicate: the same mismatch on many responses is one problem.
    uniq = sorted(set(problems))
    assert not uniq, "%d responses do not match src/daemon/openapi.json:\n%s" % (len(problems), "\n".join(uniq[:60]))
