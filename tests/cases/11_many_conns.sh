#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# 600 concurrent proxied connections, each with its own verified stream.
. "$(dirname "$0")/../lib.sh"
require_root
ulimit -n 65536
"$KP_BUILD/kpperf" server tcp://127.0.0.1:9002 --mode echo &
wait_port 127.0.0.1 9002
echo "proxy many listen tcp://127.0.0.1:8002 backend tcp://127.0.0.1:9002" > "$KP_TMP/kproxy.conf"
kp_daemon_start || { t_fail start "kproxyd did not start"; exit 1; }
if out=$("$KP_BUILD/kpperf" xfer tcp://127.0.0.1:8002 --bytes 100000 --conns 600 2>&1); then
	t_pass conns_600
else
	t_fail conns_600 "$out"
fi
st=$(kpctl -j stats many)
acc=$(echo "$st" | python3 -c 'import json,sys; print(json.load(sys.stdin)["proxies"][0]["daemon"]["accepted"])')
[ "$acc" = 600 ] && t_pass accepted_600 || t_fail accepted_600 "accepted=$acc: $st"
