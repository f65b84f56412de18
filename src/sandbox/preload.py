# The zygote's preload. Compiled into the zygote and run once there, before
# any sandbox exists: it imports the modules it is asked for and runs their
# common paths, so that lazy imports and caches are done once, not in every
# sandbox. Asked for nothing, it imports nothing: each library would cost
# every run its import time, and every fork its mappings.
import gc
import importlib
import json
import sys


def _warm(name):
    # Submodules such as scipy.stats are not imported unless listed.
    import io
    if name == "numpy":
        import numpy as np
        np.ones(10**5).sum(); np.arange(10).reshape(2, 5).T.mean(axis=0)
        np.random.rand(3); str(np.linspace(0, 1, 5))
    elif name == "pandas":
        import pandas as pd
        df = pd.DataFrame({"k": [1, 1, 2], "v": [3.0, 4.0, 5.0]})
        str(df.groupby("k")["v"].sum()); str(df.describe()); df.to_dict(); repr(df)
    elif name == "matplotlib":
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(); ax.plot([1, 2], [3, 4]); ax.set_title("t")
        fig.savefig(io.BytesIO(), format="png"); plt.close("all")
    elif name == "sympy":
        import sympy
        x = sympy.Symbol("x"); str(sympy.simplify(sympy.sin(x)**2 + sympy.cos(x)**2))


def _font_cache_dir():
    """(directory, remove it afterwards) for matplotlib's font cache: the
    engine's cache directory, so that it is built once, not on every start
    (tens of seconds on a slow machine); else a temporary one, in the
    engine's scratch directory when there is one (which the engine removes
    even if this zygote is killed while it starts)."""
    import os
    cache = os.environ.get("PYRUNNER_CACHE")
    if cache:
        path = os.path.join(cache, "matplotlib")
        try:
            os.makedirs(path, mode=0o755, exist_ok=True)
            if os.access(path, os.W_OK):
                return path, False
        except OSError:
            pass
    import tempfile
    return tempfile.mkdtemp(prefix="mpl-", dir=os.environ.get("PYRUNNER_SCRATCH") or None), True


def _import_all(names, info):
    import os
    import shutil
    tmp, remove = _font_cache_dir()
    os.environ["MPLCONFIGDIR"] = tmp
    # The runner's backend: Agg, whose show() displays the figures.
    os.environ["MPLBACKEND"] = "module://_pyrunner_mpl"
    try:
        for name in names:
            try:
                m = importlib.import_module(name)
                if name == "matplotlib":
                    m.use("module://_pyrunner_mpl")
                    import matplotlib.pyplot, matplotlib.font_manager  # noqa: E401,F401
                _warm(name)
                top = sys.modules[name.split(".")[0]]
                info["libraries"][name] = str(getattr(top, "__version__", ""))
            except Exception as e:
                info["failed"][name] = "%s: %s" % (type(e).__name__, e)
    finally:
        if remove:
            shutil.rmtree(tmp, ignore_errors=True)
        # Sandboxes get their own /tmp.
        os.environ["MPLCONFIGDIR"] = "/tmp"
    # Whichever preloaded module imported matplotlib: forget the zygote's dir.
    mpl = sys.modules.get("matplotlib")
    if mpl is not None:
        try:
            mpl.get_configdir.cache_clear()
            mpl.get_cachedir.cache_clear()
        except Exception:
            pass


def _join_threads(seconds):
    """Waits for threads that a library started while it was imported
    (matplotlib's font cache timer, a pool that winds down). The zygote must
    be single-threaded to fork: one still running after `seconds` is a
    start-up error that names it."""
    threading = sys.modules.get("threading")
    if threading is None:
        return
    import time
    deadline = time.monotonic() + seconds
    main = threading.main_thread()
    # A _DummyThread stands for a thread started from C: it cannot be
    # joined, and the zygote's own check of /proc/self/task covers it.
    others = [t for t in threading.enumerate() if t is not main and not isinstance(t, threading._DummyThread)]
    for t in others:
        t.join(max(0.0, deadline - time.monotonic()))
    left = [t for t in others if t.is_alive()]
    if left:
        raise RuntimeError("the preload left %d thread(s) running after %g s: %s (the zygote must be "
                           "single-threaded to fork; remove the module that starts it from --preload)"
                           % (len(left), seconds, ", ".join("%s (%s)" % (t.name, type(t).__name__) for t in left)))


def preload(names):
    """Imports the comma-separated `names`; returns the zygote's READY info
    as JSON: the Python version, each library's version, the failures."""
    info = {"python": sys.version.split()[0], "libraries": {}, "failed": {}}
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if wanted:
        _import_all(wanted, info)
    _join_threads(10)
    gc.collect()
    gc.freeze()
    return json.dumps(info)
