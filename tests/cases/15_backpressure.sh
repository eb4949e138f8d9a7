#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# A backend that stops reading: the client is held back by TCP (memory stays
# bounded), and when the backend reads again every byte arrives intact.
. "$(dirname "$0")/../lib.sh"
require_root
P="python3 $KP_ROOT/tests/peer.py"
echo "proxy bp listen tcp://127.0.0.1:8006 backend tcp://127.0.0.1:9006 backlog 1048576" > "$KP_TMP/kproxy.conf"
kp_daemon_start || { t_fail start "kproxyd did not start"; exit 1; }
N=$((128 << 20))
$P server 9006 stall-then-read $N "$KP_TMP/cue" > "$KP_TMP/s.out" 2>&1 & spid=$!
wait_port 127.0.0.1 9006
sent=$(timeout 200 $P client 8006 blast $N 3 "$KP_TMP/cue" | head -1)
# What the client could push while nobody read: socket buffers on three sockets
# plus the 1 MiB kernel backlog bound; far below the 128 MiB it tried.
if [ -n "$sent" ] && [ "$sent" -lt $((40 << 20)) ]; then t_pass bounded_while_stalled
else t_fail bounded_while_stalled "client pushed $sent bytes into a stalled backend: $(kpctl -j stats bp)"; fi
if wait $spid; then t_pass all_bytes_after_stall; else t_fail all_bytes_after_stall "$(cat "$KP_TMP/s.out")"; fi
hits=$(kpctl -j stats bp | tee -a "$KP_TMP/stats.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["proxies"][0]["kernel"]["backlog_hits"])')
[ "$hits" -gt 0 ] && t_pass backlog_counted || t_fail backlog_counted "backlog_hits=$hits"
