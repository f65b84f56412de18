"""Sabotage: the deny tests depend on the layers.

Each deny check of denychecks.py is run again with its layer switched off
(PYRUNNER_ALLOW_SABOTAGE=1 --test-sabotage LAYER) and must now print
ALLOWED. A deny test that still passed with its layer gone would prove
nothing. Some layers cannot be switched off alone; denychecks.py says which
and why, and names the smallest combination that works.
"""
import json
import subprocess
import sys

import pytest

import denychecks
from conftest import BIN, base_env, run, run_check, run_pair, sabotage_env


def assert_allowed(r):
    assert r.data is not None and r.status == "success", r
    assert r.last_line.startswith("ALLOWED"), r


# Some kernels (Debian 12's 6.1) check a capability of the initial user
# namespace before anything else in these calls, so an unprivileged caller
# gets EPERM with or without the filter, and the errno cannot show it.
CAPABILITY_FIRST = ("syscall_kexec_load", "syscall_init_module", "syscall_bpf")
PROBE = """import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
r = libc.syscall(*[ctypes.c_long(x) for x in %r])
print(errno.errorcode.get(ctypes.get_errno(), "?") if r == -1 else "ok")
"""


def unprivileged(code):
    """What `code` prints in a host process as nobody, with no capabilities
    and no filter: what the kernel itself answers."""
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                        "--bounding-set=-all", sys.executable, "-c", code],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    assert p.returncode == 0, p
    return p.stdout.strip()


def kernel_answers_eperm_first(name):
    """True if this kernel refuses the call of check `name` with EPERM to an
    unprivileged caller."""
    return unprivileged(PROBE % (denychecks.SYSCALLS[name[len("syscall_"):]][0],)) == "EPERM"


def kernel_lacks_family(name):
    """True if this kernel has no socket family of check `name` (a guest
    without vsock): socket() then fails with EAFNOSUPPORT, filter or not."""
    fam = name[len("socket_"):].upper()
    code = ("import errno, socket\ntry:\n    socket.socket(socket.%s, socket.%s).close()\n"
            "except OSError as e:\n    print(errno.errorcode.get(e.errno))\n"
            % (fam, denychecks.SOCKET_FAMILIES[fam][0]))
    return unprivileged(code) == "EAFNOSUPPORT"


@pytest.mark.parametrize("name", denychecks.SABOTAGEABLE)
def test_check_flips_without_its_layer(name, deny_params):
    layer = denychecks.layer(name)
    if name in CAPABILITY_FIRST and kernel_answers_eperm_first(name):
        pytest.skip("this kernel refuses %s with EPERM before the filter could matter" % name[8:])
    if name.startswith("socket_") and kernel_lacks_family(name):
        pytest.skip("this kernel has no %s: it refuses it before the filter could matter" % name[7:].upper())
    r = run_check(name, deny_params, "--test-sabotage", layer, env=sabotage_env())
    assert_allowed(r)


def test_sabotage_names_are_the_layers_info_reports():
    """--test-sabotage takes the names `pyrunner info` reports: switching
    one off drops exactly it."""
    def layers(*args):
        p = subprocess.run([BIN, "info", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=base_env(sabotage_env()), timeout=60)
        assert p.returncode == 0, p
        return json.loads(p.stdout)["layers"]
    full = layers()
    for ns in full["namespaces"]:
        assert layers("--test-sabotage", ns)["namespaces"] == [n for n in full["namespaces"] if n != ns]
    for name, key in (("seccomp", "seccomp"), ("capabilities", "capabilities_dropped"), ("rlimits", "rlimits")):
        got = layers("--test-sabotage", name)
        assert got[key] is False and got["namespaces"] == full["namespaces"], (name, got)
    assert layers("--test-sabotage", "all")["namespaces"] == []


def test_pid_namespace_alone_cannot_be_switched_off():
    # Documents why the process check uses "pid,user": without the pid
    # namespace the sandbox's pid 1 (made in a new user+pid namespace) finds
    # no pid 2 and exits, so the set-up fails cleanly as internal_error.
    r = run("print(1)\n", "--test-sabotage", "pid", env=sabotage_env())
    assert r.returncode == 70 and r.status == "internal_error", r


def _pair(layer, stop_when):
    a, b, info = run_pair(("--test-sabotage", layer), env=sabotage_env(), stop_when=stop_when, window=1.5)
    assert info["ready"], ("sandbox A never bound its socket", a)
    assert a.status == "success" and b.status == "success", (a, b)
    return json.loads(a.last_line), json.loads(b.last_line)


def test_cross_sandbox_network_without_netns():
    ra, rb = _pair("network", ("unix", "tcp"))
    assert rb["unix"] and rb["tcp"], rb
    assert ra["conns"]["unix"] >= 1 and ra["conns"]["tcp"] >= 1, ra


def test_cross_sandbox_ipc_without_ipcns():
    ra, rb = _pair("ipc", ("shm",))
    assert ra["shm_created"] and rb["shm"], (ra, rb)


def test_cross_sandbox_tmp_without_mntns():
    # Without a mount namespace both sandboxes use the host's /tmp.
    ra, rb = _pair("mount", ("file",))
    assert rb["file"], (ra, rb)
