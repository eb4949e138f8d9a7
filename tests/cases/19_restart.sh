#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# kproxyd restarts (SIGUSR2: re-exec with the sockets handed over) under
# traffic: live connections survive with every byte, the listener never
# closes, the proxies and counters carry over.
. "$(dirname "$0")/../lib.sh"
require_root
"$KP_BUILD/kpperf" server tcp://127.0.0.1:9031 --mode echo &
wait_port 127.0.0.1 9031
echo "proxy rs listen tcp://127.0.0.1:8031 backend tcp://127.0.0.1:9031" > "$KP_TMP/kproxy.conf"
kp_daemon_start || { t_fail start "kproxyd did not start"; exit 1; }
kpctl proxy add stall listen tcp://127.0.0.1:8032 backend tcp://127.0.0.1:9032 >/dev/null
# One connection certain to live through the restart: its backend reads nothing until told.
python3 "$KP_ROOT/tests/peer.py" server 9032 stall-then-read 30000000 "$KP_TMP/go" > "$KP_TMP/s.out" 2>&1 & s=$!
wait_port 127.0.0.1 9032
python3 "$KP_ROOT/tests/peer.py" client 8032 blast 30000000 1 > "$KP_TMP/c.out" 2>&1 & c=$!
"$KP_BUILD/kpperf" xfer tcp://127.0.0.1:8031 --bytes 150000000 --conns 4 > "$KP_TMP/x.out" 2>&1 & x=$!
sleep 0.5
before=$(kpctl -j conn show | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["conns"]))')
kill -USR2 "$KP_DAEMON_PID"
# The old control socket file stays until the new process replaces it: wait for the log.
new_ready() { sed -n '/took over from the previous kproxyd/,$p' "$KP_TMP/kproxyd.log" | grep -q "ready: control socket"; }
if wait_for 20 new_ready; then
	t_pass restarted
else
	t_fail restarted "$(tail -5 "$KP_TMP/kproxyd.log")"
fi
after=$(kpctl -j conn show stall | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["conns"]))')
[ "$before" -ge 1 ] && [ "$after" = 1 ] && t_pass conns_handed_over || t_fail conns_handed_over "before $before, after $after"
: > "$KP_TMP/go"
# New connections during and after the restart are served too.
"$KP_BUILD/kpperf" xfer tcp://127.0.0.1:8031 --bytes 1000000 --conns 8 > "$KP_TMP/y.out" 2>&1 && t_pass new_conns_after_restart || t_fail new_conns_after_restart "$(cat "$KP_TMP/y.out")"
if wait $x; then t_pass live_conns_survive; else t_fail live_conns_survive "$(cat "$KP_TMP/x.out")"; fi
if wait $s && wait $c; then t_pass stalled_conn_survives; else t_fail stalled_conn_survives "$(cat "$KP_TMP/s.out" "$KP_TMP/c.out")"; fi
acc=$(kpctl -j stats rs | python3 -c 'import json,sys; print(json.load(sys.stdin)["proxies"][0]["daemon"]["accepted"])')
[ "$acc" = 12 ] && t_pass counters_carried || t_fail counters_carried "accepted=$acc (want 12)"
kill -0 "$KP_DAEMON_PID" && t_pass same_pid || t_fail same_pid "kproxyd's pid changed"
