#!/usr/bin/python3.11
"""HTTP-level benchmark of pyrunnerd: latency, throughput, daemon RSS and the
time to answer a timeout, over loopback with keep-alive connections.

    /usr/bin/python3.11 bench/http_bench.py [--build build] [--n 200] [--tput-n 400]

Starts its own pyrunnerd (default preload: numpy, pandas, scipy, sympy,
matplotlib, sklearn) on a free 127.0.0.1 port with --max-concurrency 16
--max-queue 256 --rate-limit 0, waits until GET / says healthy, measures, and
stops it with SIGTERM. Stdlib only (http.client, threads). The client runs on
the same machine, so its own CPU use is part of the figures.
"""
import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = [
    ("a print", "print('hi')"),
    ("b numpy", "import numpy as np\nprint(np.arange(10**6).sum())"),
    ("c pandas", "import pandas as pd\ndf = pd.DataFrame({'k': [1, 1, 2, 3], 'v': [3, 4, 5, 6]})\n"
                 "print(df.groupby('k')['v'].sum())"),
]


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


class Client:
    """One keep-alive connection."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def run(self, code, path="/run", **fields):
        body = dict(fields)
        body["code"] = code
        return self.post(path, body)

    def post(self, path, body, method="POST"):
        data = json.dumps(body)
        for attempt in (0, 1):
            try:
                t0 = time.perf_counter()
                self.conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
                r = self.conn.getresponse()
                raw = r.read()
                dt = time.perf_counter() - t0
                break
            except (ConnectionError, http.client.HTTPException):
                if attempt:
                    raise
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        if r.status not in (200, 201, 204):
            raise RuntimeError("HTTP %d: %r" % (r.status, raw[:300]))
        return dt, json.loads(raw) if raw else None

    def close(self):
        self.conn.close()


def expect_success(res, name):
    if res["status"] != "success":
        raise RuntimeError("%s: run ended %s: %r" % (name, res["status"], res))


def latency(port, name, code, n, warmup):
    c = Client(port)
    try:
        for _ in range(warmup):
            expect_success(c.run(code)[1], name)
        lat = []
        for _ in range(n):
            dt, res = c.run(code)
            expect_success(res, name)
            lat.append(dt)
    finally:
        c.close()
    return lat


def throughput(port, name, code, n, conc):
    """n requests spread over `conc` threads, each with its own keep-alive
    connection; returns (req/s, latencies)."""
    lock = threading.Lock()
    left = [n]
    lat, errors = [], []
    clients = [Client(port) for _ in range(conc)]
    for c in clients:                    # connect (and warm the connection) before the clock starts
        c.run("pass")
    start = threading.Barrier(conc + 1)

    def worker(c):
        start.wait()
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            try:
                dt, res = c.run(code)
                expect_success(res, name)
                with lock:
                    lat.append(dt)
            except Exception as e:      # noqa: BLE001 - reported after the run
                with lock:
                    errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for c in clients:
        c.close()
    if errors:
        raise RuntimeError("%s at concurrency %d: %d errors, first %s" % (name, conc, len(errors), errors[0]))
    return n / wall, lat


class RssSampler(threading.Thread):
    def __init__(self, pid, every=0.05):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.max = 0.0
        self.samples = 0
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            self.max = max(self.max, rss_mb(self.pid))
            self.samples += 1
            self._halt.wait(self.every)

    def stop(self):
        self._halt.set()
        self.join()
        self.max = max(self.max, rss_mb(self.pid))
        return self.max


def start_daemon(binary, port):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYRUNNER_") and not k.startswith("PYTHON_EXECUTOR_")}
    argv = [binary, "--listen", "127.0.0.1:%d" % port, "--max-concurrency", "16", "--max-queue", "256",
            "--rate-limit", "0", "--max-sessions", "1000", "--max-sessions-per-key", "1000",
            # A spare zygote still importing would share the CPU with the
            # first measurements; idle, it costs none.
            "--spare-zygote", "0"]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env=env)
    # Drain its log so it never blocks on a full pipe; keep the tail.
    tail = []

    def reader():
        for line in iter(p.stderr.readline, b""):
            tail.append(line)
            del tail[:-50]
    threading.Thread(target=reader, daemon=True).start()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:
        if p.poll() is not None:
            sys.exit("pyrunnerd exited %d:\n%s" % (p.returncode, b"".join(tail).decode("utf-8", "replace")))
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/")
            h = json.loads(c.getresponse().read())
            c.close()
            if h.get("status") == "healthy":
                return p, h, time.monotonic() - t0, tail
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    p.kill()
    sys.exit("pyrunnerd not healthy within 60 s")


def engine_p50(build, n):
    exe = os.path.join(build, "bench", "pyrunner-bench")
    if not os.access(exe, os.X_OK):
        return None
    out = {}
    for name, code in CASES:
        try:
            r = subprocess.run([exe, "--code", code, "--n", str(n), "--concurrency", "1", "--warmup", "20"],
                               capture_output=True, text=True, timeout=120, check=True)
            out[name] = json.loads(r.stdout)
        except (subprocess.SubprocessError, ValueError) as e:
            out[name] = {"error": str(e)}
    return out


PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\n"
SAVEFIG = "import io\nimport matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.savefig(io.BytesIO(), format='png')\nplt.close()\n"


def sessions_and_plots(port, pid, n, n_plots, n_sessions):
    """Session cells, an idle session's memory, plots and many idle sessions,
    each beside its one-shot reference measured here too."""
    c = Client(port)
    out = {}
    try:
        _, s = c.post("/sessions", {})
        path = "/sessions/%s/run" % s["session_id"]
        c.run("x = 0", path)
        lat = []
        for _ in range(n):
            dt, res = c.run("x = x + 1", path)
            expect_success(res, "cell")
            lat.append(dt)
        out["cell_p50"] = pct(lat, 0.5) * 1e3
        out["print_p50"] = pct(latency(port, "a print", "print('hi')", n, 5), 0.5) * 1e3
        time.sleep(0.2)
        _, info = c.post("/sessions/" + s["session_id"], None, "GET")
        out["idle_mib"] = info["memory_used"]
        plot, savefig, second = [], [], []
        for _ in range(n_plots):      # paced: one at a time, alternating
            dt, res = c.run(PLOT)
            expect_success(res, "plot")
            if not (res["outputs"] and "image/png" in res["outputs"][0]["data"]):
                raise RuntimeError("the plot run gave no PNG")
            plot.append(dt)
            dt, res = c.run(SAVEFIG)
            expect_success(res, "savefig")
            savefig.append(dt)
            dt, res = c.run(PLOT, path)
            expect_success(res, "plot in a session")
            second.append(dt)
        out["plot_p50"], out["savefig_p50"] = pct(plot, 0.5) * 1e3, pct(savefig, 0.5) * 1e3
        out["plot_session_p50"] = pct(second, 0.5) * 1e3
        c.post("/sessions/" + s["session_id"], None, "DELETE")
        # Many idle sessions: one's cell latency beside it alone, the daemon's RSS.
        ids = []
        for _ in range(n_sessions):
            _, s2 = c.post("/sessions", {})
            ids.append(s2["session_id"])
            c.run("y = 1", "/sessions/%s/run" % s2["session_id"])
        lat = []
        for _ in range(n):
            dt, res = c.run("y = y + 1", "/sessions/%s/run" % ids[0])
            lat.append(dt)
        out["cell_many_p50"] = pct(lat, 0.5) * 1e3
        out["rss_many"] = rss_mb(pid)
        out["n_sessions"] = n_sessions
        for sid in ids:
            c.post("/sessions/" + sid, None, "DELETE")
    finally:
        c.close()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--n", type=int, default=200, help="requests per latency measurement")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--tput-n", type=int, default=400, help="requests per throughput measurement")
    ap.add_argument("--timeout-runs", type=int, default=5)
    ap.add_argument("--no-engine", action="store_true", help="skip the engine-level reference")
    ap.add_argument("--plots", type=int, default=20, help="plot runs (paced, each beside a savefig run)")
    ap.add_argument("--sessions", type=int, default=100, help="idle sessions held at once")
    args = ap.parse_args()

    binary = os.environ.get("PYRUNNERD_BIN") or os.path.join(args.build, "src", "daemon", "pyrunnerd")
    t_all = time.monotonic()
    port = free_port()
    proc, health, t_ready, log_tail = start_daemon(binary, port)
    pid = proc.pid
    libs = health["capabilities"]["libraries"]
    print("pyrunnerd %s (pid %d) healthy after %.2f s; preload: %s; %d CPUs"
          % (health["version"], pid, t_ready, ", ".join("%s %s" % kv for kv in libs.items()), os.cpu_count()))
    results = {}
    try:
        # Warm every case up, then the idle RSS, then the measurements.
        for name, code in CASES:
            latency(port, name, code, 0, args.warmup)
        time.sleep(0.3)   # let the pool refill before reading the idle figure
        rss_idle = rss_mb(pid)
        for name, code in CASES:
            lat = latency(port, name, code, args.n, 0)
            r4, _ = throughput(port, name, code, args.tput_n, 4)
            sampler = RssSampler(pid)
            sampler.start()
            r16, lat16 = throughput(port, name, code, args.tput_n, 16)
            rss16 = sampler.stop()
            results[name] = {"p50": pct(lat, 0.5) * 1e3, "p99": pct(lat, 0.99) * 1e3, "r4": r4, "r16": r16,
                             "p50_16": pct(lat16, 0.5) * 1e3, "rss16": rss16}
        rss_max16 = max(r["rss16"] for r in results.values())
        sess = sessions_and_plots(port, pid, args.n, args.plots, args.sessions)
        c = Client(port)
        tw = []
        for _ in range(args.timeout_runs):
            dt, res = c.run("while True: pass", timeout=2)
            if res["status"] != "timeout":
                raise RuntimeError("timeout run ended %s" % res["status"])
            tw.append(dt)
        c.close()
        t_timeout = statistics.median(tw)
    finally:
        t_stop = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = "hung (killed)"
        t_stop = time.monotonic() - t_stop

    print()
    print("%-9s %9s %9s %12s %12s %14s %12s" % ("case", "p50 ms", "p99 ms", "req/s c=4", "req/s c=16",
                                                "p50 ms c=16", "RSS MB c=16"))
    for name, _ in CASES:
        r = results[name]
        print("%-9s %9.2f %9.2f %12.0f %12.0f %14.2f %12.1f"
              % (name, r["p50"], r["p99"], r["r4"], r["r16"], r["p50_16"], r["rss16"]))
    print()
    print("daemon RSS: idle %.1f MB, max during the concurrency-16 runs %.1f MB (VmRSS of pid %d, every 50 ms)"
          % (rss_idle, rss_max16, pid))
    print("timeout 2 s, `while True: pass`: answered in %.3f s (median of %d: %s)"
          % (t_timeout, len(tw), ", ".join("%.3f" % x for x in tw)))
    print("daemon stopped with SIGTERM in %.2f s, exit status %s" % (t_stop, rc))

    print()
    print("sessions and plots (paced, one client):")
    print("  cell `x = x + 1` p50 %.2f ms; a one-shot print p50 %.2f ms (ratio %.2f)"
          % (sess["cell_p50"], sess["print_p50"], sess["cell_p50"] / sess["print_p50"]))
    print("  idle session after %d cells: %.2f MiB of cgroup memory" % (args.n + 1, sess["idle_mib"]))
    print("  plot + PNG one-shot p50 %.1f ms; bare savefig one-shot p50 %.1f ms (ratio %.2f); "
          "a plot in a session p50 %.1f ms"
          % (sess["plot_p50"], sess["savefig_p50"], sess["plot_p50"] / sess["savefig_p50"],
             sess["plot_session_p50"]))
    print("  %d idle sessions: one's cell p50 %.2f ms (%.2fx alone); daemon RSS %.1f MB"
          % (sess["n_sessions"], sess["cell_many_p50"], sess["cell_many_p50"] / sess["cell_p50"],
             sess["rss_many"]))

    if not args.no_engine:
        eng = engine_p50(args.build, args.n)
        if eng:
            print()
            print("engine level (build/bench/pyrunner-bench --n %d, concurrency 1, no HTTP), for reference:" % args.n)
            for name, _ in CASES:
                e = eng[name]
                if "error" in e:
                    print("  %-9s error: %s" % (name, e["error"]))
                else:
                    print("  %-9s p50 %.2f ms, p99 %.2f ms   (HTTP adds %+.2f ms at p50)"
                          % (name, e["p50_ms"], e["p99_ms"], results[name]["p50"] - e["p50_ms"]))

    targets = []
    for name, _ in CASES:
        targets.append(("p50 over HTTP <= 4 ms: %s" % name, results[name]["p50"] <= 4.0,
                        "%.2f ms" % results[name]["p50"]))
    targets.append(("throughput >= 300 req/s at concurrency 4: a print", results["a print"]["r4"] >= 300,
                    "%.0f req/s" % results["a print"]["r4"]))
    targets.append(("daemon RSS <= 30 MB idle", rss_idle <= 30, "%.1f MB" % rss_idle))
    targets.append(("daemon RSS <= 60 MB at concurrency 16", rss_max16 <= 60, "%.1f MB" % rss_max16))
    targets.append(("2 s timeout answered within 2.05 s", t_timeout <= 2.05, "%.3f s" % t_timeout))
    targets.append(("session cell p50 <= 1 ms", sess["cell_p50"] <= 1.0, "%.2f ms" % sess["cell_p50"]))
    targets.append(("idle session <= 4 MiB", sess["idle_mib"] <= 4.0, "%.2f MiB" % sess["idle_mib"]))
    targets.append(("plot + PNG one-shot p50 <= 50 ms", sess["plot_p50"] <= 50, "%.1f ms" % sess["plot_p50"]))
    targets.append(("second plot in a session p50 <= 25 ms", sess["plot_session_p50"] <= 25,
                    "%.1f ms" % sess["plot_session_p50"]))
    targets.append(("cell p50 with %d idle sessions <= 1.5x alone" % sess["n_sessions"],
                    sess["cell_many_p50"] <= 1.5 * sess["cell_p50"], "%.2fx" % (sess["cell_many_p50"] / sess["cell_p50"])))
    targets.append(("daemon RSS <= 50 MB with %d idle sessions" % sess["n_sessions"], sess["rss_many"] <= 50,
                    "%.1f MB" % sess["rss_many"]))
    print()
    print("targets:")
    for what, ok, value in targets:
        print("  %-4s %-52s %s" % ("met" if ok else "MISS", what, value))
    print()
    print("total %.1f s" % (time.monotonic() - t_all))
    if rc != 0:
        print("pyrunnerd exit status %s:\n%s" % (rc, b"".join(log_tail).decode("utf-8", "replace")))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
