#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# SIGHUP re-reads the config: new proxies start, removed ones stop, unchanged
# ones keep their connections; a broken config keeps the running one.
. "$(dirname "$0")/../lib.sh"
require_root
"$KP_BUILD/kpperf" server tcp://127.0.0.1:9009 --mode echo &
wait_port 127.0.0.1 9009
echo "proxy a listen tcp://127.0.0.1:8021 backend tcp://127.0.0.1:9009" > "$KP_TMP/kproxy.conf"
kp_daemon_start || { t_fail start "kproxyd did not start"; exit 1; }
"$KP_BUILD/kpperf" xfer tcp://127.0.0.1:8021 --bytes 50000000 > "$KP_TMP/x.out" 2>&1 & x=$!
sleep 0.3
cat > "$KP_TMP/kproxy.conf" <<CONF
proxy a listen tcp://127.0.0.1:8021 backend tcp://127.0.0.1:9009
proxy b listen tcp://127.0.0.1:8022 backend tcp://127.0.0.1:9009
CONF
kill -HUP "$KP_DAEMON_PID"; sleep 0.5
"$KP_BUILD/kpperf" xfer tcp://127.0.0.1:8022 --bytes 1000 >/dev/null 2>&1 && t_pass added_on_hup || t_fail added_on_hup "b does not work"
echo "proxy b listen tcp://127.0.0.1:8022 backend tcp://127.0.0.1:9009" > "$KP_TMP/kproxy.conf"
kill -HUP "$KP_DAEMON_PID"; sleep 0.5
"$KP_BUILD/kpperf" xfer tcp://127.0.0.1:8021 --bytes 10 --expect-fail >/dev/null 2>&1 && t_pass removed_on_hup || t_fail removed_on_hup "a still accepts"
wait $x && t_pass live_conn_survives_reload || t_fail live_conn_survives_reload "$(cat "$KP_TMP/x.out")"
echo "proxy broken" > "$KP_TMP/kproxy.conf"
kill -HUP "$KP_DAEMON_PID"; sleep 0.5
"$KP_BUILD/kpperf" xfer tcp://127.0.0.1:8022 --bytes 1000 >/dev/null 2>&1 && t_pass bad_config_keeps_running || t_fail bad_config_keeps_running "b stopped"
grep -q "keeping the running configuration" "$KP_TMP/kproxyd.log" && t_pass bad_config_logged || t_fail bad_config_logged "$(tail -3 "$KP_TMP/kproxyd.log")"

# Services and accels in the file: added at start, replaced when changed, removed
# when gone, and a bad line keeps what runs.
cg=$(kp_cgroup_new reload)
svcs() { kpctl -j service show | python3 -c 'import json,sys; print(" ".join(s["name"] + "=" + ",".join(b["uri"] for b in s["backends"]) for s in json.load(sys.stdin)["services"]))'; }
accs() { kpctl -j accel show | python3 -c 'import json,sys; print(" ".join(a["name"] + "=" + ",".join(map(str, a["ports"])) for a in json.load(sys.stdin)["accels"]))'; }
cat > "$KP_TMP/kproxy.conf" <<CONF
proxy b listen tcp://127.0.0.1:8022 backend tcp://127.0.0.1:9009
service web vip tcp://10.96.0.10:80 backend tcp://127.0.0.1:9009 cgroup $cg check_interval 0
accel side cgroup $cg port 9009
CONF
kill -HUP "$KP_DAEMON_PID"; kp_sleep 0.5
[ "$(svcs)" = "web=tcp://127.0.0.1:9009" ] && [ "$(accs)" = "side=9009" ] && t_pass service_added_on_hup \
	|| t_fail service_added_on_hup "services '$(svcs)', accels '$(accs)'"
sed -i 's|backend tcp://127.0.0.1:9009 cgroup|backend tcp://127.0.0.1:9010 cgroup|; s|port 9009|port 9011|' "$KP_TMP/kproxy.conf"
kill -HUP "$KP_DAEMON_PID"; kp_sleep 0.5
[ "$(svcs)" = "web=tcp://127.0.0.1:9010" ] && [ "$(accs)" = "side=9011" ] && t_pass service_changed_on_hup \
	|| t_fail service_changed_on_hup "services '$(svcs)', accels '$(accs)'"
echo "service broken vip tcp://10.96.0.11:80" >> "$KP_TMP/kproxy.conf"
kill -HUP "$KP_DAEMON_PID"; kp_sleep 0.5
[ "$(svcs)" = "web=tcp://127.0.0.1:9010" ] && grep -q "kproxy.conf:4: a service needs at least one 'backend URI'" "$KP_TMP/kproxyd.log" \
	&& t_pass bad_service_line_keeps || t_fail bad_service_line_keeps "services '$(svcs)'; $(tail -2 "$KP_TMP/kproxyd.log")"
echo "proxy b listen tcp://127.0.0.1:8022 backend tcp://127.0.0.1:9009" > "$KP_TMP/kproxy.conf"
kill -HUP "$KP_DAEMON_PID"; kp_sleep 0.5
[ -z "$(svcs)" ] && [ -z "$(accs)" ] && [ -z "$(bpftool cgroup show "$cg")" ] && t_pass service_removed_on_hup \
	|| t_fail service_removed_on_hup "services '$(svcs)', accels '$(accs)', hooks: $(bpftool cgroup show "$cg")"
