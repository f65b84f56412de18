"""The "Python Code Executors" interface over pyrunner.

``execute_code(code)`` runs `code` as the body of a function, as the seed
did (``return 2 + 2`` gives 4; a final expression statement gives its value
too) and returns ``(result, error)``: the program's value and None, or None
and the exception ``run(code)`` would raise (``ZeroDivisionError('division
by zero')``, ``ExecutionTimeout``, a ``RemoteError`` subclass...).

Unlike the seed, the value does not come back as a pickle: the sandbox
encodes it as plain JSON (``pyrunner.values``), and decoding it never runs
code. Objects without a JSON form come back as ``RemoteRepr`` (their repr).

``RemoteExecutor`` talks to a ``pyrunnerd``; ``LocalExecutor`` runs the
``pyrunner`` command (no daemon).
"""
import abc
import math
import os
import shutil
import subprocess
import tempfile

from .client import DEFAULT_URL, Client
from .errors import CLIError, CLIUsageError, ProtocolError, PyrunnerNotFoundError, ServiceUnavailableError
from .result import parse_run_result
from .values import ValueDecodeError

__all__ = ["BaseExecutor", "RemoteExecutor", "LocalExecutor", "execute_python_code_with_result",
           "find_pyrunner"]

# <repo>/build/src/cli/pyrunner, for a source checkout: this file is
# <repo>/clients/python/pyrunner/executors.py.
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_CHECKOUT_BIN = os.path.join(_REPO, "build", "src", "cli", "pyrunner")

# Seconds the CLI may take beyond the run's own timeout (zygote start and
# preloading, sandbox set-up and tear-down) before it is killed.
_CLI_SLACK = 60.0
_CLI_DEFAULT_TIMEOUT = 30.0


class BaseExecutor(abc.ABC):
    """Common interface: ``setup()``, ``cleanup()``, ``execute_code()``,
    ``run()``; a context manager (``with ... as ex:`` calls both)."""

    def __init__(self, timeout=None, memory_limit=None):
        self.timeout = timeout              # default seconds per run (None: the backend's)
        self.memory_limit = memory_limit    # MB per run (None: the backend's)

    def setup(self):
        """Checks that the backend is usable. Optional: the other methods
        work without it."""

    def cleanup(self):
        """Releases what setup() took. The executor stays usable."""

    def __enter__(self):
        self.setup()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.cleanup()
        return False

    @abc.abstractmethod
    def run_result(self, code, timeout=None):
        """Runs `code`; returns the full RunResult (stdout, stderr, status,
        times, the encoded value). Raises only when the code was not run."""

    def run(self, code, timeout=None):
        """Runs `code` and returns its value; raises the program's exception
        (ZeroDivisionError, a RemoteError subclass, ...) or ExecutionTimeout,
        MemoryLimitExceeded, ... when it did not succeed."""
        return self.run_result(code, timeout).unwrap()

    def execute_code(self, code, timeout=None):
        """Runs `code`; returns ``(value, None)`` or ``(None, error)`` where
        error is the exception instance run() would raise, not raised:
        ``ZeroDivisionError('division by zero')``, ``ExecutionTimeout``
        ("Execution timed out after 2 seconds"), a ``RemoteError``
        subclass, ``ValueDecodeError``. Raises only when the code could not
        be run at all (service unreachable, bad API key, invalid limits)."""
        rr = self.run_result(code, timeout)
        exc = rr.exception()
        if exc is not None:
            return None, exc
        try:
            return rr.value, None
        except ValueDecodeError as e:
            return None, e

    def execute_python_code_with_result(self, code, timeout=None):
        """The seed's legacy name of execute_code()."""
        return self.execute_code(code, timeout)


# ---------------------------------------------------------------------------

class RemoteExecutor(BaseExecutor):
    """Runs code on a pyrunnerd over HTTP.

    The HTTP API takes whole seconds: a fractional `timeout` is rounded up
    (0.5 -> 1)."""

    def __init__(self, url=DEFAULT_URL, api_key=None, memory_limit=None, timeout=None, client=None):
        super().__init__(timeout, memory_limit)
        self.client = client if client is not None else Client(url, api_key=api_key)
        self.capabilities = None

    def __repr__(self):
        return "RemoteExecutor(%r)" % (self.client.url,)

    def setup(self):
        """Asks the service for its health; raises ServiceUnavailableError
        unless it is healthy, PyrunnerConnectionError if it cannot be
        reached."""
        h = self.client.health()
        if h.get("status") != "healthy":
            raise ServiceUnavailableError(503, "service is %s: %s" % (h.get("status"), h.get("reason")))
        caps = h.get("capabilities")
        self.capabilities = caps if isinstance(caps, dict) else None

    def _timeout(self, timeout):
        t = timeout if timeout is not None else self.timeout
        if t is None or isinstance(t, bool) or not isinstance(t, (int, float)):
            return t
        if isinstance(t, float) and math.isfinite(t) and not t.is_integer():
            return max(1, math.ceil(t))
        return t

    def run_result(self, code, timeout=None):
        return self.client.run(code, timeout=self._timeout(timeout), memory_limit=self.memory_limit)


# ---------------------------------------------------------------------------

def find_pyrunner(path=None):
    """The pyrunner executable: `path`, else $PYRUNNER_BIN, else `pyrunner`
    on $PATH, else <repo>/build/src/cli/pyrunner of the source checkout
    this package sits in. Raises PyrunnerNotFoundError."""
    for given, what in ((path, "pyrunner_path"), (os.environ.get("PYRUNNER_BIN") or None, "$PYRUNNER_BIN")):
        if given is not None:
            given = os.fspath(given)
            if os.path.isfile(given) and os.access(given, os.X_OK):
                return given
            raise PyrunnerNotFoundError("%s %r is not an executable file" % (what, given))
    found = shutil.which("pyrunner")
    if found:
        return found
    if os.path.isfile(_CHECKOUT_BIN) and os.access(_CHECKOUT_BIN, os.X_OK):
        return _CHECKOUT_BIN
    raise PyrunnerNotFoundError("no pyrunner executable: pass pyrunner_path, set $PYRUNNER_BIN, "
                                "put pyrunner on $PATH, or build it (make build)")


def _number_arg(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError("%s must be a number, not %r" % (name, v))
    return str(int(v)) if float(v).is_integer() else repr(float(v))


class LocalExecutor(BaseExecutor):
    """Runs code through the local ``pyrunner`` command, one sandbox per run
    (no daemon). `preload` is a list of modules (or a comma-separated string,
    or ``"all"``) the CLI's zygote imports first; by default nothing is
    preloaded and the program imports what it uses."""

    def __init__(self, pyrunner_path=None, preload=None, memory_limit=None, timeout=None):
        super().__init__(timeout, memory_limit)
        self.pyrunner_path = pyrunner_path
        if preload is None or isinstance(preload, str):
            self.preload = preload
        else:
            items = [str(m) for m in preload]
            if any("," in m for m in items):
                raise ValueError("preload module names cannot contain ','")
            self.preload = ",".join(items)
        self._bin = None

    def __repr__(self):
        return "LocalExecutor(%r)" % (self._bin or self.pyrunner_path,)

    @property
    def binary(self):
        if self._bin is None:
            self._bin = find_pyrunner(self.pyrunner_path)
        return self._bin

    def setup(self):
        """Finds the pyrunner executable (PyrunnerNotFoundError if none)."""
        self.binary  # noqa: B018 -- resolves and caches the path

    def argv(self, timeout=None, stdin_path=None, memory_limit=None):
        """The command line of one run (the program goes on stdin)."""
        argv = [self.binary, "run", "--json"]
        t = timeout if timeout is not None else self.timeout
        if t is not None:
            argv += ["--timeout", _number_arg("timeout", t)]
        m = memory_limit if memory_limit is not None else self.memory_limit
        if m is not None:
            argv += ["--memory", _number_arg("memory_limit", m)]
        if self.preload is not None:
            argv += ["--preload", self.preload]
        if stdin_path is not None:
            argv += ["--stdin", stdin_path]
        argv.append("-")
        return argv

    def run_result(self, code, timeout=None, stdin=None, memory_limit=None):
        """Runs `code` with ``pyrunner run --json``; `stdin` (str or bytes)
        is fed to the program."""
        if not isinstance(code, str):
            raise TypeError("code must be a str, not %s" % type(code).__name__)
        t = timeout if timeout is not None else self.timeout
        stdin_file = None
        try:
            if stdin is not None:
                data = stdin.encode("utf-8") if isinstance(stdin, str) else bytes(stdin)
                fd, stdin_file = tempfile.mkstemp(prefix="pyrunner-stdin-")
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            argv = self.argv(t, stdin_file, memory_limit)
            wall = (float(t) if t is not None else _CLI_DEFAULT_TIMEOUT) + _CLI_SLACK
            try:
                p = subprocess.run(argv, input=code.encode("utf-8"), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, timeout=wall)
            except subprocess.TimeoutExpired:
                raise CLIError("pyrunner did not finish within %g s (killed)" % wall) from None
            except OSError as e:
                raise CLIError("cannot start %s: %s" % (argv[0], e)) from None
        finally:
            if stdin_file is not None:
                os.unlink(stdin_file)
        err = p.stderr.decode("utf-8", "replace").strip()
        try:
            return parse_run_result(p.stdout, requested_timeout=float(t) if t is not None else None)
        except ProtocolError as e:
            # Exit status 2 is also a program's own sys.exit(2); only without
            # a JSON result is it the CLI refusing its arguments or input.
            if p.returncode == 2:
                raise CLIUsageError(err or "pyrunner: bad usage", 2, err) from None
            raise CLIError("pyrunner gave no valid result (exit status %s): %s%s"
                           % (p.returncode, e, "; stderr: " + err[-500:] if err else ""),
                           p.returncode, err) from None


def execute_python_code_with_result(code, timeout=None):
    """The seed's legacy function: runs `code` with a LocalExecutor and
    returns ``(result, error)``."""
    return LocalExecutor().execute_code(code, timeout)
