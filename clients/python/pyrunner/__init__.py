"""Python client of pyrunner: run untrusted Python in a kernel sandbox and
get its value back, without ever unpickling or evaluating what comes back.

    from pyrunner import Client, RemoteExecutor, LocalExecutor

    Client("http://127.0.0.1:8000").run("print(1)").stdout      # '1\\n'
    with RemoteExecutor("http://127.0.0.1:8000") as ex:
        ex.execute_code("return 2 + 2")                          # (4, None)
    LocalExecutor().run("1 / 0")                                 # raises ZeroDivisionError
"""
__version__ = "0.1.0"

from .values import RemoteRepr, ValueDecodeError, ValueEncodeError, decode, encode  # noqa: E402
from .errors import (  # noqa: E402
    AuthenticationError, CLIError, CLIUsageError, ExecutionError, ExecutionKilled, ExecutionTimeout,
    InternalError, MemoryLimitExceeded, OutputLimitExceeded, ProgramExited, ProtocolError,
    PyrunnerConnectionError, PyrunnerError, PyrunnerHTTPError, PyrunnerNotFoundError,
    RateLimitedError, RemoteError, ResultError, ServiceUnavailableError, ValidationError,
    describe_error, exception_for_error_info, exception_for_result,
)
from .result import RunResult  # noqa: E402
from .client import DEFAULT_URL, Client, Session  # noqa: E402
from .executors import (  # noqa: E402
    BaseExecutor, LocalExecutor, RemoteExecutor, execute_python_code_with_result, find_pyrunner,
)

__all__ = [
    "__version__",
    # HTTP client and results
    "Client", "Session", "DEFAULT_URL", "RunResult",
    # executors
    "BaseExecutor", "RemoteExecutor", "LocalExecutor", "execute_python_code_with_result",
    "find_pyrunner",
    # values
    "encode", "decode", "RemoteRepr", "ValueEncodeError", "ValueDecodeError",
    # errors of the client and the service
    "PyrunnerError", "PyrunnerHTTPError", "AuthenticationError", "RateLimitedError",
    "ServiceUnavailableError", "ValidationError", "PyrunnerConnectionError", "ProtocolError",
    "CLIError", "CLIUsageError", "PyrunnerNotFoundError",
    # ends of a run
    "ExecutionError", "ExecutionTimeout", "MemoryLimitExceeded", "OutputLimitExceeded",
    "ExecutionKilled", "ProgramExited", "InternalError",
    # the program's exceptions
    "RemoteError", "ResultError",
    "describe_error", "exception_for_error_info", "exception_for_result",
]
