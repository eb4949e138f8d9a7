#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Every byte through the kernel proxy, hashed end to end, 1 B to 64 MiB, both
# directions (the echo backend returns what the client sent), IPv4 and IPv6;
# and the counters prove the bytes were redirected in the kernel.
. "$(dirname "$0")/../lib.sh"
require_root

"$KP_BUILD/kpperf" server tcp://127.0.0.1:9001 --mode echo & 
"$KP_BUILD/kpperf" server 'tcp6://[::1]:9001' --mode echo &
wait_port 127.0.0.1 9001
cat > "$KP_TMP/kproxy.conf" <<CONF
proxy v4 listen tcp://127.0.0.1:8001 backend tcp://127.0.0.1:9001
proxy v6 listen tcp6://[::1]:8001 backend tcp6://[::1]:9001
CONF
kp_daemon_start || { t_fail start "kproxyd did not start: $(tail -3 "$KP_TMP/kproxyd.log")"; exit 1; }

for size in 1 1000 65536 1048576 67108864; do
	if out=$("$KP_BUILD/kpperf" xfer tcp://127.0.0.1:8001 --bytes $size 2>&1); then
		t_pass "v4_${size}B"
	else
		t_fail "v4_${size}B" "$out"
	fi
done
for size in 1 1048576 67108864; do
	if out=$("$KP_BUILD/kpperf" xfer 'tcp6://[::1]:8001' --bytes $size 2>&1); then
		t_pass "v6_${size}B"
	else
		t_fail "v6_${size}B" "$out"
	fi
done

# The kernel, not kproxyd, moved the bulk of the bytes.
# Every byte was either redirected by the kernel or relayed by kproxyd (bytes
# passed by the verdict, and sockets that closed before they could enter the
# map, like the 1-byte client that sends and closes at once).
stats=$(kpctl -j stats v4)
read -r rx redir passed user < <(echo "$stats" | python3 -c 'import json,sys; d=json.load(sys.stdin)["proxies"][0]; k=d["kernel"]; print(k["rx_bytes"], k["redir_bytes"], k["passed_bytes"], d["daemon"]["user_bytes"])')
total=$(( 2 * (1 + 1000 + 65536 + 1048576 + 67108864) ))
# How much the kernel redirects depends on timing (a loaded machine passes
# more to kproxyd), so the check is that it redirected at all and that the
# accounting is exact, not a share.
if [ $((redir + user)) = "$total" ] && [ "$redir" -gt 0 ] && [ $((rx - passed)) = "$redir" ]; then
	t_pass kernel_counters
else
	t_fail kernel_counters "redir_bytes=$redir + user_bytes=$user != $total: $stats"
fi
n=$(kpctl -j conn show | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["conns"]))')
[ "$n" = 0 ] && t_pass conns_closed || t_fail conns_closed "$n connections still listed after all ended"
