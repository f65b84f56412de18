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


def _import_all(names, info):
    import os
    import shutil
    import tempfile
    # matplotlib builds its font cache in MPLCONFIGDIR: a private one here,
    # removed afterwards. Sandboxes get /tmp.
    # Inside the engine's scratch directory, which the engine removes: a
    # zygote killed while it starts leaves nothing behind in /tmp.
    tmp = tempfile.mkdtemp(prefix="mpl-", dir=os.environ.get("PYRUNNER_SCRATCH") or None)
    os.environ["MPLCONFIGDIR"] = tmp
    os.environ["MPLBACKEND"] = "Agg"
    try:
        for name in names:
            try:
                m = importlib.import_module(name)
                if name == "matplotlib":
                    m.use("Agg")
                    import matplotlib.pyplot, matplotlib.font_manager  # noqa: E401,F401
                _warm(name)
                top = sys.modules[name.split(".")[0]]
                info["libraries"][name] = str(getattr(top, "__version__", ""))
            except Exception as e:
                info["failed"][name] = "%s: %s" % (type(e).__name__, e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        os.environ["MPLCONFIGDIR"] = "/tmp"
    # Whichever preloaded module imported matplotlib: forget the removed dir.
    mpl = sys.modules.get("matplotlib")
    if mpl is not None:
        try:
            mpl.get_configdir.cache_clear()
            mpl.get_cachedir.cache_clear()
        except Exception:
            pass


def preload(names):
    """Imports the comma-separated `names`; returns the zygote's READY info
    as JSON: the Python version, each library's version, the failures."""
    info = {"python": sys.version.split()[0], "libraries": {}, "failed": {}}
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if wanted:
        _import_all(wanted, info)
    gc.collect()
    gc.freeze()
    return json.dumps(info)
