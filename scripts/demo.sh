#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# kproxy's main job on the shipped configuration: two local echo backends,
# kproxyd proxying tcp://127.0.0.1:18080 to them through the kernel, traffic
# whose every byte is checked, and what moved through the kernel. Ends by
# itself (or on Ctrl-C) and leaves nothing behind.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
B=$top/build
tmp=$(mktemp -d /tmp/kproxy-demo.XXXXXX)
pins=/sys/fs/bpf/kproxy-demo
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	# Pins outlive kproxyd on purpose (restart); the demo removes its own.
	rm -rf "$pins" "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "demo: run as root: kproxyd loads BPF programs" >&2; exit 4; }
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

for port in 18090 18091; do
	"$B/kpperf" server "tcp://127.0.0.1:$port" --mode echo & pids+=($!)
done
"$B/kproxyd" -f -c "$top/etc/kproxy.conf" -s "$tmp/ctl.sock" -P "$pins" 2>"$tmp/kproxyd.log" &
pids+=($!)
for i in $(seq 100); do [ -S "$tmp/ctl.sock" ] && break; sleep 0.1; done
if ! [ -S "$tmp/ctl.sock" ]; then
	echo "demo: kproxyd did not start:" >&2; cat "$tmp/kproxyd.log" >&2; exit 1
fi
ctl() { "$B/kproxyctl" -s "$tmp/ctl.sock" -P "$pins" "$@"; }

echo "== kproxyd proxies tcp://127.0.0.1:18080 to two echo backends, in the kernel"
ctl proxy show
echo
echo "== 64 MiB each way over 4 connections, every byte checked"
"$B/kpperf" xfer tcp://127.0.0.1:18080 --bytes $((64 << 20)) --conns 4 || exit 1
echo
echo "== request/response, 1 connection, 1-byte messages, 3 s"
"$B/kpperf" rr tcp://127.0.0.1:18080 --conns 1 --size 1 --time 3 || exit 1
echo
echo "== what went through the kernel"
ctl stats demo
echo
echo "kproxyd's log:"; sed 's/^/  /' "$tmp/kproxyd.log"
echo "demo done."
