#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Local acceleration: TCP connections between two local sockets in a cgroup,
# on a named port, move their bytes with sk_msg instead of TCP. Unmodified
# peers (kpperf, curl, a Python HTTP server), every byte checked; the same
# transfers outside the cgroup go through TCP and give identical bytes;
# 'accel del' stops it for new connections and removes the hook.
. "$(dirname "$0")/../lib.sh"
require_root

ip addr add ::1/128 dev lo 2>/dev/null
cg=$(kp_cgroup_new app)
in_cg() { local g=$1; shift; sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$g" "$@"; }
hooks() { bpftool -j cgroup show "$1" | python3 -c 'import json,sys; t=sys.stdin.read().strip(); print(len(json.loads(t)) if t else 0)'; }
acc() { kpctl -j accel show side | python3 -c "import json,sys; print(json.load(sys.stdin)['accels'][0]['stats']['$1'])"; }

: > "$KP_TMP/kproxy.conf"
kp_daemon_start || { t_fail start "kproxyd did not start: $(tail -3 "$KP_TMP/kproxyd.log")"; exit 1; }
t_check accel_add kpctl accel add side cgroup "$cg" port 9300 port 9301 port 9302
[ "$(hooks "$cg")" = 1 ] && t_pass sockops_attached || t_fail sockops_attached "$(bpftool cgroup show "$cg")"

in_cg "$cg" "$KP_BUILD/kpperf" server tcp://127.0.0.1:9300 --mode echo &
in_cg "$cg" "$KP_BUILD/kpperf" server 'tcp6://[::1]:9301' --mode echo &
mkdir -p "$KP_TMP/www"; head -c 3000000 /dev/urandom > "$KP_TMP/www/blob"
(cd "$KP_TMP/www" && in_cg "$cg" python3 -m http.server 9302 --bind 127.0.0.1) >/dev/null 2>&1 &
wait_port 127.0.0.1 9300; wait_port 127.0.0.1 9302

big=$((64 << 20)); [ "${KP_IN_VM:-0}" = 1 ] && big=$((16 << 20))
for size in 1 65536 $big; do
	t_check "v4_${size}B" in_cg "$cg" "$KP_BUILD/kpperf" xfer tcp://127.0.0.1:9300 --bytes $size --timeout 30000
done
t_check v6_1MiB in_cg "$cg" "$KP_BUILD/kpperf" xfer 'tcp6://[::1]:9301' --bytes 1048576 --timeout 30000
t_check many_conns in_cg "$cg" "$KP_BUILD/kpperf" xfer tcp://127.0.0.1:9300 --bytes 1048576 --conns 20 --timeout 30000
bytes=$(acc bytes) socks=$(acc socks)
# Each transfer both ways: at least the payload went through sk_msg twice.
[ "$bytes" -ge $((2 * big)) ] && [ "$socks" -ge 44 ] && t_pass sk_msg_carried \
	|| t_fail sk_msg_carried "sk_msg moved $bytes bytes over $socks sockets"
want=$(sha256sum < "$KP_TMP/www/blob")
got=$(in_cg "$cg" curl -sS --max-time 10 http://127.0.0.1:9302/blob | sha256sum)
[ "$got" = "$want" ] && t_pass curl_accelerated || t_fail curl_accelerated "sha256 $got, want $want"

# The sockets view shows accelerated sockets while they are open.
# Two rounds: a client's first send may beat the server socket into the map
# and go through TCP; once the server has read it and answered, the rest is
# accelerated.
in_cg "$cg" python3 -c '
import socket, time
s = socket.create_connection(("127.0.0.1", 9300))
for i in range(2):
    s.sendall(b"x" * 1000)
    d = b""
    while len(d) < 1000: d += s.recv(1000)
print("connected", flush=True); time.sleep(3)' > "$KP_TMP/hold.out" 2>&1 & h=$!
wait_for 5 grep -q connected "$KP_TMP/hold.out"
kpctl -j sockets > "$KP_TMP/sockets.json"
python3 - "$KP_TMP/sockets.json" <<'PY' && t_pass sockets_view || t_fail sockets_view "$(cat "$KP_TMP/sockets.json")"
import json, sys
s = json.load(open(sys.argv[1]))["sockets"]
a = [x for x in s if x.get("mode") == "accelerated" and x["accel"] == "side"
     and x["bytes_sent"] >= 1000]
sys.exit(0 if len(a) == 2 else 1)  # the client and the server side
PY
wait $h

# A restart (SIGUSR2) keeps the accel and its one hook; new connections still take the fast path.
kill -USR2 "$KP_DAEMON_PID"
new_ready() { sed -n '/took over from the previous kproxyd/,$p' "$KP_TMP/kproxyd.log" | grep -q "ready: control socket"; }
wait_for 20 new_ready
b1=$(acc bytes)
t_check after_restart_bytes in_cg "$cg" "$KP_BUILD/kpperf" xfer tcp://127.0.0.1:9300 --bytes 1048576 --timeout 30000
[ "$(hooks "$cg")" = 1 ] && [ "$(acc bytes)" -gt "$b1" ] && t_pass restart_keeps_accel \
	|| t_fail restart_keeps_accel "hooks $(hooks "$cg"), sk_msg bytes $b1 -> $(acc bytes)"

# Outside the cgroup: plain TCP, the same bytes.
b0=$(acc bytes)
t_check outside_same_bytes "$KP_BUILD/kpperf" xfer tcp://127.0.0.1:9300 --bytes $big --timeout 30000
[ "$(acc bytes)" = "$b0" ] && t_pass outside_not_accelerated || t_fail outside_not_accelerated "sk_msg bytes moved $b0 -> $(acc bytes)"

# Bad input.
expect() { local name=$1 text=$2 out rc; shift 2
	out=$(kpctl "$@" 2>&1); rc=$?
	if [ $rc != 0 ] && grep -qi -- "$text" <<<"$out"; then t_pass "$name"; else t_fail "$name" "exit $rc: $out"; fi; }
expect no_port "at least one 'port N'" accel add x cgroup "$cg"
expect port_taken "accelerated already" accel add x cgroup "$cg" port 9300
expect bad_port "needs a number" accel add x cgroup "$cg" port 70000

# Delete: new connections go through TCP again, the hook is gone.
t_check accel_del kpctl accel del side
[ "$(hooks "$cg")" = 0 ] && t_pass sockops_removed || t_fail sockops_removed "$(bpftool cgroup show "$cg")"
t_check after_del_bytes in_cg "$cg" "$KP_BUILD/kpperf" xfer tcp://127.0.0.1:9300 --bytes 1048576 --timeout 30000
