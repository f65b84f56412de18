"""Exceptions of the pyrunner client, and how a run's outcome becomes one.

Two families:

* errors of the client and the service (``PyrunnerError`` and below): the
  code was not run, the server said something the API does not describe, or
  the run ended without an exception of its own (timeout, memory limit,
  output limit, killed, internal error, ``sys.exit(n)``);
* the program's own exception, rebuilt from the run's ``error_info``
  (``exception_for_error_info``): a built-in exception type is raised as
  itself (``ZeroDivisionError('division by zero')``), anything else as a
  ``RemoteError`` subclass named after the remote type.

Nothing the server sends is ever evaluated, imported or unpickled: a remote
type name is only looked up in a table of the built-in exception classes
made when this module is imported, or used as the *name* of a new empty
class.
"""
import builtins
import keyword
import threading

__all__ = [
    "PyrunnerError", "PyrunnerHTTPError", "AuthenticationError", "RateLimitedError",
    "ServiceUnavailableError", "ValidationError", "PyrunnerConnectionError", "ProtocolError",
    "CLIError", "CLIUsageError", "PyrunnerNotFoundError",
    "ExecutionError", "ExecutionTimeout", "MemoryLimitExceeded", "OutputLimitExceeded",
    "ExecutionKilled", "ProgramExited", "InternalError",
    "RemoteError", "ResultError", "BUILTIN_EXCEPTIONS",
    "exception_for_error_info", "exception_for_result", "describe_error",
]


# ---------------------------------------------------------------------------
# errors of the client and the service

class PyrunnerError(Exception):
    """Base of every error the client itself raises (not of the program's
    own exceptions, which keep their types)."""


def _short(text, limit=300):
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "..."


class PyrunnerHTTPError(PyrunnerError):
    """The server answered with an HTTP error: the code was not run.

    ``status``       the HTTP status code (e.g. 413)
    ``detail``       the ``detail`` of the JSON error body (a string, or for
                     422 the list of problems), or the start of the body text
    ``retry_after``  seconds from the ``Retry-After`` header, or None
    ``request_id``   the ``X-Request-Id`` header (quote it in bug reports)
    """

    def __init__(self, status, detail=None, retry_after=None, request_id=None, body=None):
        super().__init__(status, detail)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        self.request_id = request_id
        self.body = body

    def _detail_text(self):
        return _short(self.detail) if self.detail not in (None, "") else "(no detail)"

    def __str__(self):
        s = "HTTP %s: %s" % (self.status, self._detail_text())
        if self.retry_after is not None:
            s += " (retry after %g s)" % self.retry_after
        if self.request_id:
            s += " [request %s]" % self.request_id
        return s


class AuthenticationError(PyrunnerHTTPError):
    """401: the server has API keys and ours is missing or wrong."""


class RateLimitedError(PyrunnerHTTPError):
    """429: rate limit or full run queue; wait ``retry_after`` seconds."""


class ServiceUnavailableError(PyrunnerHTTPError):
    """503: the service is starting, failed its self-test, or is draining."""


class ValidationError(PyrunnerHTTPError, ValueError):
    """422: a request field is missing, mistyped, unknown or out of range.

    ``field``       the field named by the server (e.g. ``"timeout"``), or None
    ``error_type``  ``missing``, ``type_error``, ``value_error`` or
                    ``extra_forbidden``
    ``message``     the server's text for people
    """

    def __init__(self, status, detail=None, retry_after=None, request_id=None, body=None):
        super().__init__(status, detail, retry_after, request_id, body)
        self.field = self.error_type = self.message = None
        first = detail[0] if isinstance(detail, list) and detail else None
        if isinstance(first, dict):
            loc = first.get("loc")
            if isinstance(loc, list) and loc and isinstance(loc[-1], str):
                self.field = loc[-1]
            if isinstance(first.get("type"), str):
                self.error_type = first["type"]
            if isinstance(first.get("msg"), str):
                self.message = first["msg"]

    def _detail_text(self):
        if self.field is None and self.message is None:
            return super()._detail_text()
        return "%s: %s (%s)" % (self.field or "?", _short(self.message or "invalid"),
                                self.error_type or "?")


class PyrunnerConnectionError(PyrunnerError, ConnectionError):
    """The server could not be reached, or the connection broke or timed
    out before a complete answer came back."""


class ProtocolError(PyrunnerError):
    """The server's (or the CLI's) answer is not what the API describes:
    not JSON, a field of the wrong type, too large, too deeply nested."""


class CLIError(PyrunnerError):
    """The local ``pyrunner`` command failed to give a result.

    ``returncode`` and ``stderr`` are the command's, when it ran."""

    def __init__(self, message, returncode=None, stderr=None):
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


class CLIUsageError(CLIError, ValueError):
    """``pyrunner`` refused its arguments or input (exit status 2), e.g. a
    timeout or memory limit out of range. The message is the CLI's."""


class PyrunnerNotFoundError(CLIError, FileNotFoundError):
    """No ``pyrunner`` executable was found."""


# ---------------------------------------------------------------------------
# ends of a run that are not an exception of the program

class ExecutionError(PyrunnerError):
    """The run ended without an exception of its own. ``run_result`` is the
    full ``RunResult`` (stdout, stderr, times, ...)."""

    def __init__(self, message, run_result=None):
        super().__init__(message)
        self.run_result = run_result


class ExecutionTimeout(ExecutionError, TimeoutError):
    """status ``timeout``: the wall timeout passed and the sandbox was killed."""


class MemoryLimitExceeded(ExecutionError, MemoryError):
    """status ``memory_exceeded``: the sandbox hit its memory limit."""


class OutputLimitExceeded(ExecutionError):
    """status ``output_limit``: stdout or stderr passed its cap."""


class ExecutionKilled(ExecutionError):
    """status ``killed``: ended by a signal, or cancelled."""


class ProgramExited(ExecutionError):
    """status ``error`` without an exception: the program exited with a
    non-zero status (``sys.exit(3)``). ``exit_code`` is that status."""

    def __init__(self, message, run_result=None, exit_code=None):
        super().__init__(message, run_result)
        self.exit_code = exit_code


class InternalError(ExecutionError):
    """status ``internal_error`` (the service failed, not the program), or a
    status this client does not know."""


# ---------------------------------------------------------------------------
# the program's own exceptions

class RemoteError(Exception):
    """An exception raised by the sandboxed program whose type is not a
    built-in one. The class of the instance is a subclass of RemoteError
    named after the remote type (``MyErr``), made here: it is not, and never
    becomes, the program's class.

    ``remote_type``, ``remote_module``   the exception's type name and module
    ``remote_message``                   ``str()`` of the exception
    ``remote_traceback``                 the traceback text (user frames)
    ``line``                             the line of the program, or None
    ``run_result``                       the full ``RunResult``
    """

    def __init__(self, message="", remote_type=None, remote_module=None, remote_traceback=None,
                 line=None, run_result=None):
        super().__init__(message)
        _attach(self, message, remote_type, remote_module, remote_traceback, line, run_result)


class ResultError(RemoteError):
    """The program ran, but its value could not be sent back (too large,
    too deeply nested, a cycle): ``error_info`` type ``ResultError`` of
    module ``pyrunner``."""


# Built-in exception classes by name, fixed when this module is imported.
# Only these names are ever turned into a real class.
BUILTIN_EXCEPTIONS = {name: obj for name, obj in vars(builtins).items()
                      if isinstance(obj, type) and issubclass(obj, BaseException)}

_MAX_NAME = 200
_MAX_CACHED = 1024
_class_cache = {}
_class_lock = threading.Lock()


def _valid_name(name):
    return (isinstance(name, str) and 0 < len(name) <= _MAX_NAME and name.isidentifier()
            and not keyword.iskeyword(name))


def _remote_class(name, base=None):
    """The RemoteError subclass named `name` (a validated identifier),
    optionally also deriving from the built-in exception class `base`;
    cached by (name, base)."""
    key = (name, base)
    with _class_lock:
        cls = _class_cache.get(key)
    if cls is not None:
        return cls
    bases = (RemoteError,) if base is None else (RemoteError, base)
    ns = {"__module__": "pyrunner.remote", "__qualname__": name,
          "__doc__": "Remote exception type %r (a stand-in made by the pyrunner client)." % name}
    try:
        cls = type(name, bases, ns)
    except TypeError:                   # layout conflict with `base`
        cls = type(name, (RemoteError,), ns)
    with _class_lock:
        if len(_class_cache) < _MAX_CACHED:
            cls = _class_cache.setdefault(key, cls)
    return cls


def _attach(exc, message, remote_type, remote_module, remote_traceback, line, run_result):
    exc.remote_type = remote_type
    exc.remote_module = remote_module
    exc.remote_message = message
    exc.remote_traceback = remote_traceback
    exc.line = line
    exc.run_result = run_result
    if remote_traceback and hasattr(exc, "add_note") and not getattr(exc, "_pyrunner_noted", False):
        exc._pyrunner_noted = True
        exc.add_note("Remote traceback (in the sandbox):\n" + remote_traceback.rstrip("\n"))


def _text(v):
    if v is None:
        return ""
    return v if isinstance(v, str) else str(v)


def exception_for_error_info(info, run_result=None):
    """The exception to raise for a run's ``error_info`` (a dict from the
    server; untrusted). Never raises itself, never calls anything named by
    the server."""
    if not isinstance(info, dict):
        info = {}
    rtype = info.get("type") if isinstance(info.get("type"), str) else None
    module = info.get("module") if isinstance(info.get("module"), str) else None
    message = _text(info.get("message"))
    tb = info.get("traceback") if isinstance(info.get("traceback"), str) else None
    line = info.get("line")
    if not isinstance(line, int) or isinstance(line, bool):
        line = None
    args = (message, rtype, module, tb, line, run_result)

    # The sandbox's own report that the value could not be encoded (module
    # "pyrunner"); a program's own class named ResultError is not it.
    if rtype == "ResultError" and module in (None, "pyrunner"):
        return ResultError(*args)

    if module == "builtins" and rtype in BUILTIN_EXCEPTIONS:
        cls = BUILTIN_EXCEPTIONS[rtype]
        # SystemExit, KeyboardInterrupt, GeneratorExit, BaseException(Group)
        # would escape `except Exception` in the caller and could stop it:
        # they come back as RemoteError subclasses of that name instead.
        if issubclass(cls, Exception):
            try:
                exc = cls(message)
            except Exception:           # e.g. UnicodeDecodeError, ExceptionGroup need more args
                exc = None
            if exc is not None:
                _attach(exc, *args)
                return exc
            # A stand-in that is still caught by the nearest base that takes
            # a message (UnicodeDecodeError -> RemoteError + UnicodeError).
            base = next((b for b in cls.__mro__[1:] if b is not Exception
                         and BUILTIN_EXCEPTIONS.get(b.__name__) is b and issubclass(b, Exception)), None)
            return _remote_class(rtype, base)(*args)

    if _valid_name(rtype):
        return _remote_class(rtype)(*args)
    return RemoteError(*args)


def _timeout_text(run_result, timeout):
    if timeout is not None:
        return "Execution timed out after %g seconds" % timeout
    return _text(getattr(run_result, "error", None)) or "Execution timed out"


def exception_for_result(run_result, timeout=None):
    """The exception for a RunResult that is not a success, or None. `timeout`
    (the seconds asked for) words the timeout message as the seed did."""
    rr = run_result
    status = rr.status
    summary = _text(rr.error)
    if status == "success":
        return None
    if status == "error":
        if isinstance(rr.error_info, dict):
            return exception_for_error_info(rr.error_info, rr)
        return ProgramExited(summary or "the program failed (exit code %s)" % rr.exit_code,
                             rr, rr.exit_code)
    if status == "timeout":
        return ExecutionTimeout(_timeout_text(rr, timeout), rr)
    if status == "memory_exceeded":
        return MemoryLimitExceeded(summary or "Memory limit exceeded", rr)
    if status == "output_limit":
        return OutputLimitExceeded(summary or "Output limit exceeded", rr)
    if status == "killed":
        return ExecutionKilled(summary or "The run was killed (signal %s)" % rr.signal, rr)
    if status == "internal_error":
        return InternalError(summary or "pyrunner internal error", rr)
    return InternalError("unknown run status %r%s" % (_short(status, 60), ": " + summary if summary else ""), rr)


def describe_error(exc):
    """One line for logs about the error of ``execute_code()``:
    ``"ZeroDivisionError: division by zero"`` for the program's exceptions,
    the message for the other ends (``"Execution timed out after 2
    seconds"``)."""
    rtype = getattr(exc, "remote_type", None)
    if rtype is not None or isinstance(exc, RemoteError):
        name = rtype or type(exc).__name__
        msg = getattr(exc, "remote_message", None)
        if msg is None:
            msg = str(exc)
        return "%s: %s" % (name, msg) if msg else name
    if isinstance(exc, ExecutionError):
        return str(exc)
    msg = str(exc)
    return "%s: %s" % (type(exc).__name__, msg) if msg else type(exc).__name__
