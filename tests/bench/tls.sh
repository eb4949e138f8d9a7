#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# tests/bench/tls.sh: TLS termination side by side, in one VM boot per kernel
# (this host's kernel has no kTLS; tests/vm/vmrun.sh boots Debian's stock one
# under QEMU and runs tests/bench/tls_inner.sh in it).
#
# Setups, all terminating TLS 1.3 with TLS_AES_128_GCM_SHA256 (forced on both
# ends), the same ECDSA certificate, the same plain-TCP kpperf backends:
#   kproxy      kproxyd tls:// listener: the handshake in kptlsd (gnutls), the
#               records in the kernel (kTLS), the plaintext spliced
#   haproxy     HAProxy 2.6 (OpenSSL 3.0), mode tcp, bind ... ssl crt
#   nginx       nginx 1.22 stream module, listen ... ssl
#   direct-tls  no proxy: openssl s_server is the TLS server (a reference
#               for what TLS alone costs; a different server program)
# Tests, with real clients (OpenSSL 3.0):
#   download    curl over TLS from a kpperf source, one connection, BENCH_TIME s
#   upload      curl -T - (chunked, from /dev/zero) into a kpperf sink
#   handshake   openssl s_time -new: full handshakes one after another
# Figures: MB/s, CPU seconds per GB (busy jiffies of the whole VM from
# /proc/stat around each run, minus the idle background), handshakes/s and CPU
# ms per handshake; each the median of BENCH_REPS runs, runs interleaved
# (rep, test, setup); every x column is the ratio to haproxy. Before a setup
# is measured, the negotiated protocol and cipher are checked, and a 16 MiB
# download and upload through it are checked byte for byte by kpperf's
# verifier (a sha256 of zeros for direct-tls): a broken setup gets no number.
#
# Environment:
#   BENCH_TIME         seconds per run (default 5)
#   BENCH_REPS         runs per figure, median reported (default 3)
#   BENCH_TLS_KERNELS  kernels to boot, one VM each (default 6.1; "6.1 6.12")
#   BENCH_TLS_SETUPS   default: kproxy haproxy nginx direct-tls
#   VMRUN_SMP (2), VMRUN_MEM (2G), VMRUN_TIMEOUT (derived)
#   KP_BUILD           build directory (default build/; make all first)
# Output: the table on stdout; tests/bench/out/tls/results.csv, and per kernel
# raw-K.jsonl, meta-K.json, checks-K.txt, logs-K/.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd "$HERE/../.." && pwd -P)
export KP_BUILD=${KP_BUILD:-$ROOT/build}
export BENCH_TIME=${BENCH_TIME:-5}
export BENCH_REPS=${BENCH_REPS:-3}
export BENCH_TLS_SETUPS=${BENCH_TLS_SETUPS:-kproxy haproxy nginx direct-tls}
KERNELS=${BENCH_TLS_KERNELS:-6.1}
OUT=$HERE/out/tls
if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi

die() { echo "tls: $*" >&2; exit 1; }
[ "$EUID" = 0 ] || die "needs root (the VM runs the benchmark as root); try: sudo $0"
case $BENCH_TIME in ''|*[!0-9]*|0) die "BENCH_TIME must be whole seconds" ;; esac
case $BENCH_REPS in ''|*[!0-9]*|0) die "BENCH_REPS must be a positive number" ;; esac
for b in kpperf kproxyd kproxyctl kptlsd; do
	[ -x "$KP_BUILD/$b" ] || die "$KP_BUILD/$b is not built; run make all"
done
# The VM runs this machine's userland: what is missing here is missing there.
need() { command -v "$1" >/dev/null || die "'$1' is missing; run scripts/install-deps.sh --bench"; }
for t in openssl curl socat certtool qemu-system-x86_64; do need "$t"; done
for s in $BENCH_TLS_SETUPS; do
	case $s in
	haproxy) need haproxy ;;
	nginx) need nginx
		[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] ||
			die "nginx's stream module is missing (libnginx-mod-stream); run scripts/install-deps.sh --bench" ;;
	kproxy|direct-tls) ;;
	*) die "unknown setup '$s' (kproxy haproxy nginx direct-tls)" ;;
	esac
done

mkdir -p "$OUT" || exit 1
rm -rf "$OUT"/raw-*.jsonl "$OUT"/meta-*.json "$OUT"/checks-*.txt "$OUT"/kproxy-stats-*.json \
	"$OUT"/logs-* "$OUT/results.csv" "$OUT/bin" "$OUT/pki" "$OUT"/trace-*.txt
# The VM runs the binaries while others may rebuild build/: a file replaced
# under the VM's 9p cache crashes whatever starts from it next. Run a copy,
# taken when no build is writing (the copy equals the original a second later).
snapshot() {
	local try b ok
	for ((try = 0; try < 10; try++)); do
		rm -rf "$OUT/bin"
		mkdir -p "$OUT/bin" || return 1
		ok=1
		for b in kpperf kproxyd kproxyctl kptlsd; do
			cp -p "$KP_BUILD/$b" "$OUT/bin/$b" || ok=0
		done
		sleep 1
		for b in kpperf kproxyd kproxyctl kptlsd; do
			cmp -s "$KP_BUILD/$b" "$OUT/bin/$b" || ok=0
		done
		[ $ok = 1 ] && return 0
		sleep 2
	done
	return 1
}
snapshot || die "could not copy the binaries from $KP_BUILD (a build kept changing them)"
SRC="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $(git -C "$ROOT" status --porcelain 2>/dev/null | grep -vc '^??') modified files in the worktree"
echo "binaries of $KP_BUILD at $(date -u -r "$KP_BUILD/kproxyd" '+%F %T') UTC (HEAD $SRC)" >"$OUT/bin/SOURCE"
export KP_BUILD=$OUT/bin
nsetups=$(wc -w <<<"$BENCH_TLS_SETUPS")
# boot, certificates, checks, the runs with their overhead (exec is slow
# under TCG), and a generous margin
export VMRUN_TIMEOUT=${VMRUN_TIMEOUT:-$((600 + nsetups * 3 * BENCH_REPS * (BENCH_TIME + 10)))}
export VMRUN_SMP=${VMRUN_SMP:-2} VMRUN_MEM=${VMRUN_MEM:-2G} VMRUN_QUIET=1
export VMRUN_PASSENV="BENCH_TIME BENCH_REPS BENCH_TLS_SETUPS BENCH_TLS_OUT BENCH_TLS_LABEL BENCH_TLS_PKI BENCH_TLS_TRACE KP_BUILD"
# The certificates: made here, where key generation is not emulated.
export BENCH_TLS_PKI=$OUT/pki
bash "$ROOT/tests/tlscerts.sh" "$BENCH_TLS_PKI" || die "tests/tlscerts.sh failed (certtool: run scripts/install-deps.sh --bench)"
export BENCH_TLS_OUT=$OUT

START=$SECONDS
echo "tls: kernels $KERNELS, $VMRUN_SMP vCPUs, $VMRUN_MEM, QEMU/TCG; $BENCH_TIME s per run, median of $BENCH_REPS"
echo "tls: $(cat "$OUT/bin/SOURCE")"
cd "$ROOT" || exit 1
LABELS=()
for k in $KERNELS; do
	export BENCH_TLS_LABEL=$k
	t0=$SECONDS
	tests/vm/vmrun.sh "$k" bash tests/bench/tls_inner.sh
	rc=$?
	echo "tls: kernel $k: exit $rc after $((SECONDS - t0)) s"
	[ -s "$OUT/meta-$k.json" ] && LABELS+=("$k")
done
[ ${#LABELS[@]} -gt 0 ] || die "no VM produced results"

"$PYTHON" - "$OUT" "${LABELS[@]}" <<'EOF'
import json, statistics, sys
out, labels = sys.argv[1], sys.argv[2:]
# (test, metric, unit, better)
METRICS = [("download", "mb_s", "MB/s", "higher"), ("download", "cpu_s_per_gb", "CPU-s/GB", "lower"),
           ("upload", "mb_s", "MB/s", "higher"), ("upload", "cpu_s_per_gb", "CPU-s/GB", "lower"),
           ("handshake", "hs_s", "handshakes/s", "higher"), ("handshake", "cpu_ms_per_hs", "CPU-ms/hs", "lower"),
           ("handshake", "server_ms_per_hs", "server CPU-ms/hs", "lower")]
csv = open(out + "/results.csv", "w")
csv.write("kernel,setup,test,metric,median,ratio_to_haproxy,better,runs_ok,runs,values,note\n")

def figures(r, bg):
    wall = r["window_s"]
    cpu_raw = r["busy_ticks"] / r["hz"]
    cpu = max(0.0, cpu_raw - bg * wall)
    if r["test"] == "handshake":
        return {"hs_s": r["amount"] / wall, "cpu_ms_per_hs": 1000 * cpu / r["amount"],
                "server_ms_per_hs": 1000 * r["server_ticks"] / r["hz"] / (r["amount"] + 1)}
    return {"mb_s": r["amount"] / wall / 1e6, "cpu_s_per_gb": cpu / (r["amount"] / 1e9)}

def fmt(v, metric):
    if v is None:
        return "n/a"
    return "%.0f" % v if metric in ("mb_s", "hs_s") and v >= 100 else "%.2f" % v if v < 10 else "%.1f" % v

for label in labels:
    meta = json.load(open("%s/meta-%s.json" % (out, label)))
    runs = [json.loads(l) for l in open("%s/raw-%s.jsonl" % (out, label)) if l.strip()]
    bg = meta["background_cpus"]
    setups = meta["setups"].split()
    med, notes, kp, avail = {}, {}, {}, {}
    for s in setups:
        for test, metric, unit, better in METRICS:
            rs = [r for r in runs if r["setup"] == s and r["test"] == test]
            ok = [r for r in rs if r["rc"] == 0]
            vals = [figures(r, bg)[metric] for r in ok]
            med[s, test, metric] = statistics.median(vals) if vals else None
            note = meta["na"].get(s, "")
            bad = [r["err"] for r in rs if r["rc"] != 0]
            if bad:
                note = "%d of %d runs failed: %s" % (len(bad), len(rs), bad[0])
            av = [r["total_ticks"] / (meta["ncpu"] * r["hz"] * r["window_s"]) for r in ok if r["window_s"] > 0]
            avail[s, test] = statistics.median(av) if av else None
            notes[s, test, metric] = (len(ok), len(rs), vals, note)
        # kproxy's own counters around its runs
        for test in ("download", "upload", "handshake"):
            d = {}
            for r in runs:
                if r["setup"] != s or r["test"] != test or not r["kstats_before"] or not r["kstats_after"]:
                    continue
                for p0, p1 in zip(r["kstats_before"]["proxies"], r["kstats_after"]["proxies"]):
                    for f in ("tls_handshakes", "tls_failed", "spliced_bytes", "user_bytes", "resets",
                              "tls_alerts", "backend_fail"):
                        d[f] = d.get(f, 0) + p1["daemon"].get(f, 0) - p0["daemon"].get(f, 0)
            if d:
                kp[test] = d
    print()
    print("### TLS termination, kernel %s (%s), %d vCPUs under QEMU/TCG, %s, %d s runs, median of %d"
          % (label, meta["uname"], meta["ncpu"], meta["cipher"], meta["time"], meta["reps"]))
    print()
    print("Under TCG the CPU is emulated: absolute figures say nothing about this machine;")
    print("only the ratios between setups of this one VM run mean anything. x = ratio to haproxy;")
    print("CPU is the whole VM's (client, server, proxy, kernel), minus %.3f idle CPUs." % bg)
    print()
    print("Handshakes: s_time makes them one after another; CPU-ms/handshake is the whole VM's (client")
    print("too), server CPU-ms the TLS server's processes alone (kproxyd + kptlsd, haproxy, nginx, s_server).")
    print()
    print("| setup | download MB/s | x | CPU-s/GB | x | upload MB/s | x | CPU-s/GB | x | handshakes/s | x "
          "| CPU-ms/handshake | x | server CPU-ms/hs | x |")
    print("|---|" + "---:|" * 14)
    for s in setups:
        cells = []
        for test, metric, unit, better in METRICS:
            v = med[s, test, metric]
            base = med.get(("haproxy", test, metric))
            x = v / base if v is not None and base else None
            nok, n, vals, note = notes[s, test, metric]
            cell = fmt(v, metric)
            if v is not None and nok < n:
                cell += " (%d/%d)" % (nok, n)
            if v is not None and avail[s, test] is not None and avail[s, test] < 0.85:
                cell += " †"
            cells += [cell, "x%.2f" % x if x is not None else "n/a"]
            if avail[s, test] is not None:
                note = ("guest CPU availability %.2f; " % avail[s, test]) + note
            csv.write('%s,%s,%s,%s,%s,%s,%s,%d,%d,"%s","%s"\n' % (
                label, s, test, metric, "" if v is None else "%.6g" % v, "" if x is None else "%.4f" % x,
                better, nok, n, " ".join("%.6g" % y for y in vals), note.replace('"', "'")))
        print("| %s | %s |" % (s, " | ".join(cells)))
    av = [a for a in avail.values() if a is not None]
    if av:
        print()
        print("Guest CPU availability (ticks the guest saw / CPUs x window; below 1 the host ran something")
        print("else on our vCPUs' cores): median %.2f, lowest %.2f. † marks figures whose runs saw less than"
              % (statistics.median(av), min(av)))
        print("0.85: throughput there is the host's, CPU-s per GB (ticks the guest did run) holds up better.")
    for s in setups:
        if s in meta["na"]:
            print("\n%s: n/a (%s)" % (s, meta["na"][s]))
    for (s, test, metric), (nok, n, vals, note) in sorted(notes.items()):
        if note and s not in meta["na"] and metric in ("mb_s", "hs_s"):
            print("\n%s %s: %s" % (s, test, note))
    if kp:
        print()
        for test, d in kp.items():
            moved = d.get("spliced_bytes", 0) + d.get("user_bytes", 0)
            print("kproxy %-9s: %d handshakes, %d failed, %d alerts, %d resets, %d backend failures; "
                  "%.1f MB spliced, %.1f MB through user space"
                  % (test, d.get("tls_handshakes", 0), d.get("tls_failed", 0), d.get("tls_alerts", 0),
                     d.get("resets", 0), d.get("backend_fail", 0), d.get("spliced_bytes", 0) / 1e6,
                     d.get("user_bytes", 0) / 1e6))
csv.close()
print()
print("csv: " + out + "/results.csv")
EOF
echo "tls: done in $((SECONDS - START)) s"
