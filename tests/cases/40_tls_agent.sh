#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# 40_tls_agent: the TLS handshake agent (kptlsd) through tests/tools/tlsecho,
# without kproxyd. Real peers: gnutls-cli, openssl s_client, curl as clients,
# gnutls-serv as the backend of the client role; a throwaway CA.
# Everywhere: handshakes, SNI, ALPN, versions and ciphers, resumption, what
# is refused and why, timeouts, a flood of half-open handshakes, the agent's
# privileges. With kTLS: the data through the kernel's record layer, every
# byte checked. Without kTLS: ARM fails with the sentence that says so.
# timeout: 900
. "$(dirname "$0")/../lib.sh"
require_root

E=$KP_BUILD/tests/tlsecho
T=$KP_TMP
for tool in certtool gnutls-cli gnutls-serv openssl curl; do
	command -v $tool >/dev/null || { t_skip tools "$tool is missing (scripts/install-deps.sh --test)"; exit 0; }
done
[ -x "$E" ] && [ -x "$KP_BUILD/kptlsd" ] || { t_fail build "$E or kptlsd is not built (make)"; exit 1; }

# ------------------------------------------------------------------ a throwaway CA
# a.test and b.test (one server, two names), old.test expired, self.pem a
# self-signed a.test nobody trusts.
certs() {
	local n
	certtool --generate-privkey --key-type=ecdsa --outfile ca.key &&
	printf 'cn = "kproxy test CA"\nca\ncert_signing_key\nexpiration_days = 30\n' >ca.tmpl &&
	certtool --generate-self-signed --load-privkey ca.key --template ca.tmpl --outfile ca.pem || return 1
	for n in a b old; do
		certtool --generate-privkey --key-type=ecdsa --outfile $n.key || return 1
		printf 'cn = "%s.test"\ndns_name = "%s.test"\ntls_www_server\nsigning_key\n' $n $n >$n.tmpl
		if [ $n = old ]; then
			printf 'activation_date = "2020-01-01 00:00:00"\nexpiration_date = "2020-02-01 00:00:00"\n' >>$n.tmpl
		else
			echo 'expiration_days = 30' >>$n.tmpl
		fi
		certtool --generate-certificate --load-privkey $n.key --load-ca-certificate ca.pem \
			--load-ca-privkey ca.key --template $n.tmpl --outfile $n.pem || return 1
	done
	certtool --generate-privkey --key-type=ecdsa --outfile self.key &&
	certtool --generate-self-signed --load-privkey self.key --template a.tmpl --outfile self.pem
}
(cd "$T" && certs) >"$T/certs.log" 2>&1 || { t_fail certs "$(tail -3 "$T/certs.log")"; exit 1; }
chmod 600 "$T"/*.key

# ------------------------------------------------------------------ kTLS or not
ktls=0
why=$("$E" --probe) && ktls=1
if [ $ktls = 1 ]; then
	t_pass probe
elif [[ " ${KP_EXPECT_FEATURES:-} " == *" ktls "* ]]; then
	t_fail probe "$why (expected on this kernel)"
elif [[ $why == *"has no kTLS"*"tls:// needs a kernel with kTLS"* ]]; then
	t_pass probe_sentence
else
	t_fail probe_sentence "unclear probe answer: $why"
fi

# ------------------------------------------------------------------ helpers
port=9400
SRV_PID=
# srv NAME ARGS...: a tlsecho server on the next port ($port); its lines in $T/NAME.out.
srv() {
	local name=$1
	shift
	port=$((port + 1))
	kp_bg "$E" server --listen "tcp://127.0.0.1:$port" "$@" >"$T/$name.out" 2>"$T/$name.err"
	SRV_PID=$KP_BG_PID
	wait_for 10 grep -q '^listening' "$T/$name.out" ||
		{ echo "server $name did not start: $(cat "$T/$name.out" "$T/$name.err")"; return 1; }
}
srv_stop() {
	[ -n "$SRV_PID" ] || return 0
	kill -TERM "$SRV_PID" 2>/dev/null
	wait "$SRV_PID" 2>/dev/null
	SRV_PID=
}
# has NAME ERE: a line of server NAME matches, within 10 s.
has() { wait_for "${3:-10}" grep -qE -- "$2" "$T/$1.out"; }
# expect TEST NAME ERE [SECS]: pass if server NAME prints a matching line.
expect() {
	if has "$2" "$3" "${4:-10}"; then t_pass "$1"; else t_fail "$1" "no line /$3/ in: $(tail -n 4 "$T/$2.out" | tr '\n' '|')"; fi
}
# gcli SNI ARGS...: gnutls-cli to $port trusting the CA, input from stdin.
gcli() {
	local sni=$1
	shift
	timeout 60 gnutls-cli --x509cafile "$T/ca.pem" --sni-hostname "$sni" --verify-hostname "$sni" \
		-p "$port" 127.0.0.1 "$@"
}
# What a handshake-only check expects of the server after HANDSHAKEN.
if [ $ktls = 1 ]; then
	after_hs='armed .*tx=yes rx=yes'
else
	after_hs='failed: this kernel has no kTLS \(CONFIG_TLS\): setsockopt\(TCP_ULP, "tls"\) failed: No such file or directory; load the tls module or use tcp:// instead'
fi
sz() { if [ "$1" -ge 1048576 ]; then echo "$(($1 >> 20))MiB"; else echo "${1}B"; fi; }
# text FILE BYTES: BYTES of base64 text (gnutls-cli and gnutls-serv --echo pass text).
text() { head -c $(($2 * 3 / 4 + 3)) /dev/urandom | base64 -w 76 | head -c "$2" >"$1"; }

# ------------------------------------------------------------------ contexts refused
AGENTS=()
# ctx_err NAME WANT ARGS...: a server whose context is refused with WANT; it exits 1.
ctx_err() {
	local name=$1 want=$2 out
	shift 2
	out=$("$E" server --listen tcp://127.0.0.1:9399 "$@" 2>&1)
	AGENTS+=("$(sed -n 's/^agent pid //p' <<<"$out")")
	if grep -qF -- "$want" <<<"$out"; then t_pass "$name"; else t_fail "$name" "want '$want', got: $out"; fi
}
# agents_gone: every agent a tlsecho started has exited with it.
agents_gone() {
	local p
	for p in "${AGENTS[@]}" $(sed -n 's/^agent pid //p' "$T"/*.out 2>/dev/null); do
		if [ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = kptlsd ]; then
			LEFT="agent $p outlived its tlsecho"
			return 1
		fi
	done
	return 0
}
ctx_err ctx_missing_cert "ctx failed: cannot read certificate file '$T/nope.pem': No such file or directory" \
	--cert "$T/nope.pem" --key "$T/a.key"
ctx_err ctx_key_mismatch "ctx failed: the key in '$T/b.key' does not belong to the certificate in '$T/a.pem'" \
	--cert "$T/a.pem" --key "$T/b.key"
ctx_err ctx_bad_cipher "ctx failed: unknown cipher 'RC4' in 'RC4:AES-128-GCM'" \
	--cert "$T/a.pem" --key "$T/a.key" --ciphers RC4:AES-128-GCM
ctx_err ctx_no_cert "ctx failed: a server context needs at least one 'cert' and 'key'"
# A tlsecho that exits takes its agent with it.
agents_gone && t_pass ctx_err_no_agent_left || t_fail ctx_err_no_agent_left "$LEFT"

# ------------------------------------------------------------------ the agent process
srv main --cert "$T/a.pem" --key "$T/a.key" --cert "$T/b.pem" --key "$T/b.key" \
	--alpn h2 --alpn http/1.1 || { t_fail main_start "see above"; exit 1; }
main_port=$port main_pid=$SRV_PID
agent=$(sed -n 's/^agent pid //p' "$T/main.out")
st=$(cat "/proc/$agent/status")
if grep -q '^CapEff:[[:space:]]*0\+$' <<<"$st" && grep -q '^CapPrm:[[:space:]]*0\+$' <<<"$st" &&
   grep -q '^CapBnd:[[:space:]]*0\+$' <<<"$st" && grep -q '^NoNewPrivs:[[:space:]]*1' <<<"$st"; then
	t_pass agent_no_privileges
else
	t_fail agent_no_privileges "$(grep -E '^(Cap|NoNew)' <<<"$st" | tr '\n' ' ')"
fi
# Its descriptors: stdio, the control socket, epoll (a few more for gnutls' randomness at most).
nfd=$(ls "/proc/$agent/fd" | wc -l)
[ "$nfd" -le 8 ] && t_pass agent_fds_idle || t_fail agent_fds_idle "$nfd descriptors: $(ls -l /proc/$agent/fd)"

# ------------------------------------------------------------------ handshakes
out=$(echo hello | gcli b.test --alpn h2 2>&1)
if grep -q "subject \`CN=b.test'" <<<"$out" && grep -q 'Application protocol: h2' <<<"$out"; then
	t_pass sni_b_alpn_client_side
else
	t_fail sni_b_alpn_client_side "$(tail -n 5 <<<"$out")"
fi
expect sni_b_alpn main 'conn 1 handshaken version=TLS1.3 cipher=AES-128-GCM alpn=h2 sni=b.test resumed=no'
expect arm_result main "conn 1 $after_hs"
# An unknown name gets the first certificate (no 'sni strict').
out=$(echo hello | gnutls-cli --x509cafile "$T/ca.pem" --sni-hostname zz.test --verify-hostname a.test \
	-p "$port" 127.0.0.1 2>&1)
grep -q "subject \`CN=a.test'" <<<"$out" && t_pass sni_unknown_default_cert || t_fail sni_unknown_default_cert "$(tail -n 5 <<<"$out")"
expect sni_unknown_seen main 'conn 2 handshaken .*alpn=- sni=zz.test'
# No ALPN in common: none agreed, the handshake goes on.
echo hello | gcli a.test --alpn spdy/1 >/dev/null 2>&1
expect alpn_none main 'conn 3 handshaken .*alpn=- sni=a.test'

# Versions and ciphers, each forced by the client.
n=3
for v in 1.2 1.3; do
	for c in AES-128-GCM AES-256-GCM CHACHA20-POLY1305; do
		n=$((n + 1))
		echo hi | gcli a.test --priority "NORMAL:-VERS-ALL:+VERS-TLS$v:-CIPHER-ALL:+$c" >"$T/v.out" 2>&1
		expect "tls${v}_$c" main "conn $n handshaken version=TLS$v cipher=$c "
	done
done
# The server narrows the ciphers: the client offers all, gets the one allowed.
srv narrow --cert "$T/a.pem" --key "$T/a.key" --ciphers CHACHA20-POLY1305 --versions 1.2
echo hi | gcli a.test >/dev/null 2>&1
expect server_narrows narrow 'conn 1 handshaken version=TLS1.2 cipher=CHACHA20-POLY1305 '
echo hi | gcli a.test --priority "NORMAL:-VERS-ALL:+VERS-TLS1.3" >/dev/null 2>&1
expect server_refuses_tls13_only narrow 'conn 2 failed: no TLS version and cipher suite in common with the client: the context allows TLS1.2 with CHACHA20-POLY1305'
srv_stop

# Resumption with tickets: TLS 1.3 and 1.2, gnutls-cli --resume.
port=$main_port
for v in 1.3 1.2; do
	out=$(echo hi | gcli a.test --resume --priority "NORMAL:-VERS-ALL:+VERS-TLS$v" 2>&1)
	if grep -q 'This is a resumed session' <<<"$out" && has main "handshaken version=TLS$v .*resumed=yes"; then
		t_pass "resume_tls$v"
	else
		t_fail "resume_tls$v" "$(grep -E 'resum|Handshake|Error' <<<"$out" | tr '\n' '|') $(tail -n 3 "$T/main.out" | tr '\n' '|')"
	fi
done

# ------------------------------------------------------------------ refused clients
# TLS 1.0 only.
echo hi | gcli a.test --priority "NORMAL:-VERS-ALL:+VERS-TLS1.0:+VERS-TLS1.1" >"$T/old.cli" 2>&1
expect tls10_refused main 'failed: the client offered no TLS 1.2 or 1.3'
# Not TLS at all.
exec {fd}<>"/dev/tcp/127.0.0.1/$port" && printf 'GET / HTTP/1.0\r\n\r\n' >&$fd
expect garbage_refused main "failed: the client did not start a TLS handshake: its first bytes are 'GET /' \\(plain text to a TLS port\\?\\)"
exec {fd}>&-
SRV_PID=$main_pid
srv_stop

# sni strict: a known name is served, an unknown or missing one refused.
srv strict --cert "$T/a.pem" --key "$T/a.key" --cert "$T/b.pem" --key "$T/b.key" --sni-strict
echo hi | gcli b.test >/dev/null 2>&1
expect strict_known strict 'conn 1 handshaken .*sni=b.test'
out=$(echo hi | gnutls-cli --x509cafile "$T/ca.pem" --sni-hostname zz.test --verify-hostname a.test -p "$port" 127.0.0.1 2>&1)
expect strict_unknown strict "conn 2 failed: no certificate for server name 'zz.test' \(the context has 'sni strict'\)"
grep -q 'Received alert \[112\]' <<<"$out" && t_pass strict_unknown_alert || t_fail strict_unknown_alert "$(tail -n 3 <<<"$out")"
echo hi | timeout 20 openssl s_client -connect "127.0.0.1:$port" -noservername >/dev/null 2>&1
expect strict_missing strict "conn 3 failed: the client sent no server name and the context has 'sni strict'"
srv_stop

# ------------------------------------------------------------------ timeouts
srv slow --cert "$T/a.pem" --key "$T/a.key" --timeout 1500
exec {s1}<>"/dev/tcp/127.0.0.1/$port"
exec {s2}<>"/dev/tcp/127.0.0.1/$port" && printf '\x16\x03\x01' >&$s2
expect timeout_silent slow 'conn 1 failed: handshake timed out after 1500 ms \(the client sent nothing\)' 5
expect timeout_stalled slow 'conn 2 failed: handshake timed out after 1500 ms \(the client stopped answering\)' 5
exec {s1}>&- {s2}>&-
srv_stop

# ------------------------------------------------------------------ a flood of half-open handshakes
# 200 connections that never say a word; a real handshake meanwhile is served
# at once; the agent holds one descriptor per handshake; when they time out
# it is back to idle. Then a limit of 50: the rest are refused at once.
# hold N: N connections to $port, held until this script's stdin closes.
hold() {
	"$KP_PYTHON" -c '
import socket, sys
s = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for i in range(int(sys.argv[2]))]
print("open", flush=True)
sys.stdin.read()' "$port" "$1"
}
srv flood --cert "$T/a.pem" --key "$T/a.key" --timeout 4000
agent=$(sed -n 's/^agent pid //p' "$T/flood.out")
exec {h}> >(hold 200 >"$T/hold.out" 2>&1)
wait_for 10 grep -q open "$T/hold.out"
wait_for 10 eval '[ "$(ls /proc/$agent/fd | wc -l)" -ge 200 ]'
start=${EPOCHREALTIME//[.,]/}
echo hi | gcli a.test >"$T/flood.cli" 2>&1
ms=$(( (${EPOCHREALTIME//[.,]/} - start) / 1000 ))
if grep -q 'Handshake was completed' "$T/flood.cli" && has flood 'conn 201 handshaken'; then
	t_pass flood_real_handshake_served
	echo "real handshake during the flood: $ms ms"
else
	t_fail flood_real_handshake_served "$(tail -n 3 "$T/flood.cli" | tr '\n' '|') $(tail -n 2 "$T/flood.out")"
fi
nfd=$(ls "/proc/$agent/fd" | wc -l)
[ "$nfd" -le 212 ] && t_pass flood_bounded || t_fail flood_bounded "the agent holds $nfd descriptors for 200 handshakes"
wait_for 15 eval '[ "$(grep -c "timed out after 4000 ms (the client sent nothing)" "$T/flood.out")" -ge 200 ]' &&
	t_pass flood_timed_out || t_fail flood_timed_out "$(grep -c 'timed out' "$T/flood.out") of 200 timed out"
nfd=$(ls "/proc/$agent/fd" | wc -l)
[ "$nfd" -le 8 ] && t_pass flood_released || t_fail flood_released "$nfd descriptors left"
exec {h}>&-
srv_stop

srv limit --cert "$T/a.pem" --key "$T/a.key" --timeout 3000 --max-handshakes 50
exec {h}> >(hold 60 >"$T/hold2.out" 2>&1)
wait_for 10 grep -q open "$T/hold2.out"
wait_for 10 eval '[ "$(grep -c "too many handshakes in progress" "$T/limit.out")" -ge 10 ]'
n=$(grep -c 'failed: too many handshakes in progress (50, the agent' "$T/limit.out")
[ "$n" = 10 ] && t_pass limit_refuses_excess || t_fail limit_refuses_excess "$n refused, want 10: $(tail -n 2 "$T/limit.out")"
# Once the 50 time out, handshakes are served again.
wait_for 10 eval '[ "$(grep -c "timed out" "$T/limit.out")" -ge 50 ]'
echo hi | gcli a.test >"$T/limit.cli" 2>&1
expect limit_recovers limit 'conn 61 handshaken'
exec {h}>&-
srv_stop

# ------------------------------------------------------------------ the client role
# gnutls-serv as the backend. Without kTLS the handshake (and the
# verification) still runs; ARM then fails with the sentence.
gserv() {
	local cert=$1 key=$2
	shift 2
	port=$((port + 1))
	kp_bg gnutls-serv --echo -p "$port" --x509certfile "$T/$cert" --x509keyfile "$T/$key" "$@"
	GS_PID=$KP_BG_PID
	wait_port 127.0.0.1 "$port"
}
gserv_stop() { kill "$GS_PID" 2>/dev/null; wait "$GS_PID" 2>/dev/null; }
# cli NAME WANT ARGS...: tlsecho client to $port; pass if its output matches WANT.
cli() {
	local name=$1 want=$2 out
	shift 2
	out=$("$E" client --connect "tcp://127.0.0.1:$port" "$@" 2>&1)
	AGENTS+=("$(sed -n 's/^agent pid //p' <<<"$out")")
	if grep -qE -- "$want" <<<"$out"; then t_pass "$name"; else t_fail "$name" "want /$want/, got: $(tr '\n' '|' <<<"$out")"; fi
}
if [ $ktls = 1 ]; then cli_ok='^ok 65536 bytes sent and verified'; else cli_ok="conn 1 $after_hs"; fi
gserv a.pem a.key --alpn h2 >/dev/null 2>&1
cli client_verified "$cli_ok" --ca "$T/ca.pem" --sni a.test --bytes 65536
cli client_handshaken 'conn 1 handshaken version=TLS1.3 .*alpn=- sni=a.test' --ca "$T/ca.pem" --sni a.test --bytes 1
cli client_alpn 'conn 1 handshaken .*alpn=h2' --ca "$T/ca.pem" --sni a.test --alpn h2 --bytes 1
cli client_wrong_name "conn 1 failed: the certificate of the server for 'b.test' was refused: .*does not match" \
	--ca "$T/ca.pem" --sni b.test
cli client_no_name "conn 1 failed: no server name to verify the backend's certificate against" --ca "$T/ca.pem"
cli client_system_store "conn 1 failed: the certificate of the server for 'a.test' was refused: .*NOT trusted" --sni a.test
gserv_stop
gserv old.pem old.key >/dev/null 2>&1
cli client_expired "conn 1 failed: the certificate of the server for 'old.test' was refused: .*expired" \
	--ca "$T/ca.pem" --sni old.test
gserv_stop
gserv self.pem self.key >/dev/null 2>&1
cli client_untrusted "conn 1 failed: the certificate of the server for 'a.test' was refused: .*NOT trusted.*issuer is unknown" \
	--ca "$T/ca.pem" --sni a.test
cli client_insecure "conn 1 handshaken version=TLS1.3" --insecure --bytes 1
gserv_stop
out=$("$E" client --connect "tcp://127.0.0.1:9399" --ca "$T/none.pem" 2>&1)
grep -qF "ctx failed: cannot read CA file '$T/none.pem'" <<<"$out" && t_pass client_bad_ca || t_fail client_bad_ca "$out"

# ------------------------------------------------------------------ data through kTLS
KTLS_CHECKS="s_client_echo_1B s_client_echo_65536B s_client_echo_16MiB echo_tls1.2_AES-128-GCM
echo_tls1.2_AES-256-GCM echo_tls1.2_CHACHA20-POLY1305 echo_tls1.3_AES-128-GCM echo_tls1.3_AES-256-GCM
echo_tls1.3_CHACHA20-POLY1305 s_client_resume_tls1_3 s_client_resume_tls1_2 curl_4MiB curl_alpn
client_echo_tls1.3_77B client_echo_tls1.3_1048586B client_echo_tls1.2_77B client_echo_tls1.2_1048586B"
if [ $ktls = 0 ]; then
	for c in $KTLS_CHECKS; do t_skip "$c" "$why"; done
else
	big=$((16 << 20))
	# One echo server per size: it closes (close_notify) after echoing that many.
	for size in 1 65536 $big; do
		head -c $size /dev/urandom >"$T/in"
		srv "echo$size" --cert "$T/a.pem" --key "$T/a.key" --close-after $size
		timeout 120 openssl s_client -quiet -connect "127.0.0.1:$port" -CAfile "$T/ca.pem" \
			-servername a.test <"$T/in" >"$T/out" 2>"$T/s_client.err"
		if [ "$(sha256sum <"$T/out")" = "$(sha256sum <"$T/in")" ]; then
			t_pass "s_client_echo_$(sz $size)"
		else
			t_fail "s_client_echo_$(sz $size)" "$(wc -c <"$T/out") of $size bytes back, or different; $(tail -n 2 "$T/echo$size.out" | tr '\n' '|')"
		fi
		srv_stop
	done
	# Every version and cipher, gnutls-cli, 256 KiB of text each way.
	text "$T/in" 262144
	srv ciphers --cert "$T/a.pem" --key "$T/a.key"
	for v in 1.2 1.3; do
		for c in AES-128-GCM AES-256-GCM CHACHA20-POLY1305; do
			gcli a.test --logfile="$T/gcli.log" --priority "NORMAL:-VERS-ALL:+VERS-TLS$v:-CIPHER-ALL:+$c" \
				<"$T/in" >"$T/out" 2>&1
			if cmp -s "$T/in" "$T/out" && has ciphers "armed version=TLS$v cipher=$c .*tx=yes rx=yes"; then
				t_pass "echo_tls${v}_$c"
			else
				t_fail "echo_tls${v}_$c" "$(wc -c <"$T/out") of 262144 bytes back; $(tail -n 2 "$T/ciphers.out" | tr '\n' '|')"
			fi
		done
	done
	srv_stop
	# openssl resumption: -sess_out, then -sess_in reports "Reused".
	srv resume --cert "$T/a.pem" --key "$T/a.key" --close-after 2
	for v in 1_3 1_2; do
		echo x | timeout 20 openssl s_client -connect "127.0.0.1:$port" -CAfile "$T/ca.pem" -servername a.test \
			-tls$v -ign_eof -sess_out "$T/sess$v" >/dev/null 2>&1
		out=$(echo x | timeout 20 openssl s_client -connect "127.0.0.1:$port" -CAfile "$T/ca.pem" \
			-servername a.test -tls$v -ign_eof -sess_in "$T/sess$v" 2>&1)
		grep -q '^Reused, TLSv1' <<<"$out" && t_pass "s_client_resume_tls$v" ||
			t_fail "s_client_resume_tls$v" "$(grep -E 'Reused|New,|error' <<<"$out" | tr '\n' '|')"
	done
	srv_stop
	# curl: HTTP/1.1 over the kernel's TLS, ALPN http/1.1 chosen from curl's h2,http/1.1.
	head -c $((4 << 20)) /dev/urandom >"$T/blob"
	srv http --cert "$T/a.pem" --key "$T/a.key" --alpn http/1.1 --http "$T/blob"
	got=$(timeout 60 curl -sS --cacert "$T/ca.pem" --resolve "a.test:$port:127.0.0.1" "https://a.test:$port/blob" | sha256sum)
	[ "$got" = "$(sha256sum <"$T/blob")" ] && t_pass curl_4MiB || t_fail curl_4MiB "sha256 differs; $(tail -n 3 "$T/http.out" | tr '\n' '|')"
	expect curl_alpn http 'armed version=TLS1.3 .*alpn=http/1.1 sni=a.test'
	srv_stop
	# The client role: gnutls-serv --echo behind, both versions, CA-verified.
	# gnutls-serv echoes whole lines only: sizes end a line of the pattern (77).
	for v in 1.3 1.2; do
		gserv a.pem a.key --priority "NORMAL:-VERS-ALL:+VERS-TLS$v" >/dev/null 2>&1
		for size in 77 $((77 * 13618)); do
			cli "client_echo_tls${v}_${size}B" "^ok $size bytes sent and verified" --ca "$T/ca.pem" --sni a.test --bytes $size
		done
		gserv_stop
	done
fi

srv_stop
# Nothing of ours is left: every agent went with its tlsecho.
wait_for 5 agents_gone && t_pass no_agent_left || t_fail no_agent_left "$LEFT"
