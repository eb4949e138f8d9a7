// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * kmux, the N x M message multiplexor (what KCM asked for), on sockmap in
 * strparser mode: kp_mux_parse delineates messages with the mux's parser,
 * kp_mux_verdict moves each whole message.
 *
 * A client's request goes to a backend connection ("slot") the client owns.
 * It claims a free slot with its first request and keeps it while it has
 * requests outstanding there; the response that brings the count to zero
 * frees the slot. So one slot carries one client's messages at a time, its
 * responses come back in request order and go to that client, and messages
 * of two clients are never interleaved on a backend connection. (Sharing a
 * slot between clients would need the order in which two CPUs queue their
 * redirects on one socket, which BPF cannot see: the verdict returns before
 * the kernel queues the skb.)
 *
 * A client that finds no free slot is marked KP_MUX_OVERFLOW and all its
 * messages from then on go to kproxyd, which proxies that client over a
 * backend connection of its own, after its last in-kernel request was
 * answered (so responses keep their order).
 *
 * What goes to kproxyd (overflow, a request the L7 policy denied, and all
 * after it) goes out of the client's sink: one end of a socketpair kproxyd
 * made for the client (kp_mux_sinks), whose other end kproxyd reads. It is
 * never passed up the client's own socket (SK_PASS): on 6.1 since 6.1.130,
 * 6.12 since 6.12.17 and 6.14 on, tcp_bpf_strp_read_sock() moves the
 * socket's copied_seq past what TCP received when passed bytes are read
 * after a later parse, and the parser then misses the socket's next small
 * segments: the client's last requests stay unparsed until more come.
 *
 * With ID correlation (`id OFF:LEN`, protocols whose messages carry an ID
 * that the response repeats) slots are shared: any client's request may go
 * to any slot, tagged with an ID unique on that slot (kp_mux_req), and the
 * response finds its client by that tag, in any order. The order in which
 * two CPUs queue their redirects on one socket no longer matters; each
 * redirected skb still goes out whole (the socket's psock sends its queue
 * an skb at a time), so messages are never interleaved.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "kproxy.h"
#include "lib/events.h"
#include "lib/parse.h"
#include "lib/l7.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, KP_MAX_SOCKS);
	__type(key, __u64);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_mux_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KP_MAX_SOCKS);
	__type(key, __u64);
	__type(value, struct kp_mux_sk);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_mux_sk SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KP_MAX_MUXES * KP_MUX_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct kp_mux_slot);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_mux_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KP_MAX_MUXES);
	__type(key, __u32);
	__type(value, struct kp_mux_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_mux_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KP_MAX_MUXES);
	__type(key, __u32);
	__type(value, struct kp_mux_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_mux_stats SEC(".maps");

/*
 * Users' own parsers (parser bpf:FILE): kp_mux_parse tail-calls entry
 * mux id * 2 (requests) or mux id * 2 + 1 (responses).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, KP_MAX_MUXES * 2);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_mux_parsers SEC(".maps");

/* ID correlation: the requests in flight on each slot (kproxy.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KP_MAX_MUXES * KP_MUX_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct kp_mux_reqs);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_mux_ids SEC(".maps");

/* Each client's sink by the client's cookie: see the top of this file. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, KP_MAX_SOCKS);
	__type(key, __u64);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_mux_sinks SEC(".maps");

/* Where each mux's search for a free slot starts (round robin). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KP_MAX_MUXES);
	__type(key, __u32);
	__type(value, __u32);
} kp_mux_rr SEC(".maps");

static __always_inline struct kp_mux_slot *slot_at(__u32 mux_id, __u32 slot)
{
	__u32 k = mux_id * KP_MUX_MAX_SLOTS + slot;

	return bpf_map_lookup_elem(&kp_mux_slots, &k);
}

/* Does the oldest request outstanding on backend connection @ms answer a HEAD? */
static __always_inline bool slot_head(struct kp_mux_sk *ms)
{
	struct kp_mux_slot *s = slot_at(ms->mux_id, ms->slot & (KP_MUX_MAX_SLOTS - 1));

	return s && (*(volatile __u64 *)&s->head_bits & 1);
}

SEC("sk_skb/stream_parser")
int kp_mux_parse(struct __sk_buff *skb)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	__u32 off = kp_msg_offset(skb);
	struct kp_parser_cfg *pc;
	struct kp_mux_sk *ms;
	struct kp_mux_cfg *cfg;
	long ret;

	ms = bpf_map_lookup_elem(&kp_mux_sk, &cookie);
	if (!ms)
		return skb->len > off ? skb->len - off : 0;
	cfg = bpf_map_lookup_elem(&kp_mux_cfg, &ms->mux_id);
	if (!cfg)
		return -EBADMSG;
	pc = ms->role == KP_MUX_BACKEND ? &cfg->resp : &cfg->req;
	if (pc->kind == KP_PARSER_BPF) {
		/* The user's parser answers for us; we only get here if it is missing. */
		bpf_tail_call(skb, &kp_mux_parsers, ms->mux_id * 2 + (ms->role == KP_MUX_BACKEND));
		ret = -EBADMSG;
	} else if (pc->kind == KP_PARSER_HTTP && ms->role == KP_MUX_BACKEND) {
		ret = kp_parse_http_resp(pc, skb, off, slot_head(ms));
	} else if (pc->kind == KP_PARSER_HTTP && (cfg->l7_on || cfg->hash_http)) {
		ret = kp_parse_http_req(pc, skb, off, &ms->spans);
	} else {
		ret = kp_parse(pc, skb, off);
	}
	/* ID correlation: every message must hold its ID. */
	if (ret > 0 && cfg->id_len && ret < (long)cfg->id_off + cfg->id_len)
		ret = -EBADMSG;
	if (ret < 0) {
		struct kp_mux_stats *st = bpf_map_lookup_elem(&kp_mux_stats, &ms->mux_id);
		struct kp_event ev = {
			.type = KP_EV_MUX_PARSE_ERR, .proxy_id = ms->mux_id,
			.conn_id = ms->conn_id, .cookie = cookie, .err = -ret,
		};

		if (st)
			st->parse_errors++;
		kp_event_output(&ev);
	}
	return ret;
}

/*
 * balance hash: the backend for this request, from an FNV-1a hash of
 * hash_len bytes at hash_off of the message (fewer if it is shorter).
 */
static __always_inline int hash_backend(struct __sk_buff *skb, struct kp_mux_cfg *cfg)
{
	__u32 off = kp_msg_offset(skb) + cfg->hash_off, h = 2166136261u, i;
	__u8 c;

	for (i = 0; i < KP_MUX_HASH_MAX; i++) {
		if (i >= cfg->hash_len || bpf_skb_load_bytes(skb, off + i, &c, 1))
			break;
		h = (h ^ c) * 16777619u;
	}
	return cfg->nbackends ? h % cfg->nbackends : 0;
}

/*
 * The backend connection for the next request of client @cookie: the slot it
 * owns, or a free one it claims now (on backend @want, if it is >= 0). 0 if
 * there is none.
 */
static __always_inline __u64 claim(struct kp_mux_cfg *cfg, struct kp_mux_sk *ms, __u64 cookie,
				   int want, __u64 head)
{
	struct kp_mux_slot *s;
	__u32 i, n = cfg->nslots, start = 0, *rr, idx;
	__u64 be = 0;

	if (ms->slot) {
		s = slot_at(ms->mux_id, (ms->slot - 1) & (KP_MUX_MAX_SLOTS - 1));
		if (s) {
			bpf_spin_lock(&s->lock);
			if (s->state == KP_SLOT_OWNED && s->owner == cookie &&
			    s->outstanding < KP_MUX_MAX_OUTSTANDING &&
			    (want < 0 || s->backend == (__u32)want)) {
				s->head_bits |= head << (s->outstanding & 63);
				s->outstanding++;
				be = s->cookie;
			}
			bpf_spin_unlock(&s->lock);
			if (be)
				return be;
			/* Full: wait for its answers before anything goes elsewhere. */
			if (s->owner == cookie)
				return 0;
		}
		ms->slot = 0;
	}
	rr = bpf_map_lookup_elem(&kp_mux_rr, &ms->mux_id);
	if (rr)
		start = __sync_fetch_and_add(rr, 1);
	for (i = 0; i < KP_MUX_MAX_SLOTS; i++) {
		if (i >= n)
			break;
		idx = (start + i) % n;
		s = slot_at(ms->mux_id, idx & (KP_MUX_MAX_SLOTS - 1));
		if (!s)
			continue;
		bpf_spin_lock(&s->lock);
		if (s->state == KP_SLOT_FREE && (want < 0 || s->backend == (__u32)want)) {
			s->state = KP_SLOT_OWNED;
			s->owner = cookie;
			s->outstanding = 1;
			s->head_bits = head;
			be = s->cookie;
		}
		bpf_spin_unlock(&s->lock);
		if (be) {
			ms->slot = idx + 1;
			return be;
		}
	}
	return 0;
}

/* Undo a claim whose redirect failed. */
static __always_inline void unclaim(struct kp_mux_sk *ms, __u64 cookie)
{
	struct kp_mux_slot *s;

	if (!ms->slot)
		return;
	s = slot_at(ms->mux_id, (ms->slot - 1) & (KP_MUX_MAX_SLOTS - 1));
	if (!s)
		return;
	bpf_spin_lock(&s->lock);
	if (s->owner == cookie && s->outstanding)
		s->head_bits &= ~(1ULL << ((s->outstanding - 1) & 63));
	if (s->owner == cookie && s->outstanding && !--s->outstanding) {
		s->state = KP_SLOT_FREE;
		s->owner = 0;
	}
	bpf_spin_unlock(&s->lock);
}

/*
 * A response to client @client, whose resp_bytes already count it (@oms):
 * redirected to it if @ok, else dropped and taken back from resp_bytes
 * (the client is gone, or nobody asked). kproxyd writes to a client itself
 * (overflow relay, a denial's answer) only once its socket has taken
 * resp_bytes: a redirect is queued to a kernel worker and may not have
 * reached the socket yet.
 */
static __always_inline int resp_deliver(struct __sk_buff *skb, __u64 *client,
					struct kp_mux_sk *oms, struct kp_mux_stats *st,
					__u32 len, bool ok)
{
	if (!ok || bpf_sk_redirect_hash(skb, &kp_mux_socks, client, 0) != SK_PASS) {
		if (oms)
			__sync_fetch_and_add(&oms->resp_bytes, -(__s64)len);
		if (st)
			st->orphans++;
		return SK_DROP;
	}
	if (st) {
		st->resp_msgs++;
		st->resp_bytes += len;
	}
	return SK_PASS;
}

/* ------------------------------------------------------------ ID correlation */

static __always_inline struct kp_mux_reqs *reqs_at(__u32 mux_id, __u32 slot)
{
	__u32 k = mux_id * KP_MUX_MAX_SLOTS + (slot & (KP_MUX_MAX_SLOTS - 1));

	return bpf_map_lookup_elem(&kp_mux_ids, &k);
}

/* The index of @bit, a power of two. */
static __always_inline __u32 bit_index(__u64 bit)
{
	__u32 i = 0, sh;

	for (sh = 32; sh; sh >>= 1) {
		if (!(bit & ((1ULL << sh) - 1))) {
			i += sh;
			bit >>= sh;
		}
	}
	return i;
}

struct least_scan {
	__u32 mux_id, n, from;
	int want;
	__u32 best, start;
};

/* balance least: remember the slot with the fewest requests in flight. */
static long least_step(__u64 i, struct least_scan *x)
{
	__u32 idx = (x->from + (__u32)i) % (x->n ? x->n : 1), o;
	struct kp_mux_slot *s = slot_at(x->mux_id, idx & (KP_MUX_MAX_SLOTS - 1));

	if (!s || s->state != KP_SLOT_FREE || !s->cookie ||
	    (x->want >= 0 && s->backend != (__u32)x->want))
		return 0;
	o = *(volatile __u32 *)&s->outstanding;
	if (o < x->best) {
		x->best = o;
		x->start = idx;
	}
	return 0;
}

struct id_claim {
	__u32 mux_id, n, start;
	int want;
	__u64 client, id, mask;	/* the request: who asks, its ID, the ID's bytes */
	/* the claim */
	__u32 slot, entry;
	__u64 be;			/* the slot's backend connection */
	__u64 tag;			/* what replaces the client's ID */
};

/*
 * Try the @i-th slot from c->start: if it is up (on backend c->want, if
 * >= 0) and has an entry free, take it and fill it in, under the slot's
 * lock. A bpf_loop callback: 6.1 verifies it once, where an open-coded
 * scan over 64 slots was more states than it allows.
 */
static long claim_step(__u64 i, struct id_claim *c)
{
	__u32 idx = (c->start + (__u32)i) % (c->n ? c->n : 1), e = 0;
	struct kp_mux_slot *s = slot_at(c->mux_id, idx & (KP_MUX_MAX_SLOTS - 1));
	struct kp_mux_reqs *rq = reqs_at(c->mux_id, idx);
	__u64 client = c->client, id = c->id, mask = c->mask, bit = 0, be = 0, tag = 0;
	struct kp_mux_req *r;

	if (!s || !rq)
		return 0;
	bpf_spin_lock(&s->lock);
	if (s->state == KP_SLOT_FREE && s->cookie && (c->want < 0 || s->backend == (__u32)c->want)) {
		bit = ~s->id_busy & (s->id_busy + 1);	/* the lowest free entry */
		if (bit) {
			s->id_busy |= bit;
			s->outstanding++;
			e = bit_index(bit) & (KP_MUX_ID_ENTRIES - 1);
			tag = ((__u64)++s->id_seq << 6 | e) & mask;
			r = &rq->e[e];
			r->client = client;
			r->id = id;
			r->tag = tag;
			be = s->cookie;
		}
	}
	bpf_spin_unlock(&s->lock);
	if (!bit)
		return 0;
	c->slot = idx;
	c->entry = e;
	c->tag = tag;
	c->be = be;
	return 1;
}

/*
 * A shared slot and a free entry on it for the next request: the first
 * that can take it from a rotating start (rr, hash), or from the slot with
 * the fewest requests in flight (least); on backend @want if it is >= 0.
 */
static __always_inline bool id_claim(struct kp_mux_cfg *cfg, __u32 mux_id, int want,
				     struct id_claim *c)
{
	__u32 *rr = bpf_map_lookup_elem(&kp_mux_rr, &mux_id);

	c->mux_id = mux_id;
	c->n = cfg->nslots < KP_MUX_MAX_SLOTS ? cfg->nslots : KP_MUX_MAX_SLOTS;
	c->want = want;
	c->start = rr ? __sync_fetch_and_add(rr, 1) : 0;
	c->be = 0;
	if (!c->n)
		return false;
	if (cfg->balance == KP_MUX_BAL_LEAST) {
		struct least_scan x = { .mux_id = mux_id, .n = c->n, .from = c->start, .want = want,
					.best = ~0U, .start = c->start };

		/* a callback: an open-coded scan keeping the minimum is too many states */
		bpf_loop(c->n, least_step, &x, 0);
		c->start = x.start;
	}
	bpf_loop(c->n, claim_step, c, 0);
	return c->be != 0;
}

/*
 * Give entry @e of slot @slot back (its request did not go, or is
 * answered): false if it was not taken (the slot was emptied meanwhile).
 */
static __always_inline bool id_release(__u32 mux_id, __u32 slot, __u32 e)
{
	struct kp_mux_slot *s = slot_at(mux_id, slot & (KP_MUX_MAX_SLOTS - 1));
	struct kp_mux_reqs *rq = reqs_at(mux_id, slot);
	__u64 bit = 1ULL << (e & (KP_MUX_ID_ENTRIES - 1));
	bool was = false;

	if (!s || !rq)
		return false;
	bpf_spin_lock(&s->lock);
	if (s->id_busy & bit) {
		was = true;
		s->id_busy &= ~bit;
		rq->e[e & (KP_MUX_ID_ENTRIES - 1)].client = 0;
		if (s->outstanding)
			s->outstanding--;
	}
	bpf_spin_unlock(&s->lock);
	return was;
}

/*
 * The ID's length, 1..8 (kproxyd checks it) in a form 6.1's verifier can
 * bound from below too: it does not learn "not 0" from a comparison, and
 * refuses a read whose size may be 0.
 */
static __always_inline __u32 id_len(struct kp_mux_cfg *cfg)
{
	return ((cfg->id_len - 1) & (KP_MUX_ID_MAX - 1)) + 1;
}

static __always_inline __u64 id_mask(__u32 len)
{
	return len >= 8 ? ~0ULL : (1ULL << (len * 8)) - 1;
}

/*
 * A client's request on an ID-correlated mux: its ID is swapped for a tag
 * unique on the slot it goes to. 1: sent; 0: it could not go (overflow).
 */
static __always_inline int client_msg_id(struct __sk_buff *skb, struct kp_mux_sk *ms,
					 struct kp_mux_cfg *cfg, struct kp_mux_stats *st,
					 __u64 cookie, int want)
{
	__u32 off = kp_msg_offset(skb) + cfg->id_off, l = id_len(cfg);
	struct id_claim c = {};
	__u64 id = 0;
	int ret = 0;

	if (bpf_skb_load_bytes(skb, off, &id, l)) {
		/* only a parser of one's own frames a message shorter than the ID */
		if (st)
			st->id_short++;
		return -1;
	}
	c.client = cookie;
	c.id = id;
	c.mask = id_mask(l);
	if (!id_claim(cfg, ms->mux_id, want, &c))
		return 0;
	__sync_fetch_and_add(&ms->outstanding, 1);
	/* The redirect is decided last: a failed write leaves the request as it came. */
	if (!bpf_skb_store_bytes(skb, off, &c.tag, l, 0)) {
		if (bpf_sk_redirect_hash(skb, &kp_mux_socks, &c.be, 0) == SK_PASS)
			return 1;
		/* cannot put the client's ID back: do not let it reach anyone */
		ret = bpf_skb_store_bytes(skb, off, &id, l, 0) ? -1 : 0;
	}
	id_release(ms->mux_id, c.slot, c.entry);
	__sync_fetch_and_add(&ms->outstanding, -1);
	if (!ret && st)
		st->redir_fail++;
	return ret;
}

/*
 * A response on an ID-correlated mux: its tag finds the request, the
 * client's ID goes back in, and the response to that client.
 */
static __always_inline int backend_msg_id(struct __sk_buff *skb, struct kp_mux_sk *ms,
					  struct kp_mux_cfg *cfg, struct kp_mux_stats *st, __u32 len)
{
	__u32 off = kp_msg_offset(skb) + cfg->id_off, l = id_len(cfg), e;
	struct kp_mux_reqs *rq;
	struct kp_mux_sk *oms;
	struct kp_mux_req *r;
	__u64 tag = 0, client, id;

	if (bpf_skb_load_bytes(skb, off, &tag, l)) {
		if (st)
			st->id_short++;
		return SK_DROP;
	}
	e = tag & (KP_MUX_ID_ENTRIES - 1);
	rq = reqs_at(ms->mux_id, ms->slot);
	if (!rq)
		goto unknown;
	/* Only this connection's responses release its entries: these stay. */
	r = &rq->e[e];
	client = r->client;
	id = r->id;
	if (r->tag != tag || !client)
		goto unknown;
	/*
	 * The client's resp_bytes grow before its count of requests in flight
	 * falls: kproxyd, seeing none in flight, waits for those bytes.
	 */
	oms = bpf_map_lookup_elem(&kp_mux_sk, &client);
	if (oms)
		__sync_fetch_and_add(&oms->resp_bytes, len);
	if (!id_release(ms->mux_id, ms->slot, e)) {
		if (oms)
			__sync_fetch_and_add(&oms->resp_bytes, -(__s64)len);
		goto unknown;
	}
	if (oms)
		__sync_fetch_and_add(&oms->outstanding, -1);
	return resp_deliver(skb, &client, oms, st, len, !bpf_skb_store_bytes(skb, off, &id, l, 0));
unknown:
	/* An answer to nothing (or to a request of a connection since closed). */
	if (st)
		st->id_unknown++;
	return SK_DROP;
}

/*
 * Is this HTTP request a HEAD? Its response has a header section only,
 * whatever its Content-Length says; the response parser must know (below).
 * Empty lines before a request line are allowed: up to 4 are skipped.
 */
static __always_inline bool http_is_head(struct __sk_buff *skb)
{
	__u8 b[13] = {};
	__u32 i, off = kp_msg_offset(skb);

	if (bpf_skb_load_bytes(skb, off, b, 5))
		return false;
	for (i = 0; i < 4 && b[0] == '\r'; i++) {
		off += 2;
		if (bpf_skb_load_bytes(skb, off, b, 5))
			return false;
	}
	return b[0] == 'H' && b[1] == 'E' && b[2] == 'A' && b[3] == 'D' && b[4] == ' ';
}

/*
 * A client message kproxyd carries: out of the client's sink. Without a
 * sink (kproxyd could not make one) it is dropped and the client marked:
 * kproxyd resets it.
 */
static __always_inline int to_kproxyd(struct __sk_buff *skb, struct kp_mux_sk *ms,
				      struct kp_mux_stats *st, __u64 *cookie)
{
	if (bpf_sk_redirect_hash(skb, &kp_mux_sinks, cookie, 0) == SK_PASS)
		return SK_PASS;
	ms->flags |= KP_MUX_SINKLESS;
	if (st)
		st->redir_fail++;
	return SK_DROP;
}

/*
 * The L7 policy denied this request (rule @why, KP_L7_BY_DEFAULT or
 * KP_L7_BAD): it and everything after it go to kproxyd, which answers
 * once the client's earlier requests are answered, and closes.
 */
static __always_inline int client_denied(struct __sk_buff *skb, struct kp_mux_sk *ms,
					 struct kp_mux_stats *st, __u64 cookie, __u32 len, int why)
{
	struct kp_event ev = {
		.type = KP_EV_MUX_DENY, .proxy_id = ms->mux_id,
		.conn_id = ms->conn_id, .cookie = cookie, .err = why,
	};

	ms->deny_at = ms->bytes - len;
	ms->deny_rule = why;
	ms->flags |= KP_MUX_DENIED | (why == KP_L7_BAD ? KP_MUX_BADREQ : 0);
	if (st) {
		if (why == KP_L7_BAD)
			st->l7_bad++;
		else
			st->l7_denied++;
	}
	kp_event_output(&ev);
	return to_kproxyd(skb, ms, st, &cookie);
}

static __always_inline int client_msg(struct __sk_buff *skb, struct kp_mux_sk *ms,
				      struct kp_mux_cfg *cfg, struct kp_mux_stats *st,
				      __u64 cookie, __u32 len)
{
	__u32 hash = 0;
	int why, want = -1;
	__u64 be;

	/* After a denied request nothing of this client reaches a backend. */
	if (ms->flags & KP_MUX_DENIED)
		return to_kproxyd(skb, ms, st, &cookie);
	if (cfg->l7_on || cfg->hash_http) {
		why = kp_l7_judge(skb, cfg, ms, st, &hash);
		if (cfg->l7_on && why != KP_L7_PASS)
			return client_denied(skb, ms, st, cookie, len, why);
		if (cfg->l7_on && st)
			st->l7_allowed++;
	}
	if (ms->flags & KP_MUX_OVERFLOW)
		goto overflow;
	if (cfg->balance == KP_MUX_BAL_HASH && cfg->hash_http)
		want = cfg->nbackends ? hash % cfg->nbackends : 0;
	else if (cfg->balance == KP_MUX_BAL_HASH)
		want = hash_backend(skb, cfg);
	if (cfg->id_len) {
		int ret = client_msg_id(skb, ms, cfg, st, cookie, want);

		if (ret < 0)
			return SK_DROP;
		if (!ret)
			goto overflow;
		goto sent;
	}
	be = claim(cfg, ms, cookie, want, cfg->resp.kind == KP_PARSER_HTTP && http_is_head(skb));
	if (!be) {
		if (st && cfg->balance == KP_MUX_BAL_HASH)
			st->hash_busy++;
		goto overflow;
	}
	if (bpf_sk_redirect_hash(skb, &kp_mux_socks, &be, 0) != SK_PASS) {
		unclaim(ms, cookie);
		if (st)
			st->redir_fail++;
		goto overflow;
	}
sent:
	if (st) {
		st->req_msgs++;
		st->req_bytes += len;
	}
	return SK_PASS;
overflow:
	/* From now on kproxyd carries this client: its messages stay in order. */
	if (!(ms->flags & KP_MUX_OVERFLOW)) {
		struct kp_event ev = {
			.type = KP_EV_MUX_OVERFLOW, .proxy_id = ms->mux_id,
			.conn_id = ms->conn_id, .cookie = cookie,
		};

		ms->flags |= KP_MUX_OVERFLOW;
		ms->pass_at = ms->bytes - len;
		kp_event_output(&ev);
	}
	if (st)
		st->overflow_msgs++;
	return to_kproxyd(skb, ms, st, &cookie);
}

/* An HTTP response with a 1xx status other than 101 (which ends HTTP on the connection). */
static __always_inline bool http_interim(struct __sk_buff *skb)
{
	__u8 st[3] = {};

	/* "HTTP/1.x NNN": the status is at 9; the parser checked the rest. */
	if (bpf_skb_load_bytes(skb, kp_msg_offset(skb) + 9, st, 3))
		return false;
	return st[0] == '1' && !(st[1] == '0' && st[2] == '1');
}

static __always_inline int backend_msg(struct __sk_buff *skb, struct kp_mux_sk *ms,
				       struct kp_mux_cfg *cfg, struct kp_mux_stats *st, __u32 len)
{
	struct kp_mux_sk *oms;
	struct kp_mux_slot *s = slot_at(ms->mux_id, ms->slot & (KP_MUX_MAX_SLOTS - 1));
	bool interim = cfg->resp.kind == KP_PARSER_HTTP && http_interim(skb);
	__u64 owner = 0, expect;

	if (!s)
		return SK_DROP;
	/*
	 * The owner's resp_bytes grow before its count of requests in flight
	 * falls (kproxyd, seeing none in flight, waits for those bytes). The
	 * owner cannot change while this response is owed to it; if the slot
	 * was emptied meanwhile, the bytes are taken back below.
	 */
	expect = *(volatile __u64 *)&s->owner;
	oms = expect ? bpf_map_lookup_elem(&kp_mux_sk, &expect) : NULL;
	if (oms)
		__sync_fetch_and_add(&oms->resp_bytes, len);
	bpf_spin_lock(&s->lock);
	owner = s->owner;
	/* An interim response (100 Continue, 103 Early Hints) answers nothing yet. */
	if (owner == expect && !interim && s->outstanding) {
		s->head_bits >>= 1;
		if (!--s->outstanding && s->state == KP_SLOT_OWNED) {
			s->state = KP_SLOT_FREE;
			s->owner = 0;
		}
	}
	bpf_spin_unlock(&s->lock);
	/* Nobody asked (owner 0), or the slot changed hands: nobody to give it to. */
	return resp_deliver(skb, &owner, oms, st, len, owner && owner == expect);
}

SEC("sk_skb/stream_verdict")
int kp_mux_verdict(struct __sk_buff *skb)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	struct kp_mux_stats *st;
	struct kp_mux_cfg *cfg;
	struct kp_mux_sk *ms;
	__u32 len = kp_strp_full_len(skb);

	ms = bpf_map_lookup_elem(&kp_mux_sk, &cookie);
	if (!ms)
		return SK_PASS;
	cfg = bpf_map_lookup_elem(&kp_mux_cfg, &ms->mux_id);
	if (!cfg)
		return SK_PASS;
	st = bpf_map_lookup_elem(&kp_mux_stats, &ms->mux_id);
	ms->msgs++;
	ms->bytes += len;
	if (ms->role == KP_MUX_BACKEND && cfg->id_len)
		return backend_msg_id(skb, ms, cfg, st, len);
	if (ms->role == KP_MUX_BACKEND)
		return backend_msg(skb, ms, cfg, st, len);
	return client_msg(skb, ms, cfg, st, cookie, len);
}
