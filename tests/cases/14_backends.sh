#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Backend selection and failure: rr alternates, hash sticks to one backend per
# client address, a dead backend is skipped, a silent one times out, and with
# none reachable the client is reset promptly rather than left hanging.
. "$(dirname "$0")/../lib.sh"
require_root
J() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
"$KP_BUILD/kpperf" server tcp://127.0.0.1:9011 --mode echo &
"$KP_BUILD/kpperf" server tcp://127.0.0.1:9012 --mode echo &
wait_port 127.0.0.1 9011; wait_port 127.0.0.1 9012
: > "$KP_TMP/kproxy.conf"
kp_daemon_start || { t_fail start "kproxyd did not start"; exit 1; }

# Count the connections each backend saw, from kproxyd's closed-connection events.
kpctl proxy add rr listen tcp://127.0.0.1:8011 backend tcp://127.0.0.1:9011 backend tcp://127.0.0.1:9012 balance rr >/dev/null
timeout 20 "$KP_BUILD/kproxyctl" -P /sys/fs/bpf/kproxy -j monitor >> "$KP_TMP/mon.out" & mon=$!
sleep 0.5
for i in 1 2 3 4; do "$KP_BUILD/kpperf" xfer tcp://127.0.0.1:8011 --bytes 1000 >/dev/null || t_fail rr_xfer "xfer $i failed"; done
sleep 0.5
a=$(grep -c '"conn-open".*9011' "$KP_TMP/mon.out"); b=$(grep -c '"conn-open".*9012' "$KP_TMP/mon.out")
[ "$a" = 2 ] && [ "$b" = 2 ] && t_pass rr_alternates || t_fail rr_alternates "9011:$a 9012:$b $(cat "$KP_TMP/mon.out")"

kpctl proxy add hash listen tcp://127.0.0.1:8012 backend tcp://127.0.0.1:9011 backend tcp://127.0.0.1:9012 balance hash >/dev/null
: > "$KP_TMP/mon.out"
for i in 1 2 3 4; do "$KP_BUILD/kpperf" xfer tcp://127.0.0.1:8012 --bytes 1000 >/dev/null; done
sleep 0.5
a=$(grep -c '"conn-open".*9011' "$KP_TMP/mon.out"); b=$(grep -c '"conn-open".*9012' "$KP_TMP/mon.out")
{ [ "$a" = 4 ] && [ "$b" = 0 ]; } || { [ "$a" = 0 ] && [ "$b" = 4 ]; } && t_pass hash_sticks || t_fail hash_sticks "9011:$a 9012:$b"

# First backend refuses (nothing listens on 9019): every connection still works.
kpctl proxy add skip listen tcp://127.0.0.1:8013 backend tcp://127.0.0.1:9019 backend tcp://127.0.0.1:9011 >/dev/null
if out=$("$KP_BUILD/kpperf" xfer tcp://127.0.0.1:8013 --bytes 100000 --conns 4 2>&1); then t_pass dead_backend_skipped
else t_fail dead_backend_skipped "$out"; fi
grep -q '"backend-fail".*9019' "$KP_TMP/mon.out" && t_pass backend_fail_event || t_fail backend_fail_event "no backend-fail event for 9019"

# Nothing reachable: the client is reset at once.
kpctl proxy add none listen tcp://127.0.0.1:8014 backend tcp://127.0.0.1:9019 >/dev/null
t0=$(date +%s%N)
if "$KP_BUILD/kpperf" xfer tcp://127.0.0.1:8014 --bytes 1000 --expect-fail >/dev/null 2>&1; then
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	[ $ms -lt 2000 ] && t_pass no_backend_resets_client || t_fail no_backend_resets_client "took ${ms} ms"
else t_fail no_backend_resets_client "the client was not refused"; fi

# A backend that never answers the SYN: an address on a veth link of this
# namespace that nobody owns (ARP goes unanswered): connect timeout, then the next.
ip link add kpv0 type veth peer name kpv1 && ip addr add 10.213.0.1/24 dev kpv0 &&
	ip link set kpv0 up && ip link set kpv1 up
kpctl proxy add slow listen tcp://127.0.0.1:8015 backend tcp://10.213.0.2:80 backend tcp://127.0.0.1:9012 connect_timeout 300 >/dev/null
t0=$(date +%s%N)
if out=$("$KP_BUILD/kpperf" xfer tcp://127.0.0.1:8015 --bytes 1000 2>&1); then
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	[ $ms -ge 250 ] && t_pass connect_timeout_then_next || t_fail connect_timeout_then_next "too fast (${ms} ms): was the timeout applied?"
else t_fail connect_timeout_then_next "$out"; fi
kill $mon 2>/dev/null; wait $mon 2>/dev/null
grep -q '"backend-fail".*10.213.0.2.*Connection timed out' "$KP_TMP/mon.out" && t_pass timeout_event || t_fail timeout_event "no timeout event: $(grep 10.213 "$KP_TMP/mon.out")"
