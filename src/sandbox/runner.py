# The in-sandbox half of pyrunner. Compiled into the zygote; runs in pid 2
# after seccomp. It reads one "run" frame on fd 3, runs the code as
# __main__, and answers one "result" frame. Nothing here is trusted by the
# engine: user code can replace any of it, and only harms its own result.
import ast
import base64
import builtins
import fnmatch
import io
import json
import linecache
import os
import resource
import stat
import sys
import threading
import traceback

_CTL = 3
_FILENAME = "<main>"
_RESULT = "__pyrunner_result__"
_FUNC = "__pyrunner_main__"
_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "MPLCONFIGDIR": "/tmp",
    "MPLBACKEND": "module://_pyrunner_mpl",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "NUMEXPR_MAX_THREADS": "1",
}


def _read_exact(n):
    buf = b""
    while len(buf) < n:
        chunk = os.read(_CTL, n - len(buf))
        if not chunk:
            raise EOFError("control channel closed")
        buf += chunk
    return buf


def _dumps(obj):
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


_send_lock = threading.Lock()


def _send(obj, tail=None, wait_ack=False):
    # A frame's body (a result's value, a display bundle, a file's base64)
    # travels after the header's line: the engine checks its text and passes
    # it on without parsing it (docs/ARCHITECTURE.md).
    text = _dumps(obj) if tail is None else _dumps(obj) + "\n" + tail
    data = text.encode("utf-8", "replace")
    msg = len(data).to_bytes(4, "big") + data
    # A cell's interrupt must not cut a frame in half: the stream would
    # then be lost, and the session with it.
    signal = sys.modules.get("signal")
    main = threading.current_thread() is threading.main_thread()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT]) if signal and main else None
    try:
        with _send_lock:
            view = memoryview(msg)
            while view:
                n = os.write(_CTL, view)
                view = view[n:]
            while wait_ack and _read_frame().get("type") != "ack":
                pass
    finally:
        if old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


# Rich display (docs/API.md, "outputs"): IPython's protocol, as Jupyter's
# display_data. Binary types travel in base64, text types as text.
_REPRS = (("_repr_png_", "image/png"), ("_repr_jpeg_", "image/jpeg"), ("_repr_svg_", "image/svg+xml"),
          ("_repr_html_", "text/html"), ("_repr_markdown_", "text/markdown"), ("_repr_latex_", "text/latex"),
          ("_repr_json_", "application/json"))
_BINARY = ("image/png", "image/jpeg")
_limits = {"max_outputs": 100, "max_outputs_bytes": 16 << 20, "max_files": 100, "max_file_bytes": 8 << 20,
           "max_files_bytes": 16 << 20}
_n_outputs = 0


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _is_figure(obj):
    figure = sys.modules.get("matplotlib.figure")
    return figure is not None and isinstance(obj, figure.Figure)


def _bundle(obj):
    data = {}
    if _is_figure(obj):
        buf = io.BytesIO()
        obj.savefig(buf, format="png")
        data["image/png"] = _b64(buf.getvalue())
    for name, mime in _REPRS:
        try:
            method = getattr(obj, name, None)
            value = method() if callable(method) and not isinstance(obj, type) else None
        except Exception:
            continue
        if isinstance(value, tuple) and len(value) == 2:
            value = value[0]  # (data, metadata)
        if value is None:
            continue
        if mime in _BINARY and isinstance(value, (bytes, bytearray)):
            value = _b64(value)
        elif mime == "application/json":
            try:
                _dumps(value)
            except (TypeError, ValueError):
                continue
        elif not isinstance(value, str):
            continue
        data.setdefault(mime, value)
    try:
        data["text/plain"] = repr(obj)[:65536]
    except Exception:
        data["text/plain"] = "<unprintable %s>" % type(obj).__name__
    return data


def display(*objs, **kwargs):
    """Shows each object as a rich output item (IPython's display())."""
    global _n_outputs
    for obj in objs:
        if _n_outputs >= _limits["max_outputs"]:
            _send_output("{}")  # an empty bundle: outputs_truncated
            return
        _n_outputs += 1
        text = _dumps(_bundle(obj))
        _flush()  # what was printed before it goes first
        _send_output(text)


def _send_output(text):
    # The main thread waits for the engine to take it, which reads the
    # pipes first: what the code prints next then stays after it (a stream
    # shows the order). Other threads are not waited for, as the main one
    # may be reading the channel for a session's next cell.
    main = threading.current_thread() is threading.main_thread()
    _send({"type": "output", "ack": True} if main else {"type": "output"}, text, wait_ack=main)


def _show_figures(*args, **kwargs):
    # plt.show(), and the figures still open when a run ends: each one is
    # an image output, then closed (as Jupyter's inline backend does).
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    for num in plt.get_fignums():
        display(plt.figure(num))
    plt.close("all")


class _MplBackend(type(sys)):
    # matplotlib's "module://_pyrunner_mpl": Agg, whose show() displays.
    # Filled in when matplotlib first looks, as pyplot reads vars() of it.
    def __getattr__(self, name):
        if name.startswith("__") or "FigureCanvas" in self.__dict__:
            raise AttributeError(name)
        from matplotlib.backends import backend_agg
        self.FigureCanvas = backend_agg.FigureCanvasAgg
        self.FigureManager = backend_agg.FigureManager
        self.show = _show_figures
        return getattr(self, name)


sys.modules["_pyrunner_mpl"] = _MplBackend("_pyrunner_mpl")
builtins.display = display


# Files in and out (docs/API.md, "files"), below the working directory.
_WORKDIR = "/tmp"


def _put_files(files):
    for f in files:
        data = f["content"]
        data = base64.b64decode(data) if f.get("encoding") == "base64" else data.encode("utf-8")
        path = os.path.join(_WORKDIR, f["path"])
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        with open(path, "wb") as out:
            out.write(data)


def _walk(dirfd, prefix, out, fds):
    # Never follows a symlink: every directory is opened with O_NOFOLLOW
    # below the one before (its fd kept in fds), and only regular files
    # are read.
    for entry in os.scandir(dirfd):
        path = prefix + entry.name
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            try:
                fd = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dirfd)
            except OSError:
                continue
            fds.append(fd)
            _walk(fd, path + "/", out, fds)
        else:
            out[path] = (dirfd, entry.name, st)


def _with_tree(fn, *args):
    # fn(found, *args) with found = {path: (dirfd, name, stat)} of the tree.
    fds = [os.open(_WORKDIR, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        found = {}
        _walk(fds[0], "", found, fds)
        return fn(found, *args)
    finally:
        for fd in fds:
            os.close(fd)


def _snapshot():
    return _with_tree(lambda found: {p: (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)
                                     for p, (_, _, st) in found.items()})


def _hidden(path):
    return any(part.startswith(".") for part in path.split("/"))


def _return_files(found, wanted, before):
    n, total = 0, 0
    for path in sorted(found):
        dirfd, name, st = found[path]
        if wanted is True:
            if _hidden(path) or before.get(path) == (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode):
                continue
        elif not any(fnmatch.fnmatchcase(path, g) for g in wanted):
            continue
        head = {"type": "file", "path": path, "size": st.st_size}
        if not stat.S_ISREG(st.st_mode):
            head["skipped"] = "not_regular"
        elif n >= _limits["max_files"]:
            head["skipped"] = "too_many_files"
        elif st.st_size > _limits["max_file_bytes"]:
            head["skipped"] = "file_too_large"
        elif total + st.st_size > _limits["max_files_bytes"]:
            head["skipped"] = "files_too_large"
        if "skipped" in head:
            _send(head)
            continue
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dirfd)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise OSError("not a regular file")
                with os.fdopen(os.dup(fd), "rb") as f:
                    data = f.read(_limits["max_file_bytes"] + 1)
            finally:
                os.close(fd)
        except OSError:
            head["skipped"] = "unreadable"
            _send(head)
            continue
        if len(data) > _limits["max_file_bytes"] or total + len(data) > _limits["max_files_bytes"]:
            head["skipped"] = "file_too_large" if len(data) > _limits["max_file_bytes"] else "files_too_large"
            _send(head)
            continue
        head["size"] = len(data)
        n += 1
        total += len(data)
        _send(head, _b64(data))


def _reseed():
    # Python's random is reseeded by the fork hooks; numpy's legacy global
    # RandomState is not, nor multiprocessing's authkey (an HMAC key, drawn
    # once when the zygote imported it). 128 bits from the kernel.
    mp = sys.modules.get("multiprocessing.process")
    if mp is not None:
        try:
            mp.current_process().authkey = os.urandom(32)
        except Exception:
            pass
    np = sys.modules.get("numpy")
    if np is not None:
        try:
            np.random.seed(np.frombuffer(os.urandom(16), dtype=np.uint32))
        except Exception:
            pass


def _user_tb(tb):
    # Drop the runner's own frames: keep from the first frame of user code.
    while tb is not None and tb.tb_frame.f_code.co_filename != _FILENAME:
        tb = tb.tb_next
    return tb


def _describe(exc):
    line = None
    tb = _user_tb(exc.__traceback__)
    if isinstance(exc, SyntaxError) and exc.filename == _FILENAME:
        line = exc.lineno
    t = tb
    while t is not None:
        if t.tb_frame.f_code.co_filename == _FILENAME:
            line = t.tb_lineno
        t = t.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    try:
        message = str(exc)
    except Exception:
        message = "<unprintable %s>" % type(exc).__name__
    return {
        "type": type(exc).__name__,
        "module": type(exc).__module__,
        "message": message,
        "line": line,
        "traceback": text,
    }, text


def _flush():
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except Exception:
            pass


def _fork_hooks():
    # What os.fork() runs in every child (os.register_at_fork). All of it
    # is harmless in the single-threaded zygote.
    hooks = [sys.modules["threading"]._after_fork] if "threading" in sys.modules else []
    logging = sys.modules.get("logging")
    if logging is not None and hasattr(logging, "_after_at_fork_child_reinit_locks"):
        hooks.append(logging._after_at_fork_child_reinit_locks)
    random = sys.modules.get("random")
    if random is not None:
        hooks.append(random._inst.seed)
    fm = sys.modules.get("matplotlib.font_manager")
    if fm is not None:
        hooks.append(fm._get_font.cache_clear)
    return hooks


def _has_return(stmts):
    # A top-level return, possibly inside if/for/while/try/with blocks.
    for s in stmts:
        if isinstance(s, ast.Return):
            return True
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            sub = getattr(s, field, None)
            if isinstance(sub, list) and _has_return(sub):
                return True
    return False


def _compile(code):
    """Code ending in a top-level `return` runs as a function body (its value
    is the result); else a final expression statement gives the result."""
    tree = ast.parse(code, _FILENAME)
    if _has_return(tree.body):
        loc = {"lineno": 1, "col_offset": 0, "end_lineno": 1, "end_col_offset": 0}
        args = ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[],
                             kwarg=None, defaults=[])
        fn = ast.FunctionDef(name=_FUNC, args=args, body=tree.body, decorator_list=[], returns=None,
                             type_comment=None, **loc)
        call = ast.Call(func=ast.Name(id=_FUNC, ctx=ast.Load(), **loc), args=[], keywords=[], **loc)
        store = ast.Name(id=_RESULT, ctx=ast.Store(), **loc)
        tree.body = [fn, ast.Assign(targets=[store], value=call, **loc)]
    elif tree.body and isinstance(tree.body[-1], ast.Expr):
        # Locations set by hand: fix_missing_locations would walk every node.
        last = tree.body[-1]
        loc = {"lineno": last.lineno, "col_offset": last.col_offset, "end_lineno": last.end_lineno,
               "end_col_offset": last.end_col_offset}
        store = ast.Name(id=_RESULT, ctx=ast.Store(), **loc)
        tree.body[-1] = ast.Assign(targets=[store], value=last.value, **loc)
    return compile(tree, _FILENAME, "exec")


def _execute(code, env):
    """Runs code in env as __main__ would; returns (status, exit_code, error)."""
    linecache.cache[_FILENAME] = (len(code), None, code.splitlines(True), _FILENAME)
    status, exit_code, error = "success", 0, None
    try:
        exec(_compile(code), env)
    except SystemExit as e:
        c = e.code
        if c is None:
            exit_code = 0
        elif isinstance(c, int):
            exit_code = c & 0xFF
        else:
            try:
                print(c, file=sys.stderr)
            except Exception:
                pass
            exit_code = 1
        if exit_code != 0:
            status = "error"
    except BaseException as e:
        error, text = _describe(e)
        try:
            sys.stderr.write(text)
        except Exception:
            pass
        status, exit_code = "error", 1
    return status, exit_code, error


_MISSING = object()


def _values():
    # The typed encoder (clients/python/pyrunner/values.py), embedded by the zygote.
    return sys.modules["_pyrunner_values"]


def _result(status, exit_code, error, env):
    cpu = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        cpu += ru.ru_utime + ru.ru_stime
    msg = {"type": "result", "status": status, "exit_code": exit_code, "error": error, "cpu_time": cpu}
    # The value of a top-level return or final expression, typed (docs/values.md).
    value = env.pop(_RESULT, None)
    if value is not None and status == "success":
        try:
            msg["result"] = _values().encode(value)
        except Exception as e:
            msg["status"], msg["exit_code"] = "error", 1
            msg["error"] = {"type": "ResultError", "module": "pyrunner", "message": str(e)[:1000],
                            "line": None, "traceback": None}
    # The executor API reports a global named `result` (seed 004).
    value = env.get("result", _MISSING)
    if value is not _MISSING:
        try:
            msg["result_repr"] = repr(value)[:65536]
        except Exception:
            pass
    return msg


def prepare_zygote():
    # Once, in the zygote: the environment every sandbox starts with, so
    # that children do not rewrite it (each write would copy pages).
    os.environ.clear()
    os.environ.update(_ENV)
    # Line-buffered output: what was printed before a timeout or a kill is
    # in the pipe, not lost in a buffer (one write per line, not per print).
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError):
            pass
    # Python 3.11 writes into a code object until it is quickened (after
    # 8 calls). Run here, often enough, the code every child runs, so the
    # children find it quickened and do not copy those pages.
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = open(os.devnull, "w")
    try:
        for _ in range(20):
            for hook in _fork_hooks():
                hook()
            _reseed()
            req = json.loads(json.dumps({"type": "run", "code": "result = 1\n"}))
            for code in (req["code"], "1/0\n", "raise SystemExit(3)\n", "return [1, 'a', 2.5]\n",
                         "{'k': (1, 2)}\n", "print('hi')\n",
                         "import math\nx = [i * 2 for i in range(3) if i]\nprint(x, math.sqrt(4), len(x))\n"
                         "def f(a, b=1):\n    return a.real + b\nf(x[0])\n"):
                env = {"__builtins__": builtins}
                msg = _result(*_execute(code, env), env)
                _dumps(msg.pop("result", None))
                _dumps(msg)
    finally:
        sys.stderr.close()
        sys.stdout, sys.stderr = stdout, stderr
    linecache.cache.pop(_FILENAME, None)
    _warm_display()


def _warm_display():
    # pyplot on the runner's backend, and a table's HTML done once here.
    # Drawing figures here made every run copy 0.8 MiB more (the fonts it
    # loads are freed in each child by matplotlib's fork hook) and the
    # first figure of a run no faster: not done.
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.switch_backend("module://_pyrunner_mpl")
    pd = sys.modules.get("pandas")
    if pd is not None:
        for _ in range(3):
            _dumps(_bundle(pd.DataFrame({"a": [1, 2], "b": [0.5, None]})))
    # As the preload does: what is left is frozen, so that no sandbox's
    # collector walks (and copies) the zygote's objects.
    import gc
    gc.collect()
    gc.freeze()


def _cell(req, env):
    """One run of code in env: its files in, the code, its figures and
    files out. Returns (status, exit_code, error)."""
    global _n_outputs
    _n_outputs = 0
    _limits.update(req.get("limits") or {})
    wanted = req.get("return_files")
    before = None
    try:
        _put_files(req.get("files") or ())
        if wanted is True:
            before = _snapshot()
    except BaseException as e:
        error, text = _describe(e)
        sys.stderr.write(text)
        return "error", 1, error
    status, exit_code, error = _execute(req.get("code", ""), env)
    try:
        _show_figures()
    except Exception:
        traceback.print_exc()
    if wanted:
        try:
            _with_tree(_return_files, wanted, before or {})
        except Exception:
            traceback.print_exc()
    return status, exit_code, error


def _send_result(status, exit_code, error, env):
    msg = _result(status, exit_code, error, env)
    value = msg.pop("result", None)
    _send(msg, None if value is None else _dumps(value))


def _read_frame():
    n = int.from_bytes(_read_exact(4), "big")
    return json.loads(_read_exact(n).decode("utf-8"))


def _session_cell(req, env):
    # A cell of a session: SIGINT (the engine's interrupt at a cell's
    # timeout) is KeyboardInterrupt inside the cell and ignored outside.
    signal = sys.modules.get("signal") or __import__("signal")
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        status, exit_code, error = _cell(req, env)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _flush()
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        status, exit_code, error = "error", 1, {"type": "KeyboardInterrupt", "module": "builtins",
                                               "message": "", "line": None, "traceback": None}
    _send_result(status, exit_code, error, env)


def main():
    req = _read_frame()
    _reseed()
    main_mod = type(sys)("__main__")
    main_mod.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main_mod
    sys.argv = ["<main>"]
    if req.get("session"):
        # Cells until the engine ends the sandbox, in one __main__.
        import signal
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        while True:
            _session_cell(req, main_mod.__dict__)
            req = _read_frame()
    status, exit_code, error = _cell(req, main_mod.__dict__)
    # What a normal interpreter does at exit: wait for non-daemon threads,
    # then run the atexit handlers.
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()
    except BaseException:
        pass
    try:
        import atexit
        atexit._run_exitfuncs()
    except BaseException:
        pass
    _flush()
    _send_result(status, exit_code, error, main_mod.__dict__)
    return exit_code
