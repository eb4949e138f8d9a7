#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/bench/kmux.sh: kmux (kproxyd's message multiplexor, sockmap in
# strparser mode) against AF_KCM, raw TCP request/response and a user-space
# epoll multiplexor: the KCM cover letter's benchmark (kcmperf against
# netperf TCP_RR: 1 and 200 instances, 1-byte and 1 MB messages).
#
# Setups, every one measured with the same client, kpperf rr --frame len4 (a
# 4-byte big-endian length of the whole message first; every echoed byte is
# checked, so a setup that crosses or corrupts replies fails instead of
# scoring):
#   tcp    straight to kpperf's echo server (netperf TCP_RR's place)
#   kmux   through kproxyd: 4 muxes of 50 backend connections to the same echo
#          server, parser len:size=4,be,max=1048576; in order (one client
#          owns a backend connection while its request is in flight)
#   kmuxid the same 4 muxes (same kproxyd, parser, ports spread) with ID-tagged
#          correlation, id 4:4 conns 4 balance least: the 50 clients of a mux
#          share its 4 backend connections, so 200 clients ride 16 (KCM's
#          N x M); bytes 4..7 of each message (kpperf's pattern) are replaced
#          by a tag on the way in and restored on the way back, and kpperf
#          checks them like every other byte. Its "1 B" is --size 8: a
#          message shorter than the ID's end (offset 4 + 4 bytes) is a parse
#          error that closes the connection
#   kcm    build/bench/kcmserver: an AF_KCM echo server (kcmperf's place),
#          one KCM multiplexor per TCP connection (KCM sends a reply on
#          whichever attached TCP socket is free, so with one mux for all
#          connections replies would cross), a 3-instruction SOCKET_FILTER
#          parser reading the length at offset 0 of the skb: right only while
#          no skb holds two messages, which request/response guarantees
#   umux   build/bench/umux: a one-thread user-space epoll multiplexor with
#          kmux's routing (4 muxes of 50 backend connections), the
#          user-space baseline
# Tests: rr-1B-1c, rr-1B-200c, rr-1MB-1c, rr-1MB-200c. "1 B" is --size 5, the
# smallest framed message (4 bytes of length, 1 of payload); "1 MB" is
# 1000000 bytes, the cover letter's size. 200 clients are 4 kpperf processes
# of 50 connections started together (to ports 19020+k for kmux, so no mux
# has more clients than backend connections and nothing overflows to
# kproxyd's user-space relay; kproxyd's mux has at most 64; to 19024+k for
# kmuxid, whose 4 connections a mux hold 4 x 64 requests in flight, more
# than its 50 clients' one each). The report prints each kmux setup's
# overflow counters per test and warns if any moved. Their
# transactions/s add up; p50 is the mean of the 4 p50s weighted by
# transactions, p99 the largest of the 4 p99s (an upper bound of the pooled
# p99).
#
# Where: on this host (tcp kmux kmuxid umux; this kernel has no AF_KCM), in a
# network and mount namespace of its own with a private bpffs; then in one
# QEMU/TCG boot per kernel (tests/vm/vmrun.sh, Debian's stock kernel, kcm
# loaded) with all five setups. Runs are interleaved (rep, test, setup);
# each figure is the median of BENCH_REPS runs. Under TCG only ratios within
# one boot mean anything.
#
# Environment:
#   BENCH_TIME            seconds per run (default 3)
#   BENCH_REPS            runs per figure (default 3)
#   BENCH_KMUX_BIG_TIME   seconds per rr-1MB-200c run in the VM (default 24:
#                         under TCG one round of 200 x 1 MB takes seconds)
#   BENCH_KMUX_BIG_TIME_HOST  the same on the host (default 8)
#   BENCH_KMUX_KERNELS    kernels to boot, one VM each (default 6.1; "6.1 6.12";
#                         "" for none)
#   BENCH_KMUX_HOST       0 to skip the host part (default 1)
#   BENCH_KMUX_TESTS      a subset of the tests above
#   VMRUN_SMP (2), VMRUN_MEM (8G: TCP's memory limit, tcp_mem, is a share of
#                         it, and 200 whole 1 MB messages held by a parser
#                         pass a 3G VM's), VMRUN_TIMEOUT (derived)
#   KP_BUILD              build directory (default build/; make all first)
# Output: the tables on stdout; tests/bench/out/kmux/results.csv (kind
# figure, ratio, and counter: kmux's and kmuxid's kernel and kproxyd
# counters summed over a test's runs), and per
# kernel raw-K.jsonl, meta-K.json, logs-K/ (K = host, 6.1, 6.12).
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd "$HERE/../.." && pwd -P)
export KP_BUILD=${KP_BUILD:-$ROOT/build}
export BENCH_TIME=${BENCH_TIME:-3}
export BENCH_REPS=${BENCH_REPS:-3}
BIG_VM=${BENCH_KMUX_BIG_TIME:-24}
BIG_HOST=${BENCH_KMUX_BIG_TIME_HOST:-8}
KERNELS=${BENCH_KMUX_KERNELS-6.1}
export KMUX_TESTS=${BENCH_KMUX_TESTS:-rr-1B-1c rr-1B-200c rr-1MB-1c rr-1MB-200c}
OUT=$HERE/out/kmux
if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi

die() { echo "kmux: $*" >&2; exit 1; }
[ "$EUID" = 0 ] || die "needs root (namespaces, BPF, the VM runs the benchmark as root); try: sudo $0"
for v in BENCH_TIME BENCH_REPS BIG_VM BIG_HOST; do
	case ${!v} in ''|*[!0-9]*|0) die "$v must be a positive whole number" ;; esac
done
for t in $KMUX_TESTS; do
	case $t in rr-1B-1c|rr-1B-200c|rr-1MB-1c|rr-1MB-200c) ;;
	*) die "unknown test '$t' (rr-1B-1c rr-1B-200c rr-1MB-1c rr-1MB-200c)" ;; esac
done
for b in kpperf kproxyd kproxyctl bench/kcmserver bench/umux; do
	[ -x "$KP_BUILD/$b" ] || die "$KP_BUILD/$b is not built; run make all"
done
case $KP_BUILD in "$ROOT"/*) ;; *) die "KP_BUILD must be inside $ROOT (the VM sees only that directory read-write)" ;; esac
[ -z "$KERNELS" ] || command -v qemu-system-x86_64 >/dev/null ||
	die "qemu-system-x86_64 is missing; run scripts/install-deps.sh --test"

mkdir -p "$OUT" || exit 1
rm -rf "$OUT"/raw-*.jsonl "$OUT"/meta-*.json "$OUT"/logs-* "$OUT/results.csv"
export KMUX_OUT=$OUT

START=$SECONDS
cd "$ROOT" || exit 1
LABELS=()
if [ "${BENCH_KMUX_HOST:-1}" = 1 ]; then
	echo "kmux: this host ($(uname -r), $(nproc) CPUs): tcp kmux kmuxid umux (no AF_KCM in this kernel)"
	t0=$SECONDS
	KMUX_TCP_MEM=$(cat /proc/sys/net/ipv4/tcp_mem 2>/dev/null) \
	KMUX_LABEL=host KMUX_SETUPS="tcp kmux kmuxid umux" KMUX_BIG_TIME=$BIG_HOST KMUX_MOUNT_BPFFS=1 \
		unshare -n -m --propagation private -- bash "$HERE/kmux_inner.sh"
	echo "kmux: host: exit $? after $((SECONDS - t0)) s"
	[ -s "$OUT/meta-host.json" ] && LABELS+=(host)
fi

ntests=$(wc -w <<<"$KMUX_TESTS")
# boot, setup, the runs with their overhead (exec and connects are slow under
# TCG), and a margin; 5 setups
export VMRUN_TIMEOUT=${VMRUN_TIMEOUT:-$((300 + BENCH_REPS * 5 * (ntests * (BENCH_TIME + 20) + BIG_VM + 40)))}
export VMRUN_SMP=${VMRUN_SMP:-2} VMRUN_MEM=${VMRUN_MEM:-8G} VMRUN_QUIET=1
export VMRUN_MODULES=${VMRUN_MODULES-tls kcm}
export VMRUN_PASSENV="BENCH_TIME BENCH_REPS KMUX_BIG_TIME KMUX_SETUPS KMUX_TESTS KMUX_OUT KMUX_LABEL KMUX_QUIET_MAX KP_BUILD"
for k in $KERNELS; do
	echo "kmux: kernel $k in QEMU/TCG ($VMRUN_SMP vCPUs, $VMRUN_MEM): tcp kmux kmuxid kcm umux"
	t0=$SECONDS
	KMUX_LABEL=$k KMUX_SETUPS="tcp kmux kmuxid kcm umux" KMUX_BIG_TIME=$BIG_VM \
		tests/vm/vmrun.sh "$k" bash tests/bench/kmux_inner.sh
	echo "kmux: kernel $k: exit $? after $((SECONDS - t0)) s"
	[ -s "$OUT/meta-$k.json" ] && LABELS+=("$k")
done
[ ${#LABELS[@]} -gt 0 ] || die "no run produced results"

"$PYTHON" - "$OUT" "${LABELS[@]}" <<'EOF'
import json, statistics, sys
out, labels = sys.argv[1], sys.argv[2:]
TESTS = ["rr-1B-1c", "rr-1B-200c", "rr-1MB-1c", "rr-1MB-200c"]
SETUPS = ["tcp", "kmux", "kmuxid", "kcm", "umux"]
RATIOS = [("kmux", "tcp"), ("kmux", "kcm"), ("kcm", "tcp"), ("umux", "tcp"), ("kmux", "umux"),
          ("kmuxid", "tcp"), ("kmuxid", "kmux"), ("kmuxid", "kcm")]
KCNT = ["req_msgs", "resp_msgs", "overflow_msgs", "parse_errors", "orphans", "redir_fail",
        "id_unknown", "id_short"]
DCNT = ["accepted", "rejected", "overflowed", "slot_deaths", "inflight_resets", "backend_fail", "user_bytes",
        "slot_recycles"]
csv = open(out + "/results.csv", "w")
csv.write("kernel,uname,kind,setup,test,clients,size_bytes,metric,value,runs_ok,runs,values,note\n")

def figures(r):
    res = r["results"]
    if r["err"] or not res or any(x is None or "tps" not in x for x in res):
        return None
    txn = sum(x["transactions"] for x in res)
    return {
        "tps": sum(x["tps"] for x in res),
        "p50": (sum(x["lat_us"]["p50"] * x["transactions"] for x in res) / txn) if txn else None,
        "p99": max(x["lat_us"]["p99"] for x in res) if txn else None,
        "txn": txn,
        "stalls": sum(x["stalls_10ms"] for x in res),
        "cpu_us_per_txn": (r["busy_ticks"] / r["hz"]) * 1e6 / txn if txn else None,
    }

def kdelta(r):
    d = {}
    b, a = r.get("kmux_before"), r.get("kmux_after")
    if not b or not a:
        return None
    bm = {m["name"]: m for m in b["muxes"]}
    for m in a["muxes"]:
        p = bm.get(m["name"])
        for sect, names in (("kernel", KCNT), ("daemon", DCNT)):
            for f in names:
                d[f] = d.get(f, 0) + m[sect].get(f, 0) - (p[sect].get(f, 0) if p else 0)
    return d

def size_of(s, t):
    return 1000000 if "-1MB-" in t else 8 if s == "kmuxid" else 5

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def fmt(v, kind):
    if v is None:
        return "n/a"
    if kind == "tps":
        return "%.0f" % v if v >= 100 else "%.1f" % v
    return "%.0f" % v if v >= 100 else "%.1f" % v

for label in labels:
    meta = json.load(open("%s/meta-%s.json" % (out, label)))
    runs = [json.loads(l) for l in open("%s/raw-%s.jsonl" % (out, label)) if l.strip()]
    setups = [s for s in SETUPS if s in meta["setups"].split()]
    tests = [t for t in TESTS if t in meta["tests"].split()]
    M, N = {}, {}
    for s in setups:
        for t in tests:
            rs = [r for r in runs if r["setup"] == s and r["test"] == t]
            fs = [figures(r) for r in rs]
            ok = [f for f in fs if f]
            M[s, t] = {k: med([f[k] for f in ok]) for k in ("tps", "p50", "p99", "cpu_us_per_txn")}
            M[s, t]["vals"] = [f["tps"] for f in ok]
            M[s, t]["txn"] = [f["txn"] for f in ok]
            M[s, t]["stalls"] = sum(f["stalls"] for f in ok)
            note = meta["na"].get(s, "")
            bad = [r["err"] for r in rs if not figures(r)]
            if bad and not note:
                note = "%d of %d runs failed: %s" % (len(bad), len(rs), bad[0] or "no result")
            N[s, t] = (len(ok), len(rs), note)
    vm = label != "host"
    print()
    where = ("kernel %s (%s), %d vCPUs under QEMU/TCG" % (label, meta["uname"], meta["ncpu"]) if vm
             else "this host, kernel %s, %d CPUs (no AF_KCM here)" % (meta["uname"], meta["ncpu"]))
    print("### kmux vs %s: %s" % ("AF_KCM, TCP and umux" if vm else "TCP and umux", where))
    print()
    print("%d s runs (%d s for rr-1MB-200c), median of %d, interleaved. 1B = --size 5 (the smallest len4"
          " message), 1MB = 1000000 bytes; 200c = 4 kpperf processes x 50 connections."
          % (meta["time"], meta["big_time"], meta["reps"]))
    if "kmuxid" in setups:
        print("kmux: 4 muxes x %d backend connections, one client each; kmuxid: 4 muxes x %d shared"
              " connections (id 4:4, balance least), so 200 clients on %d; kmuxid's 1B is --size 8 (the"
              " length, then the 4-byte ID)." % (meta.get("mux_conns", 50), meta.get("mux_id_conns", 4),
                                                  4 * meta.get("mux_id_conns", 4)))
    if vm:
        print("Under TCG the CPU is emulated: absolute figures say nothing; only ratios inside this one boot do.")
    print()
    print("| test | setup | trans/s | p50 us | p99 us | runs ok | transactions per run |")
    print("|---|---|---:|---:|---:|---:|---|")
    for t in tests:
        for s in setups:
            m = M[s, t]
            nok, n, note = N[s, t]
            if s in meta["na"]:
                print("| %s | %s | n/a | | | 0/0 | %s |" % (t, s, meta["na"][s][:80]))
                continue
            print("| %s | %s | %s | %s | %s | %d/%d | %s%s |" % (
                t, s, fmt(m["tps"], "tps"), fmt(m["p50"], "lat"), fmt(m["p99"], "lat"), nok, n,
                " ".join(str(x) for x in m["txn"]), ("; " + note) if note else ""))
            for k, unit in (("tps", "trans/s"), ("p50", "us"), ("p99", "us"), ("cpu_us_per_txn", "us")):
                csv.write('%s,%s,figure,%s,%s,%s,%s,%s,%s,%d,%d,"%s","%s"\n' % (
                    label, meta["uname"], s, t, t.split("-")[2][:-1], size_of(s, t),
                    k, "" if m[k] is None else "%.6g" % m[k], nok, n,
                    " ".join("%.6g" % v for v in m["vals"]) if k == "tps" else "", note.replace('"', "'")))
    ratios = [(a, b) for a, b in RATIOS if a in setups and b in setups and a not in meta["na"]
              and b not in meta["na"]]
    print()
    print("Ratios of the medians: trans/s (higher is better for the first), then p50 / p99 latency"
          " (lower is better for the first).")
    print()
    print("| test | " + " | ".join("%s/%s trans/s" % r for r in ratios) + " | " +
          " | ".join("%s/%s p50 / p99" % r for r in ratios) + " |")
    print("|---|" + "---:|" * (2 * len(ratios)))
    for t in tests:
        cells, lats = [], []
        for a, b in ratios:
            def x(k):
                va, vb = M[a, t][k], M[b, t][k]
                return va / vb if va is not None and vb else None
            r = x("tps")
            cells.append("%.2f" % r if r is not None else "n/a")
            l50, l99 = x("p50"), x("p99")
            lats.append("%s / %s" % ("%.2f" % l50 if l50 is not None else "n/a",
                                     "%.2f" % l99 if l99 is not None else "n/a"))
            for k, v in (("tps", r), ("p50", l50), ("p99", l99)):
                csv.write('%s,%s,ratio,%s/%s,%s,%s,%s,%s,%s,,,,\n' % (
                    label, meta["uname"], a, b, t, t.split("-")[2][:-1], size_of(a, t),
                    k, "" if v is None else "%.4f" % v))
        print("| %s | %s | %s |" % (t, " | ".join(cells), " | ".join(lats)))
    # what kmux and kmuxid did in the kernel and in kproxyd during their runs
    # (one kproxyd holds both; the other setup's muxes are idle, so the sums of
    # the deltas over all muxes are this setup's)
    for ks in ("kmux", "kmuxid"):
        if ks not in setups or ks in meta["na"]:
            continue
        print()
        for t in tests:
            tot, kpt = {}, 0
            for r in runs:
                if r["setup"] != ks or r["test"] != t:
                    continue
                d = kdelta(r)
                f = figures(r)
                kpt += f["txn"] if f else 0
                for k, v in (d or {}).items():
                    tot[k] = tot.get(k, 0) + v
            if tot:
                print("%-6s %-11s: kernel %d requests, %d responses (kpperf counted %d transactions); "
                      "overflow %d msgs (%d clients), parse errors %d, orphans %d, redirect failures %d, "
                      "unknown IDs %d; kproxyd relayed %d bytes, backend connections lost %d, recycled %d, "
                      "in-flight resets %d, clients rejected %d; stalls > 10 ms %d"
                      % (ks, t, tot["req_msgs"], tot["resp_msgs"], kpt, tot["overflow_msgs"], tot["overflowed"],
                         tot["parse_errors"], tot["orphans"], tot["redir_fail"], tot["id_unknown"],
                         tot["user_bytes"], tot["slot_deaths"], tot["slot_recycles"], tot["inflight_resets"],
                         tot["rejected"], M[ks, t]["stalls"]))
                if tot["overflow_msgs"] or tot["overflowed"] or tot["user_bytes"]:
                    print("%-6s %-11s: WARNING: part of this test went through kproxyd's user-space relay"
                          " (overflow), not the kernel" % (ks, t))
                for k in ("req_msgs", "resp_msgs", "overflow_msgs", "overflowed", "user_bytes", "id_unknown",
                          "orphans", "slot_recycles"):
                    csv.write('%s,%s,counter,%s,%s,%s,%s,%s,%d,,,,"sum over the runs"\n' % (
                        label, meta["uname"], ks, t, t.split("-")[2][:-1], size_of(ks, t),
                        k, tot[k]))
    if meta.get("mux_recreated"):
        print()
        print("kmux: %d times a mux still had clients a second after a run (clients cut mid-request"
              " wait up to 30 s for kproxyd) and was deleted and added again before the next run"
              % meta["mux_recreated"])
    # how long the machine stayed busy after a run (the next one waited for it)
    waits = sorted(((r.get("quiet_s", 0), p["setup"], p["test"]) for p, r in zip(runs, runs[1:])),
                   reverse=True)
    waits = [w for w in waits if w[0] >= 2]
    if waits:
        print()
        print("busy after a run (the next run waited for the machine to be quiet, at most %s s): %s"
              % (meta.get("quiet_max", "?"), ", ".join("%.1f s after %s %s" % w for w in waits[:6])))
    mem = [(max(x for x in r["tcp_mem_pages"] if x is not None), r["setup"], r["test"], r["rep"])
           for r in runs if r.get("tcp_mem_pages") and any(x is not None for x in r["tcp_mem_pages"])]
    if mem:
        print()
        print("TCP memory (pages, before/after each run), highest: %s; tcp_mem (min pressure max) %s"
              % (", ".join("%d at %s %s rep %d" % m for m in sorted(mem, reverse=True)[:3]),
                 meta.get("tcp_mem", "?")))
    print()
    print("(%s: %d s)" % (label, meta["seconds"]))
csv.close()
print()
print("csv: " + out + "/results.csv")
EOF
echo "kmux: done in $((SECONDS - START)) s"
