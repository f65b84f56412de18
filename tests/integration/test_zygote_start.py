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
    """A module the zygote can import, for the length of the block (the
    zygote's sys.path is Debian's, not settable from outside: it runs
    isolated)."""
    name = "_pyrunner_test_mod_%d" % os.getpid()
    path = os.path.join(SITE, name + ".py")
    with open(path, "w") as f:
        f.write(source)
    try:
        yield name
    finally:
        os.unlink(path)


def wait_degraded(d, timeout):
    """GET / once the daemon has given up on its zygote."""
    def degraded():
        r = d.request("GET", "/")
        return r if r.json.get("status") == "degraded" else None
    return poll_until(degraded, timeout=timeout, what="GET / degraded")


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
            h = wait_degraded(d, timeout=40)      # the preload waits 10 s for it
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


def test_a_cache_dir_others_may_write_is_not_used():
    # The zygote reads it as root before any sandbox exists: a directory
    # that another user can write is ignored (a private one is used).
    with tempfile.TemporaryDirectory() as tmp:
        # Itself open to all; ours but below a directory open to all (not
        # sticky: anyone could rename it away and put their own there).
        open_dir = os.path.join(tmp, "open")
        os.mkdir(open_dir)
        os.chmod(open_dir, 0o777)
        below = os.path.join(open_dir, "cache")
        os.mkdir(below, 0o755)
        for cache in (open_dir, below):
            d = Daemon("--cache-dir", cache, preload="matplotlib").start(timeout=120)
            try:
                assert d.run("return 1").json["status"] == "success"
            finally:
                assert d.stop() == 0
            assert not os.path.exists(os.path.join(below, "matplotlib"))
            assert sorted(os.listdir(open_dir)) == ["cache"]


def test_a_zygote_killed_by_a_signal_while_it_starts_says_which():
    # In a guest on qemu's default CPU, a library's illegal instruction
    # killed the zygote; the daemon said only "the zygote exited".
    src = "import os, signal\nos.kill(os.getpid(), signal.SIGILL)\n"
    with preload_module(src) as mod:
        d = Daemon("--api-keys", "k1", preload=mod).start(wait=False)
        d.wait_listening()
        try:
            h = wait_degraded(d, timeout=30)
            assert "killed by signal 4 (Illegal instruction)" in h.json["reason"], h.json
            # The error in full is for callers with a key only.
            assert "zygote_error" not in h.json
            assert "Illegal instruction" in d.request("GET", "/", key="k1").json["zygote_error"]
            assert d.alive()
        finally:
            assert d.stop() == 0
