"""Results: what a run reports about the program."""
import os
import subprocess
import sys

from conftest import RESULT_KEYS, run


def test_result_shape_and_streams():
    r = run("import sys\nprint('to out')\nprint('to err', file=sys.stderr)\n")
    assert set(r.data) == RESULT_KEYS, r
    assert r.status == "success" and r.returncode == 0, r
    assert r["stdout"] == "to out\n" and r["stderr"] == "to err\n", r
    assert r["stdout_truncated"] is False and r["stderr_truncated"] is False, r
    assert r["exit_code"] == 0 and r["signal"] is None, r
    assert r["error"] is None and r["error_info"] is None, r


def test_plain_mode_passes_streams_through():
    r = run("import sys\nprint('to out')\nprint('to err', file=sys.stderr)\nsys.exit(4)\n", json=False)
    assert r.returncode == 4, r
    assert r.raw_stdout == b"to out\n", r
    assert r.cli_stderr == "to err\n", r


def test_invalid_utf8_output_is_replaced():
    r = run("import os\nos.write(1, b'\\xff\\xfe ok')\nos.write(2, b'bad \\xc3\\x28 end')\n")
    assert r.data is not None, r
    assert r.status == "success", r
    assert r["stdout"] == "\ufffd\ufffd ok", r
    assert r["stderr"] == "bad \ufffd( end", r
    # Strict ASCII JSON on the wire.
    r.raw_stdout.decode("ascii")


def test_output_with_nul_bytes_is_kept():
    # A NUL byte is valid output; nothing after it may be lost.
    r = run("import os, sys\nprint('abc\\x00def')\nos.write(2, b'e1\\x00e2')\n")
    assert r.status == "success", r
    assert r["stdout"] == "abc\x00def\n", r
    assert r["stderr"] == "e1\x00e2", r


def test_output_kept_when_cpu_is_contended():
    # The engine, the sandbox and a CPU hog share one CPU, so the engine
    # often wakes up to find the output and the end of the run together.
    # The output must still be in the result.
    cpu = min(os.sched_getaffinity(0))
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"],
                           preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
    try:
        results = [run("import sys\nprint('out %d')\nprint('err %d', file=sys.stderr)\n" % (i, i),
                       cpus={cpu}) for i in range(6)]
    finally:
        hog.kill()
        hog.wait()
    for i, r in enumerate(results):
        assert r.status == "success", r
        assert (r["stdout"], r["stderr"]) == ("out %d\n" % i, "err %d\n" % i), r


def test_exception_error_info():
    r = run("def f(x):\n    return 1 / x\n\nvalue = 0\nf(value)\n")
    assert r.status == "error" and r.returncode == 1 and r["exit_code"] == 1, r
    info = r["error_info"]
    assert info["type"] == "ZeroDivisionError", r
    assert info["module"] == "builtins", r
    assert info["message"] == "division by zero", r
    assert info["line"] == 2, r
    assert r["error"] == "ZeroDivisionError on line 2", r
    tb = info["traceback"]
    assert tb.startswith("Traceback (most recent call last):\n"), r
    assert 'File "<main>", line 5, in <module>' in tb and 'File "<main>", line 2, in f' in tb, r
    assert "return 1 / x" in tb, r
    assert "<pyrunner>" not in tb and "runner" not in tb.lower(), r
    assert "<pyrunner>" not in r["stderr"] and r["stderr"] == tb, r


def test_exception_from_library_code():
    r = run("import json\njson.loads('{bad')\n")
    assert r.status == "error", r
    info = r["error_info"]
    assert info["type"] == "JSONDecodeError" and info["module"] == "json.decoder", r
    assert info["line"] == 2, r
    assert "<pyrunner>" not in info["traceback"], r


def test_syntax_error():
    r = run("x = 1\nif x\n    pass\n")
    assert r.status == "error" and r.returncode == 1, r
    info = r["error_info"]
    assert info["type"] == "SyntaxError" and info["line"] == 2, r
    assert r["error"] == "SyntaxError on line 2", r
    assert "<pyrunner>" not in info["traceback"], r


def test_sys_exit_nonzero():
    r = run("import sys\nprint('partial')\nsys.exit(3)\n")
    assert r.status == "error" and r["exit_code"] == 3 and r.returncode == 3, r
    assert r["stdout"] == "partial\n" and r["error_info"] is None, r


def test_sys_exit_zero():
    r = run("import sys\nsys.exit(0)\nprint('not reached')\n")
    assert r.status == "success" and r["exit_code"] == 0 and r.returncode == 0, r
    assert r["stdout"] == "", r


def test_sys_exit_message():
    r = run("import sys\nsys.exit('fatal: bye')\n")
    assert r.status == "error" and r["exit_code"] == 1 and r["stderr"] == "fatal: bye\n", r


def test_os_exit():
    r = run("import os\nos._exit(5)\n")
    assert r.status == "error" and r["exit_code"] == 5 and r.returncode == 5, r


def test_killed_by_own_sigkill():
    r = run("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    assert r.status == "killed" and r["signal"] == 9 and r.returncode == 137, r
    assert r["exit_code"] is None, r


def test_killed_by_sigsegv():
    r = run("import ctypes\nctypes.string_at(0)\n")
    assert r.status == "killed" and r["signal"] == 11 and r.returncode == 128 + 11, r


def test_times_and_memory_plausible():
    r = run(r'''
import time
t = time.process_time()
while time.process_time() - t < 0.3:
    pass
data = bytearray(40 << 20)
for i in range(0, len(data), 4096):
    data[i] = 1
''')
    assert r.status == "success", r
    assert 0.3 <= r["execution_time"] < 0.3 + 2.0, r
    assert 0.25 <= r["cpu_time"] <= r["execution_time"] + 0.1, r
    assert 40 <= r["memory_used"] < 200, r


def test_memory_used_positive_for_trivial_run():
    r = run("pass\n")
    assert r.status == "success", r
    assert r["memory_used"] > 0 and r["execution_time"] > 0 and r["cpu_time"] > 0, r


def test_non_daemon_threads_finish_before_the_result():
    # As a normal interpreter does at exit: the thread's output is kept.
    r = run("import threading, time\n"
            "def late():\n"
            "    time.sleep(0.2)\n"
            "    print('late')\n"
            "threading.Thread(target=late).start()\n"
            "print('main')\n")
    assert r.status == "success" and r["stdout"] == "main\nlate\n", r
