#!/usr/bin/python3.11
"""Soak and chaos harness for pyrunnerd, driven from the outside over HTTP.

    /usr/bin/python3.11 tools/soak.py [--runs N] [--seconds S] [--concurrency 1,4,8,16]
                                      [--url http://127.0.0.1:PORT [--pid PID]] [--chaos ...]

Without --url it starts its own pyrunnerd (build/src/daemon/pyrunnerd, or
$PYRUNNERD_BIN) on a free 127.0.0.1 port, with --rate-limit 0, a
--max-concurrency of the largest concurrency (so that no run waits in the
queue), a sandbox uid of its own (so that any process of that uid is one of
its sandboxes) and, when it can, a private /tmp (a mount namespace with a
tmpfs, so that every temporary file the daemon or its zygotes leave is
theirs). With --url it drives that daemon and finds its pid from the
listening socket (or --pid); give such a daemon --rate-limit 0 and enough
--max-concurrency (its /tmp is checked only if it is not the machine's).

Soak: after a warm-up (every program twice, at the largest concurrency), one
phase per concurrency sends benign runs mixed with every hostile program of
the test suite (bombs, floods, timeouts, kills, big values, stdin, the deny
checks). Each program has its expected statuses and checks (a timeout must
also say so in `error` and have an execution_time within 1 s of it). Each
request has a deadline of its timeout plus --grace seconds; no reply by then
is "unanswered". Afterwards, once the daemon had --settle seconds to tear down,
it compares with the state before: the daemon's descendants (and processes of
the sandbox uid outside them), its open fds, its sandbox cgroups, the mounts
(ours and the daemon's), the daemon's /tmp and working directory, and its
VmRSS (growth after the warm-up must stay under --rss-growth-kb).

Chaos (--chaos): the same load at one concurrency while it injects each
fault --repeat times: SIGKILL of the zygote, of a sandbox's pid 1, of a pid
2 and of the factory; SIGSTOP of the zygote (left stopped: the daemon must
replace it); and failing cgroup creation (the file named by the daemon's
PYRUNNER_FAULT_CGROUP exists, with PYRUNNER_ALLOW_SABOTAGE=1). Runs that
overlap a fault may end as internal_error or killed (or be refused with 500
or 503); every other run must be right, and every request answered. After
each fault GET / must be 200 and a print() run must succeed within
--recovery seconds. A daemon that dies is reported and (when it is ours)
restarted, so that one pass shows every fault.

Exit status: 0 when nothing was wrong, 1 on any unanswered request, wrong
status or result, leak, slow recovery or daemon death, 2 on bad usage or a
harness error, 3 when the harness overran its time bound by 300 s.
"""
import argparse
import collections
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import denychecks  # noqa: E402  (the deny checks of the test suite)
from conftest import RESULT_KEYS, STATUSES, cmdline, remove_cgroup_dirs  # noqa: E402  (its helpers)
from daemon_helpers import free_port, nspid, pidns, rss_kb  # noqa: E402

FAULT_STATUSES = {"internal_error", "killed"}   # truthful for a run hit by a fault
FAULT_HTTP = {500, 503}                          # "not run" refusals, truthful during a fault
HEADERS = {"Content-Type": "application/json"}
CANARY = "PYRUNNER_SOAK_CANARY"
MIB = 1 << 20


# ---- programs ----

class Program:
    """One request body with its expected statuses. `check(body)` returns a
    problem (str) or None; it is only asked when the status is expected."""

    def __init__(self, name, code, expect, check=None, hostile=True, weight=1, **fields):
        self.name, self.code, self.hostile, self.weight = name, code, hostile, weight
        self.expect = {expect} if isinstance(expect, str) else set(expect)
        assert self.expect <= STATUSES, self.expect
        self.check = check
        fields.setdefault("timeout", 10)
        self.timeout = fields["timeout"]
        self.body = json.dumps(dict(fields, code=code)).encode()


def stdout_is(want):
    return lambda b: None if b["stdout"] == want else "stdout %r, want %r" % (b["stdout"][:200], want)


def last_line(pattern):
    rx = re.compile(pattern)

    def check(b):
        lines = b["stdout"].strip().splitlines()
        line = lines[-1] if lines else ""
        return None if rx.fullmatch(line) else "last line %r does not match %r" % (line[:300], pattern)
    return check


def result_is(want):
    return lambda b: None if b["result"] == want else "result %r, want %r" % (str(b["result"])[:200], want)


def error_type(t):
    def check(b):
        got = (b.get("error_info") or {}).get("type")
        return None if got == t else "error_info.type %r, want %r" % (got, t)
    return check


def truncated(stream):
    def check(b):
        if not b[stream + "_truncated"] or not 0 < len(b[stream]) <= MIB:
            return "%s_truncated %r with %d chars" % (stream, b[stream + "_truncated"], len(b[stream]))
        return None
    return check


# Programs that move 1 MiB or more through the daemon: its peak memory.
BIG = {"stdout_flood", "stderr_flood", "stdout_at_limit", "big_result_5mb", "big_result_list", "stdin_1mb",
       "stdin_unread"}


def cpu_wait_ns(pid):
    """Time the process has spent runnable but waiting for a CPU: what
    sandboxes' load costs the daemon's latency."""
    try:
        return int(read("/proc/%d/schedstat" % pid).split()[1])
    except (AttributeError, IndexError, ValueError):
        return 0


def summary(v):
    """A short description of a (possibly huge) value."""
    if isinstance(v, (list, str)):
        return "%s of %d: %r...%r" % (type(v).__name__, len(v), v[:3], v[-3:])
    return repr(v)[:200]


def programs(deny_params):
    P = Program
    out = [
        # benign
        P("print", "print('hello soak')", "success", stdout_is("hello soak\n"), hostile=False, weight=6),
        P("return_value", "return sum(range(1000))", "success", result_is(499500), hostile=False, weight=2),
        P("expression", "x = [i * i for i in range(5)]\nx", "success", result_is([0, 1, 4, 9, 16]),
          hostile=False),
        P("stdin_echo", "import sys\nd = sys.stdin.read()\nprint(len(d), d[:3])", "success",
          stdout_is("3000 abc\n"), hostile=False, stdin="abc" * 1000),
        P("stderr", "import sys\nprint('to err', file=sys.stderr)", "success",
          lambda b: None if b["stderr"] == "to err\n" else "stderr %r" % b["stderr"][:200], hostile=False),
        P("exception", "def f(x):\n    return 1 / x\nf(0)", "error", error_type("ZeroDivisionError"),
          hostile=False),
        P("sys_exit_3", "import sys\nsys.exit(3)", "error",
          lambda b: None if b["exit_code"] == 3 else "exit_code %r" % b["exit_code"], hostile=False),
        P("syntax_error", "x = 1\nif x\n    pass\n", "error", error_type("SyntaxError"), hostile=False),
        P("json_work", "import json\nd = {str(i): list(range(i)) for i in range(50)}\n"
          "print(len(json.dumps(d)))", "success", stdout_is("%d\n" % len(json.dumps(
              {str(i): list(range(i)) for i in range(50)}))), hostile=False),
        P("threads", "import threading\nres = []\nlock = threading.Lock()\ndef w(i):\n    with lock:\n"
          "        res.append(i * i)\nts = [threading.Thread(target=w, args=(i,)) for i in range(16)]\n"
          "for t in ts: t.start()\nfor t in ts: t.join()\nprint(sorted(res) == [i * i for i in range(16)])",
          "success", stdout_is("True\n"), hostile=False),
        P("subprocess_echo", "import subprocess\nprint(subprocess.run(['/bin/echo', 'hi'], capture_output=True,"
          " text=True, check=True).stdout, end='')", "success", stdout_is("hi\n"), hostile=False),
        P("numpy_sum", "import numpy as np\nprint(int(np.arange(1000).sum()))", "success",
          stdout_is("499500\n"), hostile=False),

        # memory
        P("memory_bomb", "x = bytearray(1024 * 1024 * 1024)\nprint(len(x))", "memory_exceeded",
          stdout_is(""), memory_limit=128),
        P("memory_gradual", "chunks = []\nwhile True:\n    chunks.append(b'x' * (8 << 20))", "memory_exceeded",
          memory_limit=64),
        P("numpy_ones_800mb", "import numpy as np\narr = np.ones((1000, 1000, 100))\nprint(arr.shape)",
          "memory_exceeded", memory_limit=256),
        # processes and threads
        P("fork_bomb", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
          "timeout", timeout=1),
        # Each process that hits the pids limit dies of the exception; the
        # run ends when pid 2 does, or at the timeout.
        P("fork_bomb_bare", "import os\nwhile True:\n    os.fork()", {"error", "timeout"}, timeout=2),
        P("fork_until_failure", "import errno, os, time\nn, err = 0, None\nwhile n < 1000:\n    try:\n"
          "        pid = os.fork()\n    except OSError as e:\n        err = errno.errorcode[e.errno]\n        break\n"
          "    if pid == 0:\n        time.sleep(30)\n        os._exit(0)\n    n += 1\nprint(n, err)",
          "success", last_line(r"[1-9][0-9]? EAGAIN"), timeout=10),
        P("forked_spinners", "import os, time\nfor _ in range(3):\n    if os.fork() == 0:\n        while True:\n"
          "            pass\ntime.sleep(60)", "timeout", timeout=1),
        P("background_child", "import os, time\nif os.fork() == 0:\n    time.sleep(100)\n    os._exit(0)\n"
          "print('main done')", "success", stdout_is("main done\n")),
        P("thread_bomb", "import threading, time\nn = 0\ntry:\n    while n < 10000:\n"
          "        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n        n += 1\n"
          "except RuntimeError:\n    pass\nprint('threads', n)", "success", last_line(r"threads [1-9][0-9]?")),
        # Non-daemon threads are waited for at exit, as Python does: the
        # run ends at its timeout.
        P("thread_bomb_nondaemon", "import threading, time\ntry:\n    for _ in range(10000):\n"
          "        threading.Thread(target=time.sleep, args=(60,)).start()\nexcept RuntimeError:\n    pass",
          "timeout", timeout=2),
        # time
        P("busy_loop", "while True: pass", "timeout", timeout=1),
        P("busy_loop_ignoring_signals", "import signal\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM,"
          " signal.SIGHUP, signal.SIGUSR1):\n    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass",
          "timeout", timeout=1),
        P("regex_catastrophic", "import re\nprint(re.match(r'(a+)+$', 'a' * 40 + 'b'))", "timeout", timeout=1),
        P("sleep_30_timeout_1", "import time\ntime.sleep(30)", "timeout", timeout=1),
        P("sleep_100_timeout_3", "import time\nprint('sleeping', flush=True)\ntime.sleep(100)", "timeout",
          timeout=3),
        P("bigint", "x = 7 ** (10 ** 8)\nprint(x % 10)", "timeout", timeout=2),
        # output
        P("stdout_flood", "while True:\n    print('x' * 99)", "output_limit", truncated("stdout")),
        P("stderr_flood", "import sys\nwhile True:\n    sys.stderr.write('e' * 100)", "output_limit",
          truncated("stderr")),
        P("stdout_at_limit", "import sys\nsys.stdout.write('a' * %d)" % MIB, "success",
          lambda b: None if len(b["stdout"]) == MIB and not b["stdout_truncated"] else
          "stdout of %d chars, truncated %r" % (len(b["stdout"]), b["stdout_truncated"])),
        P("invalid_utf8", "import os\nos.write(1, b'\\xff\\xfe ok')", "success", stdout_is("\ufffd\ufffd ok")),
        # files and fds
        P("disk_fill", "import errno\nn = 0\ntry:\n    with open('/tmp/fill', 'wb') as f:\n        while True:\n"
          "            f.write(b'\\0' * (1 << 20))\n            f.flush()\n            n += 1\n"
          "except OSError as e:\n    print('caught', errno.errorcode[e.errno])", "success",
          last_line(r"caught (EFBIG|ENOSPC)")),
        P("inode_fill", "import errno\nn = 0\ntry:\n    while n < 100000:\n        open('/tmp/f%d' % n, 'w').close()\n"
          "        n += 1\nexcept OSError as e:\n    print('caught', errno.errorcode[e.errno])", "success",
          last_line(r"caught ENOSPC")),
        P("fd_flood", "import errno, os\nfds = []\ntry:\n    while True:\n"
          "        fds.append(os.open('/dev/null', os.O_RDONLY))\nexcept OSError as e:\n"
          "    print('caught', errno.errorcode[e.errno], len(fds))", "success",
          last_line(r"caught EMFILE 2[0-9][0-9]")),
        P("pipe_flood", "import errno, os\nn = 0\ntry:\n    while True:\n        os.pipe()\n        n += 1\n"
          "except OSError as e:\n    print('caught', errno.errorcode[e.errno])", "success",
          last_line(r"caught EMFILE")),
        P("garbage_into_fds", "import os, random\nrandom.seed(1)\nprint('before')\nfor fd in range(64):\n"
          "    try:\n        os.write(fd, random.randbytes(512))\n    except OSError:\n        pass\nprint('after')",
          {"success", "error"}),
        # signals
        P("kill_self", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "killed",
          lambda b: None if b["signal"] == 9 else "signal %r" % b["signal"]),
        P("kill_own_group", "import os, signal\nos.kill(0, signal.SIGKILL)", "killed"),
        P("segfault", "import ctypes\nctypes.string_at(0)", "killed",
          lambda b: None if b["signal"] == 11 else "signal %r" % b["signal"]),
        # pid 1 ignores signals from inside its namespace; kill(-1) finds no one.
        P("kill_pid1", "import os, signal\nfor s in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP):\n"
          "    os.kill(1, s)\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept ProcessLookupError:\n    pass\n"
          "print('alive')", "success", stdout_is("alive\n")),
        P("sigterm_ignored_sleep", "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
          "time.sleep(30)", "timeout", timeout=1),
        # values
        P("big_result_5mb", "return 'x' * (5 << 20)", "success",
          lambda b: None if b["result"] == "x" * (5 << 20) else "result %s" % summary(b["result"])),
        P("big_result_list", "return list(range(500000))", "success",
          lambda b: None if b["result"] == list(range(500000)) else "result %s" % summary(b["result"])),
        P("result_too_big", "return 'x' * (17 << 20)", "error", error_type("ResultError")),
        P("result_too_deep", "v = 0\nfor _ in range(1000):\n    v = [v]\nreturn v", "error",
          error_type("ResultError")),
        P("result_cycle", "a = [1]\na.append(a)\nreturn a", "error", error_type("ResultError")),
        P("recursion", "def f():\n    f()\nf()", "error", error_type("RecursionError")),
        # stdin
        P("stdin_1mb", "import sys\nprint(len(sys.stdin.read()))", "success", stdout_is("%d\n" % MIB),
          stdin="y" * MIB),
        P("stdin_unread", "print('ignored')", "success", stdout_is("ignored\n"), stdin="z" * MIB),
        P("stdin_eof", "input()", "error", error_type("EOFError")),
    ]
    for name in sorted(denychecks.CHECKS):
        out.append(P("deny_" + name, denychecks.program(name, deny_params), "success",
                     last_line("DENIED")))
    return out


class Schedule:
    """Programs in a seeded random order: every hostile program `each` times
    and `n_benign` benign ones (chosen by weight). next() returns None when
    they are used up or at the time bound `until`; an endless schedule
    starts a new shuffled round instead."""

    def __init__(self, progs, each, n_benign, rng, until, endless=False):
        self.progs, self.each, self.n_benign, self.rng = progs, each, n_benign, rng
        self.until, self.endless = until, endless
        self.lock = threading.Lock()
        self.jobs, self.i = self.round(), 0

    def round(self):
        benign = [p for p in self.progs if not p.hostile]
        jobs = [p for p in self.progs if p.hostile] * self.each
        if self.n_benign:
            jobs += self.rng.choices(benign, weights=[p.weight for p in benign], k=self.n_benign)
        self.rng.shuffle(jobs)
        return jobs

    @classmethod
    def mix(cls, progs, n, share, rng, until, endless=False):
        """About `n` runs of which about `share` hostile, each hostile one at least once."""
        n_hostile = sum(p.hostile for p in progs)
        each = max(1, round(n * share / n_hostile)) if n_hostile else 0
        return cls(progs, each, max(0, n - each * n_hostile), rng, until, endless)

    def next(self):
        with self.lock:
            if self.endless and self.i >= len(self.jobs):
                self.jobs, self.i = self.round(), 0
            if self.i >= len(self.jobs) or time.monotonic() >= self.until:
                return None
            self.i += 1
            return self.jobs[self.i - 1]


# ---- /proc ----

def read(path, mode="r"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None


def proc_stat(pid):
    """(ppid, state, starttime, utime+stime) or None."""
    s = read("/proc/%d/stat" % pid)
    if not s:
        return None
    f = s.rsplit(")", 1)[1].split()
    return int(f[1]), f[0], int(f[19]), int(f[11]) + int(f[12])


def proc_status(pid):
    s = read("/proc/%d/status" % pid) or ""
    return dict(line.split(":", 1) for line in s.splitlines() if ":" in line)


def all_procs():
    """{pid: (ppid, state, starttime, cpu)} of every live process."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st and st[1] not in ("Z", "X"):
                out[int(d)] = st
    return out


def ruid(pid):
    v = proc_status(pid).get("Uid")
    return int(v.split()[0]) if v else None


class Tree:
    """The daemon's process tree, classified. Verified by inspection: the
    zygote is the daemon's child `pyrunner-zygote`; its first child (host pid
    namespace) is the factory; the factory's children are the sandboxes'
    pid 1s; the zygote's other children are the pid 2s (NSpid ends in 2)."""

    def __init__(self, dpid, procs=None):
        procs = procs if procs is not None else all_procs()
        kids = collections.defaultdict(list)
        for pid, st in procs.items():
            kids[st[0]].append(pid)
        self.procs = procs
        self.desc = set()
        todo = [dpid]
        while todo:
            for c in kids.get(todo.pop(), []):
                if c not in self.desc:
                    self.desc.add(c)
                    todo.append(c)
        by_start = lambda pids: sorted(pids, key=lambda p: procs[p][2])
        self.zygotes = by_start(p for p in kids.get(dpid, []) if cmdline(p).startswith("pyrunner-zygote"))
        self.factories, self.pid1s, self.pid2s = [], [], []
        ns = {p: nspid(p) for z in self.zygotes for p in kids.get(z, [])}
        for z in self.zygotes:
            host = by_start(p for p in kids.get(z, []) if len(ns[p]) == 1)
            if host:
                self.factories.append(host[0])
                self.pid1s += [p for p in kids.get(host[0], []) if nspid(p)[1:] == [1]]
            self.pid2s += [p for p in kids.get(z, []) if ns[p][1:] == [2]]
        known = set(self.zygotes) | set(self.factories) | set(self.pid1s) | set(self.pid2s)
        self.others = sorted(self.desc - known)
        self.kids = kids

    def current_zygote(self):
        live = [z for z in self.zygotes if self.procs[z][1] != "T"]
        return live[-1] if live else None

    def busy_pid2s(self):
        """pid 2s running user code: with children, or running."""
        return [p for p in self.pid2s if self.kids.get(p) or self.procs[p][1] == "R"]


def describe(pid):
    return "%d %s %r ns%s uid %s" % (pid, (proc_stat(pid) or "??")[1], cmdline(pid)[:60], nspid(pid),
                                    ruid(pid))


def daemon_pid_for_port(port):
    """The pid that holds the listening socket of 127.0.0.1:port (or 0.0.0.0)."""
    inodes = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in (read(name) or "").splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add("socket:[%s]" % f[9])
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                for fd in os.listdir("/proc/%s/fd" % d):
                    if os.readlink("/proc/%s/fd/%s" % (d, fd)) in inodes:
                        return int(d)
            except OSError:
                pass
    return None


def cgroup_roots(dpid):
    """Every directory named pyrunner-<dpid> below /sys/fs/cgroup."""
    name, found = "pyrunner-%d" % dpid, []
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup"):
        if name in dirnames:
            found.append(os.path.join(dirpath, name))
            dirnames.remove(name)
        if dirpath.count("/") > 8:
            dirnames[:] = []
    return sorted(found)


def sandbox_cgroups(roots):
    """{path: number of processes} of every cgroup below the roots."""
    out = {}
    for root in roots:
        for dirpath, dirnames, _ in os.walk(root):
            if dirpath != root:
                procs = read(os.path.join(dirpath, "cgroup.procs"))
                out[dirpath] = len(procs.split()) if procs is not None else -1
    return out


def fd_kinds(pid):
    out = collections.Counter()
    try:
        names = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return out
    for fd in names:
        try:
            t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        out[re.sub(r"run-\d+", "run-N", re.sub(r"\[\d+\]", "", t))] += 1
    return out


def mountinfo(path):
    # Without the mount ids, which change with nothing leaking.
    return collections.Counter(" ".join(l.split()[2:]) for l in (read(path) or "").splitlines())


def dir_entries(path):
    try:
        return set(os.listdir(path))
    except OSError:
        return set()


def own_tmp(pid):
    """True if the daemon's /tmp is not ours: then every entry is its own.
    A /tmp shared with the rest of the machine cannot be checked."""
    try:
        a, b = os.stat("/proc/%d/root/tmp" % pid), os.stat("/tmp")
    except OSError:
        return False
    return (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino)


# ---- the daemon ----

class Target:
    """The daemon under test: ours (started and stopped here) or given by --url."""

    def __init__(self, args):
        self.args = args
        self.own = not args.url
        self.proc = None
        self.work = None
        self.private_tmp = False
        self.tmp_fd = None
        self.sandbox_uids = None        # the range of host uids of its sandboxes
        self.fault_path = None
        self.abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)   # a deny check target
        self.abstract_name = "pyrunner-soak-%d" % os.getpid()
        self.abstract.bind("\0" + self.abstract_name)
        self.abstract.listen(16)
        if not self.own:
            u = urllib.parse.urlsplit(args.url)
            self.host, self.port = u.hostname, u.port or 80
            self.pid = args.pid or daemon_pid_for_port(self.port)
            if not self.pid:
                raise SystemExit("soak: cannot find the pid of the daemon on port %d; give --pid" % self.port)
            env = (read("/proc/%d/environ" % self.pid, "rb") or b"").split(b"\0")
            env = dict(e.decode("utf-8", "replace").split("=", 1) for e in env if b"=" in e)
            if env.get("PYRUNNER_ALLOW_SABOTAGE") == "1":
                self.fault_path = env.get("PYRUNNER_FAULT_CGROUP")

    def start(self):
        a = self.args
        self.host, self.port = "127.0.0.1", free_port()
        if not self.work:
            self.work = tempfile.mkdtemp(prefix="soak-work-")
            os.mkdir(os.path.join(self.work, "cwd"))
        # A uid no other sandbox on this machine uses: every process of it is ours.
        # A uid per live sandbox (64 are plenty here), apart for each port.
        base = 300000 + self.port * 64
        self.sandbox_uids = range(base, base + 64)
        argv = [a.daemon, "--listen", "%s:%d" % (self.host, self.port), "--rate-limit", "0",
                "--max-concurrency", str(max(a.concurrency + [a.chaos_concurrency])), "--max-queue", "1024",
                "--sandbox-uid", str(base), "--sandbox-uids", "64"]
        if a.preload is not None:
            argv += ["--preload", a.preload]
        argv += a.daemon_arg
        env = {k: v for k, v in os.environ.items()
               if not (k.startswith("PYRUNNER_") or k.startswith("PYTHON_EXECUTOR_"))}
        env[CANARY] = "host-secret-value"
        if a.chaos:
            self.fault_path = "/var/tmp/pyrunner-soak-fault-%d" % self.port
            env.update(PYRUNNER_ALLOW_SABOTAGE="1", PYRUNNER_FAULT_CGROUP=self.fault_path)
        # Not when the binaries live below /tmp (a clone there): the tmpfs
        # would hide them.
        under_tmp = os.path.realpath(argv[0]).startswith("/tmp/")
        self.private_tmp = os.geteuid() == 0 and shutil.which("unshare") is not None and not under_tmp
        if self.private_tmp:
            argv = ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                    'mount -t tmpfs -o mode=1777,size=256m soak-tmp /tmp && exec "$@"', "sh"] + argv
        self.log = open(os.path.join(self.work, "pyrunnerd.log"), "ab")
        self.proc = subprocess.Popen(argv, cwd=os.path.join(self.work, "cwd"), env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log)
        self.pid = self.proc.pid        # unshare and sh exec, so this is pyrunnerd's pid
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("soak: pyrunnerd exited %r at start:\n%s" % (self.proc.returncode,
                                                                             self.log_tail()))
            if self.healthy(1.0):
                if self.private_tmp:
                    # Keeps the tmpfs readable once the daemon and its namespace are gone.
                    self.close_tmp()
                    self.tmp_fd = os.open("/proc/%d/root/tmp" % self.pid, os.O_RDONLY | os.O_DIRECTORY)
                return
            time.sleep(0.05)
        raise SystemExit("soak: pyrunnerd not healthy after 60 s:\n" + self.log_tail())

    def log_tail(self, n=8):
        if not self.work:
            return ""
        lines = (read(os.path.join(self.work, "pyrunnerd.log")) or "").splitlines()
        return "\n".join("    " + l[:300] for l in lines[-n:])

    def log_warnings(self):
        """Counts of the daemon's warning log lines, by engine event or message."""
        out = collections.Counter()
        for line in (read(os.path.join(self.work, "pyrunnerd.log")) or "").splitlines() if self.work else []:
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if isinstance(o, dict) and o.get("level") == "warning":
                out[o.get("event") or o.get("msg")] += 1
        return out

    def alive(self):
        if self.proc is not None:
            return self.proc.poll() is None
        st = proc_stat(self.pid)
        return st is not None and st[1] not in ("Z", "X")

    def exit_description(self):
        rc = self.proc.returncode if self.proc else None
        if rc is None:
            return "gone"
        return "killed by %s" % signal.Signals(-rc).name if rc < 0 else "exit status %d" % rc

    def request(self, method, path, body=None, timeout=5.0):
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=HEADERS if body is not None else {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def healthy(self, timeout):
        try:
            st, data = self.request("GET", "/", timeout=timeout)
            return st == 200 and json.loads(data).get("status") == "healthy"
        except (OSError, ValueError, http.client.HTTPException):
            return False

    def print_run(self, timeout):
        try:
            st, data = self.request("POST", "/run", json.dumps({"code": "print('probe')", "timeout": 2}).encode(),
                                    timeout=timeout)
            return st == 200 and json.loads(data).get("stdout") == "probe\n"
        except (OSError, ValueError, http.client.HTTPException):
            return False

    def fault_file(self):
        """The fault file as the daemon sees it, reached through its root."""
        return "/proc/%d/root%s" % (self.pid, self.fault_path)

    def stop(self):
        """SIGTERM; returns problems (exit status, what outlived it)."""
        problems = []
        if not self.own or self.proc is None:
            return problems
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                problems.append("pyrunnerd did not exit 30 s after SIGTERM (killed)")
                self.proc.kill()
                self.proc.wait()
            else:
                if self.proc.returncode != 0:
                    problems.append("pyrunnerd %s after SIGTERM" % self.exit_description())
        problems += self.reap_leftovers("after pyrunnerd exited", cgroups_leak=True)
        if self.tmp_fd is not None and os.listdir(self.tmp_fd):
            problems.append("temp: %d entries left in the daemon's /tmp after it exited: %s"
                            % (len(os.listdir(self.tmp_fd)), sorted(os.listdir(self.tmp_fd))[:6]))
        return problems

    def reap_leftovers(self, when, cgroups_leak=False):
        """Once our daemon is gone: report, kill and remove whatever of it is
        left. Sandbox processes outliving it are always a problem; its cgroup
        directories only after a clean exit (one killed cannot remove them)."""
        problems = []
        deadline = time.monotonic() + self.args.settle
        mark = "/pyrunner-%d/" % self.pid
        while True:
            # Its sandboxes: by uid, or by cgroup (one still setting up has uid 0).
            left = [p for p in all_procs() if ruid(p) in self.sandbox_uids
                    or mark in (read("/proc/%d/cgroup" % p) or "")]
            roots = cgroup_roots(self.pid)
            if (not left and not roots) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if left:
            problems.append("%d sandbox processes %s: %s" % (len(left), when,
                                                              "; ".join(describe(p) for p in left[:5])))
        if roots and cgroups_leak:
            problems.append("cgroup directories %s: %s" % (when, " ".join(roots)))
        elif roots:
            print("  (removed the cgroup directories it left: %s)" % " ".join(roots))
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        remove_cgroup_dirs(roots)
        return problems

    def close_tmp(self):
        if self.tmp_fd is not None:
            os.close(self.tmp_fd)
            self.tmp_fd = None

    def cleanup(self, keep):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.close_tmp()
        if self.work and not keep:
            shutil.rmtree(self.work, ignore_errors=True)


# ---- the state the daemon must return to ----

class State:
    """What can leak, read from the outside."""

    def __init__(self, t):
        procs = all_procs()
        tree = Tree(t.pid, procs)
        self.zygotes, self.factories = len(tree.zygotes), len(tree.factories)
        self.sandboxes = len(tree.pid1s)
        self.others = tree.others
        self.stopped = [z for z in tree.zygotes if procs[z][1] == "T"]
        self.strays = strays(t, procs, tree)
        self.fds = fd_kinds(t.pid)
        self.cgroups = sandbox_cgroups(t.cg_roots)
        self.mounts = mountinfo("/proc/self/mountinfo")
        self.dmounts = mountinfo("/proc/%d/mountinfo" % t.pid)
        self.tmp = dir_entries("/proc/%d/root/tmp" % t.pid) if t.private_tmp else set()
        self.cwd = dir_entries(os.path.join(t.work, "cwd")) if t.work else set()
        try:
            self.rss = rss_kb(t.pid)
        except OSError:             # the daemon is gone
            self.rss = 0

    def leaks(self, before):
        """Problems of this state against `before` (the idle state)."""
        out = []
        if self.others:
            out.append("processes: %d of user code outlived their runs: %s"
                       % (len(self.others), "; ".join(describe(p) for p in self.others[:5])))
        if self.sandboxes > before.sandboxes:
            out.append("processes: %d sandboxes, %d before" % (self.sandboxes, before.sandboxes))
        if self.zygotes > before.zygotes or self.factories > before.factories:
            out.append("processes: %d zygotes and %d factories, %d and %d before%s"
                       % (self.zygotes, self.factories, before.zygotes, before.factories,
                          " (stopped: %s)" % self.stopped if self.stopped else ""))
        new = sorted(set(self.strays) - set(before.strays))
        if new:
            out.append("processes: %d of the sandbox uid outside the daemon's tree: %s"
                       % (len(new), "; ".join(describe(p) for p in new[:5])))
        grown = self.fds - before.fds
        if sum(self.fds.values()) > sum(before.fds.values()):
            out.append("fds: %d open, %d before (more: %s)" % (sum(self.fds.values()), sum(before.fds.values()),
                                                               dict(grown.most_common(6))))
        empty = sorted(p for p, n in self.cgroups.items() if n == 0)
        if len(self.cgroups) > len(before.cgroups) or empty:
            out.append("cgroups: %d sandbox cgroups, %d before; %d empty: %s"
                       % (len(self.cgroups), len(before.cgroups), len(empty), " ".join(empty[:4])))
        for name, now, was in (("mounts", self.mounts, before.mounts), ("daemon mounts", self.dmounts, before.dmounts)):
            new = now - was
            if new:
                out.append("%s: %d new: %s" % (name, sum(new.values()), list(new)[:3]))
        for name, now, was in (("/tmp", self.tmp, before.tmp), ("working directory", self.cwd, before.cwd)):
            new = now - was
            if new:
                out.append("temp: %d new entries in the daemon's %s: %s" % (len(new), name, sorted(new)[:6]))
        return out


def strays(t, procs, tree):
    """Processes of the sandbox uid outside the daemon's tree. Our daemon's
    uid is its own; a daemon given by --url may share its uid with other
    pyrunner daemons and CLIs, so then only orphans count."""
    if t.sandbox_uids is None:
        return []
    out = []
    for p in procs:
        if p in tree.desc or ruid(p) not in t.sandbox_uids:
            continue
        if not t.own:
            up = procs[p][0]
            while up in procs and not cmdline(up).startswith("pyrunner"):
                up = procs[up][0]
            if up in procs:
                continue            # below another live pyrunner
        out.append(p)
    return sorted(out)


def settle(t, before, seconds):
    """Polls (bounded) until the daemon is back to `before`; returns the
    final State and its leaks."""
    deadline = time.monotonic() + seconds
    while True:
        now = State(t)
        leaks = now.leaks(before)
        if not leaks or time.monotonic() > deadline or not t.alive():
            return now, leaks
        time.sleep(0.05)


# pyrunnerd returns free heap pages to the kernel once idle for 1 s.
TRIM_AFTER_S = 1.0


def idle_rss(t):
    """The daemon's VmRSS once it has been idle long enough to trim its
    heap: what it holds, not the high-water mark of the last big reply."""
    time.sleep(TRIM_AFTER_S + 0.3)
    return rss_kb(t.pid)


def wait_pool(t, timeout=15.0):
    """Waits (bounded) until the counts of sandboxes, zygotes and fds stay
    the same over 10 polls, each pid 1 with its pid 2: the idle pool."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        tree = Tree(t.pid)
        seen.append((len(tree.pid1s), len(tree.pid2s), len(tree.zygotes), sum(fd_kinds(t.pid).values())))
        tail = seen[-10:]
        if len(tail) == 10 and len(set(tail)) == 1 and tail[0][0] == tail[0][1]:
            return
        time.sleep(0.03)


# ---- load ----

Rec = collections.namedtuple("Rec", "prog phase t0 t1 http status rid problem fault_ok")


def judge(prog, http_status, body):
    """(run status, problem if no fault hit the run, acceptable if one did)."""
    if http_status != 200:
        detail = ""
        try:
            detail = json.loads(body).get("detail")
        except (ValueError, AttributeError):
            pass
        return None, "HTTP %d %s" % (http_status, str(detail)[:120]), http_status in FAULT_HTTP
    try:
        b = json.loads(body)
    except ValueError as e:
        return "?", "not JSON: %s" % e, False
    if not isinstance(b, dict) or not RESULT_KEYS <= set(b) or b["status"] not in STATUSES:
        return "?", "malformed result: %s" % str(b)[:200], False
    st = b["status"]
    if st == "internal_error" and not (isinstance(b["error"], str) and b["error"]):
        return st, "internal_error without an error message", False
    if st not in prog.expect:
        want = "/".join(sorted(prog.expect))
        return st, "status %s (want %s): %s" % (st, want, str(b["error"])[:160]), st in FAULT_STATUSES
    problem = prog.check(b) if prog.check else None
    if not problem and st == "timeout":
        if b["error"] != "Execution timed out after %d s" % prog.timeout:
            problem = "timeout error %r" % b["error"]
        elif b["execution_time"] > prog.timeout + 1.0:
            problem = "timed out with execution_time %.2f s (timeout %d s)" % (b["execution_time"], prog.timeout)
    return st, problem, problem is None


class Load:
    """Sends the programs of a Schedule from `n` threads, one keep-alive
    connection each, and keeps one Rec per request."""

    def __init__(self, t, grace):
        self.t, self.grace = t, grace
        self.recs = []
        self.lock = threading.Lock()
        self.paused = threading.Event()     # chaos: the daemon is being replaced
        self.stop = threading.Event()
        self.crashed = None
        self.inflight = 0

    def pause(self):
        """No new requests from now on (those in flight go on)."""
        with self.lock:
            self.paused.set()

    def wait_idle(self, timeout):
        deadline = time.monotonic() + timeout
        while self.inflight and time.monotonic() < deadline:
            time.sleep(0.05)

    def one(self, conn, prog, phase):
        t = self.t
        limit = prog.timeout + self.grace
        t0 = time.monotonic()
        http_status, rid, data, err = None, None, None, None
        try:
            if conn is None or conn.port != t.port:
                conn = http.client.HTTPConnection(t.host, t.port, timeout=limit)
            conn.timeout = limit
            if conn.sock:
                conn.sock.settimeout(limit)
            conn.request("POST", "/run", body=prog.body, headers=HEADERS)
            r = conn.getresponse()
            data = r.read()
            http_status, rid = r.status, r.getheader("X-Request-Id")
            if r.will_close:
                conn.close()
                conn = None
        except socket.timeout:
            err = "no reply within %.1f s" % limit
        except (OSError, http.client.HTTPException) as e:
            err = "no reply: %s" % (type(e).__name__ + (": %s" % e if str(e) else ""))
        t1 = time.monotonic()
        if err is None and t1 - t0 > limit:
            err = "reply after %.1f s, past the %.1f s deadline" % (t1 - t0, limit)
        if err is not None:
            if conn is not None:
                conn.close()
            rec = Rec(prog.name, phase, t0, t1, None, None, rid, "unanswered: " + err, False)
            return None, rec
        status, problem, fault_ok = judge(prog, http_status, data)
        return conn, Rec(prog.name, phase, t0, t1, http_status, status, rid, problem, fault_ok)

    def worker(self, sched, phase):
        conn = None
        try:
            while not self.stop.is_set():
                with self.lock:
                    go = not self.paused.is_set() and self.t.alive()
                    self.inflight += go
                if not go:
                    time.sleep(0.02)       # being replaced, or gone: send nothing
                    continue
                prog = sched.next()
                if prog is None:
                    with self.lock:
                        self.inflight -= 1
                    break
                conn, rec = self.one(conn, prog, phase)
                with self.lock:
                    self.recs.append(rec)
                    self.inflight -= 1
        except Exception:                  # a bug of the harness, not of the daemon
            self.crashed = traceback.format_exc()
            self.stop.set()
        if conn is not None:
            conn.close()

    def run(self, sched, concurrency, phase):
        threads = [threading.Thread(target=self.worker, args=(sched, phase), daemon=True)
                   for _ in range(concurrency)]
        for th in threads:
            th.start()
        return threads


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))] if v else 0.0


def fmt_s(x):
    return "%.0fms" % (x * 1000) if x < 1 else "%.2fs" % x


# ---- chaos ----

FAULTS = ["zygote-kill", "pid1-kill", "pid2-kill", "factory-kill", "zygote-stop", "cgroup-fail"]


def inject(t, fault, rng, busy):
    """Injects one fault; returns (description, victim pid or None). Waits
    up to 2 s for a target (a pool being refilled has no pid 1 for a moment)."""
    deadline = time.monotonic() + 2.0
    while True:
        victim = pick(t, fault, rng, busy)
        if victim is not None or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    if victim is None:
        return "no target for %s within 2 s: %s" % (fault, describe_tree(t)), None
    sig = signal.SIGSTOP if fault == "zygote-stop" else signal.SIGKILL
    what = "%s of %s" % (sig.name, describe(victim))
    os.kill(victim, sig)
    return what, victim


def describe_tree(t):
    tree = Tree(t.pid)
    return "zygotes %s, factories %s, pid 1s %s, pid 2s %s" % (
        [describe(z) for z in tree.zygotes], tree.factories, tree.pid1s, tree.pid2s)


def pick(t, fault, rng, busy):
    tree = Tree(t.pid)
    z = tree.current_zygote()
    if fault in ("zygote-kill", "zygote-stop"):
        victim = z
    elif fault == "factory-kill":
        victim = next((f for f in tree.factories if tree.procs[f][0] == z), None)
    elif fault == "pid1-kill":
        busy_ns = {pidns(p) for p in tree.busy_pid2s()} if busy else set()
        pool = [p for p in tree.pid1s if pidns(p) in busy_ns] or tree.pid1s
        victim = rng.choice(pool) if pool else None
    elif fault == "pid2-kill":
        pool = (tree.busy_pid2s() if busy else []) or tree.pid2s
        victim = rng.choice(pool) if pool else None
    else:
        raise AssertionError(fault)
    return victim


def recover(t, since, limit, old_zygote=None):
    """Seconds from `since` until GET / is 200 and a print() run succeeds
    (and, after a zygote fault, another live zygote serves); None if not
    within `limit`."""
    deadline = since + limit
    while time.monotonic() < deadline and t.alive():
        left = max(0.2, deadline - time.monotonic())
        ok = t.healthy(min(1.0, left)) and t.print_run(min(3.0, left))
        if ok and old_zygote is not None:
            z = Tree(t.pid).current_zygote()
            ok = z is not None and z != old_zygote
        if ok:
            return time.monotonic() - since
        time.sleep(0.01)
    return None


def cgroup_fault(t, hold, n_force):
    """Makes cgroup creation fail for `hold` seconds while `n_force` runs
    (more than the pool holds) make the daemon spawn. Returns (start, end,
    note, problems). A cgroup created well after the file appeared means
    that the fault did not take."""
    path = t.fault_file()
    before = set(sandbox_cgroups(t.cg_roots))
    got = collections.Counter()
    problems = []

    def force():
        try:
            st, data = t.request("POST", "/run", json.dumps({"code": "print('forced')", "timeout": 2}).encode(),
                                 timeout=2 + 5)
            got[json.loads(data).get("status") if st == 200 else "HTTP %d" % st] += 1
        except (OSError, ValueError, http.client.HTTPException) as e:
            got["unanswered"] += 1
            problems.append("a run sent while cgroup creation failed got no reply: %r" % e)

    t0 = time.monotonic()
    with open(path, "w"):
        pass
    created = set()
    threads = [threading.Thread(target=force, daemon=True) for _ in range(n_force)]
    try:
        for th in threads:
            th.start()
        # A cgroup made just before the file existed may be listed only
        # after it: what the first listing after the file shows is "before".
        before |= set(sandbox_cgroups(t.cg_roots))
        while time.monotonic() < t0 + hold:
            created |= set(sandbox_cgroups(t.cg_roots)) - before
            time.sleep(0.01)
    finally:
        os.unlink(path)
    t1 = time.monotonic()
    for th in threads:
        th.join(2 + 5 + 1)
    if created:
        problems.append("cgroup creation did not fail while %s existed: %d new cgroups (%s); "
                        "is the engine's PYRUNNER_FAULT_CGROUP hook missing?"
                        % (t.fault_path, len(created), os.path.basename(sorted(created)[0])))
    note = "forced runs: %s" % ", ".join("%s %d" % kv for kv in sorted(got.items()))
    return t0, t1, note, problems


# ---- main ----

class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.t = Target(args)
        self.violations = []        # (kind, text)
        self.windows = []           # (start, end) of faults
        self.recoveries = []        # (fault, seconds or None, note)
        self.daemon_deaths = []

    def fail(self, kind, text):
        self.violations.append((kind, text))
        print("  !! %s: %s" % (kind, text), flush=True)

    def baseline(self):
        t = self.t
        t.cg_roots = cgroup_roots(t.pid)
        wait_pool(t)
        if t.sandbox_uids is None:
            # A daemon of its own (--url): the default range, if its
            # sandboxes are in it, else only the one uid seen.
            tree = Tree(t.pid)
            uid = ruid(tree.pid2s[0]) if tree.pid2s else None
            if uid is not None:
                t.sandbox_uids = range(101000, 102024) if 101000 <= uid < 102024 else range(uid, uid + 1)
        return State(t)

    def programs(self):
        params = dict(HOST_PID=os.getpid(), HOST_TCP_PORT=self.t.port, HOST_ABSTRACT=self.t.abstract_name,
                      CANARY=CANARY)
        progs = programs(params)
        if self.args.only:
            progs = [p for p in progs if re.search(self.args.only, p.name) or not p.hostile]
        return progs

    def check_death(self, when):
        """Records the death of the daemon; True if it is dead."""
        t = self.t
        if t.alive():
            return False
        text = "pyrunnerd %s %s" % (t.exit_description(), when)
        self.daemon_deaths.append(text)
        self.fail("daemon died", text + "\n" + t.log_tail())
        return True

    def run_soak(self, progs, load, until):
        a, t = self.args, self.t
        before = self.baseline()
        print("idle: %d zygote(s), %d factory, %d pool sandboxes, %d fds, %d sandbox cgroups, RSS %d kB"
              % (before.zygotes, before.factories, before.sandboxes, sum(before.fds.values()),
                 len(before.cgroups), before.rss), flush=True)
        # Warm-up: every program twice (the second time finds malloc's
        # thresholds moved by the first), at the largest concurrency.
        top = max(a.concurrency)
        self.phase(load, Schedule(progs, 2, 100, self.rng, until), top, "warm-up")
        # Then the daemon's peak memory: as many big ones at once as there
        # are clients, so that RSS measures growth, not a new high-water mark.
        big = [p for p in progs if p.name in BIG]
        if big:
            self.phase(load, Schedule(big, -(-2 * top // len(big)), 0, self.rng, until), top, "peak")
        if self.check_death("during the warm-up"):
            return
        settle(t, before, a.settle)
        rss0 = idle_rss(t)
        n_phase = max(1, a.runs // len(a.concurrency))
        for i, c in enumerate(a.concurrency):
            phase_until = time.monotonic() + (until - time.monotonic()) / (len(a.concurrency) - i)
            self.phase(load, Schedule.mix(progs, n_phase, a.hostile_share, self.rng, phase_until), c, "c=%d" % c)
            if self.check_death("during phase c=%d" % c):
                return
            print("               daemon RSS %d kB, %d fds" % (rss_kb(t.pid), sum(fd_kinds(t.pid).values())))
        after, leaks = settle(t, before, a.settle)
        for leak in leaks:
            self.fail("leak", leak)
        rss1 = idle_rss(t)
        growth = rss1 - rss0
        print("daemon RSS: %d kB after the warm-up, %d kB at the end (%+d kB)" % (rss0, rss1, growth))
        if growth >= a.rss_growth_kb:
            self.fail("leak", "daemon RSS grew by %d kB after the warm-up (limit %d kB)"
                      % (growth, a.rss_growth_kb))

    def phase(self, load, sched, c, name):
        t0, n0 = time.monotonic(), len(load.recs)
        wait0 = cpu_wait_ns(self.t.pid)
        for th in load.run(sched, c, name):
            while th.is_alive():
                th.join(0.2)
                if not self.t.alive():
                    load.stop.set()
        n, took = len(load.recs) - n0, time.monotonic() - t0
        short = sched.i < len(sched.jobs)
        waited = (cpu_wait_ns(self.t.pid) - wait0) / 1e6
        print("phase %-8s %6d runs in %6.1f s (%.0f/s), daemon waited %.0f ms for a CPU (%.1f ms/s)%s" % (
            name, n, took, n / max(took, 1e-9), waited, waited / max(took, 1e-9),
            " (stopped at %d of %d)" % (sched.i, len(sched.jobs)) if short else ""), flush=True)

    def run_chaos(self, progs, load, until):
        a, t = self.args, self.t
        faults = a.faults
        before = self.baseline()
        if "cgroup-fail" in faults and not t.fault_path:
            self.fail("fault", "cannot make cgroup creation fail: the daemon has no PYRUNNER_ALLOW_SABOTAGE=1 "
                               "and PYRUNNER_FAULT_CGROUP in its environment")
            faults = [f for f in faults if f != "cgroup-fail"]
        n_hostile = sum(p.hostile for p in progs)
        sched = Schedule.mix(progs, round(n_hostile / a.hostile_share), a.hostile_share, self.rng, until,
                             endless=True)
        threads = load.run(sched, a.chaos_concurrency, "chaos")
        outcome = "ok"
        for rep in range(a.repeat):
            for fault in faults:
                if time.monotonic() > until:
                    self.fail("fault", "time bound reached before %s #%d" % (fault, rep + 1))
                    outcome = "stop"
                if outcome == "stop":
                    break
                outcome = self.fault_once(fault, rep, load)
                if outcome == "restarted":
                    before = self.baseline()
        time.sleep(a.gap)
        load.stop.set()
        for th in threads:
            th.join(max(p.timeout for p in progs) + a.grace + 5)
        print("chaos load: %d runs" % len(load.recs))
        if t.alive():
            _, leaks = settle(t, before, a.settle)
            for leak in leaks:
                self.fail("leak", leak)

    def fault_once(self, fault, rep, load):
        """One fault and the recovery from it: "ok", "restarted" (a new
        daemon of ours replaced a dead or wedged one) or "stop"."""
        a, t = self.args, self.t
        name = "%s #%d" % (fault, rep + 1)
        steady = recover(t, time.monotonic(), a.recovery_wait)
        if steady is None:
            return self.unhealthy(load, "before " + name)
        time.sleep(a.gap)
        old_zygote = None
        if fault == "cgroup-fail":
            t_fault, t_from, note, problems = cgroup_fault(t, a.cgroup_fault_ms / 1000.0, a.pool_size + 4)
            what = "cgroup creation failing for %d ms; %s" % (a.cgroup_fault_ms, note)
            for p in problems:
                self.fail("fault", "%s: %s" % (name, p))
        else:
            if fault.startswith("zygote"):
                old_zygote = Tree(t.pid).current_zygote()
            t_fault = t_from = time.monotonic()
            what, victim = inject(t, fault, self.rng, busy=rep % 2 == 0)
            if victim is None:
                self.fail("fault", what)
                return "ok"
        cpu0 = (proc_stat(t.pid) or (0, 0, 0, 0))[3]
        took = recover(t, t_from, a.recovery_wait, old_zygote)
        self.recoveries.append((fault, took, what))
        if took is not None:
            self.windows.append((t_fault, t_from + took))
            print("  %-16s recovered in %5.0f ms (a probe before it took %.0f ms)  %s"
                  % (name, took * 1000, steady * 1000, what), flush=True)
            if took > a.recovery:
                self.fail("recovery", "%s: healthy again after %.0f ms (limit %.0f ms)"
                          % (name, took * 1000, a.recovery * 1000))
            return "ok"
        cpu = ((proc_stat(t.pid) or (0, 0, 0, cpu0))[3] - cpu0) / os.sysconf("SC_CLK_TCK")
        print("  %-16s NOT recovered within %.0f s (pyrunnerd used %.0f%% of a CPU meanwhile)  %s"
              % (name, a.recovery_wait, 100 * cpu / (time.monotonic() - t_from), what), flush=True)
        outcome = self.unhealthy(load, "after %s (%s)" % (name, what))
        self.windows.append((t_fault, time.monotonic()))
        return outcome

    def unhealthy(self, load, when):
        """The daemon is dead or not healthy: record it, and replace it if it is ours."""
        t = self.t
        if not self.check_death(when):
            self.fail("recovery", "not healthy within %.0f s %s" % (self.args.recovery_wait, when))
            if not t.own:
                return "ok"
            # Wedged: replace it, so that the other faults are still tried.
            # First the requests in flight get their full deadline.
            load.pause()
            load.wait_idle(max(p.timeout for p in self.programs()) + self.args.grace + 2)
            self.check_death(when)
            t.proc.kill()
            t.proc.wait()
        if not t.own:
            return "stop"
        load.pause()
        for p in t.reap_leftovers("after pyrunnerd %d ended" % t.pid):
            self.fail("leak", p)
        t.log.write(b"---- soak: pyrunnerd restarted ----\n")
        t.log.close()
        t.start()
        print("  restarted pyrunnerd (pid %d, port %d)" % (t.pid, t.port), flush=True)
        load.paused.clear()
        return "restarted"

    def judge_records(self, load):
        wrong, reasons, phases = collections.Counter(), collections.Counter(), collections.Counter()
        unanswered = 0
        shown = 0
        for r in load.recs:
            hit = any(r.t0 <= end and r.t1 >= start for start, end in self.windows)
            if r.problem is None or (hit and r.fault_ok):
                continue
            kind = "unanswered" if r.http is None else "wrong"
            phases[r.phase] += 1
            if kind == "unanswered":
                unanswered += 1
            else:
                wrong[r.prog] += 1
            if shown < self.args.show:
                shown += 1
                print("  !! %s %s [%s] request %s, %.2f s%s: %s"
                      % (kind, r.prog, r.phase, r.rid or "-", r.t1 - r.t0, " (during a fault)" if hit else "",
                         r.problem))
            if kind == "unanswered":
                reasons[re.sub(r"\d+(\.\d+)? s", "N s", r.problem.split(": ", 1)[1])] += 1
        if reasons:
            print("  unanswered: " + "; ".join("%d %s" % (n, why) for why, n in reasons.most_common()))
        if phases:
            print("  bad requests by phase: " + ", ".join("%s %d" % kv for kv in phases.items()))
        return unanswered, wrong

    def report(self, load):
        by = collections.defaultdict(list)
        for r in load.recs:
            by[r.prog].append(r)
        progs = {p.name: p for p in self.programs()}
        print("\n%-36s %6s %8s %8s %8s  %s" % ("program", "runs", "p50", "p99", "max", "statuses (! = unexpected)"))
        for name in sorted(by, key=lambda n: (progs[n].hostile if n in progs else True, n)):
            recs = by[name]
            walls = [r.t1 - r.t0 for r in recs]
            counts = collections.Counter(r.status or ("HTTP %d" % r.http if r.http else "unanswered")
                                         for r in recs)
            exp = progs[name].expect if name in progs else set()
            print("%-36s %6d %8s %8s %8s  %s" % (
                name, len(recs), fmt_s(pct(walls, 0.5)), fmt_s(pct(walls, 0.99)), fmt_s(max(walls)),
                ", ".join("%s %d%s" % (s, n, "" if s in exp else "!") for s, n in counts.most_common())))
        answered = [r.t1 - r.t0 for r in load.recs if r.http == 200]
        benign = [r.t1 - r.t0 for r in load.recs if r.http == 200 and r.prog in progs and not progs[r.prog].hostile]
        print("\nlatency of all answered runs: p50 %s, p99 %s; benign runs: p50 %s, p99 %s"
              % (fmt_s(pct(answered, 0.5)), fmt_s(pct(answered, 0.99)), fmt_s(pct(benign, 0.5)),
                 fmt_s(pct(benign, 0.99))))
        warnings = self.t.log_warnings()
        if warnings:
            print("daemon warnings: %s" % ", ".join("%s %d" % kv for kv in warnings.most_common()))
        if self.recoveries:
            print("\nrecovery after each fault (limit %.0f ms):" % (self.args.recovery * 1000))
            for fault in FAULTS:
                got = [x for f, x, _ in self.recoveries if f == fault]
                if got:
                    print("  %-13s %s" % (fault, "  ".join("%.0fms" % (x * 1000) if x is not None else "NONE"
                                                          for x in got)))

    def main(self):
        a, t = self.args, self.t
        hard = threading.Timer(a.seconds + 300, self.overrun)
        hard.daemon = True
        hard.start()
        keep = True
        try:
            if t.own:
                t.start()
            t.private_tmp = own_tmp(t.pid)
            print("pyrunnerd pid %d at http://%s:%d%s" % (t.pid, t.host, t.port, " (private /tmp)" if t.private_tmp
                  else "; its /tmp is shared with the machine, so it is not checked"), flush=True)
            progs = self.programs()
            print("%d programs (%d hostile); runs %d, concurrency %s, deadline timeout + %.1f s"
                  % (len(progs), sum(p.hostile for p in progs), a.runs,
                     a.chaos_concurrency if a.chaos else ",".join(map(str, a.concurrency)), a.grace), flush=True)
            load = Load(t, a.grace)
            until = time.monotonic() + a.seconds
            (self.run_chaos if a.chaos else self.run_soak)(progs, load, until)
            if load.crashed:
                print("soak: harness error (not a finding about the daemon):\n" + load.crashed)
                return 2
            unanswered, wrong = self.judge_records(load)
            if t.own:
                for p in t.stop():
                    self.fail("daemon" if p.startswith("pyrunnerd") else "leak", p)
            self.report(load)
            if self.violations:
                print("\nproblems:")
                for kind, text in self.violations:
                    print("  %s: %s" % (kind, text.split("\n")[0]))
            leaks = sum(1 for k, _ in self.violations if k == "leak")
            others = [v for v in self.violations if v[0] != "leak"]
            print("\n%s: %d runs, %d unanswered, %d wrong (%s), %d leaks, %d daemon deaths, %d other problems"
                  % ("chaos" if a.chaos else "soak", len(load.recs), unanswered, sum(wrong.values()),
                     ", ".join("%s %d" % kv for kv in wrong.most_common(8)) or "-", leaks,
                     len(self.daemon_deaths), len(others) - len(self.daemon_deaths)))
            bad = unanswered or wrong or self.violations
            keep = bool(bad)
            if keep and t.work:
                print("daemon log kept in %s" % t.work)
            print("FAIL" if bad else "PASS", flush=True)
            return 1 if bad else 0
        finally:
            hard.cancel()
            t.cleanup(keep)

    def overrun(self):
        print("soak: overran its time bound by 300 s; stopping", flush=True)
        if self.t.own:
            self.t.cleanup(True)
            self.t.reap_leftovers("at the overrun")
        os._exit(3)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    ints = lambda s: [int(x) for x in s.split(",") if x]
    p.add_argument("--runs", type=int, default=3000, help="runs after the warm-up (default 3000)")
    p.add_argument("--seconds", type=float, help="time bound of the load (default: 120 for a soak; for chaos "
                   "enough for every fault to time out its recovery)")
    p.add_argument("--concurrency", type=ints, default=[1, 4, 8, 16], help="one phase each (default 1,4,8,16)")
    p.add_argument("--url", help="drive this running daemon instead of starting one")
    p.add_argument("--pid", type=int, help="with --url: the daemon's pid (default: found from the port)")
    p.add_argument("--daemon", default=os.environ.get("PYRUNNERD_BIN") or
                   os.path.join(REPO, "build", "src", "daemon", "pyrunnerd"), help="pyrunnerd binary")
    p.add_argument("--preload", help="--preload for our daemon (default: the daemon's default)")
    p.add_argument("--daemon-arg", action="append", default=[], help="extra flag for our daemon (repeatable)")
    p.add_argument("--grace", type=float, default=5.0, help="seconds past a run's timeout before it is unanswered")
    p.add_argument("--settle", type=float, default=2.0, help="seconds allowed for teardown before counting leaks")
    p.add_argument("--hostile-share", type=float, default=0.05, help="share of hostile runs (default 0.05)")
    p.add_argument("--rss-growth-kb", type=int, default=1024, help="allowed VmRSS growth after the warm-up")
    p.add_argument("--only", help="hostile programs whose name matches this regex (benign ones always run)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--show", type=int, default=40, help="print at most this many bad requests")
    p.add_argument("--list", action="store_true", help="list the programs and exit")
    c = p.add_argument_group("chaos")
    c.add_argument("--chaos", action="store_true", help="inject faults under load instead of phases")
    c.add_argument("--faults", type=lambda s: s.split(","), default=FAULTS, help=",".join(FAULTS))
    c.add_argument("--repeat", type=int, default=3, help="times each fault is injected (default 3)")
    c.add_argument("--chaos-concurrency", type=int, default=8, help="load during chaos (default 8)")
    c.add_argument("--recovery", type=float, default=1.0, help="allowed seconds to be healthy again")
    c.add_argument("--recovery-wait", type=float, default=10.0, help="give up on a recovery after this long")
    c.add_argument("--gap", type=float, default=0.5, help="seconds of plain load before each fault")
    c.add_argument("--cgroup-fault-ms", type=int, default=500, help="how long cgroup creation fails")
    c.add_argument("--pool-size", type=int, default=4, help="the daemon's pool-size (runs forced past it)")
    a = p.parse_args(argv)
    bad = [f for f in a.faults if f not in FAULTS]
    if bad or not a.concurrency or min(a.concurrency) < 1 or a.runs < 1 or a.repeat < 1:
        p.error("bad --faults %s, --concurrency, --runs or --repeat" % bad)
    if a.seconds is None:
        a.seconds = (len(a.faults) * a.repeat * (2 * a.gap + 2 * a.recovery_wait + 20) if a.chaos else 120)
    a.daemon = os.path.abspath(a.daemon)        # it runs in a directory of its own
    if not a.url and not os.access(a.daemon, os.X_OK):
        p.error("no pyrunnerd at %s (run `make build`, or give --daemon or --url)" % a.daemon)
    return a


def main(argv):
    a = parse_args(argv)
    if a.list:
        for prog in programs(dict(HOST_PID=0, HOST_TCP_PORT=0, HOST_ABSTRACT="x", CANARY=CANARY)):
            print("%-36s %-8s timeout %-3d expect %s" % (prog.name, "hostile" if prog.hostile else "benign",
                                                          prog.timeout, "/".join(sorted(prog.expect))))
        return 0
    return Soak(a).main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
