"""Allow tests: ordinary programs keep working inside the sandbox."""
import os

from conftest import run


def ok(r):
    assert r.data is not None and r.status == "success" and r.returncode == 0, r
    return r.out


def test_threads():
    out = ok(run(r'''
import threading
results = []
lock = threading.Lock()
def work(i):
    with lock:
        results.append(i * i)
threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
for t in threads: t.start()
for t in threads: t.join()
print(sorted(results) == [i * i for i in range(16)], threading.active_count())
'''))
    assert out == "True 1\n"


def test_multiprocessing_fork_pool():
    out = ok(run(r'''
import multiprocessing as mp, os
def square(x):
    return x * x, os.getpid()
if __name__ == "__main__":
    with mp.get_context("fork").Pool(2) as pool:
        res = pool.map(square, range(20))
    print([r[0] for r in res] == [x * x for x in range(20)], len({r[1] for r in res}) >= 1)
    q = mp.get_context("fork").Queue()
    p = mp.get_context("fork").Process(target=q.put, args=("from child",))
    p.start(); print(q.get(timeout=10)); p.join(); print(p.exitcode)
'''))
    assert out == "True True\nfrom child\n0\n"


def test_subprocess_echo_and_python():
    out = ok(run(r'''
import subprocess
print(subprocess.run(["/bin/echo", "hello", "world"], capture_output=True, text=True, check=True).stdout, end="")
print(subprocess.check_output(["/usr/bin/python3", "-c", "print(6 * 7)"], text=True), end="")
print(subprocess.run("echo $((1 + 2))", shell=True, capture_output=True, text=True).stdout, end="")
'''))
    assert out == "hello world\n42\n3\n"


def test_sys_executable_runs_the_interpreter(tmp_path):
    # sys.executable must name an interpreter that exists inside the
    # sandbox, whatever PATH the CLI was started with: multiprocessing's
    # spawn/forkserver and `subprocess.run([sys.executable, ...])` use it.
    # Here a python3 that exists only on the host comes first in PATH.
    hostbin = tmp_path / "hostbin"
    hostbin.mkdir()
    os.symlink("/usr/bin/python3", hostbin / "python3")
    r = run(r'''
import os, subprocess, sys
print(repr(sys.executable), os.path.exists(sys.executable))
print(subprocess.check_output([sys.executable, "-c", "print(6 * 7)"], text=True), end="")
''', env={"PATH": "%s:%s" % (hostbin, os.environ.get("PATH", "/usr/bin:/bin"))})
    assert r.status == "success", r
    assert r.out.splitlines()[-1] == "42", r


def test_files_in_working_directory():
    out = ok(run(r'''
import os
print(os.getcwd(), os.environ["HOME"])
with open("data.txt", "w") as f:
    f.write("hello")
os.mkdir("sub")
with open("/tmp/sub/x.bin", "wb") as f:
    f.write(bytes(range(256)) * 100)
print(open("/tmp/data.txt").read(), sorted(os.listdir(".")), os.path.getsize("sub/x.bin"))
os.rename("data.txt", "renamed.txt"); os.remove("renamed.txt"); os.remove("sub/x.bin"); os.rmdir("sub")
print(os.listdir("/tmp"))
'''))
    assert out == "/tmp /tmp\nhello ['data.txt', 'sub'] 25600\n[]\n"


def test_sleep_works():
    r = run("import time\nt = time.monotonic()\ntime.sleep(0.2)\nprint(time.monotonic() - t)\n")
    assert 0.2 <= float(ok(r)) < 1.0, r
    assert 0.2 <= r["execution_time"] < 1.5, r


def test_preloaded_libraries_work():
    r = run(r'''
import io, os
import numpy as np, pandas as pd, scipy.stats, sympy, matplotlib
import matplotlib.pyplot as plt
from sklearn.linear_model import LinearRegression
print(int(np.arange(10).sum()))
df = pd.DataFrame({"k": ["a", "b", "a", "b"], "v": [1, 2, 3, 4]})
print(df.groupby("k")["v"].sum().to_dict())
print(round(float(scipy.stats.norm.cdf(0)), 3))
x = sympy.symbols("x")
print(sympy.integrate(x**2, x))
plt.plot([1, 2, 3], [3, 1, 2]); plt.savefig("/tmp/plot.png")
print(open("/tmp/plot.png", "rb").read(4) == b"\x89PNG", matplotlib.get_backend().lower())
m = LinearRegression().fit(np.array([[0], [1], [2]]), np.array([1, 3, 5]))
print(round(float(m.coef_[0]), 6), round(float(m.intercept_), 6))
''', "--preload", "all", "--timeout", 30)
    assert ok(r) == "45\n{'a': 4, 'b': 6}\n0.5\nx**3/3\nTrue module://_pyrunner_mpl\n2.0 1.0\n"


def test_random_state_differs_between_runs():
    code = "import random, numpy\nprint(repr(random.random()), repr(float(numpy.random.rand())))\n"
    a = ok(run(code, "--preload", "numpy")).split()
    b = ok(run(code, "--preload", "numpy")).split()
    assert a[0] != b[0], (a, b)
    assert a[1] != b[1], (a, b)


def test_stdin_from_file(tmp_path):
    data = "line one\nline two\n" + "x" * 200000 + "\n"
    f = tmp_path / "in.txt"
    f.write_text(data)
    out = ok(run("import sys\nd = sys.stdin.read()\nprint(len(d), d.splitlines()[:2])\n", "--stdin", f))
    assert out == "%d ['line one', 'line two']\n" % len(data)


def test_program_from_stdin(tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("42\n")
    out = ok(run(None, "--stdin", f, stdin=b"n = int(input())\nprint(n * 2)\n"))
    assert out == "84\n"
    # Without --stdin the program's own stdin is empty.
    out = ok(run(None, stdin=b"import sys\nprint(repr(sys.stdin.read()))\n"))
    assert out == "''\n"


def test_ctypes_unix_socketpair_and_urandom():
    out = ok(run(r'''
import ctypes, os, socket
libc = ctypes.CDLL(None)
print(libc.getpid(), libc.abs(-5))
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
a.sendall(b"ping"); print(b.recv(4))
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind("/tmp/sock"); s.close()
print(len(open("/dev/urandom", "rb").read(64)), len(os.urandom(32)))
print(open("/dev/zero", "rb").read(3), open("/dev/null", "rb").read())
'''))
    assert out == "2 5\nb'ping'\n64 32\nb'\\x00\\x00\\x00' b''\n"


def test_unicode_output_round_trips():
    out = ok(run("print('h\u00e9llo \u2603 \U0001F600')\n"))
    assert out == "h\u00e9llo \u2603 \U0001F600\n"


def test_file_reads_and_advice_that_the_page_cache_rules_keep():
    # The filter refuses only DONTNEED, RWF_NOWAIT and page-out advice:
    # the ordinary forms of the same calls work.
    out = ok(run(r'''
import mmap, os
with open("/tmp/f", "wb") as f:
    f.write(b"abcdef" * 1000)
fd = os.open("/tmp/f", os.O_RDWR)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
buf = bytearray(6)
print(os.preadv(fd, [buf], 6, 0), bytes(buf))
print(os.pwritev(fd, [b"XY"], 0, os.RWF_DSYNC), os.pread(fd, 4, 0))
m = mmap.mmap(-1, 1 << 20)
m[:4] = b"data"
m.madvise(mmap.MADV_DONTNEED)          # shared: the data stays
print(m[:4])
try:
    os.preadv(fd, [buf], 0, os.RWF_NOWAIT)
except OSError as e:
    print("nowait:", e.strerror)
'''))
    assert out == "6 b'abcdef'\n2 b'XYcd'\nb'data'\nnowait: Operation not supported\n", out


def test_matplotlib_imports_without_the_preload():
    # Debian's matplotlib reads its defaults only from /etc/matplotlibrc:
    # without it in the sandbox, an import the zygote had not done failed.
    out = ok(run("import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.savefig('a.png')\n"
                 "import os\nprint(os.path.getsize('a.png') > 1000)\n", "--preload", ""))
    assert out == "True\n"
