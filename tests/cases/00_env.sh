#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# 00_env: is the environment what every other case assumes? A private
# network namespace with a working loopback, a private bpffs, cgroup2, a
# kernel with sockmap, and an honest answer about kTLS and AF_KCM.
# timeout: 60
. "$(dirname "$0")/../lib.sh"
require_root

# --- namespaces: only lo, and it is up
links=$(ip -o link show | awk -F': ' '{ print $2 }' | tr '\n' ' ')
if [ "$links" = "lo " ] && ip -o link show lo | grep -q 'state UNKNOWN\|UP'; then
	t_pass netns
else
	t_fail netns "expected only lo, up, in a fresh network namespace; have: $links"
fi

# --- bpffs: mounted, and not the host's (pins must vanish with the case)
if [ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" != bpf_fs ]; then
	t_fail bpffs "/sys/fs/bpf is not a bpffs"
elif [ -n "${KP_HOST_BPFFS_DEV:-}" ] && [ "$(stat -c %d /sys/fs/bpf)" = "$KP_HOST_BPFFS_DEV" ]; then
	t_fail bpffs "/sys/fs/bpf is the host's bpffs, not a private one"
elif ls -d /sys/fs/bpf/kproxy* >/dev/null 2>&1; then
	t_fail bpffs "the private bpffs already holds kproxy pins: $(ls -d /sys/fs/bpf/kproxy*)"
else
	t_pass bpffs
fi

# --- cgroup2 and /run, for cgroup hooks and the daemon's socket
if [ "$(stat -f -c %T "$KP_CGROUP2" 2>/dev/null)" = cgroup2fs ] &&
   [ "$(stat -f -c %T /run)" = tmpfs ] && [ -d "$KP_TMP" ]; then
	t_pass mounts
else
	t_fail mounts "$KP_CGROUP2 is $(stat -f -c %T "$KP_CGROUP2" 2>&1), /run is $(stat -f -c %T /run)"
fi

# --- loopback: 1 MiB through a socat echo server and back, byte for byte,
# over IPv4 and IPv6
head -c 1048576 /dev/urandom >"$KP_TMP/in"
want=$(sha256sum <"$KP_TMP/in" | cut -d' ' -f1)
for af in 4 6; do
	if [ $af = 4 ]; then addr=127.0.0.1 url=127.0.0.1; else addr=::1 url='[::1]'; fi
	kp_bg socat TCP$af-LISTEN:7000,bind="$url",reuseaddr,fork EXEC:cat
	if ! wait_port "$addr" 7000; then
		t_fail loopback$af "socat echo server did not listen on $url:7000"
		continue
	fi
	# socat half-closes after stdin's EOF and waits (-t) for the echo to end.
	got=$(timeout 20 socat -t 10 - TCP$af:"$url":7000 <"$KP_TMP/in" | sha256sum | cut -d' ' -f1)
	if [ "$got" = "$want" ]; then
		t_pass loopback$af
	else
		t_fail loopback$af "1 MiB echoed through $url:7000 came back different (sha256 $got, want $want)"
	fi
	kill "$KP_BG_PID"
	wait "$KP_BG_PID" 2>/dev/null
done

# --- sockmap: everything the proxy dataplane is built on
probe=$(bpftool feature probe kernel 2>/dev/null)
missing=
for what in "map_type sockmap" "map_type sockhash" "program_type sk_skb" "program_type sk_msg" \
	"map_type ringbuf"; do
	grep -q "eBPF $what is available" <<<"$probe" || missing+=" ${what#* }"
done
if [ -z "$probe" ]; then
	t_fail sockmap "bpftool feature probe kernel printed nothing"
elif [ -n "$missing" ]; then
	t_fail sockmap "kernel $(uname -r) lacks:$missing"
else
	t_pass sockmap
fi

# --- kTLS and AF_KCM: present on the VMs, absent on the 6.18 host
t_need ktls ktls && t_pass ktls
t_need kcm kcm && t_pass kcm
exit 0
