#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# A reset on one side becomes a reset on the other, each way; a client that
# vanishes mid-transfer is cleaned up, and a concurrent flow loses nothing.
. "$(dirname "$0")/../lib.sh"
require_root
P="python3 $KP_ROOT/tests/peer.py"
echo "proxy rst listen tcp://127.0.0.1:8004 backend tcp://127.0.0.1:9004" > "$KP_TMP/kproxy.conf"
kp_daemon_start || { t_fail start "kproxyd did not start"; exit 1; }

$P server 9004 expect-reset > "$KP_TMP/s.out" 2>&1 & spid=$!
wait_port 127.0.0.1 9004
$P client 8004 send-and-reset 100000 >/dev/null 2>&1
if wait $spid; then t_pass client_reset_reaches_backend; else
	t_fail client_reset_reaches_backend "$(cat "$KP_TMP/s.out")"; fi

$P server 9004 send-and-reset 100000 > "$KP_TMP/s.out" 2>&1 & spid=$!
wait_port 127.0.0.1 9004
if out=$(timeout 30 $P client 8004 expect-reset 2>&1); then t_pass backend_reset_reaches_client; else
	t_fail backend_reset_reaches_client "$out"; fi
wait $spid

# A client killed in the middle of a transfer, next to a healthy flow.
"$KP_BUILD/kpperf" server tcp://127.0.0.1:9005 --mode echo &
wait_port 127.0.0.1 9005
kpctl proxy add vanish listen tcp://127.0.0.1:8005 backend tcp://127.0.0.1:9005 >/dev/null
"$KP_BUILD/kpperf" xfer tcp://127.0.0.1:8005 --bytes 50000000 > "$KP_TMP/good.out" 2>&1 & good=$!
"$KP_BUILD/kpperf" xfer tcp://127.0.0.1:8005 --bytes 500000000 --conns 4 >/dev/null 2>&1 & victim=$!
sleep 1
kill -9 $victim; wait $victim 2>/dev/null
if wait $good; then t_pass healthy_flow_unaffected; else t_fail healthy_flow_unaffected "$(cat "$KP_TMP/good.out")"; fi
for i in $(seq 50); do
	n=$(kpctl -j conn show vanish | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["conns"]))')
	[ "$n" = 0 ] && break; sleep 0.1
done
[ "$n" = 0 ] && t_pass vanished_client_cleaned || t_fail vanished_client_cleaned "$n connections left"
