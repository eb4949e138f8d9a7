#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# 'proxy del' with live connections: the port closes at once, the live
# connections run to their end with every byte, then the proxy is gone.
. "$(dirname "$0")/../lib.sh"
require_root
"$KP_BUILD/kpperf" server tcp://127.0.0.1:9007 --mode echo &
wait_port 127.0.0.1 9007
echo "proxy del1 listen tcp://127.0.0.1:8007 backend tcp://127.0.0.1:9007" > "$KP_TMP/kproxy.conf"
kp_daemon_start || { t_fail start "kproxyd did not start"; exit 1; }
"$KP_BUILD/kpperf" xfer tcp://127.0.0.1:8007 --bytes 100000000 --conns 2 > "$KP_TMP/x.out" 2>&1 & x=$!
sleep 0.5
if kpctl proxy del del1; then t_pass del_ok; else t_fail del_ok "proxy del failed"; fi
if "$KP_BUILD/kpperf" xfer tcp://127.0.0.1:8007 --bytes 10 --expect-fail >/dev/null 2>&1; then
	t_pass new_conns_refused; else t_fail new_conns_refused "the port still accepts"; fi
if wait $x; then t_pass live_conns_complete; else t_fail live_conns_complete "$(cat "$KP_TMP/x.out")"; fi
sleep 0.2
out=$(kpctl -j proxy show)
echo "$out" | grep -q del1 && t_fail gone "$out" || t_pass gone
kpctl proxy del del1 >/dev/null 2>&1; [ $? = 1 ] && t_pass del_unknown_fails || t_fail del_unknown_fails "deleting twice did not fail"
