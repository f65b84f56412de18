"""Shared helpers for the pyrunner integration tests.

Every test drives the real CLI binary (no mocks): $PYRUNNER_BIN, else
src/cli/pyrunner of the build directory $PYRUNNER_BUILD (relative to the
checkout or absolute; default build, `make check` also runs build-asan).

Helpers (import them from conftest; `run` is also a fixture):
  run(code, *args, json=True, env=None, stdin=None, timeout=60, cpus=None)
                          one `pyrunner run`, returns a Result (parsed JSON
                          in .data / r["key"], .returncode, .cli_stderr, .wall)
  popen(code, *args) / finish(p)   the same, in the background
  run_check(name, params, *args)   a deny check of denychecks.py
  run_pair(...)           two concurrent sandboxes probing each other
  SLOWDOWN                factor for timing slack ($PYRUNNER_TEST_SLOWDOWN)
  sabotage_env()          environment that allows --test-sabotage
  Tracker(popen)          follows a CLI's process tree until it exits
  descendants(pid), wait_gone(procs), cli_cgroup_dirs(pid),
  find_cgroup_leftovers(pid), mounts()   host-side leftover checks

A CLI run gets the caller's environment minus PYRUNNER_* settings, so the
documented defaults apply whatever the CI sets.
"""
import json as _json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(REPO, os.environ.get("PYRUNNER_BUILD") or "build")
BIN = os.environ.get("PYRUNNER_BIN") or os.path.join(BUILD, "src", "cli", "pyrunner")
# Bounds on how long something may take beyond its own limit are
# multiplied by this; the cgroup v2 guest (software emulation) sets it.
SLOWDOWN = float(os.environ.get("PYRUNNER_TEST_SLOWDOWN") or 1)
# The Python client's own look-up (no pyrunner_path given) finds the same CLI.
os.environ["PYRUNNER_BIN"] = BIN

# A sanitized build writes its reports to files in <build>/sanitizer-logs,
# which make check requires to be empty; but a sandbox's pid 2 can only
# report to its stderr (tests/sanitizer/hooks.c). So output that a test
# receives and that holds a report is filed there too.
SANITIZER_LOGS = os.path.join(BUILD, "sanitizer-logs")
_SANITIZER_REPORT = re.compile(rb"==[0-9]+==ERROR: [A-Za-z]+Sanitizer|SUMMARY: [A-Za-z]+Sanitizer|runtime error: ")


def _report_texts(data):
    """The strings of JSON `data` (a run's stderr...) that hold a report, or
    the raw bytes."""
    try:
        todo, found = [_json.loads(data)], []
    except (ValueError, UnicodeDecodeError):
        return [data]
    while todo:
        v = todo.pop()
        if isinstance(v, (dict, list)):
            todo += v.values() if isinstance(v, dict) else v
        elif isinstance(v, str) and _SANITIZER_REPORT.search(v.encode("utf-8", "replace")):
            found.append(v.encode("utf-8", "replace"))
    return found or [data]


def file_sanitizer_report(data, where):
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    if os.path.isdir(SANITIZER_LOGS) and _SANITIZER_REPORT.search(data):
        fd, _ = tempfile.mkstemp(prefix="received-", dir=SANITIZER_LOGS)
        with os.fdopen(fd, "wb") as f:
            f.write(b"in output received from %s:\n" % where.encode())
            f.write(b"\n".join(_report_texts(data)))


STATUSES = {"success", "error", "timeout", "memory_exceeded", "output_limit", "killed", "internal_error"}
RESULT_KEYS = {
    "status", "stdout", "stderr", "stdout_truncated", "stderr_truncated", "exit_code", "signal", "outputs",
    "outputs_truncated",
    "execution_time", "cpu_time", "memory_used", "error", "error_info", "result",
}


def base_env(extra=None):
    """The caller's environment without pyrunner or executor settings, so the
    documented defaults apply whatever the CI sets (binary paths are kept)."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("PYRUNNER_") or k.startswith("PYTHON_EXECUTOR_"))
           or k in ("PYRUNNER_BIN", "PYRUNNER_ZYGOTE")}
    if extra:
        env.update(extra)
    return env


def sabotage_env(extra=None):
    e = {"PYRUNNER_ALLOW_SABOTAGE": "1"}
    if extra:
        e.update(extra)
    return e


class Result:
    """One CLI invocation: parsed JSON (if any), exit status, raw streams."""

    def __init__(self, argv, returncode, stdout, stderr, wall):
        self.argv = argv
        self.returncode = returncode
        self.raw_stdout = stdout
        self.cli_stderr = stderr.decode("utf-8", "replace")
        self.wall = wall
        self.data = None
        file_sanitizer_report(stdout, "pyrunner " + " ".join(argv[1:-1]))
        file_sanitizer_report(stderr, "the stderr of pyrunner " + " ".join(argv[1:-1]))
        try:
            self.data = _json.loads(stdout.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            pass

    def __getitem__(self, key):
        assert self.data is not None, "no JSON result: %r" % self
        return self.data[key]

    @property
    def status(self):
        return self["status"]

    @property
    def out(self):
        return self["stdout"]

    @property
    def last_line(self):
        lines = self["stdout"].strip().splitlines()
        return lines[-1] if lines else ""

    def __repr__(self):
        return ("Result(argv=%r, rc=%r, wall=%.2f, cli_stderr=%r, json=%s)"
                % (self.argv[1:-1], self.returncode, self.wall, self.cli_stderr[-2000:],
                   _json.dumps(self.data)[:4000] if self.data is not None else self.raw_stdout[:2000]))


def _write_program(code):
    if isinstance(code, str):
        code = code.encode("utf-8")
    fd, path = tempfile.mkstemp(prefix="pyrunner-it-", suffix=".py")
    with os.fdopen(fd, "wb") as f:
        f.write(code)
    return path


def cli_argv(path, *args, json=True):
    argv = [BIN, "run"]
    if json:
        argv.append("--json")
    argv += [str(a) for a in args]
    argv.append(path)
    return argv


def run(code, *args, json=True, env=None, stdin=None, timeout=60, cpus=None):
    """Runs `code` (str/bytes, or None to pass the program on stdin as '-')
    through `pyrunner run [--json] ARGS FILE`. `stdin` is fed to the CLI's
    own stdin; `cpus` pins the CLI (and so its sandbox) to those CPUs.
    Returns a Result."""
    path = "-" if code is None else _write_program(code)
    argv = cli_argv(path, *args, json=json)
    try:
        t0 = time.monotonic()
        p = subprocess.run(argv, input=stdin if stdin is not None else b"",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=base_env(env), timeout=timeout,
                           preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        wall = time.monotonic() - t0
    finally:
        if path != "-":
            os.unlink(path)
    return Result(argv, p.returncode, p.stdout, p.stderr, wall)


def popen(code, *args, json=True, env=None):
    """Starts a CLI run in the background; returns the Popen (with .argv and
    .program_path); collect it with finish()."""
    path = _write_program(code)
    argv = cli_argv(path, *args, json=json)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=base_env(env))
    p.argv = argv
    p.program_path = path
    return p


def finish(p, timeout=60):
    """Waits for a popen() run and returns its Result."""
    t0 = time.monotonic()
    try:
        out, err = p.communicate(timeout=timeout)
    finally:
        try:
            os.unlink(p.program_path)
        except OSError:
            pass
    return Result(p.argv, p.returncode, out, err, time.monotonic() - t0)


# ---- host-side process and cgroup inspection ----

def _stat(pid):
    """(ppid, state, starttime) of a host pid, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    rest = s.rsplit(")", 1)[1].split()
    return int(rest[1]), rest[0], int(rest[19])


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def descendants(root):
    """Live descendants of host pid `root`: {pid: starttime}."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = _stat(int(d))
        if st:
            children.setdefault(st[0], []).append((int(d), st[2]))
    out, todo = {}, [root]
    while todo:
        for pid, start in children.get(todo.pop(), []):
            if pid not in out:
                out[pid] = start
                todo.append(pid)
    return out


def alive(pid, starttime):
    """True if that very process (not a recycled pid) exists and is no zombie."""
    st = _stat(pid)
    return bool(st) and st[2] == starttime and st[1] not in ("Z", "X")


def wait_gone(procs, timeout=3.0):
    """Waits (bounded) until none of {pid: starttime} is alive; returns the
    survivors with their command lines."""
    deadline = time.monotonic() + timeout
    while True:
        left = {p: s for p, s in procs.items() if alive(p, s)}
        if not left or time.monotonic() > deadline:
            return {p: cmdline(p) for p in left}
        time.sleep(0.02)


CGROUP2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")   # pure v2 mount


def own_cgroup_paths():
    """controller -> our cgroup path, from /proc/self/cgroup ("" is v2)."""
    paths = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                paths[c] = path
    return paths


def cli_cgroup_dirs(cli_pid):
    """Where a CLI started by us creates its cgroup parent (it inherits our
    cgroups): v1 /sys/fs/cgroup/<ctrl><our path>/pyrunner-<pid>, v2
    /sys/fs/cgroup<our path>/pyrunner-<pid>."""
    own = own_cgroup_paths()
    name = "pyrunner-%d" % cli_pid
    if CGROUP2:
        return [os.path.join("/sys/fs/cgroup", own.get("", "/").lstrip("/"), name)]
    return [os.path.join("/sys/fs/cgroup", ctrl, own[ctrl].lstrip("/"), name)
            for ctrl in ("memory", "pids", "cpu", "cpuacct") if ctrl in own]


def find_cgroup_leftovers(cli_pid):
    """Every directory named pyrunner-<cli_pid> below the cgroup controllers
    (searched, not only at the expected place)."""
    name = "pyrunner-%d" % cli_pid
    found = []
    tops = [""] if CGROUP2 else ["memory", "pids", "cpu", "cpuacct", "unified"]
    for ctrl in tops:
        top = os.path.join("/sys/fs/cgroup", ctrl) if ctrl else "/sys/fs/cgroup"
        if not os.path.isdir(top):
            continue
        for dirpath, dirnames, _ in os.walk(top):
            if name in dirnames:
                found.append(os.path.join(dirpath, name))
            # cgroup trees are shallow here; do not wander into huge ones
            if dirpath.count("/") > 8:
                dirnames[:] = []
    return found


def mounts():
    with open("/proc/self/mounts") as f:
        return sorted(f.read().splitlines())


class Tracker:
    """Polls a running CLI's process tree until it exits, remembering every
    process seen and whether its cgroup directories existed."""

    def __init__(self, p):
        self.p = p
        self.seen = {}
        self.cmdlines = {}
        self.cgroup_seen = set()
        self.cg_dirs = cli_cgroup_dirs(p.pid)
        self._t = threading.Thread(target=self._poll, daemon=True)
        self._t.start()

    def _poll(self):
        while True:
            done = self.p.poll() is not None
            for pid, start in descendants(self.p.pid).items():
                if pid not in self.seen:
                    self.seen[pid] = start
                    self.cmdlines[pid] = cmdline(pid)
            for d in self.cg_dirs:
                if os.path.isdir(d):
                    self.cgroup_seen.add(d)
            if done:
                return
            time.sleep(0.01)

    def join(self, timeout=60):
        self._t.join(timeout)


def kill_leftovers(procs):
    """Test hygiene after a failed check: SIGKILL processes this test started."""
    for pid, start in procs.items():
        if alive(pid, start):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def remove_cgroup_dirs(dirs):
    """Test hygiene: remove leaked cgroup dirs (children first) once empty."""
    for top in dirs:
        for dirpath, dirnames, _ in sorted(os.walk(top, topdown=False), key=lambda x: -len(x[0])):
            for _ in range(100):
                try:
                    os.rmdir(dirpath)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def free_tcp_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for_abstract_socket(p, name, timeout=10.0):
    """Waits until some process below CLI `p` has bound the abstract unix
    socket `name`, read from the host through /proc/<pid>/net/unix (which
    shows that process's own network namespace). Returns the host pid of
    the process that holds the socket, or None."""
    deadline = time.monotonic() + timeout * SLOWDOWN
    needle = "@" + name
    while time.monotonic() < deadline:
        if p.poll() is not None:
            return None
        for pid in descendants(p.pid):
            try:
                with open("/proc/%d/net/unix" % pid) as f:
                    rows = [line.split() for line in f.read().splitlines()[1:]]
                inodes = {"socket:[%s]" % r[6] for r in rows if len(r) >= 8 and r[-1] == needle}
                if inodes and any(os.readlink("/proc/%d/fd/%s" % (pid, fd)) in inodes
                                  for fd in os.listdir("/proc/%d/fd" % pid)):
                    return pid
            except OSError:
                pass
        time.sleep(0.02)
    return None


# ---- cross-sandbox channel programs ----

PAIR_SERVER = r'''
import ctypes, json, os, select, signal, socket, time
TAG, PORT, KEY, DEADLINE = %(tag)r, %(port)d, %(key)d, %(deadline)r
res = {"conns": {"unix": 0, "tcp": 0}}
class Stop(Exception):
    pass
def stop(*_):
    raise Stop
signal.signal(signal.SIGUSR1, stop)                      # the host: B is done
libc = ctypes.CDLL(None, use_errno=True)
shmid = libc.shmget(KEY, 4096, 0o1000 | 0o600)          # IPC_CREAT
res["shm_created"] = shmid >= 0
with open("/tmp/" + TAG, "w") as f:
    f.write("A")
t = socket.socket()
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("127.0.0.1", PORT))
t.listen(64)
u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
u.bind("\0" + TAG)                                       # bound last: the readiness signal
u.listen(64)
res["ready"] = time.time()
try:
    while time.time() < DEADLINE:
        r, _, _ = select.select([u, t], [], [], max(0.0, DEADLINE - time.time()))
        for s in r:
            c, _ = s.accept()
            res["conns"]["unix" if s is u else "tcp"] += 1
            c.close()
except Stop:
    pass
res["done"] = time.time()
if shmid >= 0:
    libc.shmctl(shmid, 0, None)                          # IPC_RMID
try:
    os.unlink("/tmp/" + TAG)
except OSError:
    pass
print(json.dumps(res))
'''

PAIR_CLIENT = r'''
import ctypes, json, os, socket, time
TAG, PORT, KEY, WINDOW, STOP = %(tag)r, %(port)d, %(key)d, %(window)r, %(stop_when)r
libc = ctypes.CDLL(None, use_errno=True)
res = {"unix": False, "tcp": False, "shm": False, "file": False, "first": time.time()}
end = time.monotonic() + WINDOW
while time.monotonic() < end:
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect("\0" + TAG)
        res["unix"] = True
        s.close()
    except OSError:
        pass
    try:
        socket.create_connection(("127.0.0.1", PORT), timeout=0.2).close()
        res["tcp"] = True
    except OSError:
        pass
    if libc.shmget(KEY, 0, 0) >= 0:
        res["shm"] = True
    if os.path.exists("/tmp/" + TAG):
        res["file"] = True
    res["last"] = time.time()
    if STOP and all(res[k] for k in STOP):
        break
    time.sleep(0.02)
print(json.dumps(res))
'''


def run_pair(extra_args=(), env=None, stop_when=(), window=1.0, server_time=45.0):
    """Runs a server sandbox A and, once A is listening, a client sandbox B
    that tries every channel to A for `window` seconds; A serves until B is
    done (SIGUSR1 from here), `server_time` at most. Returns (A, B, info)."""
    tag = "pyrunner-test-" + uuid.uuid4().hex[:12]
    port = free_tcp_port()
    key = 0x50000000 | (uuid.uuid4().int & 0x0FFFFFFF)
    params = dict(tag=tag, port=port, key=key, deadline=time.time() + server_time,
                  window=window, stop_when=tuple(stop_when))
    a = popen(PAIR_SERVER % params, "--timeout", server_time + 10, *extra_args, env=env)
    try:
        server = wait_for_abstract_socket(a, tag)
        b = run(PAIR_CLIENT % params, *extra_args, env=env)
        if server:
            os.kill(server, signal.SIGUSR1)
    finally:
        ra = finish(a)
        # Only ever relevant when the mount namespace was sabotaged.
        try:
            os.unlink("/tmp/" + tag)
        except OSError:
            pass
    return ra, b, dict(ready=server is not None, tag=tag, port=port, key=key)


# ---- fixtures ----

@pytest.fixture(scope="session", autouse=True)
def _binary_present():
    assert os.access(BIN, os.X_OK), "pyrunner binary not found at %s (run `make build`)" % BIN


@pytest.fixture(name="run")
def _run_fixture():
    return run


@pytest.fixture(scope="session")
def host_listeners():
    """A TCP listener on the host's 127.0.0.1 and an abstract unix socket in
    the host network namespace: things a sandbox must not reach."""
    tcp = socket.socket()
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(64)
    name = "pyrunner-host-" + uuid.uuid4().hex[:12]
    uds = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    uds.bind("\0" + name)
    uds.listen(64)
    yield {"HOST_TCP_PORT": tcp.getsockname()[1], "HOST_ABSTRACT": name}
    tcp.close()
    uds.close()


CANARY = "PYR_IT_CANARY_" + uuid.uuid4().hex[:8].upper()


@pytest.fixture
def deny_params(host_listeners):
    p = dict(host_listeners)
    p["HOST_PID"] = os.getpid()
    p["CANARY"] = CANARY
    return p


def run_check(name, params, *args, env=None):
    """Runs deny check `name` (see denychecks.py) with the canary variable
    in the CLI's environment; returns the Result."""
    import denychecks
    e = {CANARY: "host-secret-value"}
    if env:
        e.update(env)
    return run(denychecks.program(name, params), "--timeout", 20, *args, env=e)
