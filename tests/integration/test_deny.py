"""Deny tests: one per protection. Each runs a check from denychecks.py
(shared with test_sabotage.py, which proves the check flips when its layer
is switched off) and requires DENIED."""
import json
import os

import pytest

import denychecks
from conftest import run, run_check, run_pair


def assert_denied(r):
    assert r.data is not None and r.status == "success", r
    assert r.last_line == "DENIED", r


def test_host_files_invisible(deny_params):
    assert_denied(run_check("host_files_invisible", deny_params))


def test_system_dirs_read_only(deny_params):
    assert_denied(run_check("system_dirs_read_only", deny_params))


def test_no_network(deny_params):
    assert_denied(run_check("no_network", deny_params))


def test_hostname_isolated(deny_params):
    assert_denied(run_check("hostname_isolated", deny_params))


def test_cgroup_path_hidden(deny_params):
    assert_denied(run_check("cgroup_path_hidden", deny_params))


def test_host_processes_invisible(deny_params):
    assert_denied(run_check("host_processes_invisible", deny_params))


def test_no_privilege(deny_params):
    assert_denied(run_check("no_privilege", deny_params))


def test_user_namespace_maps_no_host_root(deny_params):
    assert_denied(run_check("user_namespace", deny_params))


def test_rlimits_applied(deny_params):
    assert_denied(run_check("rlimits", deny_params))


def test_no_host_environment(deny_params):
    # A variable set in the CLI's environment must not be visible inside,
    # neither in os.environ nor in the initial environment block.
    assert_denied(run_check("no_host_environment", deny_params))


@pytest.mark.parametrize("name", sorted(n for n in denychecks.CHECKS if n.startswith("syscall_")))
def test_dangerous_syscall_refused(name, deny_params):
    assert_denied(run_check(name, deny_params))


@pytest.mark.parametrize("name", sorted(n for n in denychecks.CHECKS if n.startswith("socket_")))
def test_socket_family_refused(name, deny_params):
    assert_denied(run_check(name, deny_params))


def test_no_cross_sandbox_channel():
    # A binds an abstract unix socket and 127.0.0.1:PORT, creates a SysV shm
    # segment and writes /tmp/TAG. Once the host sees A's socket (through
    # A's /proc/<pid>/net/unix), B tries to reach all of them for 1 s.
    a, b, info = run_pair(window=1.0)
    assert info["ready"], ("sandbox A never bound its socket", a)
    assert a.status == "success" and b.status == "success", (a, b)
    ra, rb = json.loads(a.last_line), json.loads(b.last_line)
    assert ra["shm_created"], a
    # B really tried while A was listening.
    assert ra["ready"] <= rb["first"] and rb["last"] <= ra["done"], (ra, rb)
    assert ra["conns"] == {"unix": 0, "tcp": 0}, ra
    assert rb == dict(rb, unix=False, tcp=False, shm=False, file=False), rb


def test_fds_sent_to_the_engine_are_refused():
    # The engine's read() would close them on its loop, with the cost of
    # their last reference; SO_PASSRIGHTS (Linux 6.16) refuses them at once.
    if tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2]) < (6, 16):
        pytest.skip("SO_PASSRIGHTS needs Linux 6.16; this kernel is %s" % os.uname().release)
    r = run(r'''
import errno, socket
s = socket.socket(fileno=3)
try:
    socket.send_fds(s, [b"x"], [0])
    print("sent")
except OSError as e:
    print(errno.errorcode[e.errno])
s.detach()
''')
    assert r.status == "success" and r.out == "EPERM\n", r
