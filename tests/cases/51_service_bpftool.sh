#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# The bpftool recipe of docs/service.md, command by command: load the service
# object, attach two hooks to a cgroup, write a service by hand, connect
# through the VIP from inside the cgroup, detach, unpin. No kproxyd.
. "$(dirname "$0")/../lib.sh"
require_root
P="python3 $KP_ROOT/tests/svcpeer.py"
OBJ=$KP_BUILD/service.bpf.o

cg=$(kp_cgroup_new app)
in_cg() { local g=$1; shift; sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$g" "$@"; }
mkdir -p "$KP_TMP/www"; echo a > "$KP_TMP/www/id"
# The server in the cgroup too: local acceleration needs both ends there.
(cd "$KP_TMP/www" && in_cg "$cg" python3 -m http.server 9101 --bind 127.0.0.1) >/dev/null 2>&1 &
wait_port 127.0.0.1 9101

t_check loadall bpftool prog loadall "$OBJ" /sys/fs/bpf/kpsvc
t_check attach_connect4 bpftool cgroup attach "$cg" connect4 pinned /sys/fs/bpf/kpsvc/kp_connect4
t_check attach_getpeername4 bpftool cgroup attach "$cg" getpeername4 pinned /sys/fs/bpf/kpsvc/kp_getpeername4
out=$(bpftool cgroup show "$cg")
grep -q "inet4_connect.*kp_connect4" <<<"$out" && grep -q "inet4_getpeername.*kp_getpeername4" <<<"$out" \
	&& t_pass cgroup_show || t_fail cgroup_show "$out"
z12="00 00 00 00 00 00 00 00 00 00 00 00"
t_check svc_by_hand bpftool map update pinned /sys/fs/bpf/kp_svc key hex 0a 60 00 0a $z12 00 50 06 02 \
	value hex 00 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
t_check backend_by_hand bpftool map update pinned /sys/fs/bpf/kp_svc_be key hex 01 00 00 00 00 00 00 00 \
	value hex 7f 00 00 01 $z12 23 8d 02 00 00 00 00 00
t_check through_vip in_cg "$cg" $P peername 10.96.0.10 80
# Outside the cgroup nothing changes: the VIP is routed nowhere.
if $P peername 10.96.0.10 80 >/dev/null 2>&1; then t_fail outside_untouched "reached the VIP from outside"
else t_pass outside_untouched; fi
# Local acceleration by hand: sockops on the cgroup, sk_msg on kp_acc_socks, port 9101 (0x238d).
t_check attach_sockops bpftool cgroup attach "$cg" sock_ops pinned /sys/fs/bpf/kpsvc/kp_acc_sockops
t_check attach_sk_msg bpftool prog attach pinned /sys/fs/bpf/kpsvc/kp_acc_msg msg_verdict pinned /sys/fs/bpf/kp_acc_socks
t_check accel_port bpftool map update pinned /sys/fs/bpf/kp_acc_ports key 0x8d 0x23 0 0 value 1 0 0 0
t_check accelerated_fetch in_cg "$cg" $P peername 127.0.0.1 9101
# struct kp_acc_stats: socks, bytes, msgs, ... (u64 each); bpftool gives raw bytes per CPU.
msgs=$(bpftool -j map lookup pinned /sys/fs/bpf/kp_acc_stats key 1 0 0 0 | python3 -c '
import json, sys
v = json.load(sys.stdin)["values"]
print(sum(int.from_bytes(bytes(int(b, 16) for b in c["value"][16:24]), "little") for c in v))')
[ "${msgs:-0}" -gt 0 ] && t_pass accel_counted || t_fail accel_counted "kp_acc_stats[1].msgs = $msgs"
t_check detach_sk_msg bpftool prog detach pinned /sys/fs/bpf/kpsvc/kp_acc_msg msg_verdict pinned /sys/fs/bpf/kp_acc_socks
t_check detach_sockops bpftool cgroup detach "$cg" sock_ops pinned /sys/fs/bpf/kpsvc/kp_acc_sockops
t_check detach_connect4 bpftool cgroup detach "$cg" connect4 pinned /sys/fs/bpf/kpsvc/kp_connect4
t_check detach_getpeername4 bpftool cgroup detach "$cg" getpeername4 pinned /sys/fs/bpf/kpsvc/kp_getpeername4
[ -z "$(bpftool cgroup show "$cg")" ] && t_pass detached || t_fail detached "$(bpftool cgroup show "$cg")"
if in_cg "$cg" $P peername 10.96.0.10 80 >/dev/null 2>&1; then t_fail gone_after_detach "VIP still works"
else t_pass gone_after_detach; fi
rm -r /sys/fs/bpf/kpsvc
rm /sys/fs/bpf/kp_svc /sys/fs/bpf/kp_svc_be /sys/fs/bpf/kp_svc_rev /sys/fs/bpf/kp_svc_socks \
	/sys/fs/bpf/kp_svc_stats /sys/fs/bpf/kp_svc_cfg /sys/fs/bpf/kp_events /sys/fs/bpf/kp_evlost \
	/sys/fs/bpf/kp_acc_socks /sys/fs/bpf/kp_acc_ports /sys/fs/bpf/kp_acc_info /sys/fs/bpf/kp_acc_stats
left=$(ls /sys/fs/bpf | grep -v '\.debug$')
[ -z "$left" ] && t_pass unpinned || t_fail unpinned "left in /sys/fs/bpf: $left"
