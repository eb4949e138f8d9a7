#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# timeout: 300
# kproxyd restarts (SIGUSR2) with muxes under traffic: their listeners,
# backend connections and clients go over to the new process; messages in
# flight, clients relayed by kproxyd (overflow) and an idle client all
# survive with every byte checked; counters carry over.
. "$(dirname "$0")/../lib.sh"
require_root

IDP=$KP_BUILD/tests/idpeer
kp_bg "$KP_BUILD/kpperf" server tcp://127.0.0.1:9661 --mode echo
kp_bg "$IDP" server 127.0.0.1:9662 --reorder --delay-ms 2
wait_port 127.0.0.1 9661; wait_port 127.0.0.1 9662
: > "$KP_TMP/kproxy.conf"
kp_daemon_start || { t_fail start "kproxyd did not start: $(tail -3 "$KP_TMP/kproxyd.log")"; exit 1; }
mjson() {	# MUX PYTHON-EXPRESSION-ON-m
	kpctl -j mux show "$1" | "$KP_PYTHON" -c "import json,sys; m=json.load(sys.stdin)['muxes'][0]; print($2)"
}
up() { [ "$(mjson "$1" 'int(m["conns_up"] == m["conns"])')" = 1 ]; }
addmux() {	# NAME PORT WORDS...
	local name=$1 port=$2
	shift 2
	t_check "mux_add_$name" kpctl mux add "$name" listen "tcp://127.0.0.1:$port" "$@"
	wait_port 127.0.0.1 "$port"
	wait_for 10 up "$name"
}
addmux ord 7661 backend tcp://127.0.0.1:9661 parser 'len:size=4,be,max=1048576' conns 4
addmux ids 7662 backend tcp://127.0.0.1:9662 parser 'len:size=4,be,max=65536' id 4:4 conns 2
addmux tiny 7663 backend tcp://127.0.0.1:9661 parser 'len:size=4,be,max=65536' conns 1

secs=6; [ "${KP_IN_VM:-0}" = 1 ] && secs=20
# An idle client with a request answered before and one after.
"$KP_PYTHON" - "$KP_TMP/go" > "$KP_TMP/idle.out" 2>&1 <<'PY' &
import os, socket, struct, sys, time
s = socket.create_connection(('127.0.0.1', 7661)); s.settimeout(10)
def call(body):
    m = struct.pack('>I', 4 + len(body)) + body
    s.sendall(m); got = b''
    while len(got) < len(m):
        b = s.recv(65536)
        if not b: return False
        got += b
    return got == m
ok = call(b'before the restart')
open(sys.argv[1] + '.ready', 'w').close()
t = time.time()
while not os.path.exists(sys.argv[1]) and time.time() - t < 60:
    time.sleep(0.05)
print('idle', 'ok' if ok and call(b'after the restart') else 'WRONG')
PY
idle=$!
ready() { [ -e "$KP_TMP/go.ready" ]; }
wait_for 30 ready || t_fail idle_connected "$(cat "$KP_TMP/idle.out")"
# Traffic across the restart: in-kernel streams (ordered and ID-tagged), and
# three clients on a one-connection mux, two of them relayed by kproxyd.
kp_bg "$KP_BUILD/kpperf" stream tcp://127.0.0.1:7661 --frame len4 --size 4096 --conns 3 --window 8 \
	--time $secs > "$KP_TMP/ord.out" 2>&1
ord=$!
kp_bg "$IDP" client 127.0.0.1:7662 --conns 8 --msgs 100000 --window 8 --size 200 --timeout-ms 20000 \
	> "$KP_TMP/ids.out" 2>&1
idc=$!
kp_bg "$KP_BUILD/kpperf" rr tcp://127.0.0.1:7663 --frame len4 --size 300 --conns 3 --time $secs \
	> "$KP_TMP/tiny.out" 2>&1
tiny=$!
kp_sleep 1.5
# One snapshot and straight on to the restart: under TCG each python start takes a while.
kpctl -j mux show > "$KP_TMP/before.json"
kill -USR2 "$KP_DAEMON_PID"
before() {	# MUX SECTION FIELD
	"$KP_PYTHON" -c "import json,sys; print([m for m in json.load(open(sys.argv[1]))['muxes'] if m['name'] == '$1'][0]['$2']['$3'])" "$KP_TMP/before.json"
}
over=$(before tiny daemon overflowed) acc=$(before ord daemon accepted) req=$(before ord kernel req_msgs)
[ "$over" -ge 1 ] && t_pass overflow_before || t_fail overflow_before "overflowed $over"
new_ready() { sed -n '/took over from the previous kproxyd/,$p' "$KP_TMP/kproxyd.log" | grep -q "ready: control socket"; }
# Under TCG the new process loads the BPF objects again while the traffic runs: tens of seconds.
wait_for 120 new_ready && t_pass restarted || t_fail restarted "$(tail -5 "$KP_TMP/kproxyd.log")"
grep -q "mux ids: taken over" "$KP_TMP/kproxyd.log" && t_pass muxes_taken_over ||
	t_fail muxes_taken_over "$(grep mux "$KP_TMP/kproxyd.log" | tail -5)"
n=$(sed -n 's/.*mux ord: taken over, 4 backend connections, \([0-9]*\) clients.*/\1/p' "$KP_TMP/kproxyd.log")
[ "${n:-0}" -ge 4 ] && t_pass clients_handed_over || t_fail clients_handed_over "$(grep "taken over" "$KP_TMP/kproxyd.log")"
[ "$(mjson ord 'm["daemon"]["accepted"]')" -ge "$acc" ] && [ "$(mjson ord 'm["kernel"]["req_msgs"]')" -ge "$req" ] &&
	t_pass counters_carried || t_fail counters_carried "$(kpctl mux show ord)"
wait $ord && t_pass ordered_stream_survives || t_fail ordered_stream_survives "$(cat "$KP_TMP/ord.out")"
wait $tiny && t_pass overflow_relay_survives || t_fail overflow_relay_survives "$(cat "$KP_TMP/tiny.out")"
# The ID-tagged clients run until stopped: still running now, nothing wrong said.
kp_sleep 1
: > "$KP_TMP/go"
if kill -0 $idc 2>/dev/null; then
	kill -TERM $idc; wait $idc
	if [ -s "$KP_TMP/ids.out" ]; then
		t_fail id_clients_survive "$(cat "$KP_TMP/ids.out")"
	else
		t_pass id_clients_survive
	fi
else
	wait $idc
	t_fail id_clients_survive "idpeer ended before it was stopped (rc $?): $(cat "$KP_TMP/ids.out")"
fi
wait $idle
grep -q "idle ok" "$KP_TMP/idle.out" && t_pass idle_client_survives || t_fail idle_client_survives "$(cat "$KP_TMP/idle.out")"
# And after: new clients, all slots in use.
t_check new_clients_after "$KP_BUILD/kpperf" rr tcp://127.0.0.1:7661 --frame len4 --size 1000 --conns 4 --time 1
t_check new_id_clients_after "$IDP" client 127.0.0.1:7662 --conns 4 --msgs 200 --window 8
kill -0 "$KP_DAEMON_PID" && t_pass same_pid || t_fail same_pid "kproxyd's pid changed"
for m in ord ids tiny; do
	t_check "mux_del_$m" kpctl mux del $m
done
kp_daemon_stop
