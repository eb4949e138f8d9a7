#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/run.sh [REGEX...]
#
# The test command (`make test` runs it after building): tests/suite.sh on
# this machine's kernel, then on Debian's stock 6.1 and 6.12 booted in QEMU
# (tests/vm/vmrun.sh), then one line per kernel and a last line
# "N passed, N failed, N skipped" summed over all of them. A VM that does not
# boot or a suite that dies counts as a failure. Exit 0 iff nothing failed.
# REGEXes select cases, as for tests/suite.sh.
#
# Environment:
#   KP_KERNELS   which kernels, in order (default "host 6.1 6.12")
#   KP_VM_JOBS   how many VMs at once (default 1: on a 2-core machine two TCG
#                VMs at once took 37 s where one after the other took 21 s);
#                with more, each VM's output is printed whole when it ends
#   KP_OUT       where results and logs go (default build/test-results); must
#                be inside the repository, which is all a VM can write to
#   Any other KP_* variable (KP_CASE_TIMEOUT, ...) reaches the suite in the VMs.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$ROOT" || exit 1
KERNELS=${KP_KERNELS:-host 6.1 6.12}
VM_JOBS=${KP_VM_JOBS:-1}
OUT=${KP_OUT:-build/test-results}
export VMRUN_QUIET=1 VMRUN_TIMEOUT=${VMRUN_TIMEOUT:-3600}

if [ "$EUID" != 0 ]; then
	echo "run.sh: must run as root (the tests create namespaces, load BPF and boot VMs)" >&2
	exit 1
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd -P)
case $OUT/ in
"$ROOT"/*) ;;
*) echo "run.sh: KP_OUT must be inside $ROOT: the VMs can write nowhere else" >&2; exit 1 ;;
esac

# The suite inside a VM sees only what vmrun passes: hand it our KP_* settings.
PASS_ENV=()
for v in $(compgen -e | grep '^KP_' | grep -vx 'KP_KERNELS\|KP_VM_JOBS\|KP_OUT\|KP_RESULTS'); do
	PASS_ENV+=("$v=${!v}")
done

# start_kernel LABEL: run the suite on one kernel; results in $OUT/LABEL.tsv,
# output in $OUT/LABEL.log, exit status in $OUT/LABEL.rc.
start_kernel() {
	local k=$1
	rm -f "$OUT/$k.tsv" "$OUT/$k.rc"
	if [ "$k" = host ]; then
		KP_RESULTS=$OUT/$k.tsv tests/suite.sh -k host "${FILTERS[@]}"
	else
		# The VMs load tls and kcm on purpose: there, missing means broken.
		tests/vm/vmrun.sh "$k" env "${PASS_ENV[@]}" KP_RESULTS="$OUT/$k.tsv" \
			KP_IN_VM=1 KP_EXPECT_FEATURES="ktls kcm" tests/suite.sh -k "$k" "${FILTERS[@]}"
	fi
}

FILTERS=("$@")
declare -A PIDS=()
START=$SECONDS

# Host first, alone: the VMs would eat both cores under its timing-sensitive cases.
for k in $KERNELS; do
	[ "$k" = host ] || continue
	echo "=== host: $(uname -r)"
	start_kernel host 2>&1 | tee "$OUT/host.log"
	echo "${PIPESTATUS[0]}" >"$OUT/host.rc"
done

vms=()
for k in $KERNELS; do
	[ "$k" = host ] || vms+=("$k")
done
i=0
while [ $i -lt ${#vms[@]} ]; do
	# A batch of up to VM_JOBS VMs; each one's output is buffered and printed
	# whole, so that the two consoles do not interleave.
	batch=("${vms[@]:i:VM_JOBS}")
	i=$((i + VM_JOBS))
	for k in "${batch[@]}"; do
		if [ ${#batch[@]} = 1 ]; then
			echo "=== $k: Debian's stock kernel in QEMU"
			start_kernel "$k" 2>&1 | tee "$OUT/$k.log"
			echo "${PIPESTATUS[0]}" >"$OUT/$k.rc"
		else
			( start_kernel "$k" >"$OUT/$k.log" 2>&1; echo $? >"$OUT/$k.rc" ) &
			PIDS[$k]=$!
		fi
	done
	if [ ${#batch[@]} -gt 1 ]; then
		for k in "${batch[@]}"; do
			wait "${PIDS[$k]}"
			echo "=== $k: Debian's stock kernel in QEMU"
			cat "$OUT/$k.log"
		done
	fi
done

# ------------------------------------------------------------------ summary
TP=0 TF=0 TS=0
summary=()
for k in $KERNELS; do
	p=0 f=0 s=0 rel=$k note=
	if [ -s "$OUT/$k.tsv" ]; then
		rel=$(awk -F'\t' 'NR == 1 { print $2 }' "$OUT/$k.tsv")
		p=$(awk -F'\t' '$3 == "PASS"' "$OUT/$k.tsv" | wc -l)
		f=$(awk -F'\t' '$3 == "FAIL"' "$OUT/$k.tsv" | wc -l)
		s=$(awk -F'\t' '$3 == "SKIP"' "$OUT/$k.tsv" | wc -l)
	fi
	rc=$(cat "$OUT/$k.rc" 2>/dev/null || echo 125)
	case $rc in
	0)   [ -s "$OUT/$k.tsv" ] || note="no results were written" ;;
	124) note="the VM timed out after ${VMRUN_TIMEOUT}s" ;;
	125) note="the VM did not boot (see $OUT/$k.log)" ;;
	*)   [ "$f" -gt 0 ] || note="the suite exited $rc without reporting a failure" ;;
	esac
	if [ -n "$note" ]; then
		f=$((f + 1))
		echo "FAIL  $k: $note"
		note=" ($note)"
	fi
	TP=$((TP + p)) TF=$((TF + f)) TS=$((TS + s))
	summary+=("$rel: $p passed, $f failed, $s skipped$note")
done

echo "=== summary ($((SECONDS - START))s)"
printf '%s\n' "${summary[@]}"
echo "$TP passed, $TF failed, $TS skipped"
[ $TF = 0 ]
