#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# timeout: 400
# kmux, the N x M multiplexor: N clients send length-framed and line-framed
# messages through a pool of M backend connections; each response (the echo
# of its request, checked byte for byte by kpperf) comes back whole to the
# client that asked. More clients than connections overflow to kproxyd and
# still get every byte. A backend connection that dies resets only the
# client it was serving; a parser error closes only its own connection.
. "$(dirname "$0")/../lib.sh"
require_root

kp_bg "$KP_BUILD/kpperf" server tcp://127.0.0.1:9601 --mode echo
kp_bg "$KP_BUILD/kpperf" server tcp://127.0.0.1:9602 --mode echo
wait_port 127.0.0.1 9601; wait_port 127.0.0.1 9602
: > "$KP_TMP/kproxy.conf"
kp_daemon_start || { t_fail start "kproxyd did not start: $(tail -3 "$KP_TMP/kproxyd.log")"; exit 1; }
mstat() {	# MUX SECTION FIELD
	kpctl -j mux show "$1" | "$KP_PYTHON" -c "import json,sys; print(json.load(sys.stdin)['muxes'][0]['$2']['$3'])"
}
up() { [ "$(kpctl -j mux show "$1" | "$KP_PYTHON" -c 'import json,sys; m=json.load(sys.stdin)["muxes"][0]; print(int(m["conns_up"] == m["conns"]))')" = 1 ]; }

t_check mux_add kpctl mux add rpc listen tcp://127.0.0.1:7601 backend tcp://127.0.0.1:9601 \
	backend tcp://127.0.0.1:9602 parser 'len:size=4,be,max=1048576' conns 8
wait_port 127.0.0.1 7601
wait_for 10 up rpc && t_pass pool_connected || t_fail pool_connected "$(kpctl mux show rpc)"

secs=2; [ "${KP_IN_VM:-0}" = 1 ] && secs=1
# 1 client, then 8 clients on 8 connections: all in the kernel.
for size in 5 1000 65536 1048576; do
	t_check "rr_1c_${size}B" "$KP_BUILD/kpperf" rr tcp://127.0.0.1:7601 --frame len4 --size $size --time $secs
done
# The last request of a run may still be answered on its slot: start with all slots free.
idle() { [ "$(kpctl -j mux show "$1" | "$KP_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["muxes"][0]["conns_owned"])')" = 0 ]; }
wait_for 10 idle rpc
t_check rr_8c_1KiB "$KP_BUILD/kpperf" rr tcp://127.0.0.1:7601 --frame len4 --size 1024 --conns 8 --time $secs
req=$(mstat rpc kernel req_msgs) resp=$(mstat rpc kernel resp_msgs) over=$(mstat rpc kernel overflow_msgs)
[ "$req" -gt 100 ] && [ "$resp" -ge "$((req - 8))" ] && [ "$over" = 0 ] && t_pass kernel_carried ||
	t_fail kernel_carried "requests $req responses $resp overflow $over"
# 40 clients on 8 connections: the clients beyond the pool go through kproxyd, every byte checked.
t_check rr_40c_overflow "$KP_BUILD/kpperf" rr tcp://127.0.0.1:7601 --frame len4 --size 300 --conns 40 --time $secs
n=$(mstat rpc daemon overflowed)
[ "$n" -ge 1 ] && t_pass overflow_used || t_fail overflow_used "overflowed $n"

# Line framing (memcached/redis text style).
t_check mux_add_line kpctl mux add text listen tcp://127.0.0.1:7602 backend tcp://127.0.0.1:9601 \
	parser 'line:delim=\r\n,max=4096' conns 4
wait_port 127.0.0.1 7602
out=$("$KP_PYTHON" - <<'PY'
import socket
s = socket.create_connection(('127.0.0.1', 7602))
msgs = [b'get key%d\r\n' % i for i in range(200)]
s.sendall(b''.join(msgs))	# pipelined, in one burst
want = b''.join(msgs); got = b''
s.settimeout(10)
while len(got) < len(want):
    b = s.recv(65536)
    if not b: break
    got += b
print('same' if got == want else 'DIFFERENT %d of %d' % (len(got), len(want)))
PY
)
[ "$out" = same ] && t_pass line_pipelined || t_fail line_pipelined "$out"

# Bad input: a length beyond max, and a zero length, close only their own connection.
bad() {	# HEX: send it, expect the connection closed
	"$KP_PYTHON" - "$1" <<'PY'
import socket, sys
s = socket.create_connection(('127.0.0.1', 7601))
s.sendall(bytes.fromhex(sys.argv[1]))
s.settimeout(10)
try:
    print('closed' if s.recv(100) == b'' else 'answered')
except ConnectionResetError:
    print('closed')
except socket.timeout:
    print('still open')
PY
}
"$KP_BUILD/kpperf" rr tcp://127.0.0.1:7601 --frame len4 --size 2000 --conns 2 --time 4 > "$KP_TMP/during.out" 2>&1 &
during=$!
[ "$(bad 7fffffff00)" = closed ] && t_pass oversized_closed || t_fail oversized_closed "not closed"
[ "$(bad 0000000000)" = closed ] && t_pass zero_length_closed || t_fail zero_length_closed "not closed"
# A message that never completes: strparser's timer (msg_timeout) closes that connection.
t_check mux_add_timeout kpctl mux add slow listen tcp://127.0.0.1:7607 backend tcp://127.0.0.1:9601 \
	parser 'len:size=4,be,max=65536' conns 1 msg_timeout 500
wait_port 127.0.0.1 7607
out=$("$KP_PYTHON" - <<'PY'
import socket, time
s = socket.create_connection(('127.0.0.1', 7607))
s.sendall(bytes.fromhex('00000064') + b'only a part')	# says 100 bytes, sends 15
s.settimeout(10); t0 = time.time()
try:
    r = 'closed' if s.recv(100) == b'' else 'answered'
except ConnectionResetError:
    r = 'closed'
except socket.timeout:
    r = 'still open'
print(r, round(time.time() - t0, 1))
PY
)
[[ $out == closed* ]] && [ "$(mstat slow daemon msg_timeouts)" = 1 ] && t_pass incomplete_message_times_out ||
	t_fail incomplete_message_times_out "$out, msg_timeouts $(mstat slow daemon msg_timeouts)"
t_check mux_del_slow kpctl mux del slow

# A client that leaves with a request unanswered: the slot's connection is made
# again, so a late response cannot reach the slot's next owner, and no slot stays owned.
kp_bg "$KP_PYTHON" -c '
import socket, threading, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", 9613)); l.listen(8); held = []
while True:
    c, _ = l.accept(); held.append(c)	# reads nothing, answers nothing
'
wait_port 127.0.0.1 9613
t_check mux_add_mute kpctl mux add mute listen tcp://127.0.0.1:7608 backend tcp://127.0.0.1:9613 \
	parser 'len:size=4,be,max=65536' conns 1
wait_port 127.0.0.1 7608; wait_for 10 up mute
"$KP_PYTHON" - <<'PY'
import socket, struct, time
s = socket.create_connection(('127.0.0.1', 7608))
s.sendall(bytes.fromhex('00000008') + b'lost')
time.sleep(0.3)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
s.close()	# a reset, with the request in flight
PY
recycled() { [ "$(mstat mute daemon slot_recycles)" -ge 1 ] && idle mute && up mute; }
wait_for 10 recycled && t_pass slot_recycled || t_fail slot_recycled "$(kpctl mux show mute)"
t_check mux_del_mute kpctl mux del mute
# A backend that never answers: after response_timeout its connection goes, the
# waiting client is reset, the slot comes back.
t_check mux_add_deaf kpctl mux add deaf listen tcp://127.0.0.1:7609 backend tcp://127.0.0.1:9613 \
	parser 'len:size=4,be,max=65536' conns 1 response_timeout 600
wait_port 127.0.0.1 7609; wait_for 10 up deaf
out=$("$KP_PYTHON" - <<'PY'
import socket, time
s = socket.create_connection(('127.0.0.1', 7609))
t = time.time()
s.sendall(bytes.fromhex('00000008') + b'deaf')
s.settimeout(20)
try:
    b = s.recv(100)
    print('closed' if not b else 'answered?', round(time.time() - t, 1))
except ConnectionResetError:
    print('reset', round(time.time() - t, 1))
except socket.timeout:
    print('still waiting after 20 s')
PY
)
case $out in reset*|closed*) t_pass response_timeout_resets ;; *) t_fail response_timeout_resets "$out" ;; esac
timed() { [ "$(mstat deaf daemon response_timeouts)" = 1 ] && up deaf; }
wait_for 10 timed && t_pass response_timeout_counted || t_fail response_timeout_counted "$(kpctl mux show deaf)"
t_check mux_del_deaf kpctl mux del deaf
wait $during && t_pass others_unaffected || t_fail others_unaffected "$(cat "$KP_TMP/during.out")"
n=$(mstat rpc kernel parse_errors)
[ "$n" -ge 2 ] && t_pass parse_errors_counted || t_fail parse_errors_counted "parse_errors $n"

# balance hash: the backend by bytes of each request (hash_key OFF:LEN). Two
# backends that say who they are in each response; a key always lands on one.
cat > "$KP_TMP/tagged.py" <<'PY'
import socket, sys, threading
tag = sys.argv[2].encode()
def serve(c):
    buf = b''
    while True:
        b = c.recv(65536)
        if not b:
            return
        buf += b
        while len(buf) >= 4 and len(buf) >= int.from_bytes(buf[:4], 'big'):
            n = int.from_bytes(buf[:4], 'big')
            body = tag + b':' + buf[4:n]
            c.sendall((4 + len(body)).to_bytes(4, 'big') + body)
            buf = buf[n:]
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(('127.0.0.1', int(sys.argv[1]))); l.listen(64)
while True:
    c, _ = l.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
kp_bg "$KP_PYTHON" "$KP_TMP/tagged.py" 9611 A
kp_bg "$KP_PYTHON" "$KP_TMP/tagged.py" 9612 B
wait_port 127.0.0.1 9611; wait_port 127.0.0.1 9612
t_check mux_add_hash kpctl mux add sharded listen tcp://127.0.0.1:7606 backend tcp://127.0.0.1:9611 \
	backend tcp://127.0.0.1:9612 parser 'len:size=4,be,max=65536' conns 4 balance hash hash_key 4:3
wait_port 127.0.0.1 7606; wait_for 10 up sharded
out=$("$KP_PYTHON" - <<'PY'
import socket
seen = {}
for conn in range(4):
    s = socket.create_connection(('127.0.0.1', 7606))
    for i in range(40):
        key = b'k%02d' % ((i * 7 + conn) % 10)
        body = key + b'-payload-%d' % i
        s.sendall((4 + len(body)).to_bytes(4, 'big') + body)
        buf = b''
        while len(buf) < 4 or len(buf) < int.from_bytes(buf[:4], 'big'):
            b = s.recv(65536)
            assert b, 'closed'
            buf += b
        tag, _, echoed = buf[4:].partition(b':')
        assert echoed == body, (echoed, body)
        seen.setdefault(key, set()).add(tag)
    s.close()
split = [k for k, v in seen.items() if len(v) > 1]
used = set().union(*seen.values())
print('ok' if not split and used == {b'A', b'B'} else 'keys on two backends: %s, backends used: %s' % (split, used))
PY
)
[ "$out" = ok ] && t_pass hash_key_sticks || t_fail hash_key_sticks "$out"
t_check mux_del_sharded kpctl mux del sharded

# The whole-message API for local processes (msg.h) and 'kproxyctl mux call'.
t_check msg_api_pipelined "$KP_BUILD/tests/msgclient" "$KP_TMP/ctl.sock" rpc 20 5 300 70000 1048576
printf '\000\000\000\016hello kmux' > "$KP_TMP/one.msg"
got=$(kpctl mux call rpc "$KP_TMP/one.msg" | od -An -c | tr -s ' ')
want=$(od -An -c < "$KP_TMP/one.msg" | tr -s ' ')
[ "$got" = "$want" ] && t_pass mux_call || t_fail mux_call "got '$got' want '$want'"
printf '\000\000\000\077short' > "$KP_TMP/bad.msg"
out=$(kpctl mux call rpc "$KP_TMP/bad.msg" 2>&1) && t_fail mux_call_partial "accepted: $out" ||
	{ [[ $out == *"not exactly one message"* ]] && t_pass mux_call_partial || t_fail mux_call_partial "$out"; }

# A parser of one's own: examples/parsers/tlv.bpf.c (type, 2-byte length, value).
t_check mux_add_bpf_parser kpctl mux add tlv listen tcp://127.0.0.1:7604 backend tcp://127.0.0.1:9601 \
	parser "bpf:$KP_BUILD/examples/tlv.bpf.o,max=65538" conns 2
wait_port 127.0.0.1 7604
out=$("$KP_PYTHON" - <<'PY'
import os, socket
s = socket.create_connection(('127.0.0.1', 7604))
msgs = [bytes([1]) + n.to_bytes(2, 'big') + os.urandom(n) for n in (0, 1, 100, 5000, 65535)]
s.sendall(b''.join(msgs))
want = b''.join(msgs); got = b''
s.settimeout(10)
while len(got) < len(want):
    b = s.recv(1 << 20)
    if not b: break
    got += b
print('same' if got == want else 'DIFFERENT %d of %d' % (len(got), len(want)))
PY
)
[ "$out" = same ] && t_pass bpf_parser_tlv || t_fail bpf_parser_tlv "$out"
[ "$(mstat tlv kernel req_msgs)" = 5 ] && t_pass bpf_parser_in_kernel ||
	t_fail bpf_parser_in_kernel "req_msgs $(mstat tlv kernel req_msgs)"
out=$(kpctl mux add bad listen tcp://127.0.0.1:7605 backend tcp://127.0.0.1:9601 \
	parser "bpf:$KP_TMP/none.o" 2>&1) && t_fail bpf_parser_missing "accepted: $out" ||
	{ [[ $out == *"cannot open the parser object"* ]] && t_pass bpf_parser_missing || t_fail bpf_parser_missing "$out"; }
t_check mux_del_tlv kpctl mux del tlv

t_check mux_del kpctl mux del text
t_check mux_del_rpc kpctl mux del rpc

# The configuration file: a mux statement, kept over a reload (SIGHUP) when
# unchanged, removed when gone; a bad one names its line and keeps the rest.
cat > "$KP_TMP/kproxy.conf" <<CONF
mux cfg listen tcp://127.0.0.1:7603 backend tcp://127.0.0.1:9601 parser len:size=2,be,max=65535 conns 2
CONF
kill -HUP "$KP_DAEMON_PID"
wait_port 127.0.0.1 7603 && t_pass config_mux_added || t_fail config_mux_added "$(tail -3 "$KP_TMP/kproxyd.log")"
wait_for 10 up cfg
"$KP_PYTHON" - <<'PY' > "$KP_TMP/len2.out" 2>&1 && t_pass config_mux_works || t_fail config_mux_works "$(cat "$KP_TMP/len2.out")"
import os, socket
s = socket.create_connection(('127.0.0.1', 7603))
for n in (3, 100, 65535):
    body = os.urandom(n - 2)
    msg = n.to_bytes(2, 'big') + body
    s.sendall(msg)
    got = b''
    while len(got) < n:
        b = s.recv(65536)
        assert b, 'closed'
        got += b
    assert got == msg, 'different'
PY
echo 'mux cfg listen tcp://127.0.0.1:7603 backend tcp://127.0.0.1:9601 parser len:size=3' > "$KP_TMP/kproxy.conf"
kill -HUP "$KP_DAEMON_PID"
wait_for 5 grep -q 'kproxy.conf:1: .*size' "$KP_TMP/kproxyd.log" && t_pass config_bad_named ||
	t_fail config_bad_named "$(tail -3 "$KP_TMP/kproxyd.log")"
[ "$(kpctl -j mux show | "$KP_PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)["muxes"]))')" = 1 ] &&
	t_pass config_bad_kept || t_fail config_bad_kept "$(kpctl mux show)"
: > "$KP_TMP/kproxy.conf"
kill -HUP "$KP_DAEMON_PID"
wait_for 5 sh -c "! '$KP_BUILD/kproxyctl' -s '$KP_TMP/ctl.sock' mux show cfg >/dev/null 2>&1" &&
	t_pass config_mux_removed || t_fail config_mux_removed "$(kpctl mux show)"
