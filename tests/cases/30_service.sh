#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Services: unmodified clients (curl, nc, python) in a cgroup connect to a VIP
# that exists nowhere; the cgroup hooks send them straight to a backend.
# getpeername() says VIP, UDP replies come from the VIP, IPv4 and IPv6, every
# byte checked; processes outside the cgroup are untouched; a dead backend
# leaves the selection; with none left connect() is refused at once; deleting
# the service removes the hooks.
. "$(dirname "$0")/../lib.sh"
require_root
P="python3 $KP_ROOT/tests/svcpeer.py"

ip addr add ::1/128 dev lo 2>/dev/null
mkdir -p "$KP_TMP/a" "$KP_TMP/b"
head -c 1048576 /dev/urandom > "$KP_TMP/a/blob"
cp "$KP_TMP/a/blob" "$KP_TMP/b/blob"
echo a > "$KP_TMP/a/id"; echo b > "$KP_TMP/b/id"
want=$(sha256sum < "$KP_TMP/a/blob")
(cd "$KP_TMP/a" && exec python3 -m http.server 9101 --bind 127.0.0.1) >/dev/null 2>&1 &
(cd "$KP_TMP/b" && exec python3 -m http.server 9102 --bind 127.0.0.1) >/dev/null 2>&1 & b_pid=$!
(cd "$KP_TMP/a" && exec python3 -m http.server 9103 --bind ::1) >/dev/null 2>&1 &
$P udp-echo 127.0.0.1 9104 &
$P udp-echo ::1 9104 &
wait_port 127.0.0.1 9101; wait_port 127.0.0.1 9102

cg=$(kp_cgroup_new app)
other=$(kp_cgroup_new other)
: > "$KP_TMP/kproxy.conf"
kp_daemon_start || { t_fail start "kproxyd did not start: $(tail -3 "$KP_TMP/kproxyd.log")"; exit 1; }

# Run a command inside a cgroup (the shell moves itself there, then execs).
in_cg() { local g=$1; shift; sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$g" "$@"; }

t_check add_tcp kpctl service add web vip tcp://10.96.0.10:80 backend tcp://127.0.0.1:9101 \
	backend tcp://127.0.0.1:9102 cgroup "$cg" check_interval 300
t_check add_tcp6 kpctl service add web6 vip 'tcp6://[fd00::10]:80' backend 'tcp6://[::1]:9103' cgroup "$cg"
t_check add_udp kpctl service add dns vip udp://10.96.0.53:53 backend udp://127.0.0.1:9104 cgroup "$cg"
t_check add_udp6 kpctl service add dns6 vip 'udp6://[fd00::53]:53' backend 'udp6://[::1]:9104' cgroup "$cg"

# bpftool prints nothing at all for a cgroup without programs.
hooks() { bpftool -j cgroup show "$1" | python3 -c 'import json,sys; t=sys.stdin.read().strip(); print(len(json.loads(t)) if t else 0)'; }
# connect, sendmsg, recvmsg, getpeername (v4 and v6 each) and sock_release, once per cgroup.
n=$(hooks "$cg")
[ "$n" = 9 ] && t_pass hooks_attached || t_fail hooks_attached "$n programs attached to $cg, want 9"

# TCP: curl fetches 1 MiB through the VIP, byte for byte.
got=$(in_cg "$cg" curl -sS --max-time 10 http://10.96.0.10/blob | sha256sum)
[ "$got" = "$want" ] && t_pass curl_v4_bytes || t_fail curl_v4_bytes "sha256 $got, want $want"
got=$(in_cg "$cg" curl -sS -g --max-time 10 'http://[fd00::10]/blob' | sha256sum)
[ "$got" = "$want" ] && t_pass curl_v6_bytes || t_fail curl_v6_bytes "sha256 $got, want $want"
# Round robin: both backends answer.
ids=$(for i in 1 2 3 4; do in_cg "$cg" curl -sS --max-time 5 http://10.96.0.10/id; done | sort -u | tr -d '\n')
[ "$ids" = ab ] && t_pass rr_both_backends || t_fail rr_both_backends "backends seen: '$ids'"
# via PROXY: the VIP leads to a kproxy proxy (L7 services), which leads to the backend.
# (The proxy also counts the health checks: kproxyd connects to its listener.)
t_check proxy_for_via kpctl proxy add front listen tcp://127.0.0.1:8400 backend tcp://127.0.0.1:9101
t_check add_via kpctl service add webvia vip tcp://10.96.0.20:80 via front cgroup "$cg"
got=$(in_cg "$cg" curl -sS --max-time 10 http://10.96.0.20/blob | sha256sum)
acc=$(kpctl -j stats front | python3 -c 'import json,sys; print(json.load(sys.stdin)["proxies"][0]["daemon"]["accepted"])')
[ "$got" = "$want" ] && [ "$acc" -ge 1 ] && t_pass via_proxy_bytes || t_fail via_proxy_bytes "sha256 $got (want $want), proxy accepted $acc"
kpctl service del webvia >/dev/null

# The application sees the VIP as its peer.
t_check getpeername_v4 in_cg "$cg" $P peername 10.96.0.10 80
t_check getpeername_v6 in_cg "$cg" $P peername fd00::10 80
# UDP, unconnected and connected, v4 and v6: replies come from the VIP.
t_check udp_v4_sendto in_cg "$cg" $P udp-client 10.96.0.53 53 sendto
t_check udp_v4_connected in_cg "$cg" $P udp-client 10.96.0.53 53 connect
t_check udp_v6_sendto in_cg "$cg" $P udp-client fd00::53 53 sendto
out=$(echo hello-nc | in_cg "$cg" timeout 5 nc -u -w 1 10.96.0.53 53)
[ "$out" = hello-nc ] && t_pass udp_nc || t_fail udp_nc "nc got '$out'"

# A process outside the cgroup is untouched: the VIP is routed nowhere here.
if curl -sS --max-time 3 http://10.96.0.10/id >/dev/null 2>"$KP_TMP/out.err"; then
	t_fail outside_untouched "a process outside the cgroup reached the service"
else
	t_pass outside_untouched
fi
if in_cg "$other" curl -sS --max-time 3 http://10.96.0.10/id >/dev/null 2>&1; then
	t_fail other_cgroup_untouched "a process in another cgroup reached the service"
else
	t_pass other_cgroup_untouched
fi

# The sockets view lists a steered connection while it is open.
in_cg "$cg" $P hold 10.96.0.10 80 3 > "$KP_TMP/hold.out" 2>&1 & h=$!
wait_for 5 grep -q connected "$KP_TMP/hold.out"
kpctl -j sockets > "$KP_TMP/sockets.json"
if python3 - "$KP_TMP/sockets.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["sockets"]
ok = [x for x in s if x["vip"] == "tcp://10.96.0.10:80" and x["service"] == "web"
      and x["backend"] in ("tcp://127.0.0.1:9101", "tcp://127.0.0.1:9102")
      and x["mode"] == "steered" and "bytes_sent" in x]
sys.exit(0 if ok else 1)
PY
then t_pass sockets_view; else t_fail sockets_view "$(cat "$KP_TMP/sockets.json")"; fi
wait $h

# Stats count what happened.
st=$(kpctl -j service show web)
python3 -c 'import json,sys; s=json.loads(sys.argv[1])["services"][0]["stats"]; sys.exit(0 if s["connects"] >= 6 and s["rev_peername"] >= 1 else 1)' "$st" \
	&& t_pass stats_counted || t_fail stats_counted "$st"

# kproxyd restarts (SIGUSR2): the services and their hooks carry over, not twice.
kill -USR2 "$KP_DAEMON_PID"
new_ready() { sed -n '/took over from the previous kproxyd/,$p' "$KP_TMP/kproxyd.log" | grep -q "ready: control socket"; }
wait_for 20 new_ready
n=$(kpctl -j service show | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["services"]))')
[ "$n" = 4 ] && [ "$(hooks "$cg")" = 9 ] && t_pass restart_keeps_services \
	|| t_fail restart_keeps_services "$n services, $(hooks "$cg") hooks after restart"
got=$(in_cg "$cg" curl -sS --max-time 10 http://10.96.0.10/blob | sha256sum)
[ "$got" = "$want" ] && t_pass curl_after_restart || t_fail curl_after_restart "sha256 $got, want $want"

# A backend that dies leaves the selection: every connect goes to the other one.
kill "$b_pid"; wait "$b_pid" 2>/dev/null
kp_sleep 1
ids=$(for i in 1 2 3 4; do in_cg "$cg" curl -sS --max-time 5 http://10.96.0.10/id; done | sort -u | tr -d '\n')
[ "$ids" = a ] && t_pass dead_backend_skipped || t_fail dead_backend_skipped "backends seen: '$ids'"
grep -q "backend tcp://127.0.0.1:9102 is down" "$KP_TMP/kproxyd.log" && t_pass dead_backend_logged \
	|| t_fail dead_backend_logged "$(tail -3 "$KP_TMP/kproxyd.log")"
# No backend left: connect() is refused at once, not a hang.
t_check add_dead kpctl service add gone vip tcp://10.96.0.99:80 backend tcp://127.0.0.1:9199 cgroup "$cg" check_interval 200
kp_sleep 0.6
t_check refused_no_backend in_cg "$cg" $P refused 10.96.0.99 80

# Bad input: clear errors, nothing changes.
expect() { # name, text the error must contain, kproxyctl args...
	local name=$1 text=$2 out rc; shift 2
	out=$(kpctl "$@" 2>&1); rc=$?
	if [ $rc != 0 ] && grep -qi -- "$text" <<<"$out"; then t_pass "$name"; else t_fail "$name" "exit $rc: $out"; fi
}
expect bad_vip "unknown scheme" service add x vip http://10.96.0.1:80 backend tcp://127.0.0.1:1 cgroup "$cg"
expect dup_name "exists" service add web vip tcp://10.96.0.11:80 backend tcp://127.0.0.1:9101 cgroup "$cg"
expect dup_vip "belongs to another service" service add web2 vip tcp://10.96.0.10:80 backend tcp://127.0.0.1:9101 cgroup "$cg"
expect family_mismatch "IPv6" service add x vip 'tcp6://[fd00::11]:80' backend tcp://127.0.0.1:9101 cgroup "$cg"
expect no_cgroup "not a cgroup2 directory" service add x vip tcp://10.96.0.12:80 backend tcp://127.0.0.1:9101 cgroup /nonexistent
expect via_unknown "no proxy named" service add x vip tcp://10.96.0.12:80 via nosuch cgroup "$cg"
expect del_unknown "no service named" service del nosuch

# Deleting the services removes the hooks from the cgroup.
for s in web web6 dns dns6 gone; do kpctl service del $s >/dev/null; done
n=$(hooks "$cg")
[ "$n" = 0 ] && t_pass hooks_removed || t_fail hooks_removed "$n programs still attached to $cg"
if in_cg "$cg" curl -sS --max-time 3 http://10.96.0.10/id >/dev/null 2>&1; then
	t_fail gone_after_del "the VIP still works after 'service del'"
else
	t_pass gone_after_del
fi
