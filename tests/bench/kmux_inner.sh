#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/bench/kmux_inner.sh: the measuring part of tests/bench/kmux.sh, run
# once on this host (in a network and mount namespace of its own) and once
# inside each VM (a kernel with AF_KCM), as root. Not meant to be run by
# hand: kmux.sh passes the environment (BENCH_TIME, BENCH_REPS, KMUX_BIG_TIME,
# KMUX_SETUPS, KMUX_TESTS, KMUX_OUT, KMUX_LABEL, KMUX_MOUNT_BPFFS, KMUX_TCP_MEM,
# KP_BUILD).
#
# Processes (127.0.0.1):
#   19000         kpperf server --mode echo: the backend of tcp, kmux, kmuxid, umux
#   19020..19023  kproxyd: 4 muxes m0..m3 of 50 backend connections each to
#                 19000, in order (kmux)
#   19024..19027  the same kproxyd: 4 muxes i0..i3, id 4:4, 4 backend
#                 connections each shared by all clients, balance least
#                 (kmuxid)
#   19030         build/bench/kcmserver (AF_KCM echo, one KCM mux per connection)
#   19040..19043  build/bench/umux --conns 50: 4 muxes in one process
# The client is kpperf rr --frame len4 for every setup: one process with one
# connection for the 1-client tests; four processes of 50 connections each,
# started together, for the 200-client tests (process k to port base+k for
# kmux, kmuxid and umux, all to the one port for tcp and kcm), so every setup
# sees the same client, kmux never has more clients than backend connections,
# and kmuxid's 50 clients a mux never have more requests in flight than its
# 4 x 64 tag entries (kpperf rr keeps one request in flight a connection).
# Writes raw-LABEL.jsonl (one line per run: every kpperf JSON, kmux's counters
# around the run), meta-LABEL.json and logs-LABEL/ into KMUX_OUT.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd "$HERE/../.." && pwd -P)
BUILD=${KP_BUILD:-$ROOT/build}
BENCH_TIME=${BENCH_TIME:-3}
BENCH_REPS=${BENCH_REPS:-3}
BIG_TIME=${KMUX_BIG_TIME:-24}
SETUPS=${KMUX_SETUPS:-tcp kmux kmuxid kcm umux}
TESTS=${KMUX_TESTS:-rr-1B-1c rr-1B-200c rr-1MB-1c rr-1MB-200c}
OUT=${KMUX_OUT:-$HERE/out/kmux}
LABEL=${KMUX_LABEL:-$(uname -r)}
MUX_CONNS=50		# per mux; 4 muxes carry 200 clients without overflow
ID_CONNS=4		# per kmuxid mux: 50 clients share 4 connections (64 tags each)
NPROC=4			# client processes for 200 clients
PARSER='len:size=4,be,max=1048576'

say() { echo "kmux[$LABEL]: $*"; }
die() { echo "kmux[$LABEL]: $*" >&2; exit 1; }

[ "$EUID" = 0 ] || die "needs root (run through tests/bench/kmux.sh)"
for b in kpperf kproxyd kproxyctl bench/kcmserver bench/umux; do
	[ -x "$BUILD/$b" ] || die "$BUILD/$b is not built; run make all"
done
ip link set lo up 2>/dev/null
if [ "${KMUX_MOUNT_BPFFS:-0}" = 1 ]; then
	mount -t bpf bpf /sys/fs/bpf || die "cannot mount a private bpffs"
fi

mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd -P)
RAW=$OUT/raw-$LABEL.jsonl
: >"$RAW"
# Logs go to tmpfs during the runs (in the VM the output directory is 9p)
# and are copied at the end.
TMP=$(mktemp -d /tmp/kp-kmuxbench.XXXXXX) || exit 1
LOGS=$TMP/logs
mkdir -p "$LOGS"
PIN_DIR=/sys/fs/bpf/kproxy-kmuxbench-$$
HZ=$(getconf CLK_TCK)
ulimit -n "$(ulimit -Hn)" 2>/dev/null

# ------------------------------------------------------------------ processes

PIDS=()
KPROXYD_PID=
start_bg() {	# NAME CMD...: in a process group of its own, output to a log
	local name=$1
	shift
	setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
	BG_PID=$!
	PIDS+=("$BG_PID")
}
alive() { kill -0 "$1" 2>/dev/null; }
# Under TCG every fork and exec costs tens of milliseconds and more when the
# VM is busy, so the loop between runs uses builtins: nap is a read with a
# timeout on a pipe nobody writes to.
exec {NAPFD}<> <(:)
nap() { read -r -t "$1" -u "$NAPFD" _ 2>/dev/null; return 0; }
stop_group() {
	local pid=$1 i
	kill -TERM -- "-$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	kill -KILL -- "-$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}
cleanup() {
	local pid
	trap - EXIT INT TERM
	[ -n "$KPROXYD_PID" ] && stop_group "$KPROXYD_PID"
	for pid in "${PIDS[@]}"; do
		stop_group "$pid"
	done
	rm -rf "$OUT/logs-$LABEL"
	cp -r "$LOGS" "$OUT/logs-$LABEL" 2>/dev/null
	[ -d "$PIN_DIR" ] && rm -rf "$PIN_DIR"
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "kmux: interrupted" >&2; exit 130' INT TERM

# Until something listens on 127.0.0.1:PORT (/proc/net/tcp), or PID dies,
# or SECS pass.
wait_listen() {
	local port=$1 pid=$2 secs=${3:-10} hex i line
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
why() { grep -v '^$' "$LOGS/$1.log" 2>/dev/null | tail -n 1 | tr -d '\r"\\' | cut -c1-150; }
json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "${s//[$'\t\r\n']/ }"; }

# ------------------------------------------------------------------ setups

ECHO_PORT=19000
declare -A NA=() PORT=() SPREAD=()
start_bg echo "$BUILD/kpperf" server "tcp://127.0.0.1:$ECHO_PORT" --mode echo
ECHO_PID=$BG_PID
wait_listen $ECHO_PORT "$ECHO_PID" 30 || die "the echo server did not start: $(why echo)"

KPCTL=("$BUILD/kproxyctl" -s "$TMP/ctl.sock")
mux_json() { J=$(timeout 20 "${KPCTL[@]}" -j mux show 2>/dev/null); J=${J//$'\n'/}; }
# mux_add NAME: m0..m3 are kmux's (in order, 50 connections each, on
# 19020..19023), i0..i3 kmuxid's (ID-tagged, 4 shared connections each, on
# 19024..19027); every other parameter is the same.
mux_add() {
	local k=${1:1} opts
	case $1 in
	m?) opts=(conns $MUX_CONNS) ;;
	i?) opts=(id 4:4 conns $ID_CONNS balance least); k=$((k + 4)) ;;
	esac
	timeout 20 "${KPCTL[@]}" mux add "$1" listen "tcp://127.0.0.1:$((19020 + k))" \
		backend "tcp://127.0.0.1:$ECHO_PORT" parser "$PARSER" "${opts[@]}" \
		>>"$LOGS/kproxyctl.log" 2>&1
}
# Every mux of kproxyd has all its backend connections up (up to SECS).
mux_ready() {
	local secs=${1:-20} i part down n
	for ((i = 0; i < secs * 10; i++)); do
		mux_json
		down=0 n=0
		while IFS= read -r part; do
			[[ $part =~ \"conns\":([0-9]+),\"conns_up\":([0-9]+) ]] || continue
			n=$((n + 1))
			[ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ] || down=1
		done <<<"${J//'{"name":'/$'\n'}"
		[ $n -gt 0 ] && [ $down = 0 ] && return 0
		nap 0.1
	done
	return 1
}
MUX_RECREATED=0
# After a run: a client that closed in the middle of a request (kpperf stops
# at its deadline with requests in flight) keeps its slot until kproxyd's
# 30 s wait for its responses ends. Give the muxes a second to settle, then
# replace any that still has clients, so every run starts from empty muxes.
mux_settle() {
	local i m part
	for ((i = 0; i < 10; i++)); do
		mux_json
		[[ $J == *'"clients":'[1-9]* ]] || break
		nap 0.1
	done
	# one line per mux; recreate a mux with clients left or slots still owned
	# (an ID-tagged mux owns no slot: only its clients count)
	while IFS= read -r part; do
		[[ $part =~ ^\"([mi][0-3])\".*\"conns_owned\":([0-9]+).*\"clients\":([0-9]+) ]] || continue
		m=${BASH_REMATCH[1]}
		if [ "${BASH_REMATCH[2]}" != 0 ] || [ "${BASH_REMATCH[3]}" != 0 ]; then
			timeout 20 "${KPCTL[@]}" mux del "$m" >>"$LOGS/kproxyctl.log" 2>&1
			mux_add "$m"
			MUX_RECREATED=$((MUX_RECREATED + 1))
		fi
	done <<<"${J//'{"name":'/$'\n'}"
	mux_ready 20 || say "kmux: backend connections not all up after a run"
}

# One kproxyd for kmux and kmuxid (started by whichever comes first): the
# other setup's muxes sit idle during a run.
start_kproxyd() {
	local i
	[ -n "$KPROXYD_PID" ] && { alive "$KPROXYD_PID"; return; }
	: >"$TMP/kproxy.conf"
	start_bg kproxyd "$BUILD/kproxyd" -f -s "$TMP/ctl.sock" -P "$PIN_DIR" -c "$TMP/kproxy.conf"
	KPROXYD_PID=$BG_PID
	for ((i = 0; i < 100; i++)); do
		[ -S "$TMP/ctl.sock" ] && break
		alive "$KPROXYD_PID" || break
		sleep 0.1
	done
	[ -S "$TMP/ctl.sock" ]
}
# setup_muxes SETUP PREFIX BASE_PORT: 4 muxes PREFIX0..3 on BASE_PORT..+3
setup_muxes() {
	local s=$1 p=$2 base=$3 m
	start_kproxyd || { NA[$s]="kproxyd did not start: $(why kproxyd)"; return 1; }
	for m in 0 1 2 3; do
		mux_add "$p$m" || { NA[$s]="mux add failed: $(why kproxyctl)"; return 1; }
		wait_listen $((base + m)) "$KPROXYD_PID" 30 ||
			{ NA[$s]="mux $p$m does not listen: $(why kproxyd)"; return 1; }
	done
	mux_ready 30 || { NA[$s]="backend connections did not come up: $(why kproxyd)"; return 1; }
	PORT[$s]=$base
	SPREAD[$s]=1
}
setup_kmux() { setup_muxes kmux m 19020; }
setup_kmuxid() { setup_muxes kmuxid i 19024; }
setup_kcm() {
	start_bg kcmserver "$BUILD/bench/kcmserver" 127.0.0.1:19030
	wait_listen 19030 "$BG_PID" 30 || { NA[kcm]="kcmserver: $(why kcmserver)"; return 1; }
	PORT[kcm]=19030
	SPREAD[kcm]=0
}
setup_umux() {
	start_bg umux "$BUILD/bench/umux" --conns $MUX_CONNS 127.0.0.1:$ECHO_PORT \
		127.0.0.1:19040 127.0.0.1:19041 127.0.0.1:19042 127.0.0.1:19043
	wait_listen 19043 "$BG_PID" 30 || { NA[umux]="umux: $(why umux)"; return 1; }
	PORT[umux]=19040
	SPREAD[umux]=1
}
setup_tcp() {
	PORT[tcp]=$ECHO_PORT
	SPREAD[tcp]=0
}

RUN_SETUPS=()
for s in $SETUPS; do
	case $s in tcp|kmux|kmuxid|kcm|umux) ;; *) die "unknown setup '$s' (tcp kmux kmuxid kcm umux)" ;; esac
	if "setup_$s"; then
		RUN_SETUPS+=("$s")
		say "$s: ready"
	else
		say "$s: n/a (${NA[$s]})"
	fi
done

# ------------------------------------------------------------------ runs

busy_ticks() {
	local cpu user nice system idle iowait irq softirq rest
	read -r cpu user nice system idle iowait irq softirq rest </proc/stat
	BUSY=$((user + nice + system + irq + softirq))
}

# Before each run: until the machine is quiet (at most half a CPU busier than
# before anything ran, over 0.5 s: what one setup leaves behind, such as a
# server still draining or the kernel tearing down connections, must not land
# on the next), at most QUIET_MAX seconds. QUIET: how long that took.
QUIET_MAX=${KMUX_QUIET_MAX:-30}
busy_ticks; a=$BUSY
nap 1
busy_ticks
BACKGROUND=$(((BUSY - a) / 2))	# ticks per 0.5 s of whatever else runs here
quiesce() {
	local a b i t0=$EPOCHREALTIME
	busy_ticks; a=$BUSY
	for ((i = 0; i < QUIET_MAX * 2; i++)); do
		nap 0.5
		busy_ticks; b=$BUSY
		[ $((b - a)) -le $((BACKGROUND + HZ / 4)) ] && break
		a=$b
	done
	i=$(((${EPOCHREALTIME/./} - ${t0/./}) / 100000))
	QUIET=$((i / 10)).$((i % 10))
}

# TCP memory in use (pages, /proc/net/sockstat): under tcp_mem's pressure
# mark TCP shrinks windows, and a whole-message parser (kmux, KCM) that must
# hold a 1 MB message in one socket's receive queue stalls first.
tcp_mem() {
	local a rest
	TCPMEM=null
	while read -r a rest; do
		[ "$a" = TCP: ] && TCPMEM=${rest##* }
	done </proc/net/sockstat
}
# tcp_mem is not per namespace, and a network namespace other than the
# first does not show it (6.18): kmux.sh reads it outside and passes it.
TCP_MEM_LIMITS=${KMUX_TCP_MEM:-?}
[ -r /proc/sys/net/ipv4/tcp_mem ] && read -r TCP_MEM_LIMITS </proc/sys/net/ipv4/tcp_mem
TCP_MEM_LIMITS=${TCP_MEM_LIMITS//$'\t'/ }

run_one() {	# SETUP TEST REP
	local s=$1 test=$2 rep=$3 size clients secs nproc k port b0 b1 t0 t1 kb=null ka=null
	local cpids=() results=() err="" f line m0 m1
	case $test in
	rr-1B-*) size=5 ;;		# the smallest len4 message: 4 bytes of length, 1 of payload
	rr-1MB-*) size=1000000 ;;	# the KCM cover letter's 1000000-byte RR
	esac
	# the smallest message an id 4:4 mux takes: the length, then the ID
	[ "$s-$size" = kmuxid-5 ] && size=8
	clients=${test##*-}
	clients=${clients%c}
	secs=$BENCH_TIME
	[ "$test" = rr-1MB-200c ] && secs=$BIG_TIME
	nproc=1
	[ "$clients" -gt 1 ] && nproc=$NPROC
	quiesce
	tcp_mem; m0=$TCPMEM
	[[ $s == kmux* ]] && mux_json && kb=$J
	busy_ticks; b0=$BUSY; t0=$EPOCHREALTIME
	for ((k = 0; k < nproc; k++)); do
		port=${PORT[$s]}
		[ "${SPREAD[$s]}" = 1 ] && port=$((port + k))
		timeout -k 5 $((secs + 120)) "$BUILD/kpperf" rr "tcp://127.0.0.1:$port" --frame len4 \
			--size $size --conns $((clients / nproc)) --time "$secs" -j \
			>"$TMP/out.$k" 2>"$TMP/err.$k" &
		cpids+=($!)
	done
	wait "${cpids[@]}"
	t1=$EPOCHREALTIME; busy_ticks; b1=$BUSY
	tcp_mem; m1=$TCPMEM
	# a run failed when kpperf said so (an "error", or errors > 0) or said nothing
	for ((k = 0; k < nproc; k++)); do
		line=
		while IFS= read -r f; do
			[[ $f == '{'* ]] && line=$f
		done <"$TMP/out.$k"
		f=
		while IFS= read -r f && [ -z "$f" ]; do :; done <"$TMP/err.$k"
		if [ -z "$line" ]; then
			results+=(null)
			err=${err:-"process $k: no result${f:+: $f}"}
		else
			results+=("$line")
			if [[ $line == *'"error"'* || $line != *'"errors":0'[,}]* ]]; then
				err=${err:-"process $k: ${f:-$line}"}
			fi
		fi
		[ -s "$TMP/err.$k" ] && echo "$s $test rep $rep process $k: $(<"$TMP/err.$k")" >>"$LOGS/kpperf.log"
	done
	if [[ $s == kmux* ]]; then
		mux_json
		ka=$J
		[ -n "$kb" ] || kb=null
		[ -n "$ka" ] || ka=null
	fi
	local IFS=,
	printf '{"kernel":"%s","rep":%d,"setup":"%s","test":"%s","size":%d,"clients":%d,"secs":%d,"t0":%s,"t1":%s,"busy_ticks":%d,"hz":%d,"quiet_s":%s,"tcp_mem_pages":[%s,%s],"results":[%s],"kmux_before":%s,"kmux_after":%s,"err":%s}\n' \
		"$LABEL" "$rep" "$s" "$test" "$size" "$clients" "$secs" "$t0" "$t1" "$((b1 - b0))" "$HZ" "$QUIET" "$m0" "$m1" \
		"${results[*]}" "$kb" "$ka" "$(json_str "$err")" >>"$RAW"
	unset IFS
	local txn=0 v
	for line in "${results[@]}"; do
		[[ $line =~ \"transactions\":([0-9]+) ]] && txn=$((txn + BASH_REMATCH[1]))
	done
	printf '  %-6s %-12s rep %d: %d transactions in %d s (quiet after %s s)%s\n' "$s" "$test" "$rep" \
		"$txn" "$secs" "$QUIET" "${err:+ FAILED: $err}"
	[[ $s == kmux* ]] && mux_settle
}

START=$SECONDS
say "$(nproc) CPUs, kernel $(uname -r); setups: ${RUN_SETUPS[*]}; $BENCH_TIME s per run" \
	"($BIG_TIME s for rr-1MB-200c), median of $BENCH_REPS"
for ((rep = 1; rep <= BENCH_REPS; rep++)); do
	for test in $TESTS; do
		for s in "${RUN_SETUPS[@]}"; do
			run_one "$s" "$test" "$rep"
		done
	done
done

na_json() {
	local s first=1
	printf '{'
	for s in "${!NA[@]}"; do
		[ $first = 1 ] || printf ','
		first=0
		printf '"%s":%s' "$s" "$(json_str "${NA[$s]}")"
	done
	printf '}'
}
printf '{"label":"%s","uname":"%s","ncpu":%d,"time":%d,"big_time":%d,"reps":%d,"setups":"%s","tests":"%s","mux_conns":%d,"mux_id_conns":%d,"client_procs":%d,"mux_recreated":%d,"background_ticks_per_s":%d,"quiet_max":%d,"tcp_mem":"%s","na":%s,"seconds":%d}\n' \
	"$LABEL" "$(uname -r)" "$(nproc)" "$BENCH_TIME" "$BIG_TIME" "$BENCH_REPS" "$SETUPS" "$TESTS" \
	$MUX_CONNS $ID_CONNS $NPROC "$MUX_RECREATED" $((BACKGROUND * 2)) "$QUIET_MAX" "$TCP_MEM_LIMITS" "$(na_json)" $((SECONDS - START)) >"$OUT/meta-$LABEL.json"
say "runs done in $((SECONDS - START)) s"
