"""CLI input validation: bad usage or input exits 2 with one line on stderr
starting with "pyrunner: ", prints nothing on stdout and runs nothing."""
import json
import os
import subprocess

import pytest

from conftest import BIN, base_env


def cli(*argv, env=None, stdin=b""):
    return subprocess.run([BIN, *[str(a) for a in argv]], input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=base_env(env), timeout=60)


def assert_usage_error(p, mentions=None):
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 2, (p.returncode, err)
    assert p.stdout == b"", p.stdout
    assert err.startswith("pyrunner: "), err
    assert err.endswith("\n") and err.count("\n") == 1, err
    if mentions:
        assert mentions in err, err


@pytest.fixture
def prog(tmp_path):
    f = tmp_path / "ok.py"
    f.write_text("print('ran')\n")
    return f


def test_missing_file(tmp_path):
    assert_usage_error(cli("run", "--json", tmp_path / "nope.py"), "nope.py")


def test_directory_as_program(tmp_path):
    assert_usage_error(cli("run", "--json", tmp_path))


def test_empty_program(tmp_path):
    f = tmp_path / "empty.py"
    f.write_bytes(b"")
    assert_usage_error(cli("run", "--json", f), "empty")


def test_empty_program_on_stdin():
    assert_usage_error(cli("run", "--json", "-", stdin=b""))


def test_program_over_1mib(tmp_path):
    f = tmp_path / "big.py"
    f.write_bytes(b"#" * (1024 * 1024 + 1))
    assert_usage_error(cli("run", "--json", f), "larger than")


def test_program_of_exactly_1mib_is_accepted(tmp_path):
    f = tmp_path / "big.py"
    f.write_bytes(b"#" * (1024 * 1024 - 10) + b"\nprint(1)\n")
    assert f.stat().st_size == 1024 * 1024
    p = cli("run", "--json", f)
    assert p.returncode == 0 and json.loads(p.stdout)["stdout"] == "1\n", p


def test_max_code_bytes_setting(tmp_path):
    f = tmp_path / "p.py"
    f.write_text("print(12345)\n")
    assert_usage_error(cli("run", "--json", "--max-code-bytes", 5, f), "larger than")


def test_invalid_utf8_source(tmp_path):
    f = tmp_path / "bad.py"
    f.write_bytes(b"print('\xff')\n")
    assert_usage_error(cli("run", "--json", f), "UTF-8")


def test_nul_byte_in_source(tmp_path):
    f = tmp_path / "nul.py"
    f.write_bytes(b"print(1)\0\n")
    assert_usage_error(cli("run", "--json", f))


@pytest.mark.parametrize("value", ["0", "1000", "abc", "-1", "0.05", ""])
def test_bad_timeout(value, prog):
    assert_usage_error(cli("run", "--json", "--timeout", value, prog), "--timeout")


@pytest.mark.parametrize("value", ["10", "99999", "63", "2049", "abc", "64.5"])
def test_bad_memory(value, prog):
    assert_usage_error(cli("run", "--json", "--memory", value, prog), "--memory")


def test_unknown_command():
    assert_usage_error(cli("frobnicate"), "frobnicate")


@pytest.mark.parametrize("setting,value", [
    ("--pids-max", "0"), ("--pids-max", "abc"), ("--output-limit", "1023"), ("--tmpfs-mb", "0"),
    ("--tmpfs-inodes", "1"), ("--nofile", "15"), ("--max-code-bytes", "0"),
])
def test_bad_setting_value(setting, value, prog):
    assert_usage_error(cli("run", "--json", setting, value, prog), setting)


def test_setting_errors_say_why(prog):
    assert_usage_error(cli("run", "--json", "--pids-max", "0", prog), "--pids-max must be between 2 and 4096, not '0'")
    assert_usage_error(cli("run", "--json", "--pids-max", "x", prog), "--pids-max must be a whole number, not 'x'")
    # was cut short silently
    assert_usage_error(cli("run", "--json", "--preload", "m," * 2000, prog), "--preload is longer than")


def help_settings():
    out = cli("--help").stdout.decode()
    section = out.split("Settings (", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  --")]


def test_every_setting_in_help_is_an_option(prog):
    """Each number setting --help lists (the config table's, built into
    getopt's table) is taken as an option, not refused as unknown."""
    names = help_settings()
    assert "--pids-max" in names and "--sandbox-uid" in names and "--listen" not in names, names
    for text in ("--preload", "--cache-dir"):    # a list of modules, a path: any text is one
        names.remove(text)
    for name in names:
        assert_usage_error(cli("run", "--json", name, "not-a-number", prog), name)


def test_bad_setting_in_environment(prog):
    assert_usage_error(cli("run", "--json", prog, env={"PYRUNNER_PIDS_MAX": "0"}))


def test_sabotage_refused_without_env_var(prog):
    assert_usage_error(cli("run", "--json", "--test-sabotage", "seccomp", prog), "test")


def test_unknown_sabotage_layer(prog):
    assert_usage_error(cli("run", "--json", "--test-sabotage", "nosuch", prog,
                           env={"PYRUNNER_ALLOW_SABOTAGE": "1"}), "nosuch")


def test_missing_stdin_file(tmp_path, prog):
    assert_usage_error(cli("run", "--json", "--stdin", tmp_path / "nope.txt", prog), "nope.txt")


def test_two_programs(prog):
    assert_usage_error(cli("run", "--json", prog, prog))


def test_no_program():
    assert_usage_error(cli("run", "--json"))


def test_unknown_option(prog):
    assert_usage_error(cli("run", "--json", "--no-such-option", prog))


def test_option_missing_its_value(prog):
    assert_usage_error(cli("run", "--json", prog, "--timeout"))


def test_help():
    p = cli("--help")
    assert p.returncode == 0 and b"Usage: pyrunner run" in p.stdout, p


def test_info():
    p = cli("info")
    assert p.returncode == 0, p
    info = json.loads(p.stdout)
    assert info["python"].startswith("3."), info
    assert info["libraries"] == {}, info
    layers = info["layers"]
    assert layers["namespaces"] == ["user", "pid", "mount", "ipc", "uts", "network", "cgroup"], info
    assert layers["seccomp"] is True and layers["capabilities_dropped"] is True, info
    assert layers["rlimits"] is True and layers["uid"] == 1000, info
    assert layers["cgroup"] in ("v1", "v2", "none"), info
    assert layers["privileged"] is (os.geteuid() == 0), info


def test_info_rejects_arguments():
    assert_usage_error(cli("info", "extra"))
