"""RunResult: one run's answer, from ``POST /run`` or ``pyrunner run --json``."""
import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from .errors import ProtocolError, exception_for_result
from .values import LIMITS, ValueDecodeError, decode

__all__ = ["RunResult", "parse_run_result", "STATUSES"]

STATUSES = ("success", "error", "timeout", "memory_exceeded", "output_limit", "killed",
            "internal_error")

_UNSET = object()


@dataclass
class RunResult:
    """Everything about one run, as the server (or the CLI) sent it.

    ``result`` is the program's value *as encoded* (plain JSON, never
    evaluated); ``value`` decodes it on first use. ``ok`` is True when the
    status is ``success``. ``raise_for_error()`` raises the exception of a
    run that did not succeed; ``unwrap()`` does that, then returns ``value``.
    """

    status: str
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    exit_code: Optional[int] = None
    signal: Optional[int] = None
    execution_time: float = 0.0
    cpu_time: float = 0.0
    memory_used: float = 0.0
    error: Optional[str] = None
    error_info: Optional[dict] = None
    result: Any = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)
    # The timeout the caller asked for (seconds), for the timeout message.
    requested_timeout: Optional[float] = field(default=None, repr=False, compare=False)
    # Why `result` could not even be parsed (then `value` raises).
    result_problem: Optional[str] = field(default=None, repr=False, compare=False)
    _value: Any = field(default=_UNSET, init=False, repr=False, compare=False)

    @property
    def ok(self):
        return self.status == "success"

    @property
    def outputs(self):
        """The rich outputs, in order: each ``{"data": {MIME: content}}``."""
        items = self.raw.get("outputs")
        return [o for o in items if isinstance(o, dict) and isinstance(o.get("data"), dict)] \
            if isinstance(items, list) else []

    @property
    def images(self):
        """The PNG bytes of each image output (plots), in order."""
        out = []
        for o in self.outputs:
            png = o["data"].get("image/png")
            if isinstance(png, str):
                try:
                    out.append(base64.b64decode(png, validate=True))
                except (binascii.Error, ValueError):
                    raise ProtocolError("an image output is not base64") from None
        return out

    @property
    def files(self):
        """The returned files, path -> bytes (``return_files``)."""
        out = {}
        for f in self.raw.get("files") or ():
            if not (isinstance(f, dict) and isinstance(f.get("path"), str) and isinstance(f.get("content"), str)):
                raise ProtocolError("a returned file is malformed")
            try:
                out[f["path"]] = base64.b64decode(f["content"], validate=True)
            except (binascii.Error, ValueError):
                raise ProtocolError("returned file %r is not base64" % f["path"]) from None
        return out

    @property
    def value(self):
        """The program's value, decoded with ``values.decode`` (None when it
        gave none). Raises ``ValueDecodeError`` if the encoded value is not
        valid, whatever the server sent."""
        if self._value is _UNSET:
            if self.result_problem is not None:
                raise ValueDecodeError(self.result_problem)
            if self.result is None:
                v = None
            else:
                try:
                    v = decode(self.result)
                except ValueDecodeError:
                    raise
                except RecursionError:
                    raise ValueDecodeError("result nested too deeply") from None
            self._value = v
        return self._value

    def exception(self):
        """The exception this run's outcome maps to, or None on success."""
        return exception_for_result(self, self.requested_timeout)

    def raise_for_error(self):
        exc = self.exception()
        if exc is not None:
            raise exc

    def unwrap(self):
        self.raise_for_error()
        return self.value

    @classmethod
    def from_dict(cls, d, requested_timeout=None, result_problem=None):
        """Builds a RunResult from a decoded JSON object, checking the types
        of the fields the API describes (unknown fields are kept in raw)."""
        if not isinstance(d, dict):
            raise ProtocolError("run result is not a JSON object")
        kw = {}
        for name, types, required in _FIELDS:
            if name not in d:
                if required:
                    raise ProtocolError("run result has no %r field" % name)
                continue
            v = d[name]
            if v is None and name in _NULLABLE:
                kw[name] = None
                continue
            if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
                raise ProtocolError("run result field %r has the wrong type (%s)"
                                    % (name, type(v).__name__))
            kw[name] = v
        if "result" in d:
            kw["result"] = d["result"]
        return cls(raw=d, requested_timeout=requested_timeout, result_problem=result_problem, **kw)


_FIELDS = [
    ("status", (str,), True),
    ("stdout", (str,), False),
    ("stderr", (str,), False),
    ("stdout_truncated", (bool,), False),
    ("stderr_truncated", (bool,), False),
    ("exit_code", (int,), False),
    ("signal", (int,), False),
    ("execution_time", (int, float), False),
    ("cpu_time", (int, float), False),
    ("memory_used", (int, float), False),
    ("error", (str,), False),
    ("error_info", (dict,), False),
]
_NULLABLE = {"exit_code", "signal", "error", "error_info"}

# Tokens of a JSON text that matter for finding the top-level members.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]', re.S)


def _null_result_member(text):
    """`text` with the value of every top-level "result" member replaced by
    null, or None if there is none (an iterative scan: no recursion)."""
    depth = 0
    spans = []
    start = None            # just after the ':' of a top-level "result"
    last_string = None      # the last string token seen at depth 1
    for m in _TOKENS.finditer(text):
        tok = m.group()
        if tok[0] == '"':
            last_string = tok if depth == 1 else None
        elif tok == ":":
            if depth == 1 and start is None and last_string is not None:
                try:
                    key = json.loads(last_string)
                except ValueError:
                    key = None
                if key == "result":
                    start = m.end()
            last_string = None
        else:
            last_string = None
            if tok in "[{":
                depth += 1
            elif tok in "]}":
                depth -= 1
            if start is not None and ((tok == "," and depth == 1) or (tok == "}" and depth == 0)):
                spans.append((start, m.start()))
                start = None
    if not spans:
        return None
    out, last = [], 0
    for a, b in spans:
        out.append(text[last:a])
        out.append(" null")
        last = b
    out.append(text[last:])
    return "".join(out)


# Strings hold no structure: what is left shows how many objects and
# arrays json.loads would build, before it builds any. A value within
# values.LIMITS has at most two per item (a tag and its items), as the
# server checks too.
_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
MAX_CONTAINERS = 2 * LIMITS["max_items"] + 8


def _containers(text):
    bare = _STRINGS.sub("", text)
    return bare.count("{") + bare.count("[")


def _without_last_result(text):
    """`text` with a last member "result" (where pyrunnerd puts it) made
    null, if that is what it is: the head then parses alone. Else None."""
    i = text.rfind('"result":')
    if i < 0:
        return None
    head = text[:i] + '"result":null}'
    try:
        json.loads(head)
    except (ValueError, RecursionError):
        return None
    return head


def parse_run_result(body, requested_timeout=None):
    """A RunResult from the bytes of a JSON answer. A ``result`` nested too
    deeply for the json module, or with more objects and arrays than
    MAX_CONTAINERS, does not sink the whole answer: it is dropped, and
    ``value`` then raises ValueDecodeError."""
    try:
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
    except UnicodeDecodeError:
        raise ProtocolError("run result is not UTF-8") from None
    problem = None
    if _containers(text) > MAX_CONTAINERS:
        stripped = _without_last_result(text) or _null_result_member(text)
        if stripped is None or _containers(stripped) > MAX_CONTAINERS:
            raise ProtocolError("run result has more than %d objects and arrays" % MAX_CONTAINERS)
        text, problem = stripped, "result has more than %d objects and arrays" % MAX_CONTAINERS
    try:
        d = json.loads(text)
    except RecursionError:
        stripped = _null_result_member(text)
        if stripped is None:
            raise ProtocolError("run result nested too deeply") from None
        try:
            d = json.loads(stripped)
        except (RecursionError, ValueError):
            raise ProtocolError("run result nested too deeply") from None
        problem = "result nested too deeply to parse"
    except ValueError as e:
        raise ProtocolError("run result is not valid JSON: %s" % e) from None
    return RunResult.from_dict(d, requested_timeout=requested_timeout, result_problem=problem)
