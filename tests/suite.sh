#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/suite.sh [-k LABEL] [-v] [REGEX...]
#
# Run every tests/cases/*.sh (sorted; only those whose name matches one of
# the REGEXes if any are given) on the running kernel and print one line per
# result, then "kernel <release>: N passed, N failed, N skipped".
# Exit 0 iff nothing failed.
#
#   -k LABEL  name of this kernel in KP_RESULTS (default: host)
#   -v        print every case's output, not only that of failing cases
#
# Each case runs in a fresh network and mount namespace, in its own session,
# with lo up, a private bpffs at /sys/fs/bpf (its pins vanish with it), cgroup2
# at /sys/fs/cgroup and a tmpfs at /run: cases cannot see each other or the
# host's state, and anything a case leaves behind is its own fault, so the
# suite looks for it afterwards and counts it as a failure: processes still
# in the case's session or network namespace, new /sys/fs/bpf/kproxy* pins in
# the host's bpffs, kproxy-test.* cgroups.
#
# Environment:
#   KP_RESULTS        also write results here, one per line, tab-separated:
#                     LABEL KERNEL-RELEASE STATUS CASE/NAME MESSAGE
#   KP_CASE_TIMEOUT   default per-case timeout in seconds (300); a case file
#                     overrides it with a line "# timeout: N"
#   KP_BUILD          build directory (default: <repo>/build)
#   KP_CASES          directory of case files (default: <repo>/tests/cases)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
LABEL=host
VERBOSE=0
usage() { sed -n '4,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while getopts "k:vh" opt; do
	case $opt in
	k) LABEL=$OPTARG ;;
	v) VERBOSE=1 ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
FILTERS=("$@")

if [ "$EUID" != 0 ]; then
	echo "suite: must run as root (each case gets its own network and mount namespace)" >&2
	exit 1
fi
for tool in unshare setsid ps ip ss; do
	command -v $tool >/dev/null || { echo "suite: '$tool' is missing; run scripts/install-deps.sh --test" >&2; exit 1; }
done

KREL=$(uname -r)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kp-suite.XXXXXX")
CUR_SID="" CUR_WD=""
cleanup() {
	[ -z "$CUR_SID" ] || kill -KILL -- "-$CUR_SID" 2>/dev/null
	[ -z "$CUR_WD" ] || kill -TERM "$CUR_WD" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Cases use Debian's tools (scripts/install-deps.sh), not what a user's shell
# puts first: a pyenv python3 shim runs several programs per call, which under
# TCG took longer than wait_port's 10 s.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}
export KP_BUILD=${KP_BUILD:-$ROOT/build}
export KP_KERNEL_LABEL=$LABEL
[ -z "${KP_RESULTS:-}" ] || : >"$KP_RESULTS"

# The host's bpffs, to tell the case's private one apart and to find leaked pins.
HOST_BPFFS_DEV=
[ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" = bpf_fs ] && HOST_BPFFS_DEV=$(stat -c %d /sys/fs/bpf)
export KP_HOST_BPFFS_DEV=$HOST_BPFFS_DEV
# Where this namespace has cgroup2 (the host has it at /sys/fs/cgroup/unified).
HOST_CGROUP2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)

NPASS=0 NFAIL=0 NSKIP=0

# report STATUS CASE/NAME [MESSAGE]
report() {
	local status=$1 name=$2 msg=${3:-}
	case $status in
	PASS) NPASS=$((NPASS + 1)); printf 'PASS  %s\n' "$name" ;;
	FAIL) NFAIL=$((NFAIL + 1)); printf 'FAIL  %s: %s\n' "$name" "$msg" ;;
	SKIP) NSKIP=$((NSKIP + 1)); printf 'SKIP  %s: %s\n' "$name" "$msg" ;;
	*)    NFAIL=$((NFAIL + 1)); printf 'FAIL  %s: unknown status %q\n' "$name" "$status"; status=FAIL ;;
	esac
	if [ -n "${KP_RESULTS:-}" ]; then
		printf '%s\t%s\t%s\t%s\t%s\n' "$LABEL" "$KREL" "$status" "$name" "$msg" >>"$KP_RESULTS"
	fi
}

# compgen -G prints nothing when nothing matches (a bare glob would give
# itself, or under nullglob make "ls -d" list ".").
host_pins() {
	[ -n "$HOST_BPFFS_DEV" ] || return 0
	compgen -G '/sys/fs/bpf/kproxy*' | sort
}

test_cgroups() {
	[ -n "$HOST_CGROUP2" ] || return 0
	compgen -G "$HOST_CGROUP2/kproxy-test.*"
}

# Processes that belong to a case: in its session, or in its network
# namespace (which also catches a daemon that setsid()s away).
case_procs() {
	local sid=$1 netns=$2 p
	{
		# A zombie is already dead, only not yet reaped by init.
		ps -e -o pid=,sid=,stat= | awk -v s="$sid" '$2 == s && $3 !~ /^Z/ { print $1 }'
		# One stat for all: a readlink per process costs seconds under TCG.
		if [ -n "$netns" ]; then
			stat -c '%n %N' /proc/[0-9]*/ns/net 2>/dev/null |
				awk -v ns="$netns" '{ t = $NF; gsub(/\047/, "", t) } t == ns { split($1, a, "/"); print a[3] }'
		fi
	} | sort -un
}

# What runs inside the new namespaces before the case: the mounts the case
# expects, then exec the case so that its PID is the session's.
NS_SETUP='
set -e
case_file=$1
# Session id: 4th field after "(comm) " in /proc/self/stat; read without a fork.
read -r stat </proc/self/stat
set -- ${stat##*) }
echo "$4 $(readlink /proc/self/ns/net)" >"$KP_CASE_IDS"
# sysfs again, so /sys/class/net shows this namespace; then what hides under it.
mount -t sysfs sysfs /sys
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
mount -t tmpfs -o mode=755 tmpfs /run
ip link set lo up
set +e
exec bash "$case_file"
'

run_case() {
	local file=$1 name timeout res log ids sid netns rc wd timed_out leftovers pins_before pins_after
	local cgs p status rname msg nres=0 had_fail=0 start
	name=${file##*/}
	name=${name%.sh}
	timeout=$(sed -n 's/^#[[:space:]]*timeout:[[:space:]]*\([0-9]\+\).*/\1/p' "$file" | head -n1)
	timeout=${timeout:-${KP_CASE_TIMEOUT:-300}}
	res=$WORK/$name.results
	log=$WORK/$name.log
	ids=$WORK/$name.ids
	: >"$res"
	pins_before=$(host_pins)

	start=${EPOCHREALTIME//[.,]/}
	KP_RESULT_FILE=$res KP_CASE=$name KP_CASE_IDS=$ids \
		setsid unshare -n -m --propagation private bash -c "$NS_SETUP" "$name" "$file" \
		</dev/null >"$log" 2>&1 &
	local pid=$!
	CUR_SID=$pid

	# Watchdog: SIGTERM the case's process group at the deadline (so lib.sh's
	# cleanup runs), SIGKILL a few seconds later.
	(
		trap 'kill $s 2>/dev/null; exit 0' TERM
		sleep "$timeout" & s=$!
		wait $s
		touch "$WORK/$name.timeout"
		kill -TERM -- "-$pid" 2>/dev/null
		sleep 5 & s=$!
		wait $s
		kill -KILL -- "-$pid" 2>/dev/null
	) &
	wd=$!
	CUR_WD=$wd
	wait "$pid"
	rc=$?
	kill -TERM "$wd" 2>/dev/null
	wait "$wd" 2>/dev/null
	CUR_WD=
	timed_out=0
	[ -e "$WORK/$name.timeout" ] && timed_out=1

	sid=$pid netns=
	[ -s "$ids" ] && read -r sid netns <"$ids"
	CUR_SID=$sid

	while IFS=$'\t' read -r status rname msg; do
		nres=$((nres + 1))
		[ "$status" = FAIL ] && had_fail=1
		report "$status" "$name/$rname" "$msg"
	done <"$res"

	if [ $timed_out = 1 ]; then
		report FAIL "$name/timeout" "killed after ${timeout}s"
		had_fail=1
	elif [ "$rc" != 0 ]; then
		report FAIL "$name/exit" "exited with status $rc$([ $nres = 0 ] && echo ' without reporting a result')"
		had_fail=1
	elif [ $nres = 0 ]; then
		report FAIL "$name/exit" "reported no result"
		had_fail=1
	fi

	leftovers=$(case_procs "$sid" "$netns")
	if [ -n "$leftovers" ]; then
		msg=
		for p in $leftovers; do
			msg+=" $p($(cat /proc/"$p"/comm 2>/dev/null))"
		done
		report FAIL "$name/leftovers" "processes still running after the case:$msg"
		had_fail=1
		kill -KILL $leftovers 2>/dev/null
		for ((p = 0; p < 50; p++)); do
			[ -n "$(case_procs "$sid" "$netns")" ] || break
			sleep 0.1
		done
	fi
	CUR_SID=

	pins_after=$(host_pins)
	if [ "$pins_after" != "$pins_before" ]; then
		msg=$(comm -13 <(echo "$pins_before") <(echo "$pins_after") | tr '\n' ' ')
		if [ -n "$msg" ]; then
			report FAIL "$name/pins" "left pins in the host's bpffs (removed): $msg"
			had_fail=1
			# shellcheck disable=SC2086
			rm -rf $msg
		fi
	fi
	cgs=$(test_cgroups)
	if [ -n "$cgs" ]; then
		report FAIL "$name/cgroups" "left cgroups (removed): $(echo $cgs)"
		had_fail=1
		for p in $cgs; do
			rmdir "$p" 2>/dev/null
		done
	fi

	if [ $VERBOSE = 1 ] || [ $had_fail = 1 ]; then
		sed 's/^/    | /' "$log"
		echo "    # $name: $(( (${EPOCHREALTIME//[.,]/} - start) / 1000 )) ms, exit $rc"
	fi
}

echo "# kproxy tests on $KREL ($LABEL)"
SUITE_START=$SECONDS
shopt -s nullglob
ncases=0
for file in "${KP_CASES:-$ROOT/tests/cases}"/*.sh; do
	name=${file##*/}
	name=${name%.sh}
	if [ ${#FILTERS[@]} -gt 0 ]; then
		match=0
		for f in "${FILTERS[@]}"; do
			[[ $name =~ $f ]] && { match=1; break; }
		done
		[ $match = 1 ] || continue
	fi
	ncases=$((ncases + 1))
	run_case "$file"
done
if [ $ncases = 0 ]; then
	report FAIL "suite/cases" "no case matches '${FILTERS[*]:-}'"
fi

echo "# $ncases case(s) in $((SECONDS - SUITE_START))s"
echo "kernel $KREL: $NPASS passed, $NFAIL failed, $NSKIP skipped"
[ $NFAIL = 0 ]
