#!/usr/bin/python3.11
"""Checks that docs/API.md and src/daemon/openapi.json agree.

Usage: tools/check_api_doc.py [--spec FILE] [--doc FILE]

Checks, standard library only:
  - the spec is valid JSON, "openapi": "3.1.0", info title "pyrunner" and a
    version, and every local "$ref" resolves;
  - every response carries the X-Request-Id header, and every JSON request
    body schema has "additionalProperties": false;
  - every example in the spec validates against its schema (a subset of
    JSON Schema 2020-12, enough for this document);
  - every operation (METHOD path) has a heading "`METHOD path`" in API.md,
    and every such heading names an operation of the spec;
  - every status code the spec lists for an operation is mentioned in that
    operation's section of API.md, outside code blocks, as a table row
    "| 404 | ...", as `404` or as "HTTP 404"; and every status code in the first
    column of a table in that section is one the spec lists.

Prints "api doc ok" and exits 0, or lists every problem and exits 1.
"""
import argparse
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
HEADING = re.compile(r"^(#{1,6})\s+`(GET|PUT|POST|DELETE|OPTIONS|HEAD|PATCH|TRACE) (/[^`\s]*)`(.*)$")
ANY_HEADING = re.compile(r"^(#{1,6})\s")
FENCE = re.compile(r"^\s*(```|~~~)")
TABLE_CODE = re.compile(r"^\s*\|\s*`?([1-5]\d\d)`?\s*\|")


class Problems(list):
    def add(self, msg):
        self.append(msg)


# ------------------------------------------------------------------ the spec

def pointer(doc, ref):
    if not ref.startswith("#"):
        raise KeyError(f"non-local $ref {ref!r}")
    node = doc
    for part in ref[1:].split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(part)]
        else:
            node = node[part]
    return node


def resolve(doc, node):
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        node = pointer(doc, node["$ref"])
        seen += 1
        if seen > 32:
            raise KeyError("$ref loop")
    return node


def check_refs(doc, node, where, problems):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            try:
                pointer(doc, node["$ref"])
            except (KeyError, IndexError, ValueError) as e:
                problems.add(f"openapi.json: {where}: $ref {node['$ref']!r} does not resolve ({e})")
        for k, v in node.items():
            check_refs(doc, v, f"{where}/{k}", problems)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            check_refs(doc, v, f"{where}/{i}", problems)


TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
}


def validate(doc, schema, value, path="$"):
    """Returns a list of error strings (empty: valid). Subset of 2020-12."""
    if schema is True:
        return []
    if schema is False:
        return [f"{path}: no value is allowed here"]
    errs = []
    if "$ref" in schema:
        errs += validate(doc, pointer(doc, schema["$ref"]), value, path)
    t = schema.get("type")
    if t is not None:
        types = t if isinstance(t, list) else [t]
        if not any(TYPES[x](value) for x in types):
            return errs + [f"{path}: {value!r:.60} is not of type {t}"]
    if "const" in schema and value != schema["const"]:
        errs.append(f"{path}: {value!r:.60} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errs.append(f"{path}: {value!r:.60} is not one of {schema['enum']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errs.append(f"{path}: {value} < minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errs.append(f"{path}: {value} > maximum {schema['maximum']}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errs.append(f"{path}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errs.append(f"{path}: longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errs.append(f"{path}: {value!r:.60} does not match {schema['pattern']!r}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errs.append(f"{path}: missing required {name!r}")
        for k, v in value.items():
            if k in props:
                errs += validate(doc, props[k], v, f"{path}.{k}")
            elif "additionalProperties" in schema:
                errs += validate(doc, schema["additionalProperties"], v, f"{path}.{k}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errs.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errs.append(f"{path}: more than {schema['maxItems']} items")
        if schema.get("uniqueItems"):
            dumped = [json.dumps(v, sort_keys=True) for v in value]
            if len(set(dumped)) != len(dumped):
                errs.append(f"{path}: items are not unique")
        prefix = schema.get("prefixItems", [])
        for i, v in enumerate(value):
            if i < len(prefix):
                errs += validate(doc, prefix[i], v, f"{path}[{i}]")
            elif "items" in schema:
                errs += validate(doc, schema["items"], v, f"{path}[{i}]")
    for sub in schema.get("allOf", []):
        errs += validate(doc, sub, value, path)
    if "anyOf" in schema and not any(not validate(doc, s, value, path) for s in schema["anyOf"]):
        errs.append(f"{path}: matches none of anyOf")
    if "oneOf" in schema and sum(not validate(doc, s, value, path) for s in schema["oneOf"]) != 1:
        errs.append(f"{path}: does not match exactly one of oneOf")
    if "not" in schema and not validate(doc, schema["not"], value, path):
        errs.append(f"{path}: matches a schema under 'not'")
    if "if" in schema:
        branch = "then" if not validate(doc, schema["if"], value, path) else "else"
        if branch in schema:
            errs += validate(doc, schema[branch], value, path)
    return errs


def check_examples(doc, where, media, problems):
    schema = media.get("schema")
    if schema is None:
        return
    samples = []
    if "example" in media:
        samples.append(("example", media["example"]))
    for name, ex in (media.get("examples") or {}).items():
        ex = resolve(doc, ex)
        if "value" in ex:
            samples.append((f"examples/{name}", ex["value"]))
    for name, value in samples:
        for e in validate(doc, schema, value)[:5]:
            problems.add(f"openapi.json: {where} {name}: {e}")


def operations(doc, problems):
    ops = {}
    paths = doc.get("paths")
    if not isinstance(paths, dict) or not paths:
        problems.add("openapi.json: no paths")
        return ops
    for path, item in paths.items():
        item = resolve(doc, item)
        for method in METHODS:
            if method in item:
                ops[(method.upper(), path)] = resolve(doc, item[method])
    return ops


def check_spec(doc, problems):
    if doc.get("openapi") != "3.1.0":
        problems.add(f"openapi.json: \"openapi\" is {doc.get('openapi')!r}, want \"3.1.0\"")
    info = doc.get("info") or {}
    if info.get("title") != "pyrunner":
        problems.add(f"openapi.json: info.title is {info.get('title')!r}, want \"pyrunner\"")
    if not isinstance(info.get("version"), str) or not info.get("version"):
        problems.add("openapi.json: info.version is missing")
    before = len(problems)
    check_refs(doc, doc, "#", problems)
    if len(problems) > before:
        return {}  # the checks below would trip over the same dangling refs

    ops = operations(doc, problems)
    for (method, path), op in ops.items():
        name = f"{method} {path}"
        responses = op.get("responses") or {}
        if not responses:
            problems.add(f"openapi.json: {name} lists no responses")
        for code, resp in responses.items():
            resp = resolve(doc, resp)
            if "X-Request-Id" not in (resp.get("headers") or {}):
                problems.add(f"openapi.json: {name} {code} does not declare the X-Request-Id header")
            for ct, media in (resp.get("content") or {}).items():
                check_examples(doc, f"{name} {code} {ct}", media, problems)
        body = op.get("requestBody")
        if body:
            body = resolve(doc, body)
            for ct, media in (body.get("content") or {}).items():
                schema = resolve(doc, media.get("schema") or {})
                if ct.startswith("application/json") and schema.get("additionalProperties") is not False:
                    problems.add(f"openapi.json: {name} request body ({ct}) lacks \"additionalProperties\": false")
                check_examples(doc, f"{name} request {ct}", media, problems)
    for name, schema in ((doc.get("components") or {}).get("schemas") or {}).items():
        if isinstance(schema, dict) and "example" in schema:
            for e in validate(doc, schema, schema["example"])[:5]:
                problems.add(f"openapi.json: components/schemas/{name} example: {e}")
    return ops


# ------------------------------------------------------------------ API.md

def sections(text):
    """{(METHOD, path): (line number, [lines outside code blocks])} and duplicates."""
    lines = text.splitlines()
    prose = []  # (line number, text or None inside a fence)
    fenced = False
    for i, line in enumerate(lines, 1):
        if FENCE.match(line):
            fenced = not fenced
            prose.append((i, None))
            continue
        prose.append((i, None if fenced else line))

    found, dups = {}, []
    for idx, (lineno, line) in enumerate(prose):
        m = HEADING.match(line) if line is not None else None
        if not m:
            continue
        level = len(m.group(1))
        key = (m.group(2), m.group(3))
        body = []
        for _, other in prose[idx + 1:]:
            if other is not None:
                h = ANY_HEADING.match(other)
                if h and len(h.group(1)) <= level:
                    break
            body.append(other if other is not None else "")
        if key in found:
            dups.append((key, lineno))
        else:
            found[key] = (lineno, body)
    return found, dups


def check_doc(ops, text, doc_name, problems):
    found, dups = sections(text)
    for (method, path), lineno in dups:
        problems.add(f"{doc_name}:{lineno}: second heading for `{method} {path}`")
    for key in sorted(ops):
        if key not in found:
            problems.add(f"{doc_name}: no heading for `{key[0]} {key[1]}` (it is in openapi.json)")
    for key, (lineno, _) in sorted(found.items()):
        if key not in ops:
            problems.add(f"{doc_name}:{lineno}: heading `{key[0]} {key[1]}` is not an operation in openapi.json")

    for key, (lineno, body) in sorted(found.items()):
        if key not in ops:
            continue
        listed = {c for c in (ops[key].get("responses") or {}) if re.fullmatch(r"\d{3}", c)}
        prose = "\n".join(body)
        for code in sorted(listed):
            # A bare number is not enough ("500 MB"): a status table row, `NNN`, or "HTTP NNN".
            mention = re.compile(rf"^\s*\|\s*`?{code}`?\s*\||`{code}`|\b(?:HTTP|[Ss]tatus|[Cc]ode)\s+{code}\b", re.M)
            if not mention.search(prose):
                problems.add(f"{doc_name}:{lineno}: section `{key[0]} {key[1]}` does not mention "
                             f"status {code}, which openapi.json lists for it (write it as a status "
                             f"table row '| {code} | ...', as `{code}`, or as 'HTTP {code}')")
        for line in body:
            m = TABLE_CODE.match(line)
            if m and m.group(1) not in listed:
                problems.add(f"{doc_name}:{lineno}: section `{key[0]} {key[1]}` documents status "
                             f"{m.group(1)}, which openapi.json does not list for it")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", default=os.path.join(ROOT, "src", "daemon", "openapi.json"))
    ap.add_argument("--doc", default=os.path.join(ROOT, "docs", "API.md"))
    args = ap.parse_args()

    problems = Problems()
    try:
        with open(args.spec, encoding="utf-8") as f:
            spec = json.load(f)
    except OSError as e:
        print(f"check_api_doc: cannot read {args.spec}: {e.strerror}", file=sys.stderr)
        return 1
    except (ValueError, UnicodeDecodeError) as e:
        print(f"check_api_doc: {args.spec} is not valid JSON: {e}", file=sys.stderr)
        return 1
    if not isinstance(spec, dict):
        print(f"check_api_doc: {args.spec} is not a JSON object", file=sys.stderr)
        return 1
    try:
        with open(args.doc, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        print(f"check_api_doc: cannot read {args.doc}: {e.strerror}", file=sys.stderr)
        return 1

    ops = check_spec(spec, problems)
    if ops:
        doc_name = os.path.relpath(args.doc, ROOT)
        if doc_name.startswith(".."):
            doc_name = args.doc
        check_doc(ops, text, doc_name, problems)
    if problems:
        for p in problems:
            print(f"check_api_doc: {p}", file=sys.stderr)
        print(f"check_api_doc: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("api doc ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
