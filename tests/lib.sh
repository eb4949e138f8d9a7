# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
#
# tests/lib.sh: sourced by every tests/cases/*.sh.
#
# tests/suite.sh runs each case file in its own network and mount namespace,
# with lo up, a private bpffs at /sys/fs/bpf, cgroup2 at /sys/fs/cgroup and a
# tmpfs at /run, in its own session. A case reports through t_pass/t_fail/
# t_skip; what it prints goes to its log, shown when something fails.
#
# Results      t_pass NAME | t_fail NAME MESSAGE | t_skip NAME REASON
#              t_check NAME CMD [ARGS...]   pass if CMD succeeds, else fail with its output
#              t_need FEATURE NAME          0 if FEATURE (ktls, kcm) is there; otherwise
#                                           report NAME skipped (failed if FEATURE is
#                                           in KP_EXPECT_FEATURES) and return 1
# Environment  KP_ROOT (repo), KP_BUILD (build dir, absolute), KP_CASE (case name),
#              KP_TMP (per-case directory, removed at exit), KP_CGROUP2 (cgroup2 root),
#              KP_PYTHON, KP_IN_VM (1 inside the QEMU guests: scale sizes down)
# Daemon       kp_daemon_start [ARGS...]    start kproxyd in the background, wait for its
#                                           control socket; KP_DAEMON_PID
#              kp_daemon_stop               SIGTERM it; non-zero if it had to be killed
#                                           or exited non-zero; KP_DAEMON_RC
#              kpctl ARGS...                kproxyctl on this case's daemon
# Processes    kp_bg CMD [ARGS...]          start CMD in the background, tracked; KP_BG_PID
#              kp_defer CMD [ARGS...]       run CMD at exit (last deferred runs first)
#              kp_cleanup                   (the EXIT trap) deferred commands, then kill
#                                           every background job and its descendants
# Waiting      wait_port HOST PORT [SECS]   until something listens on HOST:PORT (TCP)
#              wait_for SECS CMD [ARGS...]  until CMD succeeds
#              kp_sleep SECS                sleep without starting a process
# Kernel       kernel_has_ktls, kernel_has_kcm: 0 if usable; else KP_WHY says why
#              kp_cgroup_new NAME           create a cgroup, print its path; removed at exit
#              require_root
#
# Run one case alone with `tests/suite.sh NAME`; running the file directly
# re-executes it that way, since it needs the namespaces the suite sets up.
#
# Under QEMU/TCG every exec costs 100-300 ms (binaries come over 9p and are
# emulated), so the helpers here, and polling loops above all, use shell
# builtins and /proc instead of starting processes where they can.

[ -z "${KP_LIB_LOADED:-}" ] || return 0
KP_LIB_LOADED=1
set -u

KP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
KP_BUILD=${KP_BUILD:-$KP_ROOT/build}
KP_BUILD=$(cd "$KP_BUILD" 2>/dev/null && pwd -P || echo "$KP_BUILD")
_kp_self=${0##*/}
KP_CASE=${KP_CASE:-${_kp_self%.sh}}

if [ -z "${KP_RESULT_FILE:-}" ]; then
	exec "$KP_ROOT/tests/suite.sh" "^$KP_CASE\$"
fi

KP_CGROUP2=${KP_CGROUP2:-/sys/fs/cgroup}
# Debian's interpreter, not whatever a version manager puts first in PATH.
if [ -x /usr/bin/python3 ]; then KP_PYTHON=/usr/bin/python3; else KP_PYTHON=python3; fi
KP_WHY=
KP_DAEMON_PID=
KP_DAEMON_RC=
KP_BG_PID=
_kp_failed=0
_kp_pids=()
_kp_defers=()
_kp_cgroups=()

# /run is this case's own tmpfs: a short path (unix socket names are limited
# to 108 bytes) that vanishes with the namespace even if cleanup never runs.
KP_TMP=$(mktemp -d /run/kp-"$KP_CASE".XXXXXX 2>/dev/null || mktemp -d /tmp/kp-"$KP_CASE".XXXXXX)

# ------------------------------------------------------------------ results

_kp_result() {
	local status=$1 name=$2 msg=${3:-}
	# One result per line in a tab-separated file: flatten the message.
	msg=${msg//$'\t'/ }
	msg=${msg//$'\n'/ | }
	printf '%s\t%s\t%s\n' "$status" "$name" "$msg" >>"$KP_RESULT_FILE"
	echo "== $status $name${msg:+: $msg}"
}

t_pass() { _kp_result PASS "$1"; }
t_fail() { _kp_failed=1; _kp_result FAIL "$1" "${2:-failed}"; }
t_skip() { _kp_result SKIP "$1" "${2:-skipped}"; }

t_check() {
	local name=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	if [ $rc = 0 ]; then
		t_pass "$name"
	else
		t_fail "$name" "'$*' exited $rc: $(tail -n 3 <<<"$out")"
	fi
	return $rc
}

t_need() {
	local feature=$1 name=$2
	case $feature in
	ktls) kernel_has_ktls && return 0 ;;
	kcm)  kernel_has_kcm && return 0 ;;
	*)    t_fail "$name" "t_need: unknown feature '$feature'"; return 1 ;;
	esac
	# The VMs load these modules on purpose: there a missing feature is a
	# broken harness, not a kernel without it, and must not pass as a skip.
	if [[ " ${KP_EXPECT_FEATURES:-} " == *" $feature "* ]]; then
		t_fail "$name" "$KP_WHY (expected on this kernel)"
	else
		t_skip "$name" "$KP_WHY"
	fi
	return 1
}

require_root() {
	if [ "$EUID" != 0 ]; then
		t_skip root "needs root"
		exit 0
	fi
}

# ------------------------------------------------------------------ processes

kp_bg() {
	"$@" &
	KP_BG_PID=$!
	_kp_pids+=("$KP_BG_PID")
}

kp_defer() {
	local q
	printf -v q '%q ' "$@"
	_kp_defers+=("$q")
}

# PIDs of the given processes and all their descendants, parents first.
_kp_tree() {
	ps -e -o pid=,ppid= | awk -v roots="$*" '
		BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1 }
		{ parent[$1] = $2; pids[NR] = $1 }
		END {
			do {
				grew = 0
				for (i in pids) { p = pids[i]
					if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; grew = 1 } }
			} while (grew)
			for (p in keep) print p
		}'
}

_kp_alive() {
	local p
	for p in "$@"; do
		kill -0 "$p" 2>/dev/null && return 0
	done
	return 1
}

kp_cleanup() {
	local i pids p cg
	trap - EXIT
	# Deferred commands may still need the daemon (kpctl ... del), so first.
	for ((i = ${#_kp_defers[@]} - 1; i >= 0; i--)); do
		eval "${_kp_defers[i]}" || true
	done
	# $(jobs -p) sees this shell's jobs; a nested ( ) would not.
	pids="$(jobs -p | tr '\n' ' ') ${_kp_pids[*]}"
	if [ -n "${pids// /}" ]; then
		# Collect the whole tree before signalling: children of a killed
		# parent are reparented and could no longer be found.
		pids=$(_kp_tree $pids | grep -vx "$$" | tr '\n' ' ')
		kill -TERM $pids 2>/dev/null
		for ((i = 0; i < 30; i++)); do
			_kp_alive $pids || break
			kp_sleep 0.1
		done
		kill -KILL $pids 2>/dev/null
		wait 2>/dev/null
	fi
	[ -s "$KP_TMP/.cgroups" ] && mapfile -t _kp_cgroups <"$KP_TMP/.cgroups"
	for cg in "${_kp_cgroups[@]}"; do
		# rmdir fails while a process is inside: move any straggler out.
		if [ -e "$cg/cgroup.procs" ]; then
			while read -r p; do
				echo "$p" >"$KP_CGROUP2/cgroup.procs" 2>/dev/null
			done <"$cg/cgroup.procs"
		fi
		rmdir "$cg" 2>/dev/null
	done
	if [ $_kp_failed = 1 ] && [ -s "$KP_TMP/kproxyd.log" ]; then
		echo "== last lines of kproxyd.log:"
		tail -n 40 "$KP_TMP/kproxyd.log"
	fi
	rm -rf "$KP_TMP"
}
trap kp_cleanup EXIT
# Without these, a SIGTERM from the suite's timeout would skip the EXIT trap.
trap 'exit 143' TERM
trap 'exit 130' INT

# ------------------------------------------------------------------ waiting

_kp_sleep_fd=
kp_sleep() {
	# read -t on a FIFO that nobody writes to: a sleep without a fork.
	if [ -z "$_kp_sleep_fd" ]; then
		[ -p "$KP_TMP/.sleep" ] || mkfifo "$KP_TMP/.sleep" 2>/dev/null
		exec {_kp_sleep_fd}<>"$KP_TMP/.sleep" || { _kp_sleep_fd=; sleep "$1"; return 0; }
	fi
	read -r -t "$1" -u "$_kp_sleep_fd" _ || true
}

_kp_now_us() { _kp_now=${EPOCHREALTIME//[.,]/}; }

wait_for() {
	local secs=$1 end
	shift
	_kp_now_us
	end=$((_kp_now + secs * 1000000))
	until "$@"; do
		_kp_now_us
		[ "$_kp_now" -lt $end ] || return 1
		kp_sleep 0.05
	done
}

# An IPv6 address as /proc/net/tcp6 prints it: four 32-bit words, each in
# host (little-endian) byte order. Sets _kp_hex.
_kp_hex6() {
	local addr=${1%%\%*} head tail g i w hex=
	local -a h=() t=() groups=()
	if [[ $addr == *::* ]]; then
		head=${addr%%::*} tail=${addr#*::}
	else
		head=$addr tail=
	fi
	[ -z "$head" ] || IFS=: read -ra h <<<"$head"
	[ -z "$tail" ] || IFS=: read -ra t <<<"$tail"
	groups=("${h[@]}")
	if [[ $addr == *::* ]]; then
		for ((i = ${#h[@]} + ${#t[@]}; i < 8; i++)); do groups+=(0); done
	fi
	groups+=("${t[@]}")
	[ ${#groups[@]} = 8 ] || return 1
	for g in "${groups[@]}"; do
		[[ $g =~ ^[0-9a-fA-F]{1,4}$ ]] || return 1
		printf -v g '%04X' "0x$g"
		hex+=$g
	done
	_kp_hex=
	for i in 0 8 16 24; do
		w=${hex:i:8}
		_kp_hex+=${w:6:2}${w:4:2}${w:2:2}${w:0:2}
	done
}

# Sets _kp_want4/_kp_want6: the local addresses (as in /proc/net/tcp{,6}) of
# listeners that accept a connection to HOST:PORT, wildcards included.
_kp_listen_patterns() {
	local host=$1 port=$2 hp v4 a b c d zeros=00000000000000000000000000000000
	[[ $port =~ ^[0-9]+$ ]] || return 1
	printf -v hp '%04X' "$port"
	[ "$host" != localhost ] || host=127.0.0.1
	if [[ $host == *:* ]]; then
		_kp_hex6 "$host" || return 1
		_kp_want4=
		_kp_want6=" $_kp_hex:$hp $zeros:$hp "
	else
		[[ $host =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || return 1
		IFS=. read -r a b c d <<<"$host"
		printf -v v4 '%02X%02X%02X%02X' "$d" "$c" "$b" "$a"
		_kp_want4=" $v4:$hp 00000000:$hp "
		_kp_want6=" 0000000000000000FFFF0000$v4:$hp $zeros:$hp "
	fi
}

_kp_listening() {
	local sl addr rem st rest
	if [ -n "$_kp_want4" ]; then
		while read -r sl addr rem st rest; do
			[ "$st" = 0A ] && [[ $_kp_want4 == *" $addr "* ]] && return 0
		done </proc/net/tcp
	fi
	if [ -r /proc/net/tcp6 ]; then
		while read -r sl addr rem st rest; do
			[ "$st" = 0A ] && [[ $_kp_want6 == *" $addr "* ]] && return 0
		done </proc/net/tcp6
	fi
	return 1
}

wait_port() {
	local host=$1 port=$2 secs=${3:-10}
	host=${host#[}
	host=${host%]}
	if ! _kp_listen_patterns "$host" "$port"; then
		echo "wait_port: cannot parse '$1' '$2' (want an IPv4/IPv6 address and a port)" >&2
		return 1
	fi
	wait_for "$secs" _kp_listening && return 0
	echo "wait_port: nothing listens on $1:$port after ${secs}s" >&2
	return 1
}

# ------------------------------------------------------------------ daemon

kp_daemon_start() {
	local i
	if [ ! -x "$KP_BUILD/kproxyd" ]; then
		echo "kp_daemon_start: $KP_BUILD/kproxyd is not built (run make)" >&2
		return 1
	fi
	# The daemon reads its configuration at start; a case writes it first,
	# an empty one means "no proxies yet".
	[ -e "$KP_TMP/kproxy.conf" ] || : >"$KP_TMP/kproxy.conf"
	rm -f "$KP_TMP/ctl.sock"
	"$KP_BUILD/kproxyd" -f -s "$KP_TMP/ctl.sock" -P /sys/fs/bpf/kproxy \
		-c "$KP_TMP/kproxy.conf" "$@" >>"$KP_TMP/kproxyd.log" 2>&1 &
	KP_DAEMON_PID=$!
	_kp_pids+=("$KP_DAEMON_PID")
	for ((i = 0; i < 200; i++)); do
		[ -S "$KP_TMP/ctl.sock" ] && return 0
		if ! kill -0 "$KP_DAEMON_PID" 2>/dev/null; then
			wait "$KP_DAEMON_PID"
			KP_DAEMON_RC=$?
			echo "kp_daemon_start: kproxyd exited with status $KP_DAEMON_RC:" >&2
			tail -n 20 "$KP_TMP/kproxyd.log" >&2
			KP_DAEMON_PID=
			return 1
		fi
		kp_sleep 0.05
	done
	echo "kp_daemon_start: no control socket $KP_TMP/ctl.sock after 10s" >&2
	tail -n 20 "$KP_TMP/kproxyd.log" >&2
	return 1
}

kp_daemon_stop() {
	local i pid=$KP_DAEMON_PID
	[ -n "$pid" ] || return 0
	KP_DAEMON_PID=
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		kp_sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		KP_DAEMON_RC=137
		echo "kp_daemon_stop: kproxyd ignored SIGTERM for 10s and was killed" >&2
		return 1
	fi
	wait "$pid" 2>/dev/null
	KP_DAEMON_RC=$?
	if [ "$KP_DAEMON_RC" != 0 ]; then
		echo "kp_daemon_stop: kproxyd exited with status $KP_DAEMON_RC" >&2
		return 1
	fi
	return 0
}

kpctl() {
	"$KP_BUILD/kproxyctl" -s "$KP_TMP/ctl.sock" "$@"
}

# ------------------------------------------------------------------ kernel

kernel_has_ktls() {
	local err
	KP_WHY=
	local ulps=
	# Lists the ULPs registered now; a loaded tls module shows here.
	[ -r /proc/sys/net/ipv4/tcp_available_ulp ] && read -r ulps </proc/sys/net/ipv4/tcp_available_ulp
	[[ " $ulps " == *" tls "* ]] && return 0
	# Not registered yet: setting the ULP on a connected socket also autoloads
	# the module where the kernel has one.
	err=$("$KP_PYTHON" - 2>&1 <<-'EOF'
	import errno, socket
	l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
	c = socket.create_connection(l.getsockname())
	try:
	    c.setsockopt(socket.IPPROTO_TCP, 31, b"tls")  # TCP_ULP
	except OSError as e:
	    print(errno.errorcode.get(e.errno, e.errno)); raise SystemExit(1)
	EOF
	) && return 0
	KP_WHY="kernel $(uname -r) has no kTLS: setsockopt(TCP_ULP, \"tls\") failed with ${err##*$'\n'} (no CONFIG_TLS or tls module)"
	return 1
}

kernel_has_kcm() {
	local err
	KP_WHY=
	local proto rest
	while read -r proto rest; do
		[ "$proto" = KCM ] && return 0
	done </proc/net/protocols
	# socket(AF_KCM) autoloads the kcm module where there is one.
	err=$("$KP_PYTHON" - 2>&1 <<-'EOF'
	import errno, socket
	try:
	    socket.socket(41, socket.SOCK_DGRAM, 0).close()  # AF_KCM, KCMPROTO_CONNECTED
	except OSError as e:
	    print(errno.errorcode.get(e.errno, e.errno)); raise SystemExit(1)
	EOF
	) && return 0
	KP_WHY="kernel $(uname -r) has no AF_KCM: socket(AF_KCM) failed with ${err##*$'\n'} (no CONFIG_AF_KCM or kcm module)"
	return 1
}

kp_cgroup_new() {
	local cg=$KP_CGROUP2/kproxy-test.$KP_CASE.$$.$1
	mkdir "$cg" || return 1
	# Usually called as cg=$(kp_cgroup_new x), a subshell: remember it in a file.
	echo "$cg" >>"$KP_TMP/.cgroups"
	echo "$cg"
}
