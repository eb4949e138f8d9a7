/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* BTF-defined maps of the proxy dataplane, pinned by name so bpftool and a restarted kproxyd find them. */
#ifndef KP_BPF_MAPS_H
#define KP_BPF_MAPS_H

/* Proxied sockets, keyed by socket cookie; the verdict program is attached here. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, KP_MAX_SOCKS);
	__type(key, __u64);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KP_MAX_SOCKS);
	__type(key, __u64);
	__type(value, struct kp_conn);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KP_MAX_SOCKS);
	__type(key, __u64);
	__type(value, struct kp_fwd);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_fwd SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KP_MAX_PROXIES);
	__type(key, __u32);
	__type(value, struct kp_proxy_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_stats SEC(".maps");

#endif
