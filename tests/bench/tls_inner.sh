#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/bench/tls_inner.sh: the part of tests/bench/tls.sh that runs inside
# the VM (a kernel with kTLS), as root. Not meant to be run by hand: tls.sh
# boots the VM and passes the environment (BENCH_TIME, BENCH_REPS,
# BENCH_TLS_SETUPS, BENCH_TLS_OUT, BENCH_TLS_LABEL, KP_BUILD).
#
# Backends (plain TCP, kpperf): a source on 19001 (streams a kpperf pattern
# from the moment it accepts) for downloads, a sink on 19002 for uploads and
# handshakes, and a one-connection sink on 19009, started for each check.
# Every setup has three TLS listeners: base+1 -> source, base+2 -> sink,
# base+3 -> check sink; all forced to TLS 1.3 with TLS_AES_128_GCM_SHA256,
# the same ECDSA certificate (tests/tlscerts.sh), X25519 (every client's
# default key share).
#
# Clients: curl (OpenSSL) for downloads (--http0.9: the source sends no
# headers) and chunked uploads from /dev/zero, each cut at BENCH_TIME by
# --max-time; openssl s_time -new for full handshakes. Writes
# raw-LABEL.jsonl, meta-LABEL.json, checks-LABEL.txt and logs-LABEL/ into
# BENCH_TLS_OUT; tls.sh makes the table.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd "$HERE/../.." && pwd -P)
BUILD=${KP_BUILD:-$ROOT/build}
BENCH_TIME=${BENCH_TIME:-5}
BENCH_REPS=${BENCH_REPS:-3}
SETUPS=${BENCH_TLS_SETUPS:-kproxy haproxy nginx direct-tls}
OUT=${BENCH_TLS_OUT:-$HERE/out/tls}
LABEL=${BENCH_TLS_LABEL:-$(uname -r)}
CHECK_BYTES=$((16 << 20))
CIPHER=TLS_AES_128_GCM_SHA256

say() { printf 'tls[%s] %4ds: %s\n' "$LABEL" "$SECONDS" "$*"; }
die() { echo "tls[$LABEL]: $*" >&2; exit 1; }

[ "$EUID" = 0 ] || die "needs root (run through tests/bench/tls.sh)"
modprobe tls 2>/dev/null
# A booted system gets the AES-NI and PCLMUL crypto drivers from udev (CPU
# modalias); vmrun's init has no udev, and kTLS would fall back to the C
# aes-generic while OpenSSL uses AES-NI. Load them, as any real host has them.
for m in aesni_intel ghash_clmulni_intel; do
	modprobe "$m" 2>/dev/null
done
[ -e /proc/net/tls_stat ] || die "this kernel ($(uname -r)) has no kTLS; run tests/bench/tls.sh (it boots a VM)"
for t in openssl curl socat timeout setsid; do
	command -v "$t" >/dev/null || die "'$t' is missing; run scripts/install-deps.sh --bench"
done
for b in kpperf kproxyd kproxyctl kptlsd; do
	[ -x "$BUILD/$b" ] || die "$BUILD/$b is not built; run make all"
done

mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd -P)
RAW=$OUT/raw-$LABEL.jsonl
CHECKS=$OUT/checks-$LABEL.txt
: >"$RAW"
: >"$CHECKS"
# Logs go to tmpfs during the runs (the output directory is 9p) and are
# copied at the end.
TMP=$(mktemp -d /tmp/kp-tlsbench.XXXXXX) || exit 1
LOGS=$TMP/logs
mkdir -p "$LOGS"
SLEEP_FD=
mkfifo "$TMP/sleep.fifo" && exec {SLEEP_FD}<>"$TMP/sleep.fifo" || die "cannot make a FIFO in $TMP"
PIN_DIR=/sys/fs/bpf/kproxy-tlsbench-$$
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
stop_group() {
	local pid=$1 i
	kill -TERM -- "-$pid" 2>/dev/null || return 0
	for ((i = 0; i < 30; i++)); do
		alive "$pid" || break
		bsleep 0.1
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
trap 'echo "tls: interrupted" >&2; exit 130' INT TERM

# Until something listens on 127.0.0.1:PORT (/proc/net/tcp: no probe
# connection, no process started), or PID dies, or SECS pass.
wait_listen() {
	local port=$1 pid=$2 secs=${3:-10} hex i line
	printf -v hex '0100007F:%04X' "$port"
	for ((i = 0; i < secs * 20; i++)); do
		while read -r line; do
			set -- $line
			[ "$2" = "$hex" ] && [ "$4" = 0A ] && return 0
		done </proc/net/tcp
		alive "$pid" || return 1
		bsleep 0.05
	done
	return 1
}
why() { tail -n 1 "$LOGS/$1.log" 2>/dev/null | tr -d '\r"\\' | cut -c1-150; }

# ------------------------------------------------------------------ setups

SRC_PORT=19001
SINK_PORT=19002
CHK_PORT=19009
P=$TMP/pki
declare -A NA=() BASE=() PGID=()

# kproxy: tls:// listeners; the agent (kptlsd, gnutls) does the handshake and
# puts the keys in the kernel; kproxyd splices plaintext.
setup_kproxy() {
	local b=$1 i
	: >"$TMP/kproxy.conf"
	for i in 1:$SRC_PORT 2:$SINK_PORT 3:$CHK_PORT; do
		echo "proxy tls$((b + ${i%%:*})) listen tls://127.0.0.1:$((b + ${i%%:*})) backend tcp://127.0.0.1:${i#*:} cert $P/web.pem key $P/web.key ciphers AES-128-GCM tls_versions 1.3" \
			>>"$TMP/kproxy.conf"
	done
	cp "$TMP/kproxy.conf" "$LOGS/kproxy.conf"
	start_bg kproxyd "$BUILD/kproxyd" -f -s "$TMP/ctl.sock" -P "$PIN_DIR" -c "$TMP/kproxy.conf"
	KPROXYD_PID=$BG_PID
	PGID[kproxy]=$BG_PID	# kproxyd and its agent kptlsd
	for i in 1 2 3; do
		wait_listen $((b + i)) "$KPROXYD_PID" 30 ||
			{ NA[kproxy]="kproxyd did not start: $(why kproxyd)"; return 1; }
	done
	for ((i = 0; i < 100; i++)); do
		[ -S "$TMP/ctl.sock" ] && return 0
		bsleep 0.05
	done
}

# HAProxy 2.6 (OpenSSL 3.0) as deployed for TLS offload: mode tcp, ssl on the
# bind line, its defaults otherwise (one thread per CPU).
setup_haproxy() {
	local b=$1 i
	command -v haproxy >/dev/null || { NA[haproxy]="haproxy is missing; run scripts/install-deps.sh --bench"; return 1; }
	cat "$P/web.pem" "$P/web.key" >"$TMP/web-full.pem"
	cat >"$TMP/haproxy.cfg" <<-EOF
	global
	    maxconn 4096
	    ssl-default-bind-options ssl-min-ver TLSv1.3
	    ssl-default-bind-ciphersuites $CIPHER
	defaults
	    mode tcp
	    timeout connect 5s
	    timeout client 1m
	    timeout server 1m
	EOF
	for i in 1:$SRC_PORT 2:$SINK_PORT 3:$CHK_PORT; do
		cat >>"$TMP/haproxy.cfg" <<-EOF
		listen tls$((b + ${i%%:*}))
		    bind 127.0.0.1:$((b + ${i%%:*})) ssl crt $TMP/web-full.pem ssl-min-ver TLSv1.3 ciphersuites $CIPHER
		    server s 127.0.0.1:${i#*:}
		EOF
	done
	cp "$TMP/haproxy.cfg" "$LOGS/haproxy.cfg"
	start_bg haproxy haproxy -f "$TMP/haproxy.cfg" -db
	PGID[haproxy]=$BG_PID
	for i in 1 2 3; do
		wait_listen $((b + i)) "$BG_PID" 30 || { NA[haproxy]="haproxy did not start: $(why haproxy)"; return 1; }
	done
}

# nginx 1.22 stream module (OpenSSL 3.0): listen ... ssl, worker_processes auto.
setup_nginx() {
	local b=$1 i mod=/usr/lib/nginx/modules/ngx_stream_module.so
	command -v nginx >/dev/null || { NA[nginx]="nginx is missing; run scripts/install-deps.sh --bench"; return 1; }
	[ -e "$mod" ] || { NA[nginx]="$mod is missing (libnginx-mod-stream); run scripts/install-deps.sh --bench"; return 1; }
	mkdir -p "$TMP/nginx"
	{
		cat <<-EOF
		load_module $mod;
		daemon off;
		worker_processes auto;
		pid $TMP/nginx/nginx.pid;
		error_log $TMP/nginx/error.log;
		events { worker_connections 4096; }
		stream {
		    ssl_protocols TLSv1.3;
		    ssl_conf_command Ciphersuites $CIPHER;
		    ssl_certificate $P/web.pem;
		    ssl_certificate_key $P/web.key;
		EOF
		for i in 1:$SRC_PORT 2:$SINK_PORT 3:$CHK_PORT; do
			echo "    server { listen 127.0.0.1:$((b + ${i%%:*})) ssl; proxy_pass 127.0.0.1:${i#*:}; }"
		done
		echo "}"
	} >"$TMP/nginx.conf"
	cp "$TMP/nginx.conf" "$LOGS/nginx.conf"
	start_bg nginx nginx -c "$TMP/nginx.conf" -p "$TMP/nginx"
	PGID[nginx]=$BG_PID	# the master and its workers
	for i in 1 2 3; do
		wait_listen $((b + i)) "$BG_PID" 30 || { NA[nginx]="nginx did not start: $(why nginx)"; return 1; }
	done
}

# No proxy: openssl s_server speaks TLS itself. -WWW serves a sparse 64 GiB
# file of zeros (downloads); a second one reads and discards (uploads,
# handshakes). A reference for the cost of TLS alone, not a proxy.
setup_direct-tls() {
	local b=$1
	mkdir -p "$TMP/www"
	truncate -s 64G "$TMP/www/big" || { NA[direct-tls]="cannot make a sparse file in $TMP"; return 1; }
	start_bg s_server-www sh -c 'cd "$0" && exec openssl s_server -accept "$1" -cert "$2" -key "$3" \
		-WWW -tls1_3 -ciphersuites "$4" -quiet' "$TMP/www" "127.0.0.1:$((b + 1))" "$P/web.pem" "$P/web.key" "$CIPHER"
	wait_listen $((b + 1)) "$BG_PID" 30 || { NA[direct-tls]="s_server did not start: $(why s_server-www)"; return 1; }
	# stdin kept open (s_server stops at its end), received data to /dev/null
	start_bg s_server-sink sh -c 'sleep 1000000 | openssl s_server -accept "$0" -cert "$1" -key "$2" \
		-tls1_3 -ciphersuites "$3" -quiet >/dev/null' "127.0.0.1:$((b + 2))" "$P/web.pem" "$P/web.key" "$CIPHER"
	PGID[direct-tls]=$BG_PID
	wait_listen $((b + 2)) "$BG_PID" 30 || { NA[direct-tls]="s_server did not start: $(why s_server-sink)"; return 1; }
}

# ------------------------------------------------------------------ checks

# A one-connection kpperf sink on CHK_PORT: it checks every byte of a kpperf
# stream against the pattern generator and prints what it saw when the
# connection ends.
chk_sink_start() {
	rm -f "$TMP/chk.json"
	timeout 120 "$BUILD/kpperf" server "tcp://127.0.0.1:$CHK_PORT" --mode sink --once -j \
		>"$TMP/chk.json" 2>"$TMP/chk.err" &
	CHK_PID=$!
	wait_listen $CHK_PORT $CHK_PID 20
}
chk_sink_result() {	# -> "ok" or why not
	local j
	wait "$CHK_PID"
	j=$(cat "$TMP/chk.json" 2>/dev/null)
	if [[ $j =~ \"bytes_in\":([0-9]+).*\"verified\":([0-9]+),\"verify_failed\":([0-9]+) ]]; then
		if [ "${BASH_REMATCH[1]}" = "$CHECK_BYTES" ] && [ "${BASH_REMATCH[2]}" = 1 ] &&
		   [ "${BASH_REMATCH[3]}" = 0 ]; then
			echo ok
		else
			echo "the checker got ${BASH_REMATCH[1]} of $CHECK_BYTES bytes, ${BASH_REMATCH[2]} kpperf stream(s), ${BASH_REMATCH[3]} differing"
		fi
	else
		echo "the checker said nothing: $(tail -n 1 "$TMP/chk.err")"
	fi
}

CURL=(curl -sS -k --tlsv1.3 --tls13-ciphers "$CIPHER")

# Before a setup is measured: TLS 1.3 with the cipher asked for, a download
# whose every byte is right, and (for the proxies) an upload whose every byte
# arrives right. A setup that fails any of it is not measured.
check_setup() {
	local s=$1 b=$2 neg r sum want
	# What a client with OpenSSL's defaults gets (for the record), then what
	# the measuring clients get: X25519 only, so that every setup does the
	# same key exchange in one round trip.
	neg=$(timeout 30 openssl s_client -connect "127.0.0.1:$((b + 2))" -brief </dev/null 2>&1 |
		grep -E '^(Protocol version|Ciphersuite|Server Temp Key|Peer signature type):' | tr '\n' ';')
	echo "$s: negotiated with OpenSSL's default client: $neg" >>"$CHECKS"
	neg=$(OPENSSL_CONF=$CLIENT_CONF timeout 30 openssl s_client -connect "127.0.0.1:$((b + 2))" -brief </dev/null 2>&1 |
		grep -E '^(Protocol version|Ciphersuite|Server Temp Key|Peer signature type):' | tr '\n' ';')
	echo "$s: negotiated with the measuring clients' settings: $neg" >>"$CHECKS"
	if [[ $neg != *"Protocol version: TLSv1.3"* || $neg != *"Ciphersuite: $CIPHER"* ||
	      $neg != *"Server Temp Key: X25519"* ]]; then
		NA[$s]="handshake check failed: ${neg:-no handshake}"
		return 1
	fi
	OPENSSL_CONF=$CLIENT_CONF timeout 120 "${CURL[@]}" --http0.9 "https://127.0.0.1:$((b + 1))/big" 2>/dev/null |
		head -c "$CHECK_BYTES" >"$TMP/dl.bin"
	sum=$(sha256sum <"$TMP/dl.bin")
	sum=${sum%% *}
	if [ "$s" = direct-tls ]; then
		want=$(head -c "$CHECK_BYTES" /dev/zero | sha256sum)
		want=${want%% *}
		[ "$sum" = "$want" ] && r=ok || r="sha256 $sum, want $want (zeros)"
	else
		chk_sink_start || { NA[$s]="the check sink did not start"; return 1; }
		cat "$TMP/dl.bin" >"/dev/tcp/127.0.0.1/$CHK_PORT" 2>/dev/null
		r=$(chk_sink_result)
	fi
	echo "$s: download of $CHECK_BYTES bytes (sha256 $sum): $r" >>"$CHECKS"
	[ "$r" = ok ] || { NA[$s]="download check failed: $r"; return 1; }
	[ "$s" = direct-tls ] && return 0
	chk_sink_start || { NA[$s]="the check sink did not start"; return 1; }
	# socat as the raw TLS client (s_client moves a few hundred KB/s from a
	# pipe). Both ways, so that it reads the session tickets and its close
	# is a clean one; its input stays open a moment after the data.
	(cat "$TMP/ref.bin"; bsleep 1) | OPENSSL_CONF=$CLIENT_CONF timeout 120 socat -b 65536 -t 2 - \
		"OPENSSL:127.0.0.1:$((b + 3)),verify=0" >/dev/null 2>"$LOGS/socat-check-$s.log"
	r=$(chk_sink_result)
	echo "$s: upload of $CHECK_BYTES bytes: $r" >>"$CHECKS"
	[ "$r" = ok ] || { NA[$s]="upload check failed: $r"; return 1; }
}

# ------------------------------------------------------------------ measuring
#
# Under TCG starting curl or openssl costs a second or more of CPU; so that
# it does not count, every figure comes from a window that opens once the
# transfer or the handshakes are under way and lasts BENCH_TIME seconds:
#   download  bytes curl writes to /dev/null (wchar in /proc/PID/io; curl's
#             own socket I/O is send/recv, which /proc/PID/io does not count)
#   upload    bytes curl reads from /dev/zero (rchar), the same way
#   handshake s_time prints a '*' (and flushes) after each full handshake:
#             handshakes from the first '*' to the last one in the window
# CPU is the busy jiffies of the whole VM over the same window; the window
# is timed with read -t, builtins only, so the measuring starts no process.

# BUSY: user + nice + system + irq + softirq of all CPUs; TOTAL adds idle,
# iowait and steal. Under TCG on a loaded host the vCPU threads do not always
# run, and the guest loses the ticks of that time: TOTAL falls short of
# CPUs x window, which is how a disturbed run shows.
busy_ticks() {
	local user nice system idle iowait irq softirq steal rest
	read -r _ user nice system idle iowait irq softirq steal rest </proc/stat
	BUSY=$((user + nice + system + irq + softirq))
	TOTAL=$((BUSY + idle + iowait + steal))
}
now_us() { NOW=${EPOCHREALTIME//[.,]/}; }
# A sleep without a process: read -t on a FIFO nobody writes to.
bsleep() { if [ -n "${SLEEP_FD:-}" ]; then read -r -t "$1" -u "$SLEEP_FD" _; else sleep "$1"; fi; }
io_count() {	# PID FIELD (rchar|wchar) -> IO, or return 1 if PID is gone
	local k v
	IO=
	while read -r k v; do
		[ "$k" = "$2:" ] && { IO=$v; return 0; }
	done <"/proc/$1/io" 2>/dev/null
	return 1
}
# GCPU: utime + stime (ticks) of every process in process group $1, all
# threads. For handshakes only: the TLS work of every setup is then in user
# space or in its own system calls, so it is the server's cost alone.
group_cpu() {
	local pg=$1 f line
	GCPU=0
	for f in /proc/[0-9]*/stat; do
		read -r line <"$f" 2>/dev/null || continue
		set -- ${line##*) }
		[ "$3" = "$pg" ] && GCPU=$((GCPU + ${12} + ${13}))
	done
	return 0
}
kp_stats() {
	[ -S "$TMP/ctl.sock" ] || { echo null; return; }
	local j
	j=$(timeout 10 "$BUILD/kproxyctl" -s "$TMP/ctl.sock" -j stats 2>/dev/null | tr -d '\n')
	echo "${j:-null}"
}
json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "${s//[$'\t\r\n']/ }"; }
secs() { printf -v "$1" '%d.%06d' $(($2 / 1000000)) $(($2 % 1000000)); }

# download/upload: sets RC ERR AMOUNT(bytes) T0 T1 (us) B0 B1 (ticks)
measure_curl() {
	local test=$1 port=$2 pid field i
	if [ "$test" = download ]; then
		field=wchar
		OPENSSL_CONF=$CLIENT_CONF "${CURL[@]}" --http0.9 --max-time $((BENCH_TIME + 120)) -o /dev/null \
			"https://127.0.0.1:$port/big" >/dev/null 2>"$TMP/err" &
	else
		field=rchar
		OPENSSL_CONF=$CLIENT_CONF "${CURL[@]}" --max-time $((BENCH_TIME + 120)) -H 'Expect:' -T - \
			-o /dev/null "https://127.0.0.1:$port/up" </dev/zero >/dev/null 2>"$TMP/err" &
	fi
	pid=$!
	RC=0 ERR= AMOUNT=0
	# Under way: 2 MiB moved (past curl's own start-up reads), within 120 s.
	for ((i = 0; i < 1200; i++)); do
		io_count $pid $field || break
		[ "${IO:-0}" -ge $((2 << 20)) ] && break
		bsleep 0.1
	done
	if ! io_count $pid $field || [ "${IO:-0}" -lt $((2 << 20)) ]; then
		RC=1 ERR="the transfer did not start (${IO:-0} bytes after $((i / 10)) s)"
	else
		local a=$IO
		busy_ticks; B0=$BUSY A0=$TOTAL; now_us; T0=$NOW
		bsleep "$BENCH_TIME"
		io_count $pid $field
		busy_ticks; B1=$BUSY A1=$TOTAL; now_us; T1=$NOW
		if ! kill -0 $pid 2>/dev/null; then
			RC=1 ERR="curl ended during the window"
		fi
		AMOUNT=$((IO - a))
	fi
	kill -TERM $pid 2>/dev/null
	wait $pid
	local rc=$?
	[ "$RC" = 0 ] || ERR="$ERR; curl exit $rc: $(tail -n 1 "$TMP/err" | cut -c1-150)"
}

# handshake: sets RC ERR AMOUNT(handshakes) T0 T1 B0 B1
measure_handshakes() {
	local port=$1 pg=${PGID[$2]:-} pid fd c end n=0 left t
	G0=0 G1=0
	[ -n "$pg" ] && group_cpu "$pg" && G0=$GCPU
	rm -f "$TMP/st.fifo"
	mkfifo "$TMP/st.fifo"
	OPENSSL_CONF=$CLIENT_CONF openssl s_time -connect "127.0.0.1:$port" -new -time $((BENCH_TIME + 120)) \
		-tls1_3 -ciphersuites "$CIPHER" >"$TMP/st.fifo" 2>"$TMP/err" &
	pid=$!
	exec {fd}<"$TMP/st.fifo"
	RC=1 ERR="no handshake within 60 s"
	while read -r -n 1 -t 60 -u $fd c; do
		[ "$c" = '*' ] && { RC=0 ERR=; break; }
	done
	if [ "$RC" = 0 ]; then
		busy_ticks; B0=$BUSY A0=$TOTAL; now_us; T0=$NOW
		B1=$B0 T1=$T0 A1=$A0
		end=$((T0 + BENCH_TIME * 1000000))
		while :; do
			now_us
			left=$((end - NOW))
			[ $left -gt 0 ] || break
			secs t $left
			read -r -n 1 -t "$t" -u $fd c || { [ $? -gt 128 ] && break; ERR="s_time stopped"; RC=1; break; }
			if [ "$c" = '*' ]; then
				busy_ticks; now_us
				n=$((n + 1)) B1=$BUSY T1=$NOW A1=$TOTAL
			fi
		done
		# the server's CPU from s_time's start: every handshake so far, the
		# first one too, and at most a part of the next
		[ -n "$pg" ] && group_cpu "$pg" && G1=$GCPU
		[ $n -gt 0 ] || { RC=1; ERR="${ERR:-no handshake after the first}"; }
	fi
	AMOUNT=$n
	kill -TERM $pid 2>/dev/null
	exec {fd}<&-
	wait $pid
	[ "$RC" = 0 ] || ERR="$ERR: $(tail -n 1 "$TMP/err" | cut -c1-150)"
}

run_one() {
	local rep=$1 s=$2 test=$3 b=${BASE[$2]} k0=null k1=null w
	[ "$s" = kproxy ] && k0=$(kp_stats)
	: >"$TMP/err"
	RC=1 ERR= AMOUNT=0 T0=0 T1=0 B0=0 B1=0 A0=0 A1=0 G0=0 G1=0
	case $test in
	download) measure_curl download $((b + 1)) ;;
	upload) measure_curl upload $((b + 2)) ;;
	handshake) measure_handshakes $((b + 2)) "$s" ;;
	esac
	[ "$s" = kproxy ] && k1=$(kp_stats)
	secs w $((T1 - T0))
	printf '{"kernel":%s,"rep":%d,"setup":"%s","test":"%s","rc":%d,"elapsed":%d,"window_s":%s,"busy_ticks":%d,"total_ticks":%d,"hz":%d,"amount":%d,"server_ticks":%d,"kstats_before":%s,"kstats_after":%s,"err":%s}\n' \
		"$(json_str "$LABEL")" "$rep" "$s" "$test" "$RC" $SECONDS "$w" $((B1 - B0)) $((A1 - A0)) "$HZ" "$AMOUNT" $((G1 - G0)) \
		"$k0" "$k1" "$(json_str "$ERR")" >>"$RAW"
	if [ "$RC" != 0 ]; then
		printf '  %4ds %-10s %-9s rep %d: FAILED (%s)\n' $SECONDS "$s" "$test" "$rep" "$ERR"
	elif [ "$test" = handshake ]; then
		printf '  %4ds %-10s %-9s rep %d: %d handshakes in %s s, %d of %d ticks busy, server %d ticks for %d\n' $SECONDS "$s" "$test" "$rep" "$AMOUNT" "$w" $((B1 - B0)) $((A1 - A0)) $((G1 - G0)) $((AMOUNT + 1))
	else
		printf '  %4ds %-10s %-9s rep %d: %d bytes in %s s, %d of %d ticks busy\n' $SECONDS "$s" "$test" "$rep" "$AMOUNT" "$w" $((B1 - B0)) $((A1 - A0))
	fi
}

# ------------------------------------------------------------------ main

if [ "${BENCH_TLS_TRACE:-0}" = 1 ]; then	# where the time goes: a timestamped trace
	exec {TRACE_FD}>"$OUT/trace-$LABEL.txt"
	BASH_XTRACEFD=$TRACE_FD
	PS4='+ $EPOCHREALTIME '
	set -x
fi
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf || die "cannot mount /sys/fs/bpf"
ip link set lo up 2>/dev/null
say "$(nproc) CPUs, kernel $(uname -r), $BENCH_TIME s per run, median of $BENCH_REPS; setups: $SETUPS"
# The measuring clients offer X25519 only (OpenSSL's first choice anyway):
# a server that prefers another group would otherwise answer with a
# HelloRetryRequest, and the setups would not do the same handshake.
CLIENT_CONF=$TMP/client.cnf
printf '%s\n' 'openssl_conf = oc' '[oc]' 'ssl_conf = sc' '[sc]' 'system_default = sd' '[sd]' \
	'Groups = X25519' >"$CLIENT_CONF"
# tls.sh makes the certificates on the host (key generation is slow under TCG).
if [ -n "${BENCH_TLS_PKI:-}" ] && [ -s "$BENCH_TLS_PKI/web.pem" ]; then
	mkdir -p "$P" && cp "$BENCH_TLS_PKI/web.pem" "$BENCH_TLS_PKI/web.key" "$BENCH_TLS_PKI/ca.pem" "$P/" ||
		die "cannot copy the certificates from $BENCH_TLS_PKI"
else
	bash "$ROOT/tests/tlscerts.sh" "$P" || die "tests/tlscerts.sh failed (certtool: run scripts/install-deps.sh --bench)"
fi

start_bg source "$BUILD/kpperf" server "tcp://127.0.0.1:$SRC_PORT" --mode source
wait_listen $SRC_PORT "$BG_PID" || die "kpperf source did not start: $(why source)"
start_bg sink "$BUILD/kpperf" server "tcp://127.0.0.1:$SINK_PORT" --mode sink
wait_listen $SINK_PORT "$BG_PID" || die "kpperf sink did not start: $(why sink)"
# The reference upload: a kpperf stream straight from the source.
head -c "$CHECK_BYTES" <"/dev/tcp/127.0.0.1/$SRC_PORT" >"$TMP/ref.bin"
[ "$(stat -c %s "$TMP/ref.bin")" = "$CHECK_BYTES" ] || die "could not read $CHECK_BYTES bytes from the kpperf source"

READY=()
i=0
for s in $SETUPS; do
	i=$((i + 1))
	declare -F "setup_$s" >/dev/null || die "unknown setup '$s' (kproxy haproxy nginx direct-tls)"
	BASE[$s]=$((20000 + 100 * i))
	if "setup_$s" "${BASE[$s]}" && check_setup "$s" "${BASE[$s]}"; then
		READY+=("$s")
		say "$s ready and checked (TLS 1.3 $CIPHER, $CHECK_BYTES bytes right each way)"
	else
		say "$s: n/a (${NA[$s]})"
		echo "$s: n/a (${NA[$s]})" >>"$CHECKS"
	fi
done
[ ${#READY[@]} -gt 0 ] || die "no setup is ready"

# What the VM does when nothing runs: subtracted from every run's CPU.
bsleep 1
busy_ticks; b0=$BUSY; t0=$EPOCHREALTIME
bsleep 3
busy_ticks; b1=$BUSY; t1=$EPOCHREALTIME
BG_CPUS=$(awk -v b=$((b1 - b0)) -v hz="$HZ" -v a="$t0" -v c="$t1" 'BEGIN { printf "%.4f", b / hz / (c - a) }')
say "background: $BG_CPUS CPUs busy with nothing running"

na_json=""
for s in "${!NA[@]}"; do
	na_json+="${na_json:+,}$(json_str "$s"):$(json_str "${NA[$s]}")"
done
printf '{"kernel":%s,"uname":%s,"ncpu":%d,"hz":%d,"time":%d,"reps":%d,"setups":%s,"ready":%s,"na":{%s},"background_cpus":%s,"cipher":"%s","check_bytes":%d,"openssl":%s,"haproxy":%s,"nginx":%s}\n' \
	"$(json_str "$LABEL")" "$(json_str "$(uname -r)")" "$(nproc)" "$HZ" "$BENCH_TIME" "$BENCH_REPS" \
	"$(json_str "$SETUPS")" "$(json_str "${READY[*]}")" "$na_json" "$BG_CPUS" "$CIPHER" "$CHECK_BYTES" \
	"$(json_str "$(openssl version)")" "$(json_str "$(haproxy -v 2>/dev/null | head -n 1)")" \
	"$(json_str "$(nginx -v 2>&1)")" >"$OUT/meta-$LABEL.json"

for ((rep = 1; rep <= BENCH_REPS; rep++)); do
	for t in download upload handshake; do
		for s in "${READY[@]}"; do
			run_one "$rep" "$s" "$t"
			bsleep 0.3	# the previous run's connections close
		done
	done
done

# Which AES-GCM the kernel's TLS used (kTLS asks the crypto API for gcm(aes)).
drv=$(awk '/^name/ { n = $3 } /^driver/ && n == "gcm(aes)" { print $3 }' /proc/crypto | sort -u | tr '\n' ' ')
say "the kernel's gcm(aes): ${drv:-none loaded}"
echo "kernel gcm(aes) drivers: ${drv:-none}" >>"$CHECKS"

# kproxy's side of the story: its counters, and what it logged.
if [[ " ${READY[*]} " == *" kproxy "* ]]; then
	alive "$KPROXYD_PID" || say "warning: kproxyd exited during the runs: $(why kproxyd)"
	kp_stats >"$OUT/kproxy-stats-$LABEL.json"
	n=$(grep -ciE 'error|fail|warn|refus|reset' "$LOGS/kproxyd.log")
	say "kproxyd.log: $(wc -l <"$LOGS/kproxyd.log") lines, $n mention an error, failure, warning or reset"
	grep -iE 'error|fail|warn|refus|reset' "$LOGS/kproxyd.log" | sed 's/[0-9]\+/N/g' | sort | uniq -c |
		sort -rn | head -n 8 | sed 's/^/    /'
fi
exit 0
