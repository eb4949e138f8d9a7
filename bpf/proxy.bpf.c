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
 * May @len more bytes go to the peer's egress now? Redirected bytes wait in
 * the peer's psock queue until its TCP write queue takes them, and that one
 * queue also carries the peer's own passed skbs when it is not empty: an skb
 * stuck there holds up the other direction. With a peer that stops reading
 * while its replies cannot be read (an echo server with a closed window)
 * that is a deadlock. So redirect only what the peer's send buffer takes at
 * once, and never let more than @limit bytes wait (the bound on kernel
 * memory). Everything else is passed to kproxyd, whose relay waits for the
 * peer without blocking the other direction.
 */
static __always_inline bool peer_takes(struct kp_conn *c, struct bpf_sock *peer, __u64 fwd,
				       __u32 len, __u32 limit, __u32 *backlog)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(peer);
	__u32 wseq, inq;
	int queued, sndbuf;

	*backlog = 0;
	if (!tp)
		return true;
	wseq = BPF_CORE_READ(tp, write_seq);
	if (!(c->flags & KP_SIDE_BASE_SET)) {
		/* First redirect: everything kproxyd wrote so far is already queued. */
		c->peer_base = wseq - (__u32)fwd;
		c->flags |= KP_SIDE_BASE_SET;
	}
	inq = wseq - c->peer_base;
	/* Modulo 2^32 is exact: the true backlog is bounded far below 4 GiB. */
	*backlog = (__u32)(c->redir_bytes + fwd) - inq;
	if (*backlog > limit)
		return false;
	queued = BPF_CORE_READ(tp, inet_conn.icsk_inet.sk.sk_wmem_queued);
	sndbuf = BPF_CORE_READ(tp, inet_conn.icsk_inet.sk.sk_sndbuf);
	return (__s64)queued + *backlog + len <= sndbuf;
}

/*
 * The TCP sequence number of the skb's first byte, TCP_SKB_CB(skb)->seq: the
 * context of an sk_skb program is the kernel's sk_buff, and its cb starts with
 * struct tcp_skb_cb. Read with bpf_probe_read_kernel (CAP_PERFMON), since the
 * kfuncs that cast the context are missing on 6.1.
 */
static __always_inline __u32 skb_tcp_seq(struct __sk_buff *skb)
{
	__u32 seq = 0;

	bpf_probe_read_kernel(&seq, sizeof(seq),
			      (void *)skb + bpf_core_field_offset(struct sk_buff, cb) +
			      bpf_core_field_offset(struct tcp_skb_cb, seq));
	return seq;
}

/* Largest bpf_skb_adjust_room() shrink for sk_skb, and how many we may do. */
#define KP_TRIM_STEP	4095
#define KP_TRIM_STEPS	256

/* Remove @n bytes from the head of @skb. Returns 0 or a negative errno. */
static __always_inline int trim_head(struct __sk_buff *skb, __u32 n)
{
	int i, ret;

	for (i = 0; i < KP_TRIM_STEPS && n; i++) {
		__u32 step = n < KP_TRIM_STEP ? n : KP_TRIM_STEP;

		ret = bpf_skb_adjust_room(skb, -(__s32)step, 0, 0);
		if (ret)
			return ret;
		n -= step;
	}
	return n ? -1 : 0;
}

/*
 * Bytes of @skb the verdict has seen before. In verdict-only mode the kernel
 * (tcp_read_skb) hands over whole skbs from the receive queue, but TCP queues
 * a retransmitted segment that partly overlaps received data without trimming
 * it (tcp_recvmsg skips the overlap by copied_seq; tcp_read_skb does not). It
 * happens after TCP dropped segments under receive-memory pressure, and
 * without this check the overlap reaches the peer twice.
 */
static __always_inline __u32 seen_before(struct kp_conn *c, struct __sk_buff *skb, __u32 len)
{
	__u32 seq = skb_tcp_seq(skb), dup = 0;

	if ((c->flags & KP_SIDE_SEQ_SET) && (__s32)(c->next_seq - seq) > 0)
		dup = c->next_seq - seq;
	if (dup < len)
		c->next_seq = seq + len;
	c->flags |= KP_SIDE_SEQ_SET;
	return dup;
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
	__u32 len = skb->len, limit, backlog, dup;
	int reason;
	bool ok;

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
	dup = seen_before(c, skb, len);
	if (dup) {
		c->overlap_bytes += dup < len ? dup : len;
		if (st)
			st->overlap_bytes += dup < len ? dup : len;
		if (dup >= len)
			return SK_DROP;
		if (trim_head(skb, dup)) {
			/* Counted and reported: the peer will see these bytes twice. */
			if (st)
				st->overlap_fail++;
			drop_event(c, cookie, KP_DR_OVERLAP);
		} else {
			len = skb->len;
		}
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
	ok = peer_takes(c, peer, fwd, len, limit, &backlog);
	bpf_sk_release(peer);
	if (!ok) {
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
