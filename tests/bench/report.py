#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""tests/bench/report.py OUTDIR: turn run.sh's raw.jsonl and meta.json into
the table on stdout, results.csv and bench.png (through gnuplot).

Every figure is the median over the repetitions that succeeded; each ratio is
that median divided by the direct setup's median for the same test and metric.
"""
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys

OUT = sys.argv[1]
META = json.load(open(os.path.join(OUT, "meta.json")))
RAW = [json.loads(l) for l in open(os.path.join(OUT, "raw.jsonl")) if l.strip()]
HZ, NCPU = META["hz"], META["ncpu"]
GB = 1e9

# metric: (unit, which way is better, text-table format)
METRICS = {
    "gbit_s": ("Gbit/s", "higher", "%.2f"),
    "cpu_s_per_gb": ("CPU-s/GB", "lower", "%.3f"),
    "gb_per_cpu_s": ("GB/CPU-s", "higher", "%.2f"),
    "cpu_s_per_gb_raw": ("CPU-s/GB", "lower", "%.3f"),
    "cpus_busy": ("CPUs", "info", "%.2f"),
    "other_cpus": ("CPUs", "info", "%.2f"),
    "cpu_us_per_trans_raw": ("CPU-us/trans", "lower", "%.1f"),
    "tps": ("trans/s", "higher", "%.0f"),
    "p50_us": ("us", "lower", "%.1f"),
    "p99_us": ("us", "lower", "%.1f"),
    "p999_us": ("us", "lower", "%.1f"),
    "max_us": ("us", "lower", "%.0f"),
    "cpu_us_per_trans": ("CPU-us/trans", "lower", "%.1f"),
    "stalls_10ms": ("count", "lower", "%.0f"),
    "errors": ("count", "lower", "%.0f"),
}
STREAM_METRICS = ["gbit_s", "cpu_s_per_gb", "gb_per_cpu_s", "cpu_s_per_gb_raw", "cpus_busy",
                  "other_cpus", "errors"]
RR_METRICS = ["tps", "p50_us", "p99_us", "p999_us", "max_us", "cpu_us_per_trans",
              "cpu_us_per_trans_raw", "cpus_busy", "other_cpus", "stalls_10ms", "errors"]
# What the text table shows; the CSV has every metric.
STREAM_COLS = ["gbit_s", "cpu_s_per_gb", "gb_per_cpu_s"]
RR_COLS = ["tps", "p50_us", "p99_us", "cpu_us_per_trans"]
HEAD = {"gbit_s": "Gbit/s", "cpu_s_per_gb": "CPU-s/GB", "gb_per_cpu_s": "GB/CPU-s",
        "tps": "trans/s", "p50_us": "p50 us", "p99_us": "p99 us",
        "cpu_us_per_trans": "CPU us/tr"}


def describe(test):
    parts = test.split("-")
    if parts[0] == "stream":
        n = int(parts[1][:-1])
        return "stream, %d connection%s (kpperf stream --dir up into a sink)" % (
            n, "" if n == 1 else "s")
    size, n = parts[1], int(parts[2][:-1])
    size = "1 KiB" if size == "1K" else size.replace("B", " B")
    return "request/response, %s messages, %d connection%s (kpperf rr against an echo server)" % (
        size, n, "" if n == 1 else "s")


def metrics_of(run):
    """The figures of one run, or (None, why) if it failed."""
    res = run.get("result") or {}
    if run["rc"] != 0 or not res or "error" in res:
        why = res.get("error") or run.get("stderr") or "no output"
        return None, "exit %d: %s" % (run["rc"], why)
    # System-wide busy time minus what the processes outside the benchmark used.
    other = min(run.get("other_ticks", 0), run["busy_ticks"])
    raw_s = run["busy_ticks"] / HZ
    cpu_s = (run["busy_ticks"] - other) / HZ
    m = {"errors": res.get("errors", 0)}
    if run["total_ticks"] > 0:
        m["cpus_busy"] = NCPU * (run["busy_ticks"] - other) / run["total_ticks"]
        m["other_cpus"] = NCPU * other / run["total_ticks"]
    if res["mode"] == "stream":
        gbytes = res["bytes"] / GB
        m["gbit_s"] = res["gbit_s"]
        if gbytes > 0 and cpu_s > 0:
            m["cpu_s_per_gb"] = cpu_s / gbytes
            m["gb_per_cpu_s"] = gbytes / cpu_s
            m["cpu_s_per_gb_raw"] = raw_s / gbytes
    else:
        lat = res.get("lat_us", {})
        m["tps"] = res["tps"]
        m["p50_us"] = lat.get("p50")
        m["p99_us"] = lat.get("p99")
        m["p999_us"] = lat.get("p999")
        m["max_us"] = lat.get("max")
        m["stalls_10ms"] = res.get("stalls_10ms", 0)
        if res.get("transactions"):
            m["cpu_us_per_trans"] = cpu_s * 1e6 / res["transactions"]
            m["cpu_us_per_trans_raw"] = raw_s * 1e6 / res["transactions"]
    return m, None


# (setup, test) -> {"values": {metric: [..]}, "failed": [why, ..], "runs": n}
cells = {}
for run in RAW:
    c = cells.setdefault((run["setup"], run["test"]), {"values": {}, "failed": [], "runs": 0})
    c["runs"] += 1
    m, why = metrics_of(run)
    if m is None:
        c["failed"].append(why)
        continue
    for k, v in m.items():
        if v is not None:
            c["values"].setdefault(k, []).append(v)


def median(setup, test, metric):
    c = cells.get((setup, test))
    if not c or not c["values"].get(metric):
        return None
    return statistics.median(c["values"][metric])


def ratio(setup, test, metric):
    v, d = median(setup, test, metric), median("direct", test, metric)
    if v is None or not d:
        return None
    return v / d


def na_reason(setup, test):
    if setup in META["na"]:
        return "n/a (%s)" % META["na"][setup]
    c = cells.get((setup, test))
    if not c:
        return "n/a (not run)"
    if not c["values"]:
        return "failed: %s" % c["failed"][0]
    return None


def notes(setup, test):
    c = cells.get((setup, test))
    out = []
    if c and c["failed"]:
        out.append("%d of %d runs failed: %s" % (len(c["failed"]), c["runs"], c["failed"][0]))
    errs = median(setup, test, "errors")
    if errs:
        out.append("kpperf reported %g errors (median)" % errs)
    stalls = median(setup, test, "stalls_10ms")
    if stalls:
        out.append("%g transactions slower than 10 ms (median)" % stalls)
    other = median(setup, test, "other_cpus")
    if other is not None and other >= 0.1:
        out.append("other processes used %.2f CPUs meanwhile" % other)
    return "; ".join(out)


# ------------------------------------------------------------------ text table

def fmt(metric, v):
    return "-" if v is None else METRICS[metric][2] % v


def fmt_ratio(r):
    return "-" if r is None else "x%.2f" % r


setups, tests = META["setups"], META["tests"]
print()
print("kproxy benchmark: %d CPUs, kernel %s, %d s per run, median of %d runs, loopback "
      "(127.0.0.1) in a network namespace of its own" % (NCPU, META["kernel"], META["time"],
                                                         META["reps"]))
print("CPU = system-wide busy time from /proc/stat (user+nice+system+irq+softirq over all "
      "CPUs) during each run.")
print("      System-wide because kproxy's sockmap egress runs in kernel workers that belong to "
      "no process;")
print("      so it counts the client, the server, the proxy and the kernel's work for all "
      "three. The CPU time of")
print("      processes outside the benchmark's namespace during each run is subtracted (raw "
      "figures in the CSV);")
print("      what the kernel did for them outside any process is not (%.2f CPUs were busy "
      "before the runs)." % META["background_cpus"])
print("GB = 10^9 bytes. 'x' columns are ratios to direct: higher is better for Gbit/s, trans/s "
      "and GB/CPU-s;")
print("lower is better for latency, CPU-s/GB and CPU us per transaction.")

for test in tests:
    cols = STREAM_COLS if test.startswith("stream") else RR_COLS
    print()
    print(describe(test))
    line = "  %-12s" % "setup"
    for m in cols:
        line += " %10s %6s" % (HEAD[m], "x")
    print(line)
    for s in setups:
        line = "  %-12s" % s
        why = na_reason(s, test)
        if why:
            print(line + " " + why)
            continue
        for m in cols:
            line += " %10s %6s" % (fmt(m, median(s, test, m)), fmt_ratio(ratio(s, test, m)))
        n = notes(s, test)
        print(line + ("   [%s]" % n if n else ""))

# kproxy: how much went through the kernel redirect, how much through kproxyd.
KP_PROXY = {"rr": "bench_rr", "stream": "bench_stream"}


def kp_counters(run):
    name = KP_PROXY[run["test"].split("-")[0]]
    before, after = run.get("kstats_before"), run.get("kstats_after")
    if not before or not after:
        return None

    def get(stats):
        for p in stats.get("proxies", []):
            if p.get("name") == name:
                k, d = p.get("kernel", {}), p.get("daemon", {})
                return {"redir": k.get("redir_bytes", 0), "passed": k.get("passed_bytes", 0),
                        "user": d.get("user_bytes", 0), "backlog": k.get("backlog_hits", 0),
                        "fallbacks": d.get("fallbacks", 0)}
        return None
    b, a = get(before), get(after)
    if b is None or a is None:
        return None
    return {k: a[k] - b[k] for k in a}


kp_rows = []
if "kproxy" in setups and "kproxy" not in META["na"]:
    totals = {}
    for run in RAW:
        if run["setup"] != "kproxy":
            continue
        d = kp_counters(run)
        if d is None:
            continue
        t = totals.setdefault(run["test"], {k: 0 for k in d})
        for k, v in d.items():
            t[k] += v
    print()
    if not totals:
        print("kproxy data path: no counters ('kproxyctl -j stats' gave nothing usable)")
    else:
        print("kproxy data path, all runs of each test (kproxyctl stats): bytes the kernel "
              "redirected vs bytes kproxyd relayed in user space")
        for test in tests:
            t = totals.get(test)
            if not t:
                continue
            moved = t["redir"] + t["user"]
            share = 100.0 * t["redir"] / moved if moved else 0
            print("  %-11s kernel %6.1f%%  (redirected %d B, user space %d B, backlog hits %d, "
                  "fallback conns %d)" % (test, share, t["redir"], t["user"], t["backlog"],
                                          t["fallbacks"]))
            kp_rows.append((test, share, t))

# ------------------------------------------------------------------ CSV

with open(os.path.join(OUT, "results.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["setup", "test", "metric", "unit", "median", "ratio_to_direct", "better",
                "runs_ok", "runs", "values", "note"])
    for test in tests:
        for s in setups:
            why = na_reason(s, test)
            c = cells.get((s, test), {"values": {}, "failed": [], "runs": 0})
            ok = c["runs"] - len(c["failed"])
            for m in (STREAM_METRICS if test.startswith("stream") else RR_METRICS):
                unit, better, _ = METRICS[m]
                v, r = median(s, test, m), ratio(s, test, m)
                w.writerow([s, test, m, unit, "" if v is None else "%.6g" % v,
                            "" if r is None else "%.4f" % r, better, ok, c["runs"],
                            ";".join("%.6g" % x for x in c["values"].get(m, [])),
                            why or notes(s, test)])
    for test, share, t in kp_rows:
        w.writerow(["kproxy", test, "kernel_redirect_share", "%", "%.2f" % share, "", "info",
                    "", "", "", "redir_bytes=%d user_bytes=%d backlog_hits=%d" %
                    (t["redir"], t["user"], t["backlog"])])

print()
print("results: %s" % os.path.join(OUT, "results.csv"))

# ------------------------------------------------------------------ plot

PANELS = [
    ("Bulk throughput and efficiency vs direct (higher is better)",
     [(t, "gbit_s", "%s Gbit/s" % t) for t in tests if t.startswith("stream")] +
     [(t, "gb_per_cpu_s", "%s GB/CPU-s" % t) for t in tests if t.startswith("stream")]),
    ("Request/response rate vs direct (higher is better)",
     [(t, "tps", t) for t in tests if t.startswith("rr")]),
    ("Request/response p99 latency vs direct (lower is better)",
     [(t, "p99_us", t) for t in tests if t.startswith("rr")]),
]
PANELS = [p for p in PANELS if p[1]]
shown = [s for s in setups if s not in META["na"] and s != "direct"]

if not shutil.which("gnuplot"):
    print("plot: skipped (gnuplot not installed; scripts/install-deps.sh --bench installs it)")
    sys.exit(0)
if not PANELS or not shown:
    sys.exit(0)

gp = ["set terminal pngcairo size 1200,%d font 'sans,10'" % (330 * len(PANELS)),
      "set output '%s'" % os.path.join(OUT, "bench.png"),
      "set multiplot layout %d,1 title 'kproxy benchmark: %d CPUs, kernel %s, %d s runs, "
      "median of %d (ratios to a direct connection)'" % (len(PANELS), NCPU, META["kernel"],
                                                         META["time"], META["reps"]),
      "set style data histogram", "set style histogram clustered gap 1",
      "set style fill solid 0.8 border -1", "set boxwidth 0.9",
      "set datafile missing '-'", "set grid ytics", "set key outside right top",
      "set bmargin 4", "set xtics noenhanced", "set key noenhanced"]
for i, (title, items) in enumerate(PANELS):
    path = os.path.join(OUT, "plot%d.dat" % i)
    top = 1.0
    with open(path, "w") as f:
        f.write("metric " + " ".join(shown) + "\n")
        for test, metric, label in items:
            d = median("direct", test, metric)
            dl = ("direct %s" % (METRICS[metric][2] % d)) if d is not None else "direct -"
            row = ['"%s\\n(%s)"' % (label, dl)]
            for s in shown:
                r = ratio(s, test, metric)
                row.append("-" if r is None else "%.4f" % r)
                top = max(top, r or 0)
            f.write(" ".join(row) + "\n")
    gp.append("set title '%s'" % title)
    gp.append("set yrange [0:%.3f]" % (top * 1.1))
    gp.append("plot '%s' using 2:xtic(1) title columnheader(2)%s, 1 with lines lc rgb 'black' "
              "dt 2 notitle" % (path, "".join(", '' using %d title columnheader(%d)" % (c, c)
                                               for c in range(3, len(shown) + 2))))
gp.append("unset multiplot")
with open(os.path.join(OUT, "bench.gp"), "w") as f:
    f.write("\n".join(gp) + "\n")
r = subprocess.run(["gnuplot", os.path.join(OUT, "bench.gp")], capture_output=True, text=True)
if r.returncode:
    print("plot: gnuplot failed: %s" % r.stderr.strip().splitlines()[-1:])
else:
    print("plot:    %s" % os.path.join(OUT, "bench.png"))
