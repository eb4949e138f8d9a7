#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/fuzz/run.sh [SECONDS]    (make fuzz)
# tests/fuzz/run.sh --probe
#
# Build each libFuzzer target tests/fuzz/fuzz_*.c (make OUT=BUILD BUILD/fuzz/NAME,
# with clang-19) and run it for SECONDS (default 30; two targets, so one
# minute), from its seeds in tests/fuzz/corpus/NAME and the corpus earlier runs
# grew in BUILD/fuzz/corpus/NAME, with the dictionary tests/fuzz/NAME.dict if
# there is one. Prints one line per target:
#
#   fuzz_parse: ok, 1234567 runs in 30 s, coverage 812, corpus 640 inputs
#   fuzz_parse: FAILED: deadly signal, input build/fuzz/artifacts/fuzz_parse-crash-..., log build/fuzz/fuzz_parse.log
#
# and exits 0 iff every target built and ran without a finding. Reproduce a
# finding with BUILD/fuzz/NAME FILE. --probe only says whether clang-19 can
# build a fuzzer here (exit 0), or why not (exit 2).
#
# Environment: KP_BUILD (build directory, default <repo>/build), FUZZ_CC
# (default clang-19), FUZZ_FLAGS (more libFuzzer flags).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd -P)
BUILD=${KP_BUILD:-$ROOT/build}
mkdir -p "$BUILD" && BUILD=$(cd "$BUILD" && pwd -P)
FUZZ_CC=${FUZZ_CC:-$(command -v clang-19 || command -v clang)}
SECS=30

probe() {
	local dir out
	if [ -z "$FUZZ_CC" ]; then
		echo "fuzz: no clang-19: install clang-19 and libclang-rt-19-dev"
		return 2
	fi
	dir=$(mktemp -d "${TMPDIR:-/tmp}/kp-fuzz-probe.XXXXXX")
	printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }\n' >"$dir/p.c"
	if ! out=$("$FUZZ_CC" -fsanitize=fuzzer,address,undefined "$dir/p.c" -o "$dir/p" 2>&1); then
		rm -rf "$dir"
		echo "fuzz: $FUZZ_CC cannot link a libFuzzer target (install libclang-rt-19-dev): $(tail -n 1 <<<"$out")"
		return 2
	fi
	rm -rf "$dir"
	return 0
}

case ${1:-} in
--probe) probe; exit ;;
"") ;;
*)
	if [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -gt 0 ]; then
		SECS=$1
	else
		echo "usage: tests/fuzz/run.sh [SECONDS] | --probe" >&2
		exit 2
	fi
	;;
esac
probe || exit 2

# Per target: the longest input worth trying (the parse target's 12-byte
# config header and 4 KiB of stream, enough for every line parser and the
# small http configs; spec strings are short).
max_len() {
	case $1 in
	fuzz_parse) echo 4108 ;;
	fuzz_spec) echo 256 ;;
	*) echo 4096 ;;
	esac
}

failed=0
for src in "$ROOT"/tests/fuzz/fuzz_*.c; do
	name=${src##*/}
	name=${name%.c}
	bin=$BUILD/fuzz/$name
	log=$BUILD/fuzz/$name.log
	if ! make -s -C "$ROOT" --no-print-directory OUT="$BUILD" FUZZ_CC="$FUZZ_CC" "$bin" >&2; then
		echo "$name: FAILED to build"
		failed=1
		continue
	fi
	corpus=$BUILD/fuzz/corpus/$name
	mkdir -p "$corpus" "$BUILD/fuzz/artifacts"
	dict=()
	[ -f "$ROOT/tests/fuzz/$name.dict" ] && dict=(-dict="$ROOT/tests/fuzz/$name.dict")
	seeds=()
	[ -d "$ROOT/tests/fuzz/corpus/$name" ] && seeds=("$ROOT/tests/fuzz/corpus/$name")
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-max_len="$(max_len "$name")" -artifact_prefix="$BUILD/fuzz/artifacts/$name-" \
		"${dict[@]}" ${FUZZ_FLAGS:-} "$corpus" "${seeds[@]}" >"$log" 2>&1
	rc=$?
	done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
	ninputs=$(find "$corpus" -type f | wc -l)
	if [ $rc = 0 ] && [ -n "$done_line" ]; then
		echo "$name: ok, ${runs:-?} runs in $SECS s, coverage ${cov:-?}, corpus $ninputs inputs"
	else
		what=$(grep -m1 -oE 'ERROR: (libFuzzer|AddressSanitizer|UndefinedBehaviorSanitizer): [^(]*|runtime error: .*|fuzz_[a-z]+: .*' "$log" | head -n 1)
		art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | head -n 1)
		echo "$name: FAILED: ${what:-exit $rc}${art:+, input $art}, log $log"
		failed=1
	fi
done
exit $failed
