#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/bench/sidecar.sh: the sidecar chain client -> local proxy -> server,
# with and without kproxy's local acceleration (sockops + sk_msg), and plain
# loopback (client -> server), side by side in one run.
#
# The proxy is rwproxy (user space, tests/bench/rwproxy.c) on port 15001, the
# server kpperf (echo for request/response, sink for stream) on 8080; every
# process is in one cgroup, and 'kproxyctl accel add' names both ports. Tests:
# 1-byte request/response over 1 connection (transactions/s, p50, p99) and a
# 1-connection stream (Gbit/s, CPU seconds per GB from /proc/stat, all CPUs).
# Each figure is the median of BENCH_REPS interleaved runs of BENCH_TIME s.
#
# Output: a table on stdout, tests/bench/out/sidecar.csv.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd "$HERE/../.." && pwd -P)
BUILD=${KP_BUILD:-$ROOT/build}
BENCH_TIME=${BENCH_TIME:-5}
BENCH_REPS=${BENCH_REPS:-3}
OUT=${BENCH_OUT:-$HERE/out}
if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi

if [ "$EUID" != 0 ]; then
	echo "sidecar: needs root (a network namespace, a cgroup, BPF); try: sudo $0" >&2
	exit 1
fi
if [ -z "${_KP_SIDECAR_NS:-}" ]; then
	export _KP_SIDECAR_NS=1
	exec unshare -n -m --propagation private -- "$0" "$@"
fi
ip link set lo up
mkdir -p "$OUT"
TMP=$(mktemp -d /tmp/kp-sidecar.XXXXXX)
mount -t bpf bpf /sys/fs/bpf
# Our own view of the cgroup2 hierarchy (this mount namespace only).
mount -t cgroup2 none /sys/fs/cgroup || { echo "sidecar: cannot mount cgroup2" >&2; exit 1; }
CG=/sys/fs/cgroup/kp-sidecar.$$
mkdir "$CG"
PIDS=()
cleanup() {
	local p i sig=TERM pids=()
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	# Everything still in the cgroup (servers, proxies) goes too; cgroup files
	# have no size, so read them to know whether anything is left.
	for i in 1 2 3 4 5 6 7 8 9 10; do
		mapfile -t pids < "$CG/cgroup.procs"
		[ ${#pids[@]} -gt 0 ] || break
		[ "$i" -gt 5 ] && sig=KILL
		kill -s "$sig" "${pids[@]}" 2>/dev/null
		sleep 0.2
	done
	wait 2>/dev/null
	rmdir "$CG" 2>/dev/null || echo "sidecar: could not remove $CG" >&2
	rm -rf "$TMP"
}
trap cleanup EXIT
in_cg() { sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG" "$@"; }
wait_port() { local i; for i in $(seq 100); do
	(exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }

in_cg "$BUILD/kpperf" server tcp://127.0.0.1:8080 --mode echo >"$TMP/echo.log" 2>&1 & PIDS+=($!)
in_cg "$BUILD/kpperf" server tcp://127.0.0.1:8081 --mode sink >"$TMP/sink.log" 2>&1 & PIDS+=($!)
in_cg "$BUILD/bench/rwproxy" 127.0.0.1:15001 127.0.0.1:8080 >"$TMP/p1.log" 2>&1 & PIDS+=($!)
in_cg "$BUILD/bench/rwproxy" 127.0.0.1:15002 127.0.0.1:8081 >"$TMP/p2.log" 2>&1 & PIDS+=($!)
: > "$TMP/kproxy.conf"
"$BUILD/kproxyd" -f -c "$TMP/kproxy.conf" -s "$TMP/ctl.sock" >"$TMP/kproxyd.log" 2>&1 & PIDS+=($!)
for p in 8080 8081 15001 15002; do wait_port $p || { echo "sidecar: port $p did not open" >&2; exit 1; }; done
for i in $(seq 100); do [ -S "$TMP/ctl.sock" ] && break; sleep 0.05; done
KPCTL=("$BUILD/kproxyctl" -s "$TMP/ctl.sock")

cpu_ticks() {
	local user nice system idle iowait irq softirq steal rest
	read -r _ user nice system idle iowait irq softirq steal rest </proc/stat
	echo "$((user + nice + system + irq + softirq))"
}

RAW=$TMP/raw.jsonl
run() { # setup test
	local setup=$1 test=$2 port b0 b1 out
	case $setup/$test in
	loopback/rr) port=8080 ;; loopback/stream) port=8081 ;;
	*/rr) port=15001 ;; */stream) port=15002 ;;
	esac
	if [ "$setup" = accel ]; then
		"${KPCTL[@]}" accel add side cgroup "$CG" port 15001 port 15002 port 8080 port 8081 >/dev/null
	fi
	b0=$(cpu_ticks)
	if [ "$test" = rr ]; then
		out=$(in_cg "$BUILD/kpperf" rr "tcp://127.0.0.1:$port" --conns 1 --size 1 --time "$BENCH_TIME" -j)
	else
		out=$(in_cg "$BUILD/kpperf" stream "tcp://127.0.0.1:$port" --conns 1 --time "$BENCH_TIME" --dir up -j)
	fi
	b1=$(cpu_ticks)
	acc=null
	if [ "$setup" = accel ]; then
		acc=$("${KPCTL[@]}" -j accel show side | tr -d '\n')
		"${KPCTL[@]}" accel del side >/dev/null
	fi
	"$PYTHON" -c 'import json,sys; print(json.dumps({"setup": sys.argv[1], "test": sys.argv[2],
		"busy_ticks": int(sys.argv[3]), "result": json.loads(sys.argv[4] or "null"),
		"accel": json.loads(sys.argv[5])}))' "$setup" "$test" "$((b1 - b0))" "${out:-null}" "$acc" >>"$RAW"
	echo "  $setup $test: $(tail -1 "$RAW" | "$PYTHON" -c 'import json,sys; r=json.load(sys.stdin)["result"] or {}; print(r.get("gbit_s") or r.get("tps"))')" >&2
}

echo "sidecar: $(nproc) CPUs, kernel $(uname -r), $BENCH_TIME s per run, median of $BENCH_REPS" >&2
for rep in $(seq "$BENCH_REPS"); do
	for test in rr stream; do
		for setup in loopback chain accel; do run "$setup" "$test"; done
	done
done

"$PYTHON" - "$RAW" "$OUT/sidecar.csv" "$(getconf CLK_TCK)" <<'EOF'
import json, statistics, sys
raw, csv, hz = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = [json.loads(l) for l in open(raw)]
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
rows = {}
for setup in ("loopback", "chain", "accel"):
    rr = [r for r in runs if r["setup"] == setup and r["test"] == "rr" and r["result"]]
    st = [r for r in runs if r["setup"] == setup and r["test"] == "stream" and r["result"]]
    rows[setup] = {
        "tps": med([r["result"]["tps"] for r in rr]),
        "p50": med([r["result"]["lat_us"]["p50"] for r in rr]),
        "p99": med([r["result"]["lat_us"]["p99"] for r in rr]),
        "gbit": med([r["result"]["gbit_s"] for r in st]),
        "cpu_gb": med([(r["busy_ticks"] / hz) / (r["result"]["bytes"] / 1e9) for r in st
                       if r["result"]["bytes"]]),
    }
acc = [r["accel"]["accels"][0]["stats"] for r in runs if r["setup"] == "accel" and r["accel"]]
base = rows["chain"]
print("sidecar chain: client -> rwproxy -> server, 1 connection; ratios to the chain without acceleration")
print("  %-10s %9s %6s %9s %6s %9s %6s %8s %6s %9s %6s" % ("setup", "trans/s", "x", "p50 us", "x",
      "p99 us", "x", "Gbit/s", "x", "CPU-s/GB", "x"))
with open(csv, "w") as f:
    f.write("setup,tps,p50_us,p99_us,gbit_s,cpu_s_per_gb\n")
    for s, r in rows.items():
        def x(k):
            return r[k] / base[k] if r[k] and base[k] else float("nan")
        print("  %-10s %9.0f %6.2f %9.1f %6.2f %9.1f %6.2f %8.2f %6.2f %9.3f %6.2f" % (
            s, r["tps"] or 0, x("tps"), r["p50"] or 0, x("p50"), r["p99"] or 0, x("p99"),
            r["gbit"] or 0, x("gbit"), r["cpu_gb"] or 0, x("cpu_gb")))
        f.write("%s,%s,%s,%s,%s,%s\n" % (s, r["tps"], r["p50"], r["p99"], r["gbit"], r["cpu_gb"]))
if acc:
    b = sum(a["bytes"] for a in acc); m = sum(a["msgs"] for a in acc)
    t = sum(a["tcp_first"] + a["no_peer"] for a in acc)
    print("  accel: sk_msg moved %d bytes in %d sends; %d sends went through TCP (first-send race, no peer)" % (b, m, t))
print("csv: " + csv)
EOF
