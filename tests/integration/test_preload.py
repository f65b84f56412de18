"""What the zygote imports before a run, through the real CLI.

Without --preload the zygote imports no third-party library (the README says
it preloads nothing; importing matplotlib alone cost about 0.2 s of CPU per
CLI run). With --preload the named modules are in sys.modules before the
program starts. The value encoder still types the values of a library the
program imports itself."""
import json

from conftest import run

HEAVY = ("numpy", "pandas", "scipy", "sympy", "matplotlib", "sklearn", "PIL")
PROBE = "import sys\nprint(json.dumps(sorted(m for m in %r if m in sys.modules)))\n" % (HEAVY,)


def loaded(*args):
    r = run("import json\n" + PROBE, *args, timeout=120)
    assert r.status == "success", r
    return json.loads(r.last_line)


def test_no_preload_imports_no_library():
    assert loaded() == []
    assert loaded("--preload", "") == []


def test_preload_one_imports_only_it():
    assert loaded("--preload", "numpy") == ["numpy"]


def test_preload_all_imports_them():
    # PIL comes with matplotlib.
    assert loaded("--preload", "all") == sorted(HEAVY)


def test_values_of_a_library_imported_by_the_program():
    r = run("import numpy as np\nreturn np.arange(3, dtype=np.int16)\n")
    assert r.status == "success", r
    v = r["result"]
    assert v["$type"] == "ndarray" and v["dtype"] == "int16", v
