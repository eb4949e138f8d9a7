#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# timeout: 300
# kpperf stream --frame len4, super_kcmperf's measure: each connection streams
# length-framed messages (5 B to 1 MiB) with up to --window unanswered, to an
# echo server directly and through a kmux mux of 8 backend connections, and
# checks every echoed byte, the order and the whole of each message. Through
# the mux every message must be carried by the kernel (req_msgs and
# resp_msgs grow by exactly the messages kpperf counted, none overflow to
# kproxyd). And the checker must be able to fail: a sink that never answers,
# an echo that changes a byte, one that swaps two messages and one that cuts
# a message short each make kpperf exit 1, naming the message.
. "$(dirname "$0")/../lib.sh"
require_root

kp_bg "$KP_BUILD/kpperf" server tcp://127.0.0.1:9641 --mode echo
kp_bg "$KP_BUILD/kpperf" server tcp://127.0.0.1:9642 --mode sink
wait_port 127.0.0.1 9641; wait_port 127.0.0.1 9642
kp_daemon_start || { t_fail start "kproxyd did not start: $(tail -3 "$KP_TMP/kproxyd.log")"; exit 1; }
mux() {	# FIELD...: kernel.X, daemon.X or a top-level field of mux s, one per line
	kpctl -j mux show s | "$KP_PYTHON" -c '
import json, sys
m = json.load(sys.stdin)["muxes"][0]
for f in sys.argv[1:]:
    v = m
    for k in f.split("."):
        v = v[k]
    print(v)' "$@"
}
up() { local a b; read -r a b < <(mux conns_up conns | xargs); [ "$a" = "$b" ]; }
idle() { [ "$(mux conns_owned)" = 0 ]; }

t_check mux_add kpctl mux add s listen tcp://127.0.0.1:7641 backend tcp://127.0.0.1:9641 \
	parser 'len:size=4,be,max=16m' conns 8
wait_port 127.0.0.1 7641
wait_for 10 up && t_pass pool_connected || t_fail pool_connected "$(kpctl mux show s)"

secs=2 sizes="5 4096 1048576"
[ "${KP_IN_VM:-0}" = 1 ] && secs=1 sizes="5 4096 65536"

# run NAME PORT SIZE CONNS: one run, its JSON kept in $KP_TMP/NAME.json
run() {
	"$KP_BUILD/kpperf" stream "tcp://127.0.0.1:$2" --frame len4 --size "$3" --conns "$4" \
		--time "$secs" -j > "$KP_TMP/$1.json" 2> "$KP_TMP/$1.err"
}
figures() {	# NAME: the run's figures, for the log
	"$KP_PYTHON" -c '
import json, sys
r = json.load(open(sys.argv[1]))
print("%-19s %8d msgs %10.0f msg/s %9.2f MB/s up %9.2f MB/s down p50 %8.1f us p99 %8.1f us" % (
    sys.argv[2], r["messages"], r["msgs_s"], r["mb_s_up"], r["mb_s_down"],
    r["lat_us"]["p50"], r["lat_us"]["p99"]))' "$KP_TMP/$1.json" "$1"
}
msgs() { "$KP_PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["messages"])' "$KP_TMP/$1.json"; }

for conns in 1 8; do
	for size in $sizes; do
		name=direct_${conns}c_${size}B
		if run "$name" 9641 "$size" "$conns"; then t_pass "$name"; figures "$name"
		else t_fail "$name" "$(cat "$KP_TMP/$name.err")"; fi

		# Start with every slot free: the kernel counts are then this run's alone.
		wait_for 10 idle
		read -r req0 resp0 over0 < <(mux kernel.req_msgs kernel.resp_msgs kernel.overflow_msgs | xargs)
		name=kmux_${conns}c_${size}B
		if run "$name" 7641 "$size" "$conns"; then t_pass "$name"; figures "$name"
		else t_fail "$name" "$(cat "$KP_TMP/$name.err")"; continue; fi
		n=$(msgs "$name")
		read -r req resp over < <(mux kernel.req_msgs kernel.resp_msgs kernel.overflow_msgs | xargs)
		[ "$n" -gt 0 ] && [ $((req - req0)) = "$n" ] && [ $((resp - resp0)) = "$n" ] &&
			[ "$over" = "$over0" ] && t_pass "${name}_in_kernel" ||
			t_fail "${name}_in_kernel" "kpperf $n messages; kernel requests +$((req - req0))\
 responses +$((resp - resp0)) overflow +$((over - over0))"
	done
done
[ "$(mux daemon.overflowed)" = 0 ] && t_pass no_overflow || t_fail no_overflow "$(kpctl mux show s)"
t_check mux_del kpctl mux del s

# The checker fails when it must. An echo server that does one thing wrong
# to message 10 of each connection (counted from 0).
cat > "$KP_TMP/bad_echo.py" <<'PY'
import socket, sys, threading
port, how = int(sys.argv[1]), sys.argv[2]
def exactly(c, n):
    got = b''
    while len(got) < n:
        more = c.recv(n - len(got))
        if not more:
            raise EOFError
        got += more
    return got
def serve(c):
    held = b''
    try:
        for n in range(1 << 62):	# one message at a time
            head = exactly(c, 4)
            msg = head + exactly(c, int.from_bytes(head, 'big') - 4)
            if n == 10 and how == 'flip':	# its last byte changed
                msg = msg[:-1] + bytes([msg[-1] ^ 1])
            elif n == 10 and how == 'swap':	# sent after message 11
                held, msg = msg, b''
            elif n == 10 and how == 'cut':	# half of it, then a clean close
                c.sendall(msg[:len(msg) // 2])
                c.shutdown(socket.SHUT_WR)
                while c.recv(65536):
                    pass
                return
            c.sendall(msg + (held if n == 11 else b''))
    except EOFError:
        return
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(('127.0.0.1', port)); l.listen(8)
while True:
    c, _ = l.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
kp_bg "$KP_PYTHON" "$KP_TMP/bad_echo.py" 9643 flip
kp_bg "$KP_PYTHON" "$KP_TMP/bad_echo.py" 9644 swap
kp_bg "$KP_PYTHON" "$KP_TMP/bad_echo.py" 9645 cut
wait_port 127.0.0.1 9643; wait_port 127.0.0.1 9644; wait_port 127.0.0.1 9645

must_fail() {	# NAME PORT PATTERN: kpperf exits 1 and says PATTERN
	local out rc
	out=$("$KP_BUILD/kpperf" stream "tcp://127.0.0.1:$2" --frame len4 --size 100 --time 0.5 \
		--timeout 1000 2>&1)
	rc=$?
	[ $rc = 1 ] && [[ $out == *$3* ]] && t_pass "$1" || t_fail "$1" "exit $rc: $out"
}
must_fail fails_without_answers 9642 "conn 0: message 0: 0 of 100 bytes echoed"
must_fail fails_on_changed_byte 9643 "conn 0: message 10 differs at byte 99 of 100"
must_fail fails_on_reordered 9644 "conn 0: message 10 differs at byte 4 of 100 (expected 0x*, got 0x*): it is message 11 instead"
must_fail fails_on_short_message 9645 "conn 0: the server closed the connection in message 10 (50 of 100 bytes echoed)"
