#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# timeout: 600
# TLS through kproxy: tls:// listeners (termination) and tls:// backends
# (origination), the handshake by the agent (kptlsd, gnutls), the records by
# the kernel (kTLS), the plaintext spliced. Real peers on both ends: curl,
# gnutls-cli and openssl s_client as clients; gnutls-serv and openssl
# s_server as TLS backends. Every byte is checked by SHA-256, both ways.
# Without kTLS (this machine's own kernel) 'proxy add' must refuse tls://
# with one sentence, and the rest is skipped with the reason.
. "$(dirname "$0")/../lib.sh"
require_root

bash "$KP_ROOT/tests/tlscerts.sh" "$KP_TMP/pki"
P=$KP_TMP/pki
: > "$KP_TMP/kproxy.conf"
kp_daemon_start || { t_fail start "kproxyd did not start: $(tail -3 "$KP_TMP/kproxyd.log")"; exit 1; }

if ! kernel_has_ktls; then
	# One clear sentence, and nothing listens.
	out=$(kpctl proxy add web listen tls://127.0.0.1:8443 cert "$P/web.pem" key "$P/web.key" \
		backend tcp://127.0.0.1:9001 2>&1) && rc=0 || rc=$?
	if [ "$rc" != 0 ] && [[ $out == *kTLS* ]] && _kp_listen_patterns 127.0.0.1 8443 && ! _kp_listening; then
		t_pass refused_without_ktls
	else
		t_fail refused_without_ktls "rc=$rc: $out"
	fi
	echo "$out"
	kpctl feature | grep -q '^ktls .* no' && t_pass feature_says_no_ktls ||
		t_fail feature_says_no_ktls "$(kpctl feature)"
	t_need ktls tls_proxy
	exit 0
fi

# ---- backends: HTTP (download a blob, upload returns the body's SHA-256), echo
mkdir -p "$KP_TMP/www"
big=$((64 << 20))	# the issue's largest size, in the VMs too
head -c $big /dev/urandom > "$KP_TMP/www/big"
head -c 1 /dev/urandom > "$KP_TMP/www/one"
head -c 100000 /dev/urandom > "$KP_TMP/www/mid"
cat > "$KP_TMP/httpsha.py" <<'PY'
import hashlib, http.server, os, sys
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def log_message(self, *a): pass
    def do_POST(self):
        n = int(self.headers.get('Content-Length', 0)); h = hashlib.sha256()
        while n:
            b = self.rfile.read(min(n, 1 << 20))
            if not b: break
            h.update(b); n -= len(b)
        body = (h.hexdigest() + '\n').encode()
        self.send_response(200); self.send_header('Content-Length', str(len(body)))
        self.end_headers(); self.wfile.write(body)
os.chdir(sys.argv[2])
http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
PY
kp_bg "$KP_PYTHON" "$KP_TMP/httpsha.py" 9080 "$KP_TMP/www"
kp_bg "$KP_BUILD/kpperf" server tcp://127.0.0.1:9001 --mode echo
wait_port 127.0.0.1 9080; wait_port 127.0.0.1 9001

t_check proxy_add kpctl proxy add web listen tls://127.0.0.1:8443 \
	cert "$P/web.pem" key "$P/web.key" cert "$P/api.pem" key "$P/api.key" \
	alpn http/1.1 backend tcp://127.0.0.1:9080
t_check proxy_add_echo kpctl proxy add echo listen tls://127.0.0.1:8444 \
	cert "$P/web.pem" key "$P/web.key" backend tcp://127.0.0.1:9001
wait_port 127.0.0.1 8443

# ---- curl: downloads and uploads of every size, sha256 both ways
CURL=(curl -sS --max-time 120 --cacert "$P/ca.pem" --resolve web.test:8443:127.0.0.1)
for f in one mid big; do
	want=$(sha256sum < "$KP_TMP/www/$f")
	got=$("${CURL[@]}" "https://web.test:8443/$f" | sha256sum)
	[ "$got" = "$want" ] && t_pass "curl_get_$f" || t_fail "curl_get_$f" "sha256 $got, want $want"
	want=${want%% *}
	got=$("${CURL[@]}" --data-binary "@$KP_TMP/www/$f" -H 'Content-Type: application/octet-stream' \
		"https://web.test:8443/up")
	[ "$got" = "$want" ] && t_pass "curl_post_$f" || t_fail "curl_post_$f" "server saw $got, want $want"
done
# HTTP/1.1 keep-alive: several requests on one TLS connection.
got=$("${CURL[@]}" "https://web.test:8443/mid" "https://web.test:8443/one" "https://web.test:8443/mid" | sha256sum)
want=$(cat "$KP_TMP/www/mid" "$KP_TMP/www/one" "$KP_TMP/www/mid" | sha256sum)
[ "$got" = "$want" ] && t_pass curl_keepalive || t_fail curl_keepalive "sha256 $got, want $want"
out=$("${CURL[@]}" -v -o /dev/null "https://web.test:8443/one" 2>&1)
[[ $out == *"ALPN: server accepted http/1.1"* ]] && t_pass alpn || t_fail alpn "$(echo "$out" | grep -i alpn)"
# The second name gets the second certificate (SNI).
out=$(curl -sS -v -o /dev/null --max-time 20 --cacert "$P/ca.pem" --resolve api.test:8443:127.0.0.1 \
	https://api.test:8443/one 2>&1)
[[ $out == *"subject: CN=api.test"* ]] && t_pass sni_picks_cert || t_fail sni_picks_cert "$(echo "$out" | grep -i 'subject\|error')"

# ---- gnutls-cli and openssl s_client through the echo backend
head -c 3000000 /dev/urandom > "$KP_TMP/echo.in"
want=$(sha256sum < "$KP_TMP/echo.in")
got=$(timeout 60 gnutls-cli --x509cafile "$P/ca.pem" -p 8444 127.0.0.1 --logfile=/dev/null \
	< "$KP_TMP/echo.in" 2>"$KP_TMP/gnutls-cli.err" | sha256sum)
[ "$got" = "$want" ] && t_pass gnutls_cli_echo || t_fail gnutls_cli_echo "sha256 $got, want $want: $(tail -3 "$KP_TMP/gnutls-cli.err")"
# s_client stops at the end of its input unless told to ignore it; then it
# reads until the pipe closes: take as many bytes as were sent.
got=$(timeout 60 openssl s_client -connect 127.0.0.1:8444 -CAfile "$P/ca.pem" -quiet \
	< "$KP_TMP/echo.in" 2>"$KP_TMP/s_client.err" | head -c 3000000 | sha256sum)
[ "$got" = "$want" ] && t_pass openssl_echo || t_fail openssl_echo "sha256 $got, want $want: $(tail -3 "$KP_TMP/s_client.err")"

# ---- what kproxyd saw
stats=$(kpctl -j stats web)
echo "$stats"
read -r hs spliced user < <(echo "$stats" | "$KP_PYTHON" -c 'import json,sys; d=json.load(sys.stdin)["proxies"][0]["daemon"]; print(d["tls_handshakes"], d["spliced_bytes"], d["user_bytes"])')
[ "$hs" -ge 8 ] && [ "$spliced" -ge $((2 * big)) ] && [ "$user" = 0 ] && t_pass spliced_not_copied ||
	t_fail spliced_not_copied "handshakes $hs, spliced $spliced, user $user"

# ---- origination: tls:// backends, verified against the test CA
serv() { kp_bg sh -c 'exec gnutls-serv --echo -p "$0" --x509certfile "$1" --x509keyfile "$2" >/dev/null 2>&1' "$@"; }
serv 9443 "$P/backend.pem" "$P/backend.key"
serv 9445 "$P/rogue.pem" "$P/rogue.key"
serv 9446 "$P/expired.pem" "$P/expired.key"
(cd "$KP_TMP/www" && exec openssl s_server -accept 9444 -cert "$P/backend.pem" -key "$P/backend.key" \
	-WWW -quiet) >/dev/null 2>&1 &
kp_defer kill $!
wait_port 127.0.0.1 9443; wait_port 127.0.0.1 9444; wait_port 127.0.0.1 9445; wait_port 127.0.0.1 9446
t_check orig_add kpctl proxy add orig listen tcp://127.0.0.1:8081 backend tls://127.0.0.1:9443 \
	ca "$P/ca.pem" sni backend.test
t_check orig_www_add kpctl proxy add origwww listen tcp://127.0.0.1:8082 backend tls://127.0.0.1:9444 \
	ca "$P/ca.pem"
t_check orig_bad_add kpctl proxy add rogue listen tcp://127.0.0.1:8085 backend tls://127.0.0.1:9445 \
	ca "$P/ca.pem" sni backend.test
t_check orig_expired_add kpctl proxy add expired listen tcp://127.0.0.1:8086 \
	backend tls://127.0.0.1:9446 ca "$P/ca.pem" sni backend.test
t_check orig_name_add kpctl proxy add wrongname listen tcp://127.0.0.1:8087 \
	backend tls://127.0.0.1:9443 ca "$P/ca.pem" sni other.test
wait_port 127.0.0.1 8081
# gnutls-serv --echo answers line by line: send lines (base64 of random bytes).
cat > "$KP_TMP/lines.py" <<'PY'
import base64, hashlib, os, socket, sys
n = int(sys.argv[2])
data = base64.encodebytes(os.urandom(n))[:n - 1] + b'\n'
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.sendall(data)
got = bytearray()
s.settimeout(30)
while len(got) < len(data):
    b = s.recv(1 << 20)
    if not b:
        break
    got += b
ok = bytes(got) == data
print(len(data), 'bytes sent,', len(got), 'back,', 'same' if ok else 'DIFFERENT')
sys.exit(0 if ok else 1)
PY
for size in 2 65536 1048576; do
	t_check "orig_gnutls_serv_${size}B" "$KP_PYTHON" "$KP_TMP/lines.py" 8081 $size
done
# openssl s_server -WWW serves the directory over TLS; kproxy's client side is plain HTTP.
want=$(sha256sum < "$KP_TMP/www/big")
got=$(curl -sS --max-time 120 --http1.0 http://127.0.0.1:8082/big | sha256sum)
[ "$got" = "$want" ] && t_pass orig_openssl_big || t_fail orig_openssl_big "sha256 $got, want $want"
fails() { kpctl -j stats "$1" | "$KP_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["proxies"][0]["daemon"]["tls_failed"])'; }
for px in rogue:8085 expired:8086 wrongname:8087; do
	out=$(printf 'x' | timeout 20 "$KP_PYTHON" "$KP_ROOT/tests/peer.py" client "${px#*:}" expect-reset 2>&1)
	n=$(fails "${px%%:*}")
	[ "$n" -ge 1 ] && t_pass "orig_refuses_${px%%:*}" || t_fail "orig_refuses_${px%%:*}" "tls_failed=$n: $out"
done
grep -q 'conn [0-9]*: TLS handshake with the backend failed' "$KP_TMP/kproxyd.log" &&
	t_pass orig_failure_logged || t_fail orig_failure_logged "$(tail -5 "$KP_TMP/kproxyd.log")"

# ---- bad input on the listener; an established transfer must not notice
t_check slow_add kpctl proxy add strict listen tls://127.0.0.1:8445 cert "$P/web.pem" key "$P/web.key" \
	unknown_sni refuse handshake_timeout 1500 backend tcp://127.0.0.1:9001
wait_port 127.0.0.1 8445
"${CURL[@]}" --limit-rate 4M "https://web.test:8443/big" -o "$KP_TMP/during.out" 2>"$KP_TMP/during.err" &
during=$!
# Garbage instead of a ClientHello.
out=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 nc -q 5 127.0.0.1 8445 | wc -c)
[ "$out" -lt 100 ] && t_pass garbage_hello_closed || t_fail garbage_hello_closed "got $out bytes back"
# A client that speaks TLS 1.0 only.
if timeout 20 gnutls-cli --priority 'NORMAL:-VERS-ALL:+VERS-TLS1.0' --x509cafile "$P/ca.pem" \
	-p 8445 127.0.0.1 </dev/null >"$KP_TMP/tls10.out" 2>&1; then
	t_fail tls10_refused "the handshake succeeded: $(tail -3 "$KP_TMP/tls10.out")"
else
	t_pass tls10_refused
fi
# An unknown name where the proxy says 'unknown_sni refuse'; the known one works.
if timeout 20 gnutls-cli --sni-hostname nobody.test --x509cafile "$P/ca.pem" --insecure -p 8445 \
	127.0.0.1 </dev/null >"$KP_TMP/sni.out" 2>&1; then
	t_fail unknown_sni_refused "handshake succeeded: $(tail -3 "$KP_TMP/sni.out")"
else
	t_pass unknown_sni_refused
fi
got=$(printf 'ping' | timeout 20 gnutls-cli --sni-hostname web.test --x509cafile "$P/ca.pem" -p 8445 \
	127.0.0.1 --logfile=/dev/null 2>/dev/null)
[ "$got" = ping ] && t_pass known_sni_works || t_fail known_sni_works "got '$got'"
# A client that stops in the middle of its ClientHello, and a flood of 200
# that never say anything: each is closed by the handshake timeout.
cat > "$KP_TMP/halfopen.py" <<'PY'
import socket, sys, time
n, port = int(sys.argv[1]), int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.create_connection(('127.0.0.1', port))
    if i == 0:
        s.sendall(bytes.fromhex('160301020001'))	# the first bytes of a ClientHello
    socks.append(s)
t0 = time.time(); closed = 0
for s in socks:
    s.settimeout(max(0.1, 15 - (time.time() - t0)))
    try:
        if s.recv(1) == b'': closed += 1
    except ConnectionResetError:
        closed += 1
    except socket.timeout:
        pass
print(closed, round(time.time() - t0, 1))
sys.exit(0 if closed == n else 1)
PY
out=$(timeout 60 "$KP_PYTHON" "$KP_TMP/halfopen.py" 200 8445) && t_pass halfopen_flood_closed ||
	t_fail halfopen_flood_closed "closed, seconds: $out"
wait $during && got=$(sha256sum < "$KP_TMP/during.out") && want=$(sha256sum < "$KP_TMP/www/big") &&
	[ "$got" = "$want" ] && t_pass established_unaffected ||
	t_fail established_unaffected "sha256 ${got:-none}, want $want: $(cat "$KP_TMP/during.err")"
n=$(fails strict)
[ "$n" -ge 203 ] && t_pass failures_counted || t_fail failures_counted "tls_failed=$n, want >= 203"

# ---- a KeyUpdate from the client: kTLS here cannot take new keys; the
# connection ends cleanly and is counted (openssl s_client's 'K' command).
(printf 'hello\n'; sleep 3; printf 'K\n'; sleep 4) | timeout 20 openssl s_client -connect 127.0.0.1:8444 \
	-CAfile "$P/ca.pem" >"$KP_TMP/ku.out" 2>&1
ku=$(kpctl -j stats echo | "$KP_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["proxies"][0]["daemon"]["tls_key_updates"])')
[ "$ku" -ge 1 ] && grep -q 'KeyUpdate' "$KP_TMP/kproxyd.log" && t_pass key_update_closes ||
	t_fail key_update_closes "tls_key_updates=$ku: $(tail -3 "$KP_TMP/ku.out")"

# ---- every cipher kTLS has, TLS 1.3 and 1.2, and session resumption (gnutls-cli)
head -c 200000 /dev/urandom | base64 > "$KP_TMP/lines.in"
want=$(sha256sum < "$KP_TMP/lines.in")
for v in 1.3 1.2; do
	for c in AES-128-GCM AES-256-GCM CHACHA20-POLY1305; do
		name="cipher_tls${v/./}_${c//-/_}"
		got=$(timeout 60 gnutls-cli --x509cafile "$P/ca.pem" -p 8444 127.0.0.1 \
			--priority "NORMAL:-VERS-ALL:+VERS-TLS$v:-CIPHER-ALL:+$c" \
			--logfile="$KP_TMP/$name.log" < "$KP_TMP/lines.in" 2>"$KP_TMP/$name.err" | sha256sum)
		desc=$(grep -m1 'Description:' "$KP_TMP/$name.log")
		if [ "$got" = "$want" ] && [[ $desc == *"TLS$v"*"$c"* ]]; then
			t_pass "$name"
		else
			t_fail "$name" "sha256 $got, want $want; $desc $(tail -2 "$KP_TMP/$name.err")"
		fi
	done
done
out=$(printf 'x' | timeout 60 gnutls-cli --resume --x509cafile "$P/ca.pem" -p 8444 127.0.0.1 2>&1)
[[ $out == *"This is a resumed session"* ]] && t_pass session_resumed ||
	t_fail session_resumed "$(echo "$out" | grep -i 'resum\|error' | head -3)"

# ---- a restart (SIGUSR2) in the middle of a TLS download and a TLS upload:
# the kTLS sockets and their pipes go over to the new kproxyd, no byte lost;
# the proxies come back with their TLS contexts (a new agent).
# Slow enough (2 MB/s, about 30 s each) that both are under way at once even
# under TCG; the upload streams the file (-T) instead of loading 64 MiB first.
"${CURL[@]}" --limit-rate 2M -T "$KP_TMP/www/big" -X POST -H 'Content-Type: application/octet-stream' \
	"https://web.test:8443/up" >"$KP_TMP/rs_up.out" 2>"$KP_TMP/rs_up.err" &
rs_up=$!
"${CURL[@]}" --limit-rate 2M "https://web.test:8443/big" -o "$KP_TMP/rs.out" 2>"$KP_TMP/rs.err" &
rs_get=$!
# Both past their handshakes (handshakes in progress do not survive a restart).
spliced() {
	[ "$(kpctl -j conn show web | "$KP_PYTHON" -c 'import json,sys
print(sum(c["path"] == "splice" and c["bytes_to_backend"] + c["bytes_to_client"] > 0
          for c in json.load(sys.stdin)["conns"]))')" -ge 2 ]
}
wait_for 120 spliced || t_fail tls_restart_setup "$(kpctl conn show web)"
kill -USR2 "$KP_DAEMON_PID"
new_ready() { sed -n '/took over from the previous kproxyd/,$p' "$KP_TMP/kproxyd.log" | grep -q "ready: control socket"; }
wait_for 30 new_ready && t_pass tls_restarted || t_fail tls_restarted "$(tail -5 "$KP_TMP/kproxyd.log")"
want=$(sha256sum < "$KP_TMP/www/big")
wait $rs_get && [ "$(sha256sum < "$KP_TMP/rs.out")" = "$want" ] && t_pass tls_download_survives_restart ||
	t_fail tls_download_survives_restart "$(cat "$KP_TMP/rs.err")"
wait $rs_up && [ "$(cat "$KP_TMP/rs_up.out")" = "${want%% *}" ] && t_pass tls_upload_survives_restart ||
	t_fail tls_upload_survives_restart "server saw $(cat "$KP_TMP/rs_up.out"): $(cat "$KP_TMP/rs_up.err")"
got=$("${CURL[@]}" "https://web.test:8443/mid" | sha256sum)
[ "$got" = "$(sha256sum < "$KP_TMP/www/mid")" ] && t_pass tls_after_restart || t_fail tls_after_restart "sha256 $got"
wait_for 10 sh -c "[ \"\$('$KP_BUILD/kproxyctl' -s '$KP_TMP/ctl.sock' -j conn show | \
	'$KP_PYTHON' -c 'import json,sys; print(len(json.load(sys.stdin)[\"conns\"]))')\" = 0 ]" &&
	t_pass all_conns_closed || t_fail all_conns_closed "$(kpctl conn show)"
