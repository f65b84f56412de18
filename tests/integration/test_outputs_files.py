"""Rich outputs (plots, display()) and files in and out of a run, over HTTP."""
import base64
import json
import os
import sys

import pytest

from daemon_helpers import REPO, Daemon, daemon_fixture

sys.path.insert(0, os.path.join(REPO, "clients", "python"))
from pyrunner import Client  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"

daemon = daemon_fixture("--max-outputs", 5, "--max-files", 4, "--max-file-bytes", 1000,
                        "--max-files-bytes", 1500, preload="numpy,pandas,matplotlib")


def ok(r):
    assert r.status == 200, r
    assert r.json["status"] == "success", r.json
    return r.json


def b64(data):
    return base64.b64encode(data).decode()


def test_plt_show_gives_a_png_and_closes_the_figure(daemon):
    j = ok(daemon.run("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()\n"
                      "print(len(plt.get_fignums()))\n"))
    assert j["stdout"] == "0\n", j
    assert len(j["outputs"]) == 1, j
    data = j["outputs"][0]["data"]
    assert base64.b64decode(data["image/png"]).startswith(PNG)
    assert data["text/plain"].startswith("<Figure size"), data
    assert j["outputs_truncated"] is False


def test_open_figures_are_shown_at_the_end_in_order(daemon):
    j = ok(daemon.run("import matplotlib.pyplot as plt\nprint('a')\ndisplay('first')\n"
                      "plt.figure(); plt.plot([1]); plt.figure(); plt.plot([2])\n"))
    kinds = [sorted(o["data"]) for o in j["outputs"]]
    assert kinds == [["text/plain"], ["image/png", "text/plain"], ["image/png", "text/plain"]], kinds
    assert j["outputs"][0]["data"]["text/plain"] == "'first'"


def test_display_of_a_dataframe_gives_html(daemon):
    j = ok(daemon.run("import pandas as pd\ndisplay(pd.DataFrame({'a': [1, 2]}))\n"))
    data = j["outputs"][0]["data"]
    assert "<table" in data["text/html"], data
    assert "a" in data["text/plain"]


def test_display_uses_the_rich_protocol(daemon):
    j = ok(daemon.run(
        "class R:\n"
        "    def _repr_svg_(self): return '<svg/>'\n"
        "    def _repr_markdown_(self): return '**b**'\n"
        "    def _repr_json_(self): return {'k': [1]}\n"
        "    def _repr_png_(self): return b'\\x89PNG\\r\\n\\x1a\\n'\n"
        "    def _repr_latex_(self): return ('$x$', {})\n"
        "    def _repr_html_(self): raise ValueError('no html')\n"
        "    def __repr__(self): return 'R()'\n"
        "display(R())\n"))
    data = j["outputs"][0]["data"]
    assert data == {"image/png": b64(PNG), "image/svg+xml": "<svg/>", "text/markdown": "**b**",
                    "text/latex": "$x$", "application/json": {"k": [1]}, "text/plain": "R()"}, data


def test_outputs_are_capped_with_a_marker(daemon):
    j = ok(daemon.run("for i in range(20):\n    display(i)\n"))
    assert [o["data"]["text/plain"] for o in j["outputs"]] == ["0", "1", "2", "3", "4"], j["outputs"]
    assert j["outputs_truncated"] is True


def test_a_forged_output_frame_is_a_protocol_error(daemon):
    # The bundle of an output frame must be a JSON object: the daemon
    # checks it, bounded, and the run fails rather than passing it on.
    code = ("import os\nbody = b'{\"type\":\"output\"}\\n[1,2]'\n"
            "os.write(3, len(body).to_bytes(4, 'big') + body)\nimport time; time.sleep(5)\n")
    r = daemon.run(code, timeout=10)
    assert r.json["status"] == "error", r.json
    assert "malformed output" in (r.json["error"] or ""), r.json
    ok(daemon.run("1"))


def test_files_in_utf8_and_base64(daemon):
    j = ok(daemon.run("print(open('data/in.csv').read(), open('x.bin', 'rb').read())",
                      files=[{"path": "data/in.csv", "content": "a,b\n1,2"},
                             {"path": "x.bin", "content": b64(b"\x00\xff"), "encoding": "base64"}]))
    assert j["stdout"] == "a,b\n1,2 b'\\x00\\xff'\n", j
    assert "files" not in j


@pytest.mark.parametrize("path", ["../x", "/etc/x", "a/../b", "a//b", "a\u0000b", "", ".", "a/"])
def test_bad_file_paths_are_422(daemon, path):
    r = daemon.run("1", files=[{"path": path, "content": ""}])
    assert r.status == 422, r
    assert r.json["detail"][0]["loc"] == ["body", "path"], r.json


@pytest.mark.parametrize("files, field", [
    ([{"path": "a", "content": "!!", "encoding": "base64"}], "content"),
    ([{"path": "a", "content": "", "encoding": "latin-1"}], "encoding"),
    ([{"path": "a", "content": 1}], "content"),
    ([{"path": "a", "content": "", "mode": 7}], "files"),
    ([{"path": "f%d" % i, "content": ""} for i in range(5)], "files"),
    ([{"path": "big", "content": "x" * 1501}], "files"),
    ("a", "files"),
])
def test_bad_files_are_422(daemon, files, field):
    r = daemon.run("1", files=files)
    assert r.status == 422, r
    assert r.json["detail"][0]["loc"] == ["body", field], r.json


def test_return_files_true_gives_what_changed(daemon):
    j = ok(daemon.run(
        "import os\nos.makedirs('out/sub')\nopen('out/sub/r.txt', 'w').write('result')\n"
        "open('changed.txt', 'a').write('+')\nopen('.hidden', 'w').write('h')\n",
        files=[{"path": "same.txt", "content": "s"}, {"path": "changed.txt", "content": "c"}],
        return_files=True))
    got = {f["path"]: base64.b64decode(f["content"]) for f in j["files"]}
    assert got == {"changed.txt": b"c+", "out/sub/r.txt": b"result"}, j["files"]
    assert all(f["encoding"] == "base64" and f["size"] == len(got[f["path"]]) for f in j["files"])
    assert j["files_skipped"] == []


def test_return_files_globs(daemon):
    j = ok(daemon.run("open('a.csv', 'w').write('1')\nopen('b.txt', 'w').write('2')\n",
                      files=[{"path": "in.csv", "content": "0"}], return_files=["*.csv"]))
    assert [f["path"] for f in j["files"]] == ["a.csv", "in.csv"], j["files"]


def test_symlinks_are_not_followed(daemon):
    j = ok(daemon.run(
        "import os\nos.symlink('/etc/passwd', 'passwd')\nos.symlink('/proc/self/environ', 'env')\n"
        "os.symlink('/etc', 'etcdir')\nos.mkfifo('fifo')\n", return_files=["*"]))
    assert j["files"] == [], j["files"]
    skipped = {f["path"]: f["reason"] for f in j["files_skipped"]}
    assert skipped == {"passwd": "not_regular", "env": "not_regular", "etcdir": "not_regular",
                       "fifo": "not_regular"}, skipped


def test_returned_files_are_capped(daemon):
    j = ok(daemon.run("for i in range(6):\n    open('f%d' % i, 'w').write('x' * 600)\n"
                      "open('huge', 'w').write('y' * 1001)\n", return_files=True))
    assert [f["path"] for f in j["files"]] == ["f0", "f1"], j["files"]
    skipped = {f["path"]: f["reason"] for f in j["files_skipped"]}
    assert skipped["huge"] == "file_too_large", skipped
    assert skipped["f2"] == "files_too_large", skipped
    assert len(skipped) == 5, skipped


def test_a_forged_file_frame_is_refused(daemon):
    # The runner is not trusted: a file frame naming ../ or lying about
    # its size fails the run, whatever the code sends.
    for head, body in [({"type": "file", "path": "../etc/x", "size": 1}, "eA=="),
                       ({"type": "file", "path": "x", "size": 5}, "eA=="),
                       ({"type": "file", "path": "x", "size": 1}, "e!=="),
                       ({"type": "file", "path": "x", "size": 0, "skipped": "because"}, "")]:
        frame = (json.dumps(head) + "\n" + body).encode()
        code = ("import os\nf = %r\nos.write(3, len(f).to_bytes(4, 'big') + f)\nimport time; time.sleep(5)\n"
                % frame)
        r = daemon.run(code, timeout=10, return_files=True)
        assert r.json["status"] == "error", (head, r.json)
        assert "malformed output or file" in (r.json["error"] or ""), (head, r.json)


def test_file_frames_without_return_files_are_refused(daemon):
    frame = (json.dumps({"type": "file", "path": "x", "size": 1}) + "\neA==").encode()
    code = "import os\nf = %r\nos.write(3, len(f).to_bytes(4, 'big') + f)\nimport time; time.sleep(5)\n" % frame
    r = daemon.run(code, timeout=10)
    assert r.json["status"] == "error", r.json
    assert "files" not in r.json


def test_the_executor_route_takes_no_files(daemon):
    r = daemon.invoke("1", files=[{"path": "a", "content": ""}])
    assert r.status == 422, r
    assert r.json["detail"][0]["type"] == "extra_forbidden", r.json


# ---- the Python client ----

def test_client_files_and_images(daemon):
    c = Client("http://127.0.0.1:%d" % daemon.port)
    rr = c.run("import matplotlib.pyplot as plt\nplt.plot([1, 2])\n"
               "open('out.bin', 'wb').write(open('in.bin', 'rb').read()[::-1])\n"
               "display({'k': 1})\nprint(open('t.txt').read())\n",
               files={"in.bin": b"\x01\x02", "t.txt": "text"}, return_files=["*.bin"])
    assert rr.ok, rr
    assert rr.stdout == "text\n"
    assert rr.files == {"in.bin": b"\x01\x02", "out.bin": b"\x02\x01"}, rr.files
    assert [sorted(o["data"]) for o in rr.outputs] == [["text/plain"], ["image/png", "text/plain"]]
    assert len(rr.images) == 1 and rr.images[0].startswith(PNG)
    assert c.run("1").files == {}


# ---- the CLI: --file, --return-files, --out-dir ----

def test_cli_files_in_and_out_dir(tmp_path):
    from conftest import run
    src = tmp_path / "in.csv"
    src.write_bytes(b"x,y\n1,2\n")
    out = tmp_path / "out"
    r = run("import matplotlib.pyplot as plt, os\nprint(open('data.csv').read(), open('in.csv').read())\n"
            "plt.plot([1, 2]); plt.show(); plt.plot([2, 1])\n"
            "os.makedirs('res/sub'); open('res/sub/a.txt', 'w').write('A')\n"
            "os.symlink('/etc/passwd', 'res/pw')\n",
            "--file", "%s=data.csv" % src, "--file", str(src), "--return-files", "res/*",
            "--out-dir", str(out), "--preload", "matplotlib", json=False)
    assert r.returncode == 0, r
    assert r.raw_stdout == b"x,y\n1,2\n x,y\n1,2\n\n", r
    assert "'res/pw' was not returned: not_regular" in r.cli_stderr, r
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() or p.is_symlink()) == \
        ["output-1.png", "output-2.png", "res/sub/a.txt"]
    assert (out / "res/sub/a.txt").read_bytes() == b"A"
    assert (out / "output-2.png").read_bytes().startswith(PNG)


def test_cli_out_dir_never_writes_through_a_symlink(tmp_path):
    from conftest import run
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    (out / "res").symlink_to(victim)
    r = run("import os\nos.mkdir('res')\nopen('res/x', 'w').write('x')\n", "--return-files", "res/*",
            "--out-dir", str(out), json=False)
    assert r.returncode != 0, r
    assert "cannot write 'res/x' in --out-dir" in r.cli_stderr, r
    assert list(victim.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["--file", "/nonexistent"], "cannot read file '/nonexistent'"),
    (["--file", "/etc/hostname=../x"], "--file: a file's path must be relative"),
    (["--return-files", ""], "--return-files: each return_files pattern must be a non-empty string"),
])
def test_cli_bad_file_arguments(args, message):
    from conftest import run
    r = run("1", *args, json=False)
    assert r.returncode == 2, r
    assert message in r.cli_stderr and r.cli_stderr.count("\n") == 1, r


def test_skipped_file_entries_are_capped(daemon):
    # A sandbox that sends skip after skip must not grow the daemon: the
    # list stops at 1,000 entries.
    frame = (json.dumps({"type": "file", "path": "x", "size": 0, "skipped": "not_regular"})).encode()
    code = ("import os\nf = %r\nfor _ in range(10000):\n    os.write(3, len(f).to_bytes(4, 'big') + f)\n"
            % frame)
    j = ok(daemon.run(code, return_files=True))
    assert len(j["files_skipped"]) == 1000, len(j["files_skipped"])


def test_a_result_over_max_result_bytes_is_refused():
    # The frame cap is the largest of a result, the outputs and a file:
    # a result still may not pass its own cap.
    d = Daemon("--max-result-bytes", 65536).start()
    try:
        r = d.run("return 'x' * 100000")
        assert r.json["status"] == "error" and "values limits" in r.json["error"], r.json
        assert d.run("return 'x' * 1000").json["status"] == "success"
    finally:
        assert d.stop() == 0
