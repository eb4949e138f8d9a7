#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/bench/run.sh: kproxy side by side with no proxy and with the proxies
# people use instead, in one run on this machine (see tests/bench/README.md).
#
# Setups: direct (client to server), kproxy (kproxyd, in-kernel sockmap),
# rwproxy (user-space read/write), spliceproxy (user-space splice), haproxy
# (mode tcp), nginx (stream module), socat (TCP-LISTEN,fork).
# Tests, all with kpperf: stream with 1
# and 100 connections (Gbit/s, and CPU seconds per GB from /proc/stat), and
# request/response with 1 B and 1 KiB messages over 1 and 100 connections
# (transactions/s, p50, p99). Each figure is the median of BENCH_REPS runs;
# runs are interleaved (rep, test, setup) so that a change in background load
# spreads over all setups instead of landing on one.
#
# Environment:
#   BENCH_TIME    seconds per run (default 5)
#   BENCH_REPS    runs per figure; the median is reported (default 3)
#   BENCH_SETUPS  setups to run (default: direct kproxy rwproxy spliceproxy haproxy nginx socat)
#   BENCH_TESTS   tests to run (default: stream-1c stream-100c rr-1B-1c rr-1B-100c
#                 rr-1K-1c rr-1K-100c)
#   BENCH_OUT     output directory (default tests/bench/out): results.csv, raw.jsonl,
#                 bench.png, and the logs of every process
#   KP_BUILD      build directory (default build/)
#
# Runs as root, in a network namespace of its own (unshare -n, lo up), on
# 127.0.0.1. Everything it starts is stopped on exit, however it exits.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd "$HERE/../.." && pwd -P)
BUILD=${KP_BUILD:-$ROOT/build}
BENCH_TIME=${BENCH_TIME:-5}
BENCH_REPS=${BENCH_REPS:-3}
BENCH_SETUPS=${BENCH_SETUPS:-direct kproxy rwproxy spliceproxy haproxy nginx socat}
BENCH_TESTS=${BENCH_TESTS:-stream-1c stream-100c rr-1B-1c rr-1B-100c rr-1K-1c rr-1K-100c}
BENCH_OUT=${BENCH_OUT:-$HERE/out}
# Debian's interpreter, not whatever a version manager puts first in PATH.
if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi

if [ "$EUID" != 0 ]; then
	echo "bench: needs root (a network namespace, and BPF for kproxy); try: sudo $0" >&2
	exit 1
fi
if [ -z "${_KP_BENCH_NETNS:-}" ]; then
	export _KP_BENCH_NETNS=1
	exec unshare -n -- "$0" "$@"
fi
ip link set lo up || { echo "bench: cannot bring lo up in the new network namespace" >&2; exit 1; }
# 100 connections through a proxy are 200 sockets, haproxy wants room for its maxconn.
ulimit -n "$(ulimit -Hn)" 2>/dev/null

case $BENCH_TIME in ''|*[!0-9]*|0) echo "bench: BENCH_TIME must be whole seconds" >&2; exit 64 ;; esac
case $BENCH_REPS in ''|*[!0-9]*|0) echo "bench: BENCH_REPS must be a positive number" >&2; exit 64 ;; esac

mkdir -p "$BENCH_OUT" || exit 1
BENCH_OUT=$(cd "$BENCH_OUT" && pwd -P)
LOGS=$BENCH_OUT/logs
rm -rf "$LOGS" "$BENCH_OUT/raw.jsonl" "$BENCH_OUT/meta.json"
mkdir -p "$LOGS"
# A short path: the kproxyd control socket name is limited to 108 bytes.
TMP=$(mktemp -d /tmp/kp-bench.XXXXXX) || exit 1
PIN_DIR=/sys/fs/bpf/kproxy-bench-$$
KPPERF=$BUILD/kpperf
RAW=$BENCH_OUT/raw.jsonl

# ------------------------------------------------------------------ processes

PIDS=()		# each the leader of a process group of its own (setsid)
KPROXYD_PID=

# Start a background process in a process group of its own, so that stopping
# it also stops whatever it forked (socat's children). Output goes to a log.
start_bg() {
	local name=$1
	shift
	setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
	BG_PID=$!
	PIDS+=("$BG_PID")
}

alive() { kill -0 "$1" 2>/dev/null; }

stop_group() {
	local pid=$1 i
	kill -TERM -- "-$pid" 2>/dev/null || return 0
	for ((i = 0; i < 30; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	kill -KILL -- "-$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

cleanup() {
	local pid
	trap - EXIT INT TERM
	# kproxyd first, gently: it closes its connections and detaches its programs.
	[ -n "$KPROXYD_PID" ] && stop_group "$KPROXYD_PID"
	for pid in "${PIDS[@]}"; do
		stop_group "$pid"
	done
	[ -d "$PIN_DIR" ] && rm -rf "$PIN_DIR"
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

# Until something listens on 127.0.0.1:PORT, checked in /proc/net/tcp (a probe
# connection would go through the proxy), or PID dies, or SECS pass.
wait_listen() {
	local port=$1 pid=$2 secs=${3:-5} hex i line
	printf -v hex '0100007F:%04X' "$port"
	for ((i = 0; i < secs * 20; i++)); do
		while read -r line; do
			set -- $line
			[ "$2" = "$hex" ] && [ "$4" = 0A ] && return 0
		done </proc/net/tcp
		alive "$pid" || return 1
		sleep 0.05
	done
	return 1
}

# Why a process failed: the last line it logged.
why() { tail -n 1 "$LOGS/$1.log" 2>/dev/null | tr -d '\r' | cut -c1-120; }

# ------------------------------------------------------------------ setups

ECHO_PORT=19000		# kpperf server --mode echo: the rr tests
SINK_PORT=19001		# kpperf server --mode sink: the stream tests
declare -A NA=()	# setup -> why it is not available
declare -A RR_PORT=() STREAM_PORT=()

setup_direct() {
	RR_PORT[direct]=$ECHO_PORT
	STREAM_PORT[direct]=$SINK_PORT
}

setup_kproxy() {
	local rr=$1 st=$2 i
	[ -x "$BUILD/kproxyd" ] || { NA[kproxy]="$BUILD/kproxyd not built"; return 1; }
	cat >"$TMP/kproxy.conf" <<-EOF
	proxy bench_rr listen tcp://127.0.0.1:$rr backend tcp://127.0.0.1:$ECHO_PORT balance rr
	proxy bench_stream listen tcp://127.0.0.1:$st backend tcp://127.0.0.1:$SINK_PORT balance rr
	EOF
	start_bg kproxyd "$BUILD/kproxyd" -f -s "$TMP/ctl.sock" -P "$PIN_DIR" -c "$TMP/kproxy.conf"
	KPROXYD_PID=$BG_PID
	if ! wait_listen "$rr" "$KPROXYD_PID" 10 || ! wait_listen "$st" "$KPROXYD_PID" 2; then
		NA[kproxy]="kproxyd did not start: $(why kproxyd)"
		return 1
	fi
	# The control socket comes up after the listeners; stats are optional anyway.
	for ((i = 0; i < 40; i++)); do
		[ -S "$TMP/ctl.sock" ] && break
		sleep 0.05
	done
}

setup_rwproxy() {
	local rr=$1 st=$2
	[ -x "$BUILD/bench/rwproxy" ] || { NA[rwproxy]="$BUILD/bench/rwproxy not built"; return 1; }
	start_bg rwproxy-rr "$BUILD/bench/rwproxy" "127.0.0.1:$rr" "127.0.0.1:$ECHO_PORT"
	wait_listen "$rr" "$BG_PID" || { NA[rwproxy]="rwproxy did not start: $(why rwproxy-rr)"; return 1; }
	start_bg rwproxy-stream "$BUILD/bench/rwproxy" "127.0.0.1:$st" "127.0.0.1:$SINK_PORT"
	wait_listen "$st" "$BG_PID" || { NA[rwproxy]="rwproxy did not start: $(why rwproxy-stream)"; return 1; }
}

setup_spliceproxy() {
	local rr=$1 st=$2
	[ -x "$BUILD/bench/spliceproxy" ] ||
		{ NA[spliceproxy]="$BUILD/bench/spliceproxy not built"; return 1; }
	start_bg spliceproxy-rr "$BUILD/bench/spliceproxy" "127.0.0.1:$rr" "127.0.0.1:$ECHO_PORT"
	wait_listen "$rr" "$BG_PID" ||
		{ NA[spliceproxy]="spliceproxy did not start: $(why spliceproxy-rr)"; return 1; }
	start_bg spliceproxy-stream "$BUILD/bench/spliceproxy" "127.0.0.1:$st" "127.0.0.1:$SINK_PORT"
	wait_listen "$st" "$BG_PID" ||
		{ NA[spliceproxy]="spliceproxy did not start: $(why spliceproxy-stream)"; return 1; }
}

# HAProxy as it is usually deployed for TCP: defaults, mode tcp, its own
# thread count (one per CPU), no splice (haproxy's default).
setup_haproxy() {
	local rr=$1 st=$2
	command -v haproxy >/dev/null || { NA[haproxy]="haproxy not installed"; return 1; }
	cat >"$TMP/haproxy.cfg" <<-EOF
	global
	    maxconn 4096
	defaults
	    mode tcp
	    timeout connect 5s
	    timeout client 1m
	    timeout server 1m
	listen bench_rr
	    bind 127.0.0.1:$rr
	    server echo 127.0.0.1:$ECHO_PORT
	listen bench_stream
	    bind 127.0.0.1:$st
	    server sink 127.0.0.1:$SINK_PORT
	EOF
	cp "$TMP/haproxy.cfg" "$LOGS/haproxy.cfg"
	start_bg haproxy haproxy -f "$TMP/haproxy.cfg" -db
	if ! wait_listen "$rr" "$BG_PID" || ! wait_listen "$st" "$BG_PID" 2; then
		NA[haproxy]="haproxy did not start: $(why haproxy)"
		return 1
	fi
}

# nginx stream proxy as it is usually deployed: the stream module, one worker
# per CPU (auto), TCP_NODELAY (its default for stream), no splice.
setup_nginx() {
	local rr=$1 st=$2 mod=/usr/lib/nginx/modules/ngx_stream_module.so
	command -v nginx >/dev/null || { NA[nginx]="nginx not installed"; return 1; }
	[ -e "$mod" ] || { NA[nginx]="nginx's stream module is not installed (libnginx-mod-stream)"; return 1; }
	mkdir -p "$TMP/nginx"
	cat >"$TMP/nginx.conf" <<-EOF
	load_module $mod;
	daemon off;
	worker_processes auto;
	pid $TMP/nginx/nginx.pid;
	error_log $TMP/nginx/error.log;
	events { worker_connections 4096; }
	stream {
	    server { listen 127.0.0.1:$rr; proxy_pass 127.0.0.1:$ECHO_PORT; }
	    server { listen 127.0.0.1:$st; proxy_pass 127.0.0.1:$SINK_PORT; }
	}
	EOF
	cp "$TMP/nginx.conf" "$LOGS/nginx.conf"
	start_bg nginx nginx -c "$TMP/nginx.conf" -p "$TMP/nginx"
	if ! wait_listen "$rr" "$BG_PID" || ! wait_listen "$st" "$BG_PID" 2; then
		NA[nginx]="nginx did not start: $(why nginx)"
		return 1
	fi
}

# socat as it is usually used for this: one forked process per connection,
# its default 8 KiB transfer size; TCP_NODELAY like every other proxy here.
setup_socat() {
	local rr=$1 st=$2 port backend
	command -v socat >/dev/null || { NA[socat]="socat not installed"; return 1; }
	for port in "$rr:$ECHO_PORT:rr" "$st:$SINK_PORT:stream"; do
		IFS=: read -r port backend name <<<"$port"
		start_bg "socat-$name" socat \
			"TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork,backlog=1024,nodelay" \
			"TCP:127.0.0.1:$backend,nodelay"
		wait_listen "$port" "$BG_PID" ||
			{ NA[socat]="socat did not start: $(why "socat-$name")"; return 1; }
	done
}

# ------------------------------------------------------------------ measuring

# Busy and total jiffies of all CPUs from the first line of /proc/stat.
# Busy = user + nice + system + irq + softirq: system-wide, because kproxy's
# sockmap egress runs in kernel workers that belong to no process.
cpu_ticks() {
	local user nice system idle iowait irq softirq steal rest
	read -r _ user nice system idle iowait irq softirq steal rest </proc/stat
	echo "$((user + nice + system + irq + softirq)) $((user + nice + system + idle + iowait + irq + softirq + steal))"
}

kp_stats() {
	[ -S "$TMP/ctl.sock" ] || return 1
	timeout 5 "$BUILD/kproxyctl" -s "$TMP/ctl.sock" -j stats 2>/dev/null | tr -d '\n'
}

# One run: append a JSON line to raw.jsonl with the kpperf result and the
# CPU ticks around it.
run_one() {
	local rep=$1 setup=$2 test=$3 kind conns size port out rc b0 t0 b1 t1 other err s0="" s1=""
	IFS=- read -r kind size conns <<<"$test"
	if [ "$kind" = stream ]; then
		conns=${size%c}
		port=${STREAM_PORT[$setup]}
		set -- stream "tcp://127.0.0.1:$port" --conns "$conns" --time "$BENCH_TIME" --dir up -j
	else
		conns=${conns%c}
		size=${size%B}
		port=${RR_PORT[$setup]}
		set -- rr "tcp://127.0.0.1:$port" --conns "$conns" --size "$size" --time "$BENCH_TIME" -j
	fi
	[ "$setup" = kproxy ] && s0=$(kp_stats)
	"$PYTHON" "$HERE/othercpu.py" snap "$TMP/others.json"
	read -r b0 t0 < <(cpu_ticks)
	out=$(timeout $((BENCH_TIME + 30)) "$KPPERF" "$@" 2>"$TMP/err")
	rc=$?
	read -r b1 t1 < <(cpu_ticks)
	other=$("$PYTHON" "$HERE/othercpu.py" diff "$TMP/others.json")
	[ "$setup" = kproxy ] && s1=$(kp_stats)
	out=$(tr -d '\n' <<<"$out")
	[ -n "$out" ] || out=null
	err=$(tail -n 2 "$TMP/err" | tr -d '\n' | cut -c1-200)
	[ $rc = 124 ] && err="timed out after $((BENCH_TIME + 30)) s; $err"
	"$PYTHON" - "$rep" "$setup" "$test" "$rc" "$((b1 - b0))" "$((t1 - t0))" "${other:-0}" \
		"$out" "$err" "${s0:-null}" "${s1:-null}" >>"$RAW" <<-'EOF'
	import json, sys
	rep, setup, test, rc, busy, total, other, out, err, s0, s1 = sys.argv[1:]
	def load(s):
	    try:
	        return json.loads(s)
	    except ValueError:
	        return None
	print(json.dumps({"rep": int(rep), "setup": setup, "test": test, "rc": int(rc),
	                  "busy_ticks": int(busy), "total_ticks": int(total),
	                  "other_ticks": int(other),
	                  "result": load(out), "stderr": err,
	                  "kstats_before": load(s0), "kstats_after": load(s1)}))
	EOF
	printf '  %-11s %-11s rep %d: ' "$setup" "$test" "$rep"
	"$PYTHON" -c '
import json, sys
r = json.loads(sys.stdin.readlines()[-1])
res = r["result"] or {}
if r["rc"] or "error" in res or not res:
    print("FAILED (exit %d): %s" % (r["rc"], res.get("error") or r["stderr"]))
elif res["mode"] == "stream":
    print("%.2f Gbit/s, %d errors" % (res["gbit_s"], res["errors"]))
else:
    print("%.0f trans/s, p50 %.1f us, p99 %.1f us, %d errors" %
          (res["tps"], res["lat_us"]["p50"], res["lat_us"]["p99"], res["errors"]))
' <"$RAW"
}

# ------------------------------------------------------------------ main

if [ ! -x "$KPPERF" ]; then
	echo "bench: $KPPERF is not built: nothing can be measured (run make)" >&2
	exit 1
fi

echo "bench: $(nproc) CPUs, kernel $(uname -r), $BENCH_TIME s per run, median of $BENCH_REPS"
echo "bench: output in $BENCH_OUT"

start_bg server-echo "$KPPERF" server "tcp://127.0.0.1:$ECHO_PORT" --mode echo
wait_listen $ECHO_PORT "$BG_PID" || { echo "bench: kpperf echo server did not start: $(why server-echo)" >&2; exit 1; }
start_bg server-sink "$KPPERF" server "tcp://127.0.0.1:$SINK_PORT" --mode sink
wait_listen $SINK_PORT "$BG_PID" || { echo "bench: kpperf sink server did not start: $(why server-sink)" >&2; exit 1; }

SETUPS=()
i=0
for s in $BENCH_SETUPS; do
	i=$((i + 1))
	if ! declare -F "setup_$s" >/dev/null; then
		echo "bench: unknown setup '$s'" >&2
		exit 64
	fi
	SETUPS+=("$s")
	RR_PORT[$s]=$((19000 + 100 * i))
	STREAM_PORT[$s]=$((19001 + 100 * i))
	if "setup_$s" "${RR_PORT[$s]}" "${STREAM_PORT[$s]}"; then
		echo "bench: $s ready"
	else
		echo "bench: $s: n/a (${NA[$s]})"
	fi
done
for t in $BENCH_TESTS; do
	[[ $t =~ ^(stream-[0-9]+c|rr-[0-9]+[BK]-[0-9]+c)$ ]] || { echo "bench: bad test name '$t'" >&2; exit 64; }
done

# What the machine does without us. The CPU figures subtract what other
# processes used during each run (othercpu.py), but not what the kernel did
# for them outside any process (interrupts, softirqs, kernel threads).
read -r b0 t0 < <(cpu_ticks)
sleep 2
read -r b1 t1 < <(cpu_ticks)
BG_LOAD=$("$PYTHON" -c "print(round($(nproc) * ($b1 - $b0) / max(1, $t1 - $t0), 3))")
echo "bench: background load before the runs: $BG_LOAD CPUs busy (other processes on the machine)"

NA_JSON=$(for s in "${!NA[@]}"; do printf '%s\t%s\n' "$s" "${NA[$s]}"; done |
	"$PYTHON" -c 'import json, sys; print(json.dumps(dict(l.rstrip("\n").split("\t", 1) for l in sys.stdin if l.strip())))')
"$PYTHON" -c '
import json, sys
json.dump({"setups": sys.argv[1].split(), "tests": sys.argv[2].split(), "time": int(sys.argv[3]),
           "reps": int(sys.argv[4]), "ncpu": int(sys.argv[5]), "hz": int(sys.argv[6]),
           "kernel": sys.argv[7], "background_cpus": float(sys.argv[8]), "na": json.loads(sys.argv[9])},
          open(sys.argv[10], "w"), indent=1)
' "${SETUPS[*]}" "$BENCH_TESTS" "$BENCH_TIME" "$BENCH_REPS" "$(nproc)" "$(getconf CLK_TCK)" \
	"$(uname -r)" "$BG_LOAD" "$NA_JSON" "$BENCH_OUT/meta.json"

: >"$RAW"
for ((rep = 1; rep <= BENCH_REPS; rep++)); do
	for t in $BENCH_TESTS; do
		for s in "${SETUPS[@]}"; do
			[ -n "${NA[$s]:-}" ] && continue
			run_one "$rep" "$s" "$t"
			sleep 0.3	# let the previous run's connections finish closing
		done
	done
done

# A proxy that died during the runs made its later runs fail; say which.
for s in "${SETUPS[@]}"; do
	[ -n "${NA[$s]:-}" ] && continue
	case $s in
	kproxy) alive "$KPROXYD_PID" || echo "bench: warning: kproxyd exited during the runs: $(why kproxyd)" ;;
	esac
done

"$PYTHON" "$HERE/report.py" "$BENCH_OUT"
