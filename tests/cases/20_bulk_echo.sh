#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Bulk data both ways at once through an echo backend, the load that found two
# dataplane bugs: bytes handed over twice by the kernel (a retransmission that
# overlaps received data, after TCP dropped segments under receive-memory
# pressure) and a deadlock (a redirected skb stuck in the backend socket's
# psock queue ahead of that socket's own passed bytes). Every byte is checked;
# the streams are long enough that the kernel and kproxyd both move data.
. "$(dirname "$0")/../lib.sh"
require_root

"$KP_BUILD/kpperf" server tcp://127.0.0.1:9020 --mode echo &
wait_port 127.0.0.1 9020
echo "proxy e listen tcp://127.0.0.1:8020 backend tcp://127.0.0.1:9020" > "$KP_TMP/kproxy.conf"
kp_daemon_start || { t_fail start "kproxyd did not start: $(tail -3 "$KP_TMP/kproxyd.log")"; exit 1; }

# Smaller under QEMU/TCG, where loopback moves tens of MB/s.
big=$((256 << 20)) many=$((32 << 20))
[ "${KP_IN_VM:-0}" = 1 ] && big=$((64 << 20)) many=$((8 << 20))
for i in 1 2 3; do
	t_check "one_conn_${i}" "$KP_BUILD/kpperf" xfer tcp://127.0.0.1:8020 --bytes $big --timeout 30000
done
t_check eight_conns "$KP_BUILD/kpperf" xfer tcp://127.0.0.1:8020 --bytes $many --conns 8 --timeout 30000
# Both paths carried data: the kernel redirect and kproxyd's relay.
read -r redir passed overlap < <(kpctl -j stats e | python3 -c '
import json, sys
k = json.load(sys.stdin)["proxies"][0]["kernel"]
print(k["redir_bytes"], k["passed_bytes"], k["overlap_bytes"])')
[ "$redir" -gt 0 ] && t_pass kernel_redirected || t_fail kernel_redirected "redir_bytes=$redir"
echo "redirected $redir passed $passed overlap trimmed $overlap"
