#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Bad input gets one clear sentence and an exit code scripts can use, and
# costs running flows nothing.
. "$(dirname "$0")/../lib.sh"
require_root
"$KP_BUILD/kpperf" server tcp://127.0.0.1:9008 --mode echo &
wait_port 127.0.0.1 9008
echo "proxy ok listen tcp://127.0.0.1:8008 backend tcp://127.0.0.1:9008" > "$KP_TMP/kproxy.conf"
kp_daemon_start || { t_fail start "kproxyd did not start"; exit 1; }
"$KP_BUILD/kpperf" xfer tcp://127.0.0.1:8008 --bytes 30000000 > "$KP_TMP/x.out" 2>&1 & x=$!

expect() { # name, exit code, text the message must contain, command...
	local name=$1 code=$2 text=$3 out rc; shift 3
	out=$("$@" 2>&1); rc=$?
	if [ $rc = "$code" ] && grep -qi -- "$text" <<<"$out"; then t_pass "$name"
	else t_fail "$name" "exit $rc (want $code), message: $out"; fi
}
A="listen tcp://127.0.0.1:8100 backend tcp://127.0.0.1:9008"
expect bad_scheme 1 "unknown scheme 'http'" kpctl proxy add p1 listen http://127.0.0.1:80 backend tcp://127.0.0.1:9008
expect no_port 1 "no port" kpctl proxy add p1 listen tcp://127.0.0.1 backend tcp://127.0.0.1:9008
expect bad_port 1 "bad port" kpctl proxy add p1 listen tcp://127.0.0.1:99999 backend tcp://127.0.0.1:9008
expect bad_host 1 "bad host" kpctl proxy add p1 listen tcp://foo.example:80 backend tcp://127.0.0.1:9008
expect bad_v6 1 "IPv6" kpctl proxy add p1 listen 'tcp6://[::1:80' backend tcp://127.0.0.1:9008
expect no_backend 1 "at least one 'backend URI'" kpctl proxy add p1 listen tcp://127.0.0.1:8100
expect bad_balance 1 "use rr or hash" kpctl proxy add p1 $A balance lc
expect bad_keyword 1 "unknown keyword" kpctl proxy add p1 $A colour blue
expect port_in_use 1 "port is in use" kpctl proxy add p1 listen tcp://127.0.0.1:9008 backend tcp://127.0.0.1:9008
expect dup_name 1 "exists already" kpctl proxy add ok $A
expect unknown_proxy 1 "no proxy named 'nope'" kpctl stats nope
expect unknown_proxy_del 1 "no proxy named 'nope'" kpctl proxy del nope
expect unknown_cmd 2 "unknown command" kpctl frobnicate
expect json_error 1 '"error"' kpctl -j proxy del nope
expect no_daemon 3 "is kproxyd running" "$KP_BUILD/kproxyctl" -s "$KP_TMP/none.sock" stats
# Not root: the CLI is refused by the control socket, the daemon refuses to start.
expect not_root_ctl 4 "root" setpriv --reuid=65534 --regid=65534 --clear-groups "$KP_BUILD/kproxyctl" -s "$KP_TMP/ctl.sock" stats
expect not_root_daemon 4 "run it as root, or give it CAP_BPF.*missing: CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_SYS_ADMIN" setpriv --reuid=65534 --regid=65534 --clear-groups "$KP_BUILD/kproxyd" -f -s "$KP_TMP/x.sock" -P /sys/fs/bpf/kpx
# Root without CAP_BPF/CAP_PERFMON (a container that dropped them): refused, the missing ones named.
expect root_without_cap_bpf 4 "missing: CAP_BPF CAP_PERFMON)" setpriv --bounding-set=-bpf,-perfmon "$KP_BUILD/kproxyd" -f -s "$KP_TMP/x2.sock" -P /sys/fs/bpf/kpx2
expect second_daemon 3 "another kproxyd" "$KP_BUILD/kproxyd" -f -s "$KP_TMP/ctl.sock" -P /sys/fs/bpf/kproxy -c "$KP_TMP/kproxy.conf"
# Same pins, its own control socket: refused before it touches the dataplane.
expect second_daemon_same_pins 3 "uses the pin directory" "$KP_BUILD/kproxyd" -f -s "$KP_TMP/z.sock" -P /sys/fs/bpf/kproxy -c "$KP_TMP/kproxy.conf"
printf 'proxy a listen tcp://127.0.0.1:1 backend\n' > "$KP_TMP/bad.conf"
expect bad_config 3 "bad.conf:1" "$KP_BUILD/kproxyd" -f -s "$KP_TMP/y.sock" -P /sys/fs/bpf/kpy -c "$KP_TMP/bad.conf"
# Control socket and pins are not world-accessible.
m=$(stat -c %a "$KP_TMP/ctl.sock"); d=$(stat -c %a /sys/fs/bpf/kproxy)
[ "$m" = 600 ] && [ "$d" = 700 ] && t_pass permissions || t_fail permissions "socket $m, pin dir $d"
# max_conns: the connection over the limit is reset, the others work.
kpctl proxy add lim listen tcp://127.0.0.1:8101 backend tcp://127.0.0.1:9008 max_conns 1 >/dev/null
"$KP_BUILD/kpperf" rr tcp://127.0.0.1:8101 --conns 1 --size 100 --time 2 > "$KP_TMP/l.out" 2>&1 & l=$!
sleep 0.3
expect max_conns_reject 0 "" "$KP_BUILD/kpperf" xfer tcp://127.0.0.1:8101 --bytes 10 --expect-reset
wait $l && t_pass max_conns_first_ok || t_fail max_conns_first_ok "$(cat "$KP_TMP/l.out")"
# Garbage on the control socket.
out=$(printf 'garbage\n' | timeout 5 python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read()); print(s.recv(4096).decode())' "$KP_TMP/ctl.sock")
grep -q malformed <<<"$out" && t_pass ctl_garbage || t_fail ctl_garbage "$out"
if wait $x; then t_pass flow_unaffected; else t_fail flow_unaffected "$(cat "$KP_TMP/x.out")"; fi
