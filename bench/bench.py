#!/usr/bin/python3.11
"""make bench: engine-level figures next to a naive baseline, in one run.

The naive baseline is what most services do: spawn /usr/bin/python3.11 per
run, which imports what it needs. Medians and ratios, because machines are
noisy; p99 is within one run."""
import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import time

CASES = {
    "a print": "print('hi')",
    "b numpy": "import numpy as np\nprint(np.arange(10**6).sum())",
    "c pandas": ("import pandas as pd\n"
                 "df = pd.DataFrame({'k': [1, 1, 2, 3], 'v': [3, 4, 5, 6]})\n"
                 "print(df.groupby('k')['v'].sum())"),
}
PY = "/usr/bin/python3.11"


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))]


def engine(build, code, n, conc, warmup=20, paced=False):
    out = subprocess.run([os.path.join(build, "bench/pyrunner-bench"), "--code", code, "--n", str(n),
                          "--concurrency", str(conc), "--warmup", str(warmup)] + (["--paced"] if paced else []),
                         capture_output=True, text=True, check=True)
    r = json.loads(out.stdout)
    if r["statuses"].get("success") != n:
        sys.exit("engine runs failed: %s" % r)
    return r


def naive_once(code):
    t = time.perf_counter()
    subprocess.run([PY, "-c", code], capture_output=True, check=True)
    return (time.perf_counter() - t) * 1e3


def naive(code, n, conc):
    naive_once(code)
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(conc) as ex:
        lat = list(ex.map(lambda _: naive_once(code), range(n)))
    return {"p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99), "per_sec": n / (time.perf_counter() - t0)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--quick", action="store_true", help="fewer runs, for a smoke test")
    a = ap.parse_args()
    n = 40 if a.quick else a.n
    naive_n = {"a print": 40, "b numpy": 20, "c pandas": 8}
    rows = []
    for name, code in CASES.items():
        e1 = engine(a.build, code, n, 1)
        e4 = engine(a.build, code, int(n * 4 / 3), 4)
        ep = engine(a.build, code, max(n // 3, 20), 1, warmup=5, paced=True)
        nv1 = naive(code, naive_n[name] // (4 if a.quick else 1) or 2, 1)
        nv4 = naive(code, naive_n[name] // (4 if a.quick else 1) or 2, 4)
        rows.append((name, e1, e4, nv1, nv4, ep))

    print("pyrunner bench: engine (zygote with numpy, pandas, scipy, sympy, matplotlib, sklearn "
          "preloaded; every layer on) vs naive (spawn %s per run)" % PY)
    print("%-9s | %8s %8s %9s %8s %9s | %8s %8s %9s | %7s %7s" % (
        "case", "p50 ms", "p99 ms", "conc4 /s", "mem MiB", "paced p50", "naive50", "naive99", "naive4 /s",
        "x p50", "x /s"))
    for name, e1, e4, nv1, nv4, ep in rows:
        print("%-9s | %8.2f %8.2f %9.0f %8.2f %9.2f | %8.1f %8.1f %9.1f | %6.1fx %6.1fx" % (
            name, e1["p50_ms"], e1["p99_ms"], e4["per_sec"], e1["mem_p50_mb"], ep["p50_ms"], nv1["p50_ms"],
            nv1["p99_ms"], nv4["per_sec"], nv1["p50_ms"] / e1["p50_ms"], e4["per_sec"] / nv4["per_sec"]))
    print("(p50/p99: one caller, closed loop; conc4: 4 callers; mem: cgroup peak of one run; paced: one\n"
          " caller that waits for the pool to refill, i.e. one run on an idle engine; x: naive over engine)")
    a_row = rows[0]
    checks = [
        ("p50 <= 3 ms, all cases", all(r[1]["p50_ms"] <= 3 for r in rows),
         ", ".join("%.2f" % r[1]["p50_ms"] for r in rows)),
        ("p99 <= 15 ms, all cases", all(r[1]["p99_ms"] <= 15 for r in rows),
         ", ".join("%.1f" % r[1]["p99_ms"] for r in rows)),
        (">= 300 runs/s at conc 4, print", a_row[2]["per_sec"] >= 300, "%.0f" % a_row[2]["per_sec"]),
        ("<= 2 MB per run of print", a_row[1]["mem_p50_mb"] <= 2, "%.2f" % a_row[1]["mem_p50_mb"]),
    ]
    for what, ok, val in checks:
        print("target %-32s %-4s (%s)" % (what, "met" if ok else "MISS", val))


if __name__ == "__main__":
    main()
