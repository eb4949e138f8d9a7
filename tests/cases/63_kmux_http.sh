#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# timeout: 500
# kmux with the HTTP parser in BPF, in front of nginx: keep-alive GETs of
# small and 1 MiB files, chunked responses (nginx's gzip), PUT bodies framed by
# Content-Length and by chunked coding (read back and compared), 20
# pipelined requests; every body checked byte for byte. Then the L7 policy:
# denied methods, paths and hosts get a 403 and a close, requests it cannot
# judge (absolute-form target, two Hosts, no Host) a 400, a denied request
# in a pipeline is answered after the requests before it and nothing after
# it reaches nginx (its access log is the witness), also for a client that
# kproxyd relays (overflow); each rule counts its hits; deny_action close;
# bad rules are refused with a sentence; a malformed request closes only its
# own connection while a download on another runs on intact.
. "$(dirname "$0")/../lib.sh"
require_root

command -v nginx >/dev/null || PATH=$PATH:/usr/sbin
if ! command -v nginx >/dev/null; then
	t_skip nginx "nginx is not installed (scripts/install-deps.sh --test installs it)"
	exit 0
fi

curl() { command curl --max-time 60 "$@"; }
W=$KP_TMP/www
mkdir -p "$W/up" "$W/slow" "$W/admin" "$W/t"
head -c 100 /dev/urandom > "$W/small"
head -c 1048576 /dev/urandom > "$W/big"
head -c 2097152 /dev/urandom > "$W/slow/file"
for i in $(seq 1 3000); do echo "line $i of a text that nginx compresses on the fly"; done > "$W/t/text.txt"
echo secret > "$W/admin/x"
cp "$W/small" "$W/a"; cp "$W/small" "$W/b"
mkdir -p "$KP_TMP/www2"; echo A > "$W/whoami"; echo B > "$KP_TMP/www2/whoami"
chmod -R a+rwX "$W" "$KP_TMP/www2"
cat > "$KP_TMP/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
error_log $KP_TMP/nginx.err;
pid $KP_TMP/nginx.pid;
events { worker_connections 512; }
http {
	access_log $KP_TMP/access.log;
	client_body_temp_path $KP_TMP/cb; proxy_temp_path $KP_TMP/pt;
	fastcgi_temp_path $KP_TMP/ft; uwsgi_temp_path $KP_TMP/ut; scgi_temp_path $KP_TMP/st;
	keepalive_requests 100000;
	client_max_body_size 64m;
	types { text/plain txt; }
	default_type application/octet-stream;
	gzip on; gzip_types text/plain; gzip_min_length 0;
	server {
		listen 127.0.0.1:9631;
		root $W;
		location /up/ { dav_methods PUT DELETE; create_full_put_path on; }
		location /slow/ { limit_rate 400k; }
	}
	server { listen 127.0.0.1:9632; root $KP_TMP/www2; }
}
EOF
kp_bg nginx -c "$KP_TMP/nginx.conf" -e "$KP_TMP/nginx.err"
wait_port 127.0.0.1 9631 || { t_fail nginx "nginx did not start: $(cat "$KP_TMP/nginx.err")"; exit 1; }

: > "$KP_TMP/kproxy.conf"
kp_daemon_start || { t_fail start "kproxyd did not start: $(tail -3 "$KP_TMP/kproxyd.log")"; exit 1; }
mjson() {	# MUX PYTHON-EXPRESSION-ON-m
	kpctl -j mux show "$1" | "$KP_PYTHON" -c "import json,sys; m=json.load(sys.stdin)['muxes'][0]; print($2)"
}
up() { [ "$(mjson "$1" 'int(m["conns_up"] == m["conns"])')" = 1 ]; }
same() {	# NAME FILE-A FILE-B
	if cmp -s "$2" "$3"; then t_pass "$1"; else t_fail "$1" "$(wc -c < "$2") vs $(wc -c < "$3") bytes, different"; fi
}

code() {	# expected-code NAME CURL-ARGS...: the status, and the connection closed after it
	local want=$1 name=$2 got
	shift 2
	got=$(curl -sS -o /dev/null -w '%{http_code}' "$@" 2>&1)
	[ "$got" = "$want" ] && t_pass "$name" || t_fail "$name" "status $got, wanted $want"
}

# ---------------------------------------------------------------- proxying
t_check mux_add_http kpctl mux add web listen tcp://127.0.0.1:7631 backend tcp://127.0.0.1:9631 \
	parser 'http:max=16m' conns 4 \
	deny path=/admin deny method=DELETE allow host=good.example allow host=127.0.0.1 \
	default deny
wait_port 127.0.0.1 7631
wait_for 10 up web && t_pass pool_connected || t_fail pool_connected "$(kpctl mux show web)"
U=http://127.0.0.1:7631

curl -sS -o "$KP_TMP/got.small" "$U/small" && same get_small "$W/small" "$KP_TMP/got.small" ||
	t_fail get_small "curl failed"
# Three 1 MiB responses on one keep-alive connection.
if curl -sS -o "$KP_TMP/g1" "$U/big" -o "$KP_TMP/g2" "$U/big" -o "$KP_TMP/g3" "$U/big" \
	-w '%{num_connects}\n' > "$KP_TMP/nconn"; then
	same get_big_1 "$W/big" "$KP_TMP/g1"; same get_big_2 "$W/big" "$KP_TMP/g2"
	same get_big_3 "$W/big" "$KP_TMP/g3"
	[ "$(tail -1 "$KP_TMP/nconn")" = 0 ] && t_pass keepalive || t_fail keepalive "curl connected again"
else
	t_fail get_big "curl failed"
fi
# Chunked responses: nginx compresses the text on the fly.
curl -sS --compressed -D "$KP_TMP/hdr" -o "$KP_TMP/got.text" "$U/t/text.txt"
grep -qi '^transfer-encoding: chunked' "$KP_TMP/hdr" && t_pass chunked_response ||
	t_fail chunked_response "no chunked coding: $(tr -d '\r' < "$KP_TMP/hdr" | tr '\n' ' ')"
same chunked_body "$W/t/text.txt" "$KP_TMP/got.text"
# Request bodies: Content-Length, and chunked coding.
head -c 5000000 /dev/urandom > "$KP_TMP/body"
curl -sS -f -T "$KP_TMP/body" "$U/up/cl" && curl -sS -o "$KP_TMP/back.cl" "$U/up/cl" &&
	same put_content_length "$KP_TMP/body" "$KP_TMP/back.cl" || t_fail put_content_length "curl failed"
curl -sS -f -H 'Transfer-Encoding: chunked' -T - "$U/up/ch" < "$KP_TMP/body" &&
	curl -sS -o "$KP_TMP/back.ch" "$U/up/ch" && same put_chunked "$KP_TMP/body" "$KP_TMP/back.ch" ||
	t_fail put_chunked "curl failed"

# A raw client: pipelined requests in one write, responses parsed and checked.
cat > "$KP_TMP/pipe.py" <<'PY'
import socket, sys
port, www, spec = int(sys.argv[1]), sys.argv[2], sys.argv[3]
# spec: comma-separated "[METHOD ]path:expected-status", sent in one write;
# a POST carries a 3-byte body
reqs = []
for p in spec.split(','):
    what, want = p.rsplit(':', 1)
    meth, path = what.split(' ') if ' ' in what else ('GET', what)
    reqs.append((meth, path, want))
def req(meth, path):
    body = b'abc' if meth == 'POST' else b''
    cl = b'Content-Length: 3\r\n' if body else b''
    return b'%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n%s' % (meth.encode(), path.encode(), cl, body)
s = socket.create_connection(('127.0.0.1', port))
s.sendall(b''.join(req(m, p) for m, p, _ in reqs))
s.settimeout(10)
buf = b''
def more():
    global buf
    b = s.recv(1 << 20)
    if not b:
        raise EOFError
    buf += b
out = []
try:
    for meth, path, want in reqs:
        while b'\r\n\r\n' not in buf:
            more()
        head, buf = buf.split(b'\r\n\r\n', 1)
        lines = head.split(b'\r\n')
        status = lines[0].split()[1].decode()
        n = 0
        for l in lines[1:]:
            k, v = l.split(b':', 1)
            if k.strip().lower() == b'content-length' and meth != 'HEAD':
                n = int(v)
        while len(buf) < n:
            more()
        body, buf = buf[:n], buf[n:]
        if status != want:
            out.append('%s: status %s, wanted %s' % (path, status, want))
        elif status == '200' and meth != 'HEAD' and body != open(www + path, 'rb').read():
            out.append('%s: body differs' % path)
        if status in ('403', '400'):
            break
    # after a denial: the close, and nothing more; else the connection stays, quiet
    denied = status in ('403', '400')
    if not denied:
        s.settimeout(0.3)
    try:
        while True:
            more()
    except EOFError:
        if not denied:
            out.append('closed after the last answer')
    except socket.timeout:
        if denied:
            raise
    if buf:
        out.append('%d bytes after the last answer' % len(buf))
except EOFError:
    out.append('closed early')
except socket.timeout:
    out.append('timed out (no close?)')
print('; '.join(out) if out else 'ok')
PY
pipe() { "$KP_PYTHON" "$KP_TMP/pipe.py" "$@"; }
spec=$(for i in $(seq 1 10); do printf '/small:200,/big:200,'; done)
out=$(pipe 7631 "$W" "${spec%,}")
[ "$out" = ok ] && t_pass pipelined_20 || t_fail pipelined_20 "$out"

# A chunked PUT split in two at every byte position (one connection each), then a
# GET of what it stored: the parser must frame it the same however it arrives.
step=1; [ "${KP_IN_VM:-0}" = 1 ] && step=5
out=$("$KP_PYTHON" - "$step" <<'PY'
import socket, sys, time
req = (b'PUT /up/split HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n'
       b'5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n')
get = b'GET /up/split HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
bad = []
def response(s, buf):
    while b'\r\n\r\n' not in buf:
        b = s.recv(65536)
        if not b:
            raise EOFError
        buf += b
    head, buf = buf.split(b'\r\n\r\n', 1)
    n = 0
    for l in head.split(b'\r\n')[1:]:
        k, v = l.split(b':', 1)
        if k.lower() == b'content-length':
            n = int(v)
    while len(buf) < n:
        buf += s.recv(65536)
    return head.split(b' ')[1], buf[:n], buf[n:]
for k in range(1, len(req), int(sys.argv[1])):
    s = socket.create_connection(('127.0.0.1', 7631))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(10)
    try:
        s.sendall(req[:k]); time.sleep(0.005); s.sendall(req[k:] + get)
        st1, _, rest = response(s, b'')
        st2, body, rest = response(s, rest)
        if st1 not in (b'201', b'204') or st2 != b'200' or body != b'helloabc':
            bad.append('%d: %s %s %r' % (k, st1, st2, body))
    except Exception as e:
        bad.append('%d: %s' % (k, e))
    s.close()
print('ok' if not bad else '; '.join(bad[:5]))
PY
)
[ "$out" = ok ] && t_pass split_every_byte || t_fail split_every_byte "$out"

# HEAD: a response whose Content-Length announces a body that does not come.
out=$(pipe 7631 "$W" "HEAD /big:200,/small:200,HEAD /small:200,/big:200,HEAD /a:200")
[ "$out" = ok ] && t_pass head_pipelined || t_fail head_pipelined "$out"
code 200200 head_then_get -I "$U/big" -o /dev/null "$U/small"

kernel_req=$(mjson web 'm["kernel"]["req_msgs"]') relayed=$(mjson web 'm["daemon"]["user_bytes"]')
[ "$kernel_req" -ge 36 ] && [ "$relayed" = 0 ] && t_pass carried_in_kernel ||
	t_fail carried_in_kernel "kernel requests $kernel_req, bytes relayed by kproxyd $relayed"

# ---------------------------------------------------------------- the policy
code 403 deny_path "$U/admin/x"
code 403 deny_path_prefix "$U/adminx"
code 403 deny_method -X DELETE "$U/up/cl"
code 403 deny_default_host -H 'Host: other.example' "$U/small"
code 200 allow_host_case_port -H 'Host: GOOD.Example:8080' "$U/small"
code 200 allow_host_dot -H 'Host: good.example.' "$U/small"
raw() {	# BYTES: send them, print the status line's code (or what came)
	"$KP_PYTHON" - "$1" <<'PY'
import socket, sys
s = socket.create_connection(('127.0.0.1', 7631))
s.sendall(sys.argv[1].encode().decode('unicode_escape').encode('latin1'))
s.settimeout(10)
got = b''
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
except Exception as e:
    print('error', e); sys.exit()
print(got.split(b' ')[1].decode() if got.startswith(b'HTTP/1.1 ') else 'closed:%d' % len(got))
PY
}
r=$(raw 'GET http://127.0.0.1/admin/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
[ "$r" = 400 ] && t_pass bad_absolute_form || t_fail bad_absolute_form "got $r"
r=$(raw 'GET /small HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: good.example\r\n\r\n')
[ "$r" = 400 ] && t_pass bad_two_hosts || t_fail bad_two_hosts "got $r"
r=$(raw 'GET /small HTTP/1.1\r\n\r\n')
[ "$r" = 400 ] && t_pass bad_no_host || t_fail bad_no_host "got $r"
r=$(raw 'GET /small HTTP/1.0\r\nHost: other.example\r\n\r\n')
[ "$r" = 403 ] && t_pass deny_http10 || t_fail deny_http10 "got $r"
# In a pipeline: the requests before the denied one are answered, nothing after it goes on.
out=$(pipe 7631 "$W" "/a:200,/big:200,/admin/x:403,/b:200")
[ "$out" = ok ] && t_pass pipeline_denied || t_fail pipeline_denied "$out"
out=$(pipe 7631 "$W" "/a:200,POST /admin/x:403,/b:200")
[ "$out" = ok ] && t_pass pipeline_denied_body || t_fail pipeline_denied_body "$out"
if grep -q -e 'GET /admin' -e 'DELETE' -e 'GET /b ' "$KP_TMP/access.log"; then
	t_fail denied_never_reach "nginx saw: $(grep -e 'GET /admin' -e DELETE -e 'GET /b ' "$KP_TMP/access.log" | head -3)"
else
	t_pass denied_never_reach
fi
grep -q 'GET /a ' "$KP_TMP/access.log" && t_pass allowed_reached || t_fail allowed_reached "no GET /a in nginx's log"

# Hits. Rule 1 (path /admin): deny_path, deny_path_prefix and the two pipelines; rule 2
# (DELETE) once; rule 3 (good.example) twice; the default (other.example) twice.
h=$(mjson web '" ".join(str(r["hits"]) for r in m["policy"]["rules"]) + " " + str(m["policy"]["default_hits"])')
set -- $h
[ "$1" = 4 ] && [ "$2" = 1 ] && [ "$3" = 2 ] && t_pass rule_hits || t_fail rule_hits "hits (rules 1-4, default) $h"
[ "$5" = 2 ] && t_pass default_hits || t_fail default_hits "default hits $5, wanted 2 (other.example twice)"
bad=$(mjson web 'm["kernel"]["l7_bad"]') denied=$(mjson web 'm["kernel"]["l7_denied"]')
[ "$bad" = 3 ] && [ "$denied" = 7 ] && t_pass policy_counted || t_fail policy_counted "bad $bad denied $denied"
kpctl mux show web | grep -q 'deny  path=/admin  hits 4' && t_pass show_rules ||
	t_fail show_rules "$(kpctl mux show web)"

# A client kproxyd relays (no free slot: one connection, busy with a slow download).
t_check mux_add_one kpctl mux add one listen tcp://127.0.0.1:7632 backend tcp://127.0.0.1:9631 \
	parser 'http:max=4m' conns 1 deny path=/admin
wait_port 127.0.0.1 7632
wait_for 10 up one || t_fail one_connected "$(kpctl mux show one)"
curl -sS -o "$KP_TMP/slow" http://127.0.0.1:7632/slow/file & slow=$!
owned() { [ "$(mjson one 'm["conns_owned"]')" = 1 ]; }
wait_for 10 owned || t_fail slot_owned "the slow download does not hold the connection"
out=$(pipe 7632 "$W" "/a:200,/admin/x:403,/b:200")
[ "$out" = ok ] && t_pass overflow_denied || t_fail overflow_denied "$out"
wait $slow && same overflow_slow_intact "$W/slow/file" "$KP_TMP/slow" || t_fail overflow_slow_intact "curl failed"
over=$(mjson one 'm["daemon"]["overflowed"]')
[ "$over" -ge 1 ] && t_pass overflow_used || t_fail overflow_used "overflowed $over (the test needs a relayed client)"
grep -c 'GET /admin' "$KP_TMP/access.log" | grep -qx 0 && t_pass overflow_never_reach ||
	t_fail overflow_never_reach "nginx saw /admin"

# balance hash by Host: each host sticks to one backend, and the hosts spread.
t_check mux_add_hash_host kpctl mux add byhost listen tcp://127.0.0.1:7635 \
	backend tcp://127.0.0.1:9631 backend tcp://127.0.0.1:9632 parser http conns 4 \
	balance hash hash_key host
wait_port 127.0.0.1 7635
wait_for 10 up byhost || t_fail byhost_connected "$(kpctl mux show byhost)"
seen=
for h in h1 h2 h3 h4 h5 h6 h7 h8; do
	a=$(curl -sS -H "Host: $h.example" http://127.0.0.1:7635/whoami)
	b=$(curl -sS -H "Host: ${h^^}.EXAMPLE:99" http://127.0.0.1:7635/whoami)
	[ -n "$a" ] && [ "$a" = "$b" ] || seen="$seen $h:$a/$b"
	seen_backends="${seen_backends:-} $a"
done
[ -z "$seen" ] && t_pass hash_host_sticks || t_fail hash_host_sticks "differ:$seen"
case $seen_backends in *A*B*|*B*A*) t_pass hash_host_spreads ;;
	*) t_fail hash_host_spreads "all on one backend:$seen_backends" ;; esac
out=$(kpctl mux add bad listen tcp://127.0.0.1:7639 backend tcp://127.0.0.1:9631 \
	parser 'len:size=4' balance hash hash_key host 2>&1) && t_fail hash_host_needs_http accepted ||
	{ [[ $out == *"need 'parser http'"* ]] && t_pass hash_host_needs_http || t_fail hash_host_needs_http "$out"; }

# deny_action close: no answer, just the close.
t_check mux_add_close kpctl mux add strict listen tcp://127.0.0.1:7633 backend tcp://127.0.0.1:9631 \
	parser http conns 2 allow method=GET,path=/small default deny deny_action close
wait_port 127.0.0.1 7633
code 200 close_allowed http://127.0.0.1:7633/small
got=$(curl -sS -o /dev/null -w '%{http_code}' http://127.0.0.1:7633/big 2>&1)
case $got in *"Empty reply"*|*000*) t_pass deny_action_close ;; *) t_fail deny_action_close "got $got" ;; esac

# Bad rules: one sentence each, nothing added.
bad_rule() {	# NAME EXPECTED-TEXT WORDS...
	local name=$1 want=$2 out
	shift 2
	if out=$(kpctl mux add bad listen tcp://127.0.0.1:7639 backend tcp://127.0.0.1:9631 "$@" 2>&1); then
		t_fail "$name" "accepted"
	elif [[ $out == *"$want"* ]]; then
		t_pass "$name"
	else
		t_fail "$name" "$out"
	fi
}
bad_rule rule_needs_http "need 'parser http'" parser 'len:size=4' deny path=/x
bad_rule rule_method_case "upper case" parser http deny method=get
bad_rule rule_path_slash "starts with /" parser http deny path=admin
bad_rule rule_host_port "without a port" parser http allow host=a.example:80
bad_rule rule_unknown "is not method, host or path" parser http deny user=x
bad_rule rule_default_word "allow or deny" parser http default maybe
many=(); for i in $(seq 1 33); do many+=(deny "path=/p$i"); done
bad_rule rule_too_many "at most 32 rules" parser http "${many[@]}"

# A malformed request closes its own connection; a download on another is intact.
curl -sS -o "$KP_TMP/during" -H 'Host: 127.0.0.1' "$U/big" & dl=$!
r=$(raw 'GET /small HTTP/1.1\nHost: 127.0.0.1\r\n\r\n')
case $r in closed:0|error*) t_pass malformed_closed ;; *) t_fail malformed_closed "got $r" ;; esac
wait $dl && same others_unaffected "$W/big" "$KP_TMP/during" || t_fail others_unaffected "curl failed"
pe=$(mjson web 'm["kernel"]["parse_errors"]')
[ "$pe" -ge 1 ] && t_pass parse_error_counted || t_fail parse_error_counted "parse errors $pe"

# Reload keeps an unchanged mux and its counters; the config file form works.
cat > "$KP_TMP/kproxy.conf" <<'EOF'
mux conf listen tcp://127.0.0.1:7634 backend tcp://127.0.0.1:9631 parser http conns 2 deny path=/admin deny_action 403
EOF
kill -HUP "$KP_DAEMON_PID"
wait_port 127.0.0.1 7634 && code 403 config_policy http://127.0.0.1:7634/admin/x
code 200 config_allowed http://127.0.0.1:7634/small

for m in web one strict byhost conf; do kpctl mux del $m >/dev/null 2>&1; done
kp_daemon_stop && t_pass daemon_stop || t_fail daemon_stop "rc $KP_DAEMON_RC"
