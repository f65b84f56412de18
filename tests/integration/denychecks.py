"""Deny checks shared by test_deny.py and test_sabotage.py.

CHECKS maps a name to (snippet, layer). Each snippet is a small program run
inside a sandbox; its last line of output is "DENIED" when the protection
holds and "ALLOWED: <evidence>" when it does not. `layer` is the value for
--test-sabotage that must make the snippet print ALLOWED (None: the check is
not tied to one layer and has no sabotage counterpart).

The normal deny tests assert DENIED with every layer on; the sabotage tests
run the same snippet with that layer switched off and assert ALLOWED. That
proves each deny test can fail, i.e. that it really depends on the layer.

Snippets may use these names, defined by a preamble (see program()):
  HOST_PID       pid of the test process on the host
  HOST_TCP_PORT  a TCP port listening on the host's 127.0.0.1
  HOST_ABSTRACT  an abstract unix socket bound in the host's network namespace
  CANARY         name of an environment variable set for the CLI
"""

PREAMBLE = '''\
import ctypes, errno, os, socket, stat, sys
HOST_PID = %(HOST_PID)d
HOST_TCP_PORT = %(HOST_TCP_PORT)d
HOST_ABSTRACT = %(HOST_ABSTRACT)r
CANARY = %(CANARY)r
allowed = []
def _verdict():
    print("ALLOWED: " + "; ".join(allowed) if allowed else "DENIED")
'''

EPILOGUE = '''
_verdict()
'''

HOST_FILES = r'''
# Only the sandbox's own small root: no host files.
for p in ("/etc/shadow", "/etc/gshadow", "/etc/ssh", "/root", "/home", "/work", "/sys",
          "/var", "/boot", "/run", "/mnt", "/srv", "/opt"):
    if os.path.lexists(p):
        allowed.append("%s exists" % p)
root = set(os.listdir("/"))
extra = root - {"bin", "dev", "etc", "lib", "lib64", "proc", "sbin", "tmp", "usr"}
if extra:
    allowed.append("extra entries in /: %s" % sorted(extra))
etc = set(os.listdir("/etc"))
extra = etc - {"passwd", "group", "hostname", "hosts", "ld.so.cache", "alternatives", "localtime",
                 "matplotlibrc"}
if extra:
    allowed.append("host files in /etc: %s" % sorted(extra)[:10])
if len(os.listdir("/dev")) > 12:
    allowed.append("host /dev: %d entries" % len(os.listdir("/dev")))
'''

READ_ONLY = r'''
# The system directories are read-only mounts. DAC alone would also refuse
# most writes to root-owned host directories, so the check also requires
# the read-only flag on the mount itself.
for d in ("/", "/usr", "/etc", "/dev", "/usr/lib"):
    if not os.statvfs(d).f_flag & os.ST_RDONLY:
        allowed.append("%s is not mounted read-only" % d)
for p in ("/pyrunner-probe", "/usr/pyrunner-probe", "/etc/pyrunner-probe", "/dev/pyrunner-probe",
          "/etc/passwd", "/usr/lib/python3/dist-packages/pyrunner-probe.py"):
    try:
        with open(p, "a") as f:
            f.write("x")
        allowed.append("wrote %s" % p)
    except OSError as e:
        if e.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            allowed.append("%s: unexpected %s" % (p, errno.errorcode.get(e.errno)))
for d in ("/usr/pyrunner-dir", "/etc/pyrunner-dir", "/pyrunner-dir"):
    try:
        os.mkdir(d)
        allowed.append("mkdir %s" % d)
    except OSError:
        pass
'''

NETWORK = r'''
# Only a loopback device, and nothing outside the sandbox is reachable.
with open("/proc/self/net/dev") as f:
    ifaces = [l.split(":")[0].strip() for l in f.read().splitlines()[2:]]
if set(ifaces) != {"lo"}:
    allowed.append("interfaces %s" % ifaces)
try:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("\0" + HOST_ABSTRACT)
    allowed.append("reached the host's abstract unix socket")
except OSError:
    pass
targets = [("127.0.0.1", HOST_TCP_PORT)]
if not allowed:
    targets += [("1.1.1.1", 53), ("8.8.8.8", 443), ("10.0.0.1", 80)]
for addr in targets:
    try:
        socket.create_connection(addr, timeout=1).close()
        allowed.append("connected to %s:%d" % addr)
    except OSError:
        pass
'''

HOSTNAME = r'''
if socket.gethostname() != "pyrunner" or os.uname().nodename != "pyrunner":
    allowed.append("hostname %r" % socket.gethostname())
'''

CGROUP = r'''
# A cgroup namespace rooted at the run's cgroup: no daemon pid, no run
# counter (which moved with everyone's traffic).
for line in open("/proc/self/cgroup").read().splitlines():
    if line.split(":", 2)[2] != "/":
        allowed.append("/proc/self/cgroup: %s" % line)
        break
'''

PROCESSES = r'''
# This process is pid 2 of its own pid namespace; nothing else is visible.
pids = sorted(d for d in os.listdir("/proc") if d.isdigit())
if pids != ["2"]:
    allowed.append("/proc lists %s" % pids[:10])
if os.getpid() != 2:
    allowed.append("getpid() = %d" % os.getpid())
if os.getppid() != 0:
    allowed.append("parent visible: getppid() = %d" % os.getppid())
if os.path.exists("/proc/1"):
    allowed.append("/proc/1 visible")
try:
    os.kill(HOST_PID, 0)
    allowed.append("signalled the test runner (pid %d)" % HOST_PID)
except ProcessLookupError:
    pass
except PermissionError:
    allowed.append("the test runner's pid %d exists here" % HOST_PID)
'''

PRIVILEGE = r'''
st = {}
with open("/proc/self/status") as f:
    for line in f:
        k, _, v = line.partition(":")
        st[k] = v.strip()
for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
    if int(st[k], 16) != 0:
        allowed.append("%s=%s" % (k, st[k]))
if st["NoNewPrivs"] != "1":
    allowed.append("NoNewPrivs=%s" % st["NoNewPrivs"])
if (os.getuid(), os.geteuid(), os.getgid(), os.getegid()) != (1000, 1000, 1000, 1000):
    allowed.append("ids %r" % ((os.getuid(), os.geteuid(), os.getgid(), os.getegid()),))
if os.getgroups():
    allowed.append("groups %r" % os.getgroups())
for fn, arg in ((os.setuid, 0), (os.setgid, 0), (os.seteuid, 0)):
    try:
        fn(arg)
        allowed.append("%s(0) worked" % fn.__name__)
    except OSError:
        pass
'''

USERNS = r'''
# The sandbox's ids map to one unprivileged host id, never to host root.
for name in ("uid_map", "gid_map"):
    with open("/proc/self/" + name) as f:
        for line in f.read().splitlines():
            inside, outside, count = (int(x) for x in line.split())
            if outside == 0 or count > 1:
                allowed.append("%s maps %r" % (name, line.split()))
'''

RLIMITS = r'''
import resource
def lim(name):
    return resource.getrlimit(getattr(resource, "RLIMIT_" + name))
if lim("NOFILE") != (256, 256):
    allowed.append("RLIMIT_NOFILE %r" % (lim("NOFILE"),))
if lim("CORE") != (0, 0):
    allowed.append("RLIMIT_CORE %r" % (lim("CORE"),))
for name in ("FSIZE", "CPU", "STACK"):
    if resource.RLIM_INFINITY in lim(name):
        allowed.append("RLIMIT_%s unlimited" % name)
'''

ENVIRONMENT = r'''
# No host environment variable reaches the sandbox, not even through the
# initial environment block that /proc/self/environ shows.
if CANARY in os.environ:
    allowed.append("os.environ has the canary")
with open("/proc/self/environ", "rb") as f:
    block = f.read()
if CANARY.encode() in block:
    allowed.append("/proc/self/environ has the canary: %r" % block[:120])
expected = {"PATH", "HOME", "TMPDIR", "LANG", "MPLCONFIGDIR", "MPLBACKEND",
            "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NUMEXPR_MAX_THREADS"}
if set(os.environ) - expected:
    allowed.append("os.environ has %s" % sorted(set(os.environ) - expected))
'''

# ---- seccomp ----

SYSCALL = r'''
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
ctypes.set_errno(0)
r = libc.syscall(*[ctypes.c_long(x) for x in %(call)r])
e = ctypes.get_errno()
if r >= 0 and %(closes)r:
    os.close(r)
# Only the filter's own answer counts as denied; the arguments are chosen
# so that the kernel itself would answer differently (see SYSCALLS).
if not (r == -1 and e == errno.%(want)s):
    allowed.append("returned %%d, errno %%s" %% (r, errno.errorcode.get(e, e) if r == -1 else "-"))
'''

SOCKET_FAMILY = r'''
try:
    s = socket.socket(socket.%(family)s, socket.%(type)s)
    s.close()
    allowed.append("socket(%(family)s) created")
except OSError as e:
    if e.errno != errno.EAFNOSUPPORT:
        allowed.append("socket(%(family)s): %%s" %% errno.errorcode.get(e.errno))
'''

CLONE_THREAD = 0x00010000
CLONE_FS = 0x00000200
CLONE_FLAGS = {
    "CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000, "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000, "CLONE_PARENT": 0x00008000,
}

# name -> (syscall number and args (x86_64), errno the filter answers,
#          layers to switch off so that the kernel itself answers,
#          whether a success returns an fd to close).
# The args make the kernel fail differently (EFAULT, EBADF, ESRCH, EINVAL)
# or succeed harmlessly once the filter is gone, so EPERM proves the filter.
SYSCALLS = {
    "ptrace": ((101, 3, 999999, 0, 0), "EPERM", "seccomp", False),       # PEEKUSER: ESRCH
    "mount": ((165, 0, 0, 0, 0, 0), "EPERM", "seccomp", False),          # EFAULT
    "umount2": ((166, 0, 0), "EPERM", "seccomp", False),                 # EFAULT
    # pivot_root checks CAP_SYS_ADMIN before its arguments: with the
    # capabilities still dropped the kernel answers EPERM too, so the
    # filter is shown by switching capabilities off as well (EFAULT).
    "pivot_root": ((155, 0, 0), "EPERM", "seccomp,capabilities", False),
    "chroot": ((161, 0), "EPERM", "seccomp", False),                     # EFAULT
    "setns": ((308, -1, 0), "EPERM", "seccomp", False),                  # EBADF
    "unshare": ((272, 0), "EPERM", "seccomp", False),                    # succeeds
    "unshare_newuser": ((272, CLONE_FLAGS["CLONE_NEWUSER"]), "EPERM", "seccomp", False),
    "bpf": ((321, 0, 0, 0), "EPERM", "seccomp", False),                  # EINVAL
    "perf_event_open": ((298, 0, 0, -1, -1, 0), "EPERM", "seccomp", False),  # EFAULT
    "keyctl": ((250, 0, 0, 0, 0, 0), "EPERM", "seccomp", False),         # EINVAL
    "add_key": ((248, 0, 0, 0, 0, 0), "EPERM", "seccomp", False),        # EFAULT
    "userfaultfd": ((323, 1), "EPERM", "seccomp", True),                 # USER_MODE_ONLY: an fd
    "io_uring_setup": ((425, 1, 0), "EPERM", "seccomp", False),          # EFAULT
    # Native AIO: aio-max-nr is one pool for the whole host.
    "io_setup": ((206, 1, 0), "ENOSYS", "seccomp", False),               # EFAULT
    "io_submit": ((209, 0, 0, 0), "ENOSYS", "seccomp", False),           # EINVAL
    # The page cache: evicting others' pages, or asking what is cached.
    "fadvise_dontneed": ((221, -1, 0, 0, 4), "EPERM", "seccomp", False),  # EBADF
    "preadv2_nowait": ((327, -1, 0, 0, 0, 0, 8), "EOPNOTSUPP", "seccomp", False),  # EBADF
    "pwritev2_nowait": ((328, -1, 0, 0, 0, 0, 8), "EOPNOTSUPP", "seccomp", False),  # EBADF
    "madvise_pageout": ((28, 0, 0, 21), "EPERM", "seccomp", False),      # length 0: 0
    "madvise_cold": ((28, 0, 0, 20), "EPERM", "seccomp", False),
    # socketpair makes sockets of its family as socket() does.
    "socketpair_netlink": ((53, 16, 3, 0, 0), "EAFNOSUPPORT", "seccomp", False),  # EOPNOTSUPP
    # kexec_load and init_module check their capability first; on this
    # kernel they are compiled out (ENOSYS), which is what shows the filter.
    "kexec_load": ((246, 0, 0, 0, 0), "EPERM", "seccomp", False),
    "init_module": ((175, 0, 0, 0), "EPERM", "seccomp", False),
    "process_vm_readv": ((310, 1, 0, 0, 0, 0, 0), "EPERM", "seccomp", False),  # 0 iovecs: 0
    "flock": ((73, -1, 2), "EPERM", "seccomp", False),                   # EBADF
    "setuid": ((105, 0), "EPERM", "seccomp", False),                     # uid 0 unmapped: EINVAL
    "setgid": ((106, 0), "EPERM", "seccomp", False),
    "setresuid": ((117, 0, 0, 0), "EPERM", "seccomp", False),
    "setresgid": ((119, 0, 0, 0), "EPERM", "seccomp", False),
    "personality": ((135, 0xFFFFFFFF), "EPERM", "seccomp", False),       # query: succeeds
    # clone3 hides its flags behind a pointer: the filter answers ENOSYS so
    # that glibc falls back to clone. Without it: EINVAL (size 0).
    "clone3": ((435, 0, 0), "ENOSYS", "seccomp", False),
}
# clone with a namespace flag or CLONE_PARENT (a child of the zygote):
# EPERM from the filter. CLONE_THREAD without CLONE_SIGHAND makes the
# kernel itself refuse with EINVAL (nothing forks).
for _flag in ("CLONE_NEWUSER", "CLONE_NEWNS", "CLONE_NEWPID", "CLONE_NEWNET", "CLONE_NEWIPC",
              "CLONE_NEWUTS", "CLONE_NEWCGROUP", "CLONE_PARENT"):
    SYSCALLS["clone_" + _flag.lower()[6:]] = (
        (56, CLONE_FLAGS[_flag] | CLONE_THREAD, 0, 0, 0, 0), "EPERM", "seccomp", False)

# family -> (socket type, layers to switch off for the kernel to answer)
SOCKET_FAMILIES = {
    "AF_NETLINK": ("SOCK_RAW", "seccomp"),
    # Packet sockets need CAP_NET_RAW: without the filter but with the
    # capabilities dropped the kernel refuses with EPERM.
    "AF_PACKET": ("SOCK_RAW", "seccomp,capabilities"),
    "AF_VSOCK": ("SOCK_STREAM", "seccomp"),
}

CHECKS = {
    "host_files_invisible": (HOST_FILES, "mount"),
    "system_dirs_read_only": (READ_ONLY, "mount"),
    "no_network": (NETWORK, "network"),
    "hostname_isolated": (HOSTNAME, "uts"),
    "cgroup_path_hidden": (CGROUP, "cgroup"),
    # The pid namespace cannot be switched off alone: the sandbox's pid 1 is
    # made in a new user+pid namespace and exits at once when pid 2 is not
    # in its pid namespace, so joining its user namespace fails (ESRCH,
    # internal_error). Switching the user namespace off too works.
    "host_processes_invisible": (PROCESSES, "pid,user"),
    "no_privilege": (PRIVILEGE, "capabilities"),
    "user_namespace": (USERNS, "user"),
    "rlimits": (RLIMITS, "rlimits"),
    "no_host_environment": (ENVIRONMENT, None),
}
for _name, (_call, _want, _layer, _closes) in SYSCALLS.items():
    CHECKS["syscall_" + _name] = (SYSCALL % dict(call=_call, want=_want, closes=_closes), _layer)
for _fam, (_type, _layer) in SOCKET_FAMILIES.items():
    CHECKS["socket_" + _fam.lower()] = (SOCKET_FAMILY % dict(family=_fam, type=_type), _layer)


def program(name, params):
    """The full program for check `name`; params has HOST_PID, HOST_TCP_PORT,
    HOST_ABSTRACT and CANARY."""
    snippet, _ = CHECKS[name]
    return PREAMBLE % params + snippet + EPILOGUE


def layer(name):
    return CHECKS[name][1]


SABOTAGEABLE = sorted(n for n, (_, l) in CHECKS.items() if l)
