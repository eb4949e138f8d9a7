// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The in-kernel TCP proxy: an sk_skb stream verdict on the kp_socks sockhash
 * moves every skb of a proxied socket to the egress of its peer.
 *
 * Verdict-only mode (no stream parser): the proxy forwards bytes, not
 * messages, so a parser would only cost a strparser pass per skb.
 *
 * An skb is redirected only when that keeps the byte order and the memory
 * bound; otherwise it is passed (SK_PASS) to the socket's own receive side,
 * where it stays charged to the socket's receive buffer (TCP closes the window:
 * backpressure) until kproxyd reads it and writes it to the peer. See the
 * comment on struct kp_conn in kproxy.h for the protocol between the two.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "kproxy.h"
#include "lib/maps.h"
#include "lib/events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

enum kp_verdict_reason {
	KP_V_REDIRECT = 0,
	KP_V_PASS_ORDER,	/* earlier passed bytes not yet forwarded by kproxyd */
	KP_V_PASS_NO_PEER,
	KP_V_PASS_BACKLOG,
	KP_V_PASS_REDIR_FAIL,
};

static __always_inline struct kp_proxy_stats *proxy_stats(__u32 proxy_id)
{
	return bpf_map_lookup_elem(&kp_stats, &proxy_id);
}

static __always_inline void drop_event(struct kp_conn *c, __u64 cookie, int reason)
{
	struct kp_event ev = {};

	ev.type = KP_EV_DROP;
	ev.conn_id = c ? c->conn_id : 0;
	ev.proxy_id = c ? c->proxy_id : 0;
	ev.cookie = cookie;
	ev.err = reason;
	kp_event_output(&ev);
}

/*
 * Bytes redirected towards the peer that have not yet reached the peer's TCP
 * write queue (they sit in the peer's psock queue, which has no bound of its
 * own). Returns 0 when the peer is not a TCP socket we can read.
 */
static __always_inline __u32 peer_backlog(struct kp_conn *c, struct bpf_sock *peer, __u64 fwd)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(peer);
	__u32 wseq, inq;

	if (!tp)
		return 0;
	wseq = BPF_CORE_READ(tp, write_seq);
	if (!(c->flags & KP_SIDE_BASE_SET)) {
		/* First redirect: everything kproxyd wrote so far is already queued. */
		c->peer_base = wseq - (__u32)fwd;
		c->flags |= KP_SIDE_BASE_SET;
	}
	inq = wseq - c->peer_base;
	/* Modulo 2^32 is exact: the true backlog is bounded far below 4 GiB. */
	return (__u32)(c->redir_bytes + fwd) - inq;
}

SEC("sk_skb/stream_verdict")
int kp_verdict(struct __sk_buff *skb)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	struct kp_proxy_stats *st;
	struct bpf_sock *peer;
	struct kp_conn *c;
	struct kp_fwd *f;
	__u64 peer_cookie, fwd = 0;
	__u32 len = skb->len, limit, backlog;
	int reason;

	c = bpf_map_lookup_elem(&kp_conns, &cookie);
	if (!c) {
		st = proxy_stats(0);
		if (st)
			st->no_conn++;
		return SK_PASS;
	}
	st = proxy_stats(c->proxy_id);
	if (!len) {
		/* The FIN, in verdict-only mode: redirecting it breaks the peer's send path. */
		if (st)
			st->fin_dropped++;
		return SK_DROP;
	}
	c->rx_bytes += len;
	c->rx_skbs++;
	if (st) {
		st->rx_bytes += len;
		st->rx_skbs++;
	}

	f = bpf_map_lookup_elem(&kp_fwd, &cookie);
	if (f)
		fwd = f->user_fwd_bytes;
	if (c->passed_bytes != fwd) {
		reason = KP_V_PASS_ORDER;
		goto pass;
	}
	peer_cookie = c->peer_cookie;
	peer = peer_cookie ? bpf_map_lookup_elem(&kp_socks, &peer_cookie) : NULL;
	if (!peer) {
		reason = KP_V_PASS_NO_PEER;
		goto pass;
	}
	limit = c->backlog_limit ? c->backlog_limit : KP_BACKLOG_DEFAULT;
	backlog = peer_backlog(c, peer, fwd);
	bpf_sk_release(peer);
	if (backlog > limit) {
		reason = KP_V_PASS_BACKLOG;
		goto pass;
	}
	if (bpf_sk_redirect_hash(skb, &kp_socks, &peer_cookie, 0) != SK_PASS) {
		reason = KP_V_PASS_REDIR_FAIL;
		goto pass;
	}
	c->redir_bytes += len;
	c->redir_skbs++;
	if (st) {
		st->redir_bytes += len;
		st->redir_skbs++;
	}
	return SK_PASS;

pass:
	/* Passed bytes stay in order on this socket; kproxyd forwards them. */
	c->passed_bytes += len;
	if (st) {
		st->passed_bytes += len;
		st->passed_skbs++;
	}
	switch (reason) {
	case KP_V_PASS_NO_PEER:
		if (!c->no_peer++)
			drop_event(c, cookie, KP_DR_NO_PEER);
		if (st)
			st->no_peer++;
		break;
	case KP_V_PASS_BACKLOG:
		c->backlog_hits++;
		if (st)
			st->backlog_hits++;
		break;
	case KP_V_PASS_REDIR_FAIL:
		if (!c->redir_fail++)
			drop_event(c, cookie, KP_DR_REDIRECT_FAIL);
		if (st)
			st->redir_fail++;
		break;
	}
	return SK_PASS;
}

/*
 * kproxyd's own events (connection opened, closed, backend failed) enter the
 * same ring as the dataplane's: user space cannot write a BPF ring buffer, so
 * it runs this program with BPF_PROG_TEST_RUN and the event as context.
 */
SEC("syscall")
int kp_emit(struct kp_event *ctx)
{
	struct kp_event ev;

	__builtin_memcpy(&ev, ctx, sizeof(ev));
	kp_event_output(&ev);
	return 0;
}
