"""HTTP client of pyrunnerd (standard library only: urllib)."""
import base64
import email.utils
import http.client
import ipaddress
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

from . import __version__
from .errors import (AuthenticationError, ProtocolError, PyrunnerConnectionError, PyrunnerHTTPError,
                     RateLimitedError, ServiceUnavailableError, ValidationError)
from .result import parse_run_result

__all__ = ["Client", "Session", "DEFAULT_URL"]

DEFAULT_URL = "http://127.0.0.1:8000"

# Extra seconds on top of a run's own timeout before the HTTP request gives
# up (queueing, sandbox start, sending the answer).
_SLACK = 30.0
_HEALTH_TIMEOUT = 10.0
# When the run's timeout is not given, the longest a server lets a run last.
_SERVER_MAX_TIMEOUT = 300.0

_ERROR_CLASSES = {401: AuthenticationError, 422: ValidationError, 429: RateLimitedError,
                  503: ServiceUnavailableError}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """pyrunnerd never redirects; following one would resend the API key
    (and turn the POST into a GET) to wherever the Location points."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _is_loopback(host):
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _parse_retry_after(value):
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _whole_seconds(value):
    """The API takes whole seconds/MB as JSON integers: 2.0 is sent as 2;
    anything else is sent as given and the server answers 422."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class Client:
    """A client of one pyrunnerd.

    ``url``      the service, e.g. ``http://127.0.0.1:8000`` (a path prefix
                 such as ``https://host/pyrunner`` is kept)
    ``api_key``  sent as ``Authorization: Bearer <key>`` when set
    ``timeout``  seconds to wait for an HTTP answer; by default a run waits
                 its own timeout plus 30 s, ``health()`` 10 s
    ``max_response_bytes``  a longer answer is refused (ProtocolError)

    HTTP errors raise ``PyrunnerHTTPError`` subclasses, network failures
    ``PyrunnerConnectionError``. A run that raised, timed out or hit a limit
    is not an error here: ``run()`` returns its ``RunResult``.

    Environment proxies (``http_proxy``, ``no_proxy``) are used, except for a
    loopback host, which is always reached directly.
    """

    def __init__(self, url=DEFAULT_URL, api_key=None, timeout=None, max_response_bytes=64 << 20):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be http://HOST[:PORT] or https://..., not %r" % (url,))
        if parts.query or parts.fragment:
            raise ValueError("url must not have a query or fragment: %r" % (url,))
        if api_key is not None and (not isinstance(api_key, str) or not api_key
                                    or any(c in api_key for c in "\r\n")):
            raise ValueError("api_key must be a non-empty string without line breaks")
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        handlers = [_NoRedirect()]
        if _is_loopback(parts.hostname):
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self):
        return "Client(%r%s)" % (self.url, ", api_key=..." if self.api_key else "")

    # ---- routes ----

    def health(self):
        """``GET /``: the health and capabilities object (a dict). Answered
        also while the service is not healthy (503): look at ``["status"]``
        (``healthy``, ``starting``, ``degraded``, ``draining``) and
        ``["reason"]``."""
        status, headers, body = self._request("GET", "/", None,
                                              self.timeout if self.timeout is not None else _HEALTH_TIMEOUT,
                                              accept=(200, 503))
        d = self._json(body, "health answer")
        if not isinstance(d, dict) or not isinstance(d.get("status"), str):
            if status != 200:
                raise self._http_error(status, headers, body)
            raise ProtocolError("health answer is not a JSON object with a status")
        return d

    def run(self, code, timeout=None, memory_limit=None, stdin=None, files=None, return_files=None,
            on_stdout=None, on_stderr=None, on_output=None):
        """``POST /run``: runs `code` in a fresh sandbox and returns its
        ``RunResult`` whatever the program did. `timeout` (whole seconds,
        1..300) and `memory_limit` (MB, 64..2048) default to the server's
        defaults; `stdin` (str) is fed to the program. `files` maps paths
        below the working directory to str or bytes, written before the
        code runs; `return_files` (True, or a list of glob patterns) asks
        for files back in ``RunResult.files``.

        With any of `on_stdout(text)`, `on_stderr(text)` or
        `on_output(item)` (a ``{"data": {MIME: content}}`` display item) the
        run streams (Server-Sent Events): each is called as the program
        writes or displays, before ``run()`` returns. An exception in one
        ends the request, and the server then stops the run."""
        return self._run("/run", code, timeout, memory_limit, stdin, files, return_files,
                         _handlers(on_stdout, on_stderr, on_output))

    def session(self, memory_limit=None, idle_timeout=None):
        """``POST /sessions``: a ``Session``, whose cells share their state.
        Use it as a context manager, which deletes it at exit."""
        body = {}
        if memory_limit is not None:
            body["memory_limit"] = _whole_seconds(memory_limit)
        if idle_timeout is not None:
            body["idle_timeout"] = _whole_seconds(idle_timeout)
        wait = self.timeout if self.timeout is not None else _HEALTH_TIMEOUT
        _, _, raw = self._request("POST", "/sessions", json.dumps(body).encode(), wait, accept=(201,))
        d = self._json(raw, "session")
        if not isinstance(d, dict) or not isinstance(d.get("session_id"), str) or \
                not all(c in "0123456789abcdef" for c in d["session_id"]):
            raise ProtocolError("session answer has no valid session_id")
        return Session(self, d["session_id"], d)

    def _run(self, path, code, timeout, memory_limit, stdin, files, return_files, handlers=None):
        if not isinstance(code, str):
            raise TypeError("code must be a str, not %s" % type(code).__name__)
        body = {"code": code}
        if timeout is not None:
            body["timeout"] = _whole_seconds(timeout)
        if memory_limit is not None:
            body["memory_limit"] = _whole_seconds(memory_limit)
        if stdin is not None:
            if isinstance(stdin, (bytes, bytearray)):
                stdin = bytes(stdin).decode("utf-8")
            body["stdin"] = stdin
        if files:
            body["files"] = _encode_files(files)
        if return_files:
            body["return_files"] = return_files if return_files is True else list(return_files)
        data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
        if self.timeout is not None:
            wait = self.timeout
        else:
            run_timeout = timeout if isinstance(timeout, (int, float)) and timeout > 0 else _SERVER_MAX_TIMEOUT
            wait = float(run_timeout) + _SLACK
        _, _, raw = self._request("POST", path, data, wait, handlers=handlers)
        try:
            requested = float(timeout) if timeout is not None else None
        except (TypeError, ValueError):
            requested = None
        return parse_run_result(raw, requested_timeout=requested)

    # ---- plumbing ----

    def _json(self, body, what):
        try:
            return json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            raise ProtocolError("%s is not valid JSON: %s" % (what, type(e).__name__)) from None

    def _read(self, resp):
        data = resp.read(self.max_response_bytes + 1)
        if len(data) > self.max_response_bytes:
            raise ProtocolError("answer longer than %d bytes" % self.max_response_bytes)
        return data

    def _http_error(self, status, headers, body):
        detail = None
        try:
            d = json.loads(body.decode("utf-8"))
            if isinstance(d, dict):
                detail = d.get("detail")
        except (ValueError, UnicodeDecodeError, RecursionError):
            pass
        if detail is None and body:
            detail = body[:300].decode("utf-8", "replace")
        cls = _ERROR_CLASSES.get(status, PyrunnerHTTPError)
        return cls(status, detail, _parse_retry_after(headers.get("Retry-After")),
                   headers.get("X-Request-Id"), body)

    def _events(self, resp, handlers):
        """Reads a text/event-stream reply, calling handlers by event name:
        the data of its last event, ``result``, is the reply."""
        left = self.max_response_bytes
        name, data = "message", []
        while True:
            line = resp.readline(left + 1)
            left -= len(line)
            if left < 0:
                raise ProtocolError("answer longer than %d bytes" % self.max_response_bytes)
            if not line:
                raise ProtocolError("the event stream ended without a result")
            line = line.rstrip(b"\r\n")
            if line.startswith(b":"):
                continue
            if line:
                field, _, value = line.partition(b":")
                value = value[1:] if value.startswith(b" ") else value
                if field == b"event":
                    name = value.decode("utf-8", "replace")
                elif field == b"data":
                    data.append(value)
                continue
            body, event = b"\n".join(data), name
            name, data = "message", []
            if event == "result":
                return body
            if event == "error":
                d = self._json(body, "error event")
                status = d.get("status") if isinstance(d, dict) else None
                raise self._http_error(status if isinstance(status, int) else 500, resp.headers, body)
            handler = handlers.get(event)
            if handler:
                d = self._json(body, "%s event" % event)
                if not isinstance(d, dict):
                    raise ProtocolError("%s event is not a JSON object" % event)
                if event in ("stdout", "stderr"):
                    if not isinstance(d.get("text"), str):
                        raise ProtocolError("%s event has no text" % event)
                    d = d["text"]
                handler(d)

    def _request(self, method, path, data, wait, accept=(200,), handlers=None):
        headers = {"Accept": "text/event-stream" if handlers else "application/json",
                   "User-Agent": "pyrunner-client/" + __version__}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = "Bearer " + self.api_key
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            try:
                resp = self._opener.open(req, timeout=wait)
            except urllib.error.HTTPError as e:
                with e:
                    body = self._read(e)
                    if e.code in accept:
                        return e.code, e.headers, body
                    raise self._http_error(e.code, e.headers, body) from None
            with resp:
                if handlers and resp.status in accept and \
                        resp.headers.get_content_type() == "text/event-stream":
                    return resp.status, resp.headers, self._events(resp, handlers)
                body = self._read(resp)
                if resp.status not in accept:
                    raise self._http_error(resp.status, resp.headers, body)
                return resp.status, resp.headers, body
        except urllib.error.URLError as e:
            reason = e.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise PyrunnerConnectionError("no answer from %s within %g s" % (self.url, wait)) from None
            raise PyrunnerConnectionError("cannot reach %s: %s" % (self.url, reason)) from None
        except (socket.timeout, TimeoutError):
            raise PyrunnerConnectionError("no answer from %s within %g s" % (self.url, wait)) from None
        except (http.client.HTTPException, ConnectionError, OSError) as e:
            raise PyrunnerConnectionError("connection to %s failed: %s: %s"
                                          % (self.url, type(e).__name__, e)) from None


def _handlers(on_stdout, on_stderr, on_output):
    """The event handlers of a streamed run, or None: not streamed."""
    h = {name: fn for name, fn in (("stdout", on_stdout), ("stderr", on_stderr), ("output", on_output)) if fn}
    for name, fn in h.items():
        if not callable(fn):
            raise TypeError("on_%s must be callable" % name)
    return h or None


def _encode_files(files):
    """{path: str | bytes} as the API's [{"path", "content", "encoding"}]."""
    out = []
    for path, data in dict(files).items():
        if isinstance(data, str):
            out.append({"path": path, "content": data})
        elif isinstance(data, (bytes, bytearray, memoryview)):
            out.append({"path": path, "content": base64.b64encode(bytes(data)).decode("ascii"),
                        "encoding": "base64"})
        else:
            raise TypeError("file %r must be str or bytes, not %s" % (path, type(data).__name__))
    return out


class Session:
    """A sandbox kept alive on the server (``Client.session()``): each
    ``run()`` is a cell in the same ``__main__`` and ``/tmp``. ``close()``
    (or leaving a ``with`` block) deletes it. ``info`` is the server's
    answer when it was made."""

    def __init__(self, client, session_id, info):
        self.client = client
        self.id = session_id
        self.info = info
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False

    def run(self, code, timeout=None, files=None, return_files=None, on_stdout=None, on_stderr=None,
            on_output=None):
        """``POST /sessions/{id}/run``: a cell; returns its ``RunResult``
        (``raw["session_ended"]`` says whether the session ended with it).
        The callbacks stream it, as in ``Client.run()``."""
        return self.client._run("/sessions/%s/run" % self.id, code, timeout, None, None, files, return_files,
                                _handlers(on_stdout, on_stderr, on_output))

    def interrupt(self):
        """Stops the running cell, as its timeout would. False if none ran."""
        status, _, _ = self.client._request("POST", "/sessions/%s/interrupt" % self.id, b"{}",
                                            _HEALTH_TIMEOUT, accept=(200, 409))
        return status == 200

    def close(self):
        if not self.closed:
            self.closed = True
            self.client._request("DELETE", "/sessions/%s" % self.id, None, _HEALTH_TIMEOUT, accept=(204, 404))
