#!/usr/bin/python3.11
"""Sends the example requests of the original PyRunner documents to a
pyrunnerd and checks the statuses they document.

    /usr/bin/python3.11 examples/pyrunner_seed_examples.py [BASE_URL] [--api-key KEY]

BASE_URL defaults to http://127.0.0.1:8000. The examples come from the
PyRunner README (health check, `POST /run` request and error response,
"Basic Mathematics", "Scientific Computing", "Symbolic Mathematics") and from
the "Python Execution Backend Service" write-up (the curl example,
examples/test_api.py's six test cases, sent as that script sends them with
timeout 30 and memory_limit 512 unless the case sets one, and
examples/README.md's two requests). Prints one line per example and exits 1
if any status (or documented output) differs. Stdlib only.
"""
import argparse
import json
import sys
import time
import urllib.error
import urllib.request

# (source, name, request body, expected status, text the documented stdout
# contains or None)
EXAMPLES = [
    # -- PyRunner README --
    ("README", "curl: Hello, PyRunner!",
     {"code": "print(\"Hello, PyRunner!\")"}, "success", "Hello, PyRunner!\n"),
    ("README", "POST /run request body",
     {"code": "print('Hello, World!')", "timeout": 30, "memory_limit": 512}, "success", "Hello, World!\n"),
    ("README", "error response (NameError)",
     {"code": "print(undefined)"}, "error", None),
    ("README", "Basic Mathematics",
     {"code": "\nimport math\nresult = math.sqrt(16) + math.pi\nprint(f'Result: {result}')\n", "timeout": 10},
     "success", "Result: 7.141592653589793"),
    ("README", "Scientific Computing",
     {"code": "\nimport numpy as np\nimport pandas as pd\n\n# Create data\ndata = np.random.randn(100)\n"
              "df = pd.DataFrame({'values': data})\n\n# Calculate statistics\n"
              "print(f'Mean: {df.values.mean():.3f}')\nprint(f'Std: {df.values.std():.3f}')\n"
              "print(f'Count: {len(df)}')\n",
      "memory_limit": 256}, "success", "Count: 100"),
    ("README", "Symbolic Mathematics",
     {"code": "\nimport sympy as sp\n\n# Define symbol\nx = sp.Symbol('x')\n\n# Solve equation\n"
              "equation = x**2 - 4*x + 3\nsolutions = sp.solve(equation, x)\nprint(f'Solutions: {solutions}')\n\n"
              "# Calculus\nf = x**3 - 2*x**2 + x\nderivative = sp.diff(f, x)\nprint(f'Derivative: {derivative}')\n",
      "timeout": 15}, "success", "Solutions: [1, 3]\nDerivative: 3*x**2 - 4*x + 1"),
    # -- Python Execution Backend Service: curl usage --
    ("backend", "curl: import sympy; print(sympy.pi)",
     {"code": "import sympy\nprint(sympy.pi)"}, "success", "pi\n"),
    # -- examples/test_api.py (timeout 30, memory_limit 512 unless set) --
    ("test_api.py", "Basic Math",
     {"code": "\nimport math\nprint(f\"Pi: {math.pi}\")\nprint(f\"Square root of 16: {math.sqrt(16)}\")\n"
              "print(f\"2^10: {2**10}\")\n", "timeout": 30, "memory_limit": 512},
     "success", "Square root of 16: 4.0\n2^10: 1024"),
    ("test_api.py", "SymPy Example",
     {"code": "\nfrom sympy import symbols, expand, factor\nx, y = symbols('x y')\nexpr = (x + y)**3\n"
              "print(f\"Expression: {expr}\")\nprint(f\"Expanded: {expand(expr)}\")\n"
              "print(f\"Factored: {factor(x**3 - y**3)}\")\n", "timeout": 30, "memory_limit": 512},
     "success", "Expression: (x + y)**3"),
    ("test_api.py", "NumPy Array Operations",
     {"code": "\nimport numpy as np\narr = np.array([1, 2, 3, 4, 5])\nprint(f\"Array: {arr}\")\n"
              "print(f\"Mean: {arr.mean()}\")\nprint(f\"Standard deviation: {arr.std()}\")\n"
              "print(f\"Cumulative sum: {arr.cumsum()}\")\n", "timeout": 30, "memory_limit": 512},
     "success", "Mean: 3.0"),
    ("test_api.py", "Error Handling",
     {"code": "\n# This will cause an error\nprint(1 / 0)\n", "timeout": 30, "memory_limit": 512}, "error", None),
    ("test_api.py", "Timeout Test",
     {"code": "\nimport time\nprint(\"Starting long computation...\")\ntime.sleep(35)  # This will timeout\n"
              "print(\"This won't be printed\")\n", "timeout": 2, "memory_limit": 512}, "timeout", None),
    ("test_api.py", "Memory Test",
     {"code": "\n# Try to allocate large array\nimport numpy as np\nprint(\"Allocating memory...\")\n"
              "arr = np.zeros((1000, 1000, 100))  # ~800MB\nprint(f\"Array shape: {arr.shape}\")\n",
      # The seed (RLIMIT_AS) refuses the 800 MB reservation; pyrunner limits
      # memory that is used (cgroup), and np.zeros touches none of it, so
      # this run succeeds. docs/API.md lists this under the differences.
      "timeout": 30, "memory_limit": 256}, "success", "Array shape: (1000, 1000, 100)"),
    ("pyrunner", "Memory Test, with the memory used",
     {"code": "\nimport numpy as np\nprint(\"Allocating memory...\")\n"
              "arr = np.ones((1000, 1000, 100))  # ~800MB, written\nprint(f\"Array shape: {arr.shape}\")\n",
      "timeout": 30, "memory_limit": 256}, "memory_exceeded", None),
    # -- examples/README.md --
    ("examples/README", "Basic Example",
     {"code": "print('Hello, World!')", "timeout": 30, "memory_limit": 512}, "success", "Hello, World!\n"),
    ("examples/README", "Using Scientific Libraries",
     {"code": "\nimport sympy as sp\nx = sp.Symbol('x')\nequation = x**2 - 4\nsolutions = sp.solve(equation, x)\n"
              "print(f\"Solutions: {solutions}\")\n"}, "success", "Solutions: [-2, 2]"),
]


def call(base, method, path, body=None, key=None, timeout=120):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base.rstrip("/") + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", "Bearer " + key)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        raw = e.read().decode("utf-8", "replace")
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base", nargs="?", default="http://127.0.0.1:8000")
    ap.add_argument("--api-key", default=None)
    args = ap.parse_args()
    failed = 0

    code, health = call(args.base, "GET", "/")
    caps = health.get("capabilities", {}) if isinstance(health, dict) else {}
    ok = (code == 200 and health.get("status") == "healthy" and caps.get("max_timeout") == 300
          and caps.get("max_memory_mb") == 2048)
    failed += not ok
    print("[%s] README: health check: HTTP %d status=%s max_timeout=%s max_memory_mb=%s libraries=%s"
          % (" ok " if ok else "FAIL", code, health.get("status") if isinstance(health, dict) else health,
             caps.get("max_timeout"), caps.get("max_memory_mb"), sorted(caps.get("libraries", []))))

    for source, name, body, want, want_out in EXAMPLES:
        t0 = time.monotonic()
        code, res = call(args.base, "POST", "/run", body, args.api_key)
        wall = time.monotonic() - t0
        got = res.get("status") if code == 200 and isinstance(res, dict) else "HTTP %d" % code
        ok = got == want
        note = ""
        if ok and want_out is not None and want_out not in res.get("stdout", ""):
            ok = False
            note = " stdout %r lacks %r" % (res.get("stdout"), want_out)
        if not ok and code == 200 and isinstance(res, dict):
            note += " (error=%r, memory_used=%r MB)" % (res.get("error"), res.get("memory_used"))
        elif not ok:
            note += " %r" % (res,)
        failed += not ok
        print("[%s] %s: %s: expected %s, got %s (%.2f s)%s"
              % (" ok " if ok else "FAIL", source, name, want, got, wall, note))

    print("%d of %d examples as documented" % (len(EXAMPLES) + 1 - failed, len(EXAMPLES) + 1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
