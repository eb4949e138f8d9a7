// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Services: socket-level load balancing for unmodified applications.
 *
 * cgroup sock_addr hooks, attached (through BPF links) only to the cgroups
 * that services name, rewrite the destination of connect() and of
 * unconnected UDP sendmsg() from a service VIP to one of its backends, once
 * per socket (TCP) or per message (UDP): no NAT, no per-packet work. The
 * reverse hooks (getpeername, recvmsg) put the VIP back, so the application
 * cannot tell. A task outside the service's cgroup is never touched, even
 * when the hooks run for it (a parent cgroup of two services' cgroups).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "kproxy.h"
#include "lib/events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET		2
#define AF_INET6	10

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KP_MAX_SERVICES);
	__type(key, struct kp_svc_key);
	__type(value, struct kp_svc);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_svc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KP_MAX_SERVICES * 8);
	__type(key, struct kp_svc_be_key);
	__type(value, struct kp_svc_be);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_svc_be SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, KP_MAX_STEERED);
	__type(key, struct kp_svc_rev_key);
	__type(value, struct kp_svc_key);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_svc_rev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, KP_MAX_STEERED);
	__type(key, __u64);
	__type(value, struct kp_svc_sock);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_svc_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KP_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct kp_svc_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_svc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kp_svc_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_svc_cfg SEC(".maps");

/* The destination (or, for recvmsg, the source) of @ctx as a service key. */
static __always_inline void ctx_key(struct bpf_sock_addr *ctx, bool v6, __u8 proto,
				    struct kp_svc_key *k)
{
	__builtin_memset(k, 0, sizeof(*k));
	if (v6) {
		__u32 *a = (__u32 *)k->addr;

		a[0] = ctx->user_ip6[0];
		a[1] = ctx->user_ip6[1];
		a[2] = ctx->user_ip6[2];
		a[3] = ctx->user_ip6[3];
		k->family = AF_INET6;
	} else {
		*(__u32 *)k->addr = ctx->user_ip4;
		k->family = AF_INET;
	}
	k->port = (__u16)ctx->user_port;
	k->proto = proto;
}

static __always_inline void ctx_set(struct bpf_sock_addr *ctx, bool v6, const __u8 *addr,
				    __u16 port)
{
	const __u32 *a = (const __u32 *)addr;

	if (v6) {
		ctx->user_ip6[0] = a[0];
		ctx->user_ip6[1] = a[1];
		ctx->user_ip6[2] = a[2];
		ctx->user_ip6[3] = a[3];
	} else {
		ctx->user_ip4 = a[0];
	}
	ctx->user_port = port;
}

/* Is the current task under the service's cgroup? */
static __always_inline bool in_scope(const struct kp_svc *svc)
{
	if (!svc->level)
		return true;
	return bpf_get_current_ancestor_cgroup_id(svc->level) == svc->cgroup_id;
}

static __always_inline struct kp_svc_stats *svc_stats(__u32 id)
{
	return bpf_map_lookup_elem(&kp_svc_stats, &id);
}

static __always_inline void svc_event(__u32 type, __u32 svc_id, __u64 cookie,
				      const struct kp_svc_key *vip, const struct kp_svc_be *be)
{
	struct kp_event ev = {};

	ev.type = type;
	ev.proxy_id = svc_id;
	ev.cookie = cookie;
	ev.family = vip->family;
	ev.port = bpf_ntohs(vip->port);
	__builtin_memcpy(ev.addr, vip->addr, 16);
	if (be) {
		ev.peer_family = be->family;
		ev.peer_port = bpf_ntohs(be->port);
		__builtin_memcpy(ev.peer_addr, be->addr, 16);
	}
	kp_event_output(&ev);
}

/*
 * Steer @ctx (connect or unconnected sendmsg) if it goes to a service VIP.
 * @sticky: choose by socket cookie (UDP: every datagram of a socket goes to
 * the same backend) instead of round robin.
 */
static __always_inline int steer(struct bpf_sock_addr *ctx, bool v6, __u8 proto, bool sticky,
				 bool is_connect)
{
	struct kp_svc_rev_key rk = {};
	struct kp_svc_sock ss = {};
	struct kp_svc_be_key bk;
	struct kp_svc_stats *st;
	struct kp_svc_key vip;
	struct kp_svc_cfg *cfg;
	struct kp_svc_be *be;
	struct kp_svc *svc;
	__u32 zero = 0, n;
	__u64 cookie;

	ctx_key(ctx, v6, proto, &vip);
	svc = bpf_map_lookup_elem(&kp_svc, &vip);
	if (!svc)
		return 1;
	st = svc_stats(svc->id);
	if (!in_scope(svc)) {
		if (st)
			st->outside++;
		return 1;
	}
	cookie = bpf_get_socket_cookie(ctx);
	n = svc->nbackends;
	if (!n || n > KP_MAX_SVC_BACKENDS) {
		/* Nobody to send to: a reserved local port that answers with a reset. */
		cfg = bpf_map_lookup_elem(&kp_svc_cfg, &zero);
		if (st)
			st->refused++;
		svc_event(KP_EV_SVC_REFUSED, svc->id, cookie, &vip, NULL);
		if (!cfg)
			return 0;
		if (v6 && cfg->refuse6_port)
			ctx_set(ctx, true, cfg->refuse6, cfg->refuse6_port);
		else if (!v6 && cfg->refuse4_port)
			ctx_set(ctx, false, cfg->refuse4, cfg->refuse4_port);
		else
			return 0;	/* EPERM rather than a connect to the VIP itself */
		return 1;
	}
	bk.svc_id = svc->id;
	bk.idx = sticky ? (__u32)(cookie % n) : __sync_fetch_and_add(&svc->rr, 1) % n;
	be = bpf_map_lookup_elem(&kp_svc_be, &bk);
	if (!be || be->family != vip.family)
		return 1;
	ctx_set(ctx, v6, be->addr, be->port);

	rk.cookie = cookie;
	__builtin_memcpy(rk.addr, be->addr, 16);
	rk.port = be->port;
	rk.family = be->family;
	bpf_map_update_elem(&kp_svc_rev, &rk, &vip, BPF_ANY);

	ss.cgroup_id = bpf_get_current_cgroup_id();
	ss.ts_ns = bpf_ktime_get_ns();
	ss.svc_id = svc->id;
	ss.proto = proto;
	ss.family = vip.family;
	ss.mode = KP_SOCK_STEERED;
	ss.vip = vip;
	ss.be = *be;
	bpf_map_update_elem(&kp_svc_socks, &cookie, &ss, BPF_ANY);
	if (st) {
		if (is_connect)
			st->connects++;
		else
			st->sendmsgs++;
	}
	if (is_connect)
		svc_event(KP_EV_SVC_CONNECT, svc->id, cookie, &vip, be);
	return 1;
}

/* getpeername/recvmsg: a backend address of a steered socket becomes its VIP again. */
static __always_inline int unsteer(struct bpf_sock_addr *ctx, bool v6, bool recv)
{
	struct kp_svc_rev_key rk = {};
	struct kp_svc_stats *st;
	struct kp_svc_key *vip;
	struct kp_svc *svc;
	struct kp_svc_key k;

	ctx_key(ctx, v6, 0, &k);
	rk.cookie = bpf_get_socket_cookie(ctx);
	__builtin_memcpy(rk.addr, k.addr, 16);
	rk.port = k.port;
	rk.family = k.family;
	vip = bpf_map_lookup_elem(&kp_svc_rev, &rk);
	if (!vip)
		return 1;
	ctx_set(ctx, v6, vip->addr, vip->port);
	svc = bpf_map_lookup_elem(&kp_svc, vip);
	st = svc ? svc_stats(svc->id) : NULL;
	if (st) {
		if (recv)
			st->rev_recvmsg++;
		else
			st->rev_peername++;
	}
	return 1;
}

SEC("cgroup/connect4")
int kp_connect4(struct bpf_sock_addr *ctx)
{
	if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
		return 1;
	return steer(ctx, false, ctx->protocol, ctx->protocol == IPPROTO_UDP, true);
}

SEC("cgroup/connect6")
int kp_connect6(struct bpf_sock_addr *ctx)
{
	if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
		return 1;
	return steer(ctx, true, ctx->protocol, ctx->protocol == IPPROTO_UDP, true);
}

SEC("cgroup/sendmsg4")
int kp_sendmsg4(struct bpf_sock_addr *ctx)
{
	return steer(ctx, false, IPPROTO_UDP, true, false);
}

SEC("cgroup/sendmsg6")
int kp_sendmsg6(struct bpf_sock_addr *ctx)
{
	return steer(ctx, true, IPPROTO_UDP, true, false);
}

SEC("cgroup/recvmsg4")
int kp_recvmsg4(struct bpf_sock_addr *ctx)
{
	return unsteer(ctx, false, true);
}

SEC("cgroup/recvmsg6")
int kp_recvmsg6(struct bpf_sock_addr *ctx)
{
	return unsteer(ctx, true, true);
}

SEC("cgroup/getpeername4")
int kp_getpeername4(struct bpf_sock_addr *ctx)
{
	return unsteer(ctx, false, false);
}

SEC("cgroup/getpeername6")
int kp_getpeername6(struct bpf_sock_addr *ctx)
{
	return unsteer(ctx, true, false);
}


/*
 * Local acceleration. When both ends of a TCP connection are sockets of this
 * host, in a cgroup and on a port that 'accel add' named, the sockops
 * program puts each established socket in kp_acc_socks, and the sk_msg
 * program moves every sendmsg() of one straight to the other's receive queue:
 * no TCP segments, no loopback device, no softirq.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, KP_MAX_STEERED);
	__type(key, struct kp_acc_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_acc_socks SEC(".maps");

/* Port (host order) -> accel id; a connection is accelerated if either end's port is here. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_acc_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, KP_MAX_STEERED);
	__type(key, struct kp_acc_key);
	__type(value, struct kp_acc_sock);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_acc_info SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KP_MAX_ACCEL);
	__type(key, __u32);
	__type(value, struct kp_acc_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_acc_stats SEC(".maps");

/* remote_port of sock_ops and sk_msg: network order, in the low or (old kernels) high half. */
static __always_inline __u32 rport_host(__u32 p)
{
	if (p > 0xffff)
		p >>= 16;
	return bpf_ntohs((__u16)p);
}

static __always_inline bool is_local(const struct kp_acc_key *k)
{
	if (k->family == AF_INET)
		return (k->remote[0] & 0xff) == 127 || k->remote[0] == k->local[0];
	if (!k->remote[0] && !k->remote[1] && !k->remote[2] && k->remote[3] == bpf_htonl(1))
		return true;
	return k->remote[0] == k->local[0] && k->remote[1] == k->local[1] &&
	       k->remote[2] == k->local[2] && k->remote[3] == k->local[3];
}

static __always_inline struct kp_acc_stats *acc_stats(__u32 id)
{
	return bpf_map_lookup_elem(&kp_acc_stats, &id);
}

SEC("sockops")
int kp_acc_sockops(struct bpf_sock_ops *skops)
{
	struct kp_acc_sock info = {};
	struct kp_acc_stats *st;
	struct kp_acc_key k = {};
	__u32 port, *id;

	if (skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB &&
	    skops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB &&
	    skops->op != BPF_SOCK_OPS_STATE_CB)
		return 1;
	/* args[1] of a state change is the new state: forget closed sockets. */
	if (skops->op == BPF_SOCK_OPS_STATE_CB && skops->args[1] != BPF_TCP_CLOSE)
		return 1;
	k.family = skops->family;
	if (k.family == AF_INET) {
		k.local[0] = skops->local_ip4;
		k.remote[0] = skops->remote_ip4;
	} else if (k.family == AF_INET6) {
		k.local[0] = skops->local_ip6[0];
		k.local[1] = skops->local_ip6[1];
		k.local[2] = skops->local_ip6[2];
		k.local[3] = skops->local_ip6[3];
		k.remote[0] = skops->remote_ip6[0];
		k.remote[1] = skops->remote_ip6[1];
		k.remote[2] = skops->remote_ip6[2];
		k.remote[3] = skops->remote_ip6[3];
	} else {
		return 1;
	}
	if (!is_local(&k))
		return 1;
	k.lport = skops->local_port;
	k.rport = rport_host(skops->remote_port);
	k.netns = bpf_get_netns_cookie(skops);
	if (skops->op == BPF_SOCK_OPS_STATE_CB) {
		bpf_map_delete_elem(&kp_acc_info, &k);
		return 1;
	}
	port = k.lport;
	id = bpf_map_lookup_elem(&kp_acc_ports, &port);
	if (!id) {
		port = k.rport;
		id = bpf_map_lookup_elem(&kp_acc_ports, &port);
	}
	if (!id)
		return 1;
	info.cookie = bpf_get_socket_cookie(skops);
	info.accel_id = *id;
	/* The socket's address, for the peer's sk_msg (peer_read_all()). */
	info.sk = (__u64)(unsigned long)skops->sk;
	if (bpf_map_update_elem(&kp_acc_info, &k, &info, BPF_ANY))
		return 1;
	if (bpf_sock_hash_update(skops, &kp_acc_socks, &k, BPF_NOEXIST)) {
		bpf_map_delete_elem(&kp_acc_info, &k);
		return 1;
	}
	/* Tell us when it closes (the sockhash forgets it by itself). */
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
	st = acc_stats(info.accel_id);
	if (st)
		st->socks++;
	return 1;
}

/*
 * Has the peer socket received and read every byte up to @seq (this socket's
 * write_seq)? Read from the peer itself: a stale address reads garbage
 * without faulting, and then the redirect finds no socket and TCP is used.
 */
static __always_inline bool peer_read_all(const struct kp_acc_sock *pi, __u32 seq)
{
	struct tcp_sock *ptp = (struct tcp_sock *)(unsigned long)pi->sk;
	__u32 rcv_nxt, copied;

	if (bpf_probe_read_kernel(&rcv_nxt, sizeof(rcv_nxt), &ptp->rcv_nxt) ||
	    bpf_probe_read_kernel(&copied, sizeof(copied), &ptp->copied_seq))
		return false;
	return rcv_nxt == seq && copied == rcv_nxt;
}

SEC("sk_msg")
int kp_acc_msg(struct sk_msg_md *msg)
{
	struct kp_acc_key me = {}, peer = {};
	struct kp_acc_stats *st = NULL;
	struct kp_acc_sock *info, *pinfo;
	struct tcp_sock *tp;
	struct bpf_sock *sk;

	me.family = msg->family;
	if (me.family == AF_INET) {
		me.local[0] = msg->local_ip4;
		me.remote[0] = msg->remote_ip4;
	} else {
		me.local[0] = msg->local_ip6[0];
		me.local[1] = msg->local_ip6[1];
		me.local[2] = msg->local_ip6[2];
		me.local[3] = msg->local_ip6[3];
		me.remote[0] = msg->remote_ip6[0];
		me.remote[1] = msg->remote_ip6[1];
		me.remote[2] = msg->remote_ip6[2];
		me.remote[3] = msg->remote_ip6[3];
	}
	me.lport = msg->local_port;
	me.rport = rport_host(msg->remote_port);
	me.netns = bpf_get_netns_cookie(msg);
	info = bpf_map_lookup_elem(&kp_acc_info, &me);
	if (info)
		st = acc_stats(info->accel_id);
	peer.family = me.family;
	peer.local[0] = me.remote[0];
	peer.local[1] = me.remote[1];
	peer.local[2] = me.remote[2];
	peer.local[3] = me.remote[3];
	peer.remote[0] = me.local[0];
	peer.remote[1] = me.local[1];
	peer.remote[2] = me.local[2];
	peer.remote[3] = me.local[3];
	peer.lport = me.rport;
	peer.rport = me.lport;
	peer.netns = me.netns;
	sk = msg->sk;
	tp = sk ? bpf_skc_to_tcp_sock(sk) : NULL;
	if (!tp)
		return SK_PASS;
	/*
	 * Bytes redirected now must not overtake bytes this socket sent through
	 * TCP before (its first send may go out before the peer entered the
	 * map). Once it sent any, redirect only when the peer has received and
	 * read all of them, acknowledged or not (the peer's answers go through
	 * sk_msg and carry no ACK).
	 */
	if (tp->bytes_acked + (tp->write_seq - tp->snd_una)) {
		pinfo = bpf_map_lookup_elem(&kp_acc_info, &peer);
		if (!pinfo || !peer_read_all(pinfo, tp->write_seq)) {
			if (st)
				st->tcp_first++;
			if (info)
				info->tcp_msgs++;
			return SK_PASS;
		}
	}
	if (bpf_msg_redirect_hash(msg, &kp_acc_socks, &peer, BPF_F_INGRESS) != SK_PASS) {
		/* No local peer in the map (not accelerated, or gone): plain TCP. */
		if (st)
			st->no_peer++;
		if (info)
			info->tcp_msgs++;
		return SK_PASS;
	}
	if (st) {
		st->bytes += msg->size;
		st->msgs++;
	}
	if (info) {
		info->bytes += msg->size;
		info->msgs++;
	}
	return SK_PASS;
}

/* A steered socket is gone: forget it (the reverse entries age out of the LRU). */
SEC("cgroup/sock_release")
int kp_sock_release(struct bpf_sock *sk)
{
	__u64 cookie = bpf_get_socket_cookie(sk);

	bpf_map_delete_elem(&kp_svc_socks, &cookie);
	return 1;
}
