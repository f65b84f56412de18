"""The zygote's start on a slow or fresh machine: threads that a preloaded
library leaves behind are waited for, or refused with a message that names
them; a start-up error reaches the daemon's log and GET / with its Python
traceback; matplotlib's font cache is built once, in the cache directory."""
import contextlib
import glob
import os
import stat
import tempfile

from daemon_helpers import Daemon, poll_until

# On the zygote's sys.path (Debian's site directory for local modules).
SITE = "/usr/local/lib/python3.11/dist-packages"


@contextlib.contextmanager
def preload_module(source):
    """A module the zygote can import, for the length of the block."""
    name = "_pyrunner_test_mod_%d" % os.getpid()
    path = os.path.join(SITE, name + ".py")
    with open(path, "w") as f:
        f.write(source)
    try:
        yield name
    finally:
        os.unlink(path)


def test_a_thread_the_preload_leaves_is_waited_for():
    # A library's helper thread that ends soon after its import (as
    # matplotlib's font cache timer does once cancelled): the zygote waits
    # for it and starts, instead of dying for not being single-threaded.
    src = "import threading, time\nthreading.Thread(target=time.sleep, args=(1.5,), name='helper').start()\n"
    with preload_module(src) as mod:
        d = Daemon(preload=mod).start(timeout=30)
        try:
            r = d.run("return 6 * 7")
            assert r.json["status"] == "success" and r.json["result"] == 42, r.json
        finally:
            assert d.stop() == 0


def test_a_thread_that_never_ends_is_refused_with_its_name():
    src = "import threading\nthreading.Thread(target=threading.Event().wait, name='forever-helper').start()\n"
    with preload_module(src) as mod:
        d = Daemon(preload=mod).start(wait=False)
        d.wait_listening()
        try:
            # The preload waits 10 s for it, then the zygote gives up.
            h = poll_until(lambda: (lambda r: r if r.json.get("status") == "degraded" else None)(
                d.request("GET", "/")), timeout=40, what="GET / degraded")
            assert h.status == 503
            assert "forever-helper" in h.json["reason"] and "thread" in h.json["reason"], h.json
            assert "Traceback (most recent call last)" in h.json["zygote_error"], h.json
            assert "RuntimeError" in h.json["zygote_error"]
            line = d.wait_log(lambda o: o.get("level") == "error" and "zygote" in o.get("msg", ""))
            assert "forever-helper" in line["detail"] and "Traceback" in line["detail"], line
            r = d.run("print(1)")
            assert r.status == 503 and "forever-helper" in r.json["detail"], (r.status, r.json)
            assert d.alive()
        finally:
            assert d.stop() == 0


def _font_cache(cache):
    return glob.glob(os.path.join(cache, "matplotlib", "fontlist-*.json"))


def test_the_font_cache_is_built_once_in_the_cache_dir():
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "cache")
        d = Daemon("--cache-dir", cache, preload="matplotlib").start(timeout=120)
        try:
            assert d.run("import matplotlib\nreturn 1").json["status"] == "success"
        finally:
            assert d.stop() == 0
        built = _font_cache(cache)
        assert len(built) == 1, os.listdir(os.path.join(cache, "matplotlib"))
        st = os.stat(built[0])
        assert st.st_size > 1000
        assert stat.S_IMODE(os.stat(cache).st_mode) == 0o755
        # A second start reads it and does not write it again.
        d = Daemon("--cache-dir", cache, preload="matplotlib").start(timeout=120)
        try:
            r = d.run("import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.set_title('x')\n"
                      "fig.canvas.draw()\nreturn 1")
            assert r.json["status"] == "success", r.json
        finally:
            assert d.stop() == 0
        assert os.stat(built[0]).st_mtime_ns == st.st_mtime_ns
        assert not any("building the font cache" in line for line in d.lines), d.stderr_text()


def test_a_cache_dir_others_may_write_is_not_used():
    # The zygote reads it as root before any sandbox exists: a directory
    # that another user can write is ignored (a private one is used).
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "cache")
        os.mkdir(cache)
        os.chmod(cache, 0o777)
        d = Daemon("--cache-dir", cache, preload="matplotlib").start(timeout=120)
        try:
            assert d.run("return 1").json["status"] == "success"
        finally:
            assert d.stop() == 0
        assert os.listdir(cache) == []


def test_a_zygote_killed_by_a_signal_while_it_starts_says_which():
    # In a guest on qemu's default CPU, a library's illegal instruction
    # killed the zygote; the daemon said only "the zygote exited".
    src = "import os, signal\nos.kill(os.getpid(), signal.SIGILL)\n"
    with preload_module(src) as mod:
        d = Daemon(preload=mod).start(wait=False)
        d.wait_listening()
        try:
            h = poll_until(lambda: (lambda r: r if r.json.get("status") == "degraded" else None)(
                d.request("GET", "/")), timeout=30, what="GET / degraded")
            assert "killed by signal 4 (Illegal instruction)" in h.json["reason"], h.json
            assert d.alive()
        finally:
            assert d.stop() == 0
