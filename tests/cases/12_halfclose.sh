#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Half-close each way: the FIN crosses the proxy after the last byte, and the
# other direction keeps flowing until its own FIN.
. "$(dirname "$0")/../lib.sh"
require_root
P="python3 $KP_ROOT/tests/peer.py"
cat > "$KP_TMP/kproxy.conf" <<CONF
proxy hc listen tcp://127.0.0.1:8003 backend tcp://127.0.0.1:9003
CONF
kp_daemon_start || { t_fail start "kproxyd did not start"; exit 1; }

run_pair() { # name, server args, client args
	local name=$1 sargs=$2 cargs=$3 sout cout
	$P server 9003 $sargs > "$KP_TMP/s.out" 2>&1 & local spid=$!
	wait_port 127.0.0.1 9003
	cout=$(timeout 60 $P client 8003 $cargs 2>&1); local crc=$?
	wait $spid; local src=$?
	if [ $crc = 0 ] && [ $src = 0 ]; then t_pass "$name"; else
		t_fail "$name" "client($crc): $cout; server($src): $(cat "$KP_TMP/s.out")"; fi
}
# client -> backend FIN first, then the backend answers and closes
run_pair client_fin_first_small "read-then-reply 1000 5000" "write-then-read 1000 5000"
run_pair client_fin_first_large "read-then-reply 20000000 30000000" "write-then-read 20000000 30000000"
# backend -> client FIN first, then the client still sends
run_pair backend_fin_first_small "send-then-read 5000 1000" "read-then-write 5000 1000"
run_pair backend_fin_first_large "send-then-read 30000000 20000000" "read-then-write 30000000 20000000"
