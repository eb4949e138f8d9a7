/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The L7 policy of a mux whose requests are HTTP (docs/l7-policy.md): each
 * whole request is judged in the stream verdict, before it can reach a
 * backend, by the mux's rules (kp_mux_rules, first match wins) on its
 * method, Host and path, and counted per rule.
 *
 * What is judged, from the request the parser has just framed (the parser
 * noted where its parts are, kp_http_spans in the client's kp_mux_sk):
 *   method  the request line's method, exact and case-sensitive;
 *   path    the request target's raw bytes, matched as a prefix (no
 *           percent-decoding, no dot-segment removal: like HAProxy's path_beg);
 *   host    the Host field's value, lower case, without its port and final
 *           dot.
 * A request the policy cannot judge safely is refused as a bad request
 * (KP_L7_BAD): a target that is not origin-form ("/...", or "*"), so that
 * "GET http://x/admin" cannot slip past a rule on /admin; more than one Host
 * field (RFC 9112 3.2: 400); no Host in HTTP/1.1 (the same).
 */
#ifndef KP_BPF_L7_H
#define KP_BPF_L7_H

#include "http.h"

#define KP_L7_PASS	(-1)			/* allowed */
#define KP_L7_BY_DEFAULT KP_L7_MAX_RULES	/* denied: no rule matched, default deny */
#define KP_L7_BAD	(KP_L7_MAX_RULES + 1)	/* refused: the policy cannot judge it */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KP_MAX_MUXES * KP_L7_MAX_RULES);
	__type(key, __u32);
	__type(value, struct kp_l7_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_mux_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KP_MAX_MUXES * KP_L7_MAX_RULES);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_mux_rule_hits SEC(".maps");

/* Load @n (1..@max, @max a power of two) bytes at @off of the message into @dst. */
static __always_inline int l7_load(struct __sk_buff *skb, __u32 off, void *dst, __u32 n, __u32 max)
{
	asm volatile("" : "+r"(n));
	n = ((n - 1) & (max - 1)) + 1;
	return bpf_skb_load_bytes(skb, off, dst, n);
}

/* bpf_loop() callbacks over the host bytes: their state is in the map value, see http.h. */
static long l7_host_scan_cb(__u32 i, void *data)
{
	struct kp_l7_req *rq = *(struct kp_l7_req **)data;
	__u8 c;

	if (i >= rq->hraw)
		return 1;
	c = rq->host[i & (KP_L7_HOST_BUF - 1)];
	if (c == ':')
		rq->colon = i;
	else if (c == ']')
		rq->close = i;
	return 0;
}

static long l7_host_lower_cb(__u32 i, void *data)
{
	struct kp_l7_req *rq = *(struct kp_l7_req **)data;
	__u32 k = i & (KP_L7_HOST_BUF - 1);

	if (i >= rq->hlen)
		rq->host[k] = 0;
	else
		rq->host[k] = http_lower(rq->host[k]);
	return 0;
}

/* Host without port and final dot, in lower case; hlen 255 if no rule could match it. */
static __always_inline void l7_host(struct kp_l7_req *rq)
{
	struct kp_l7_req *p = rq;
	__u32 cut = rq->hraw;

	rq->colon = rq->close = -1;
	bpf_loop(KP_L7_HOST_BUF, l7_host_scan_cb, &p, 0);
	if (rq->host[0] == '[') {
		/* An IPv6 literal: the port follows the bracket. */
		if (rq->close >= 0 && rq->close + 1 < (int)rq->hraw &&
		    rq->host[(rq->close + 1) & (KP_L7_HOST_BUF - 1)] == ':')
			cut = rq->close + 1;
	} else if (rq->colon >= 0) {
		cut = rq->colon;
	}
	if (cut && rq->host[(cut - 1) & (KP_L7_HOST_BUF - 1)] == '.')
		cut--;
	rq->hlen = cut;
	bpf_loop(KP_L7_HOST_BUF, l7_host_lower_cb, &p, 0);
	if (cut > KP_L7_HOST_MAX)
		rq->hlen = 255;
}

/* The request's method, target and host into @rq; 0, or KP_L7_BAD. */
static __always_inline int l7_fill(struct __sk_buff *skb, __u32 moff,
				   const struct kp_http_spans *s, struct kp_l7_req *rq)
{
	__u32 ms = s->method_start, me = s->method_end, ts = me + 1, te = s->target_end;
	__u8 c = 0;

	if (!s->valid || ms == 0xffffffff || me <= ms || te <= ts)
		return KP_L7_BAD;
	if (s->nhost > 1 || (!s->nhost && s->minor == 1))
		return KP_L7_BAD;
	if (bpf_skb_load_bytes(skb, moff + ts, &c, 1))
		return KP_L7_BAD;
	if (c != '/' && !(c == '*' && te - ts == 1))
		return KP_L7_BAD;
	__builtin_memset(rq, 0, sizeof(*rq));
	rq->mlen = me - ms;
	if (rq->mlen > KP_L7_METHOD_MAX)
		rq->mlen = 255;
	else if (l7_load(skb, moff + ms, rq->method, rq->mlen, KP_L7_METHOD_MAX))
		return KP_L7_BAD;
	rq->tlen = te - ts < KP_L7_PATH_MAX ? te - ts : KP_L7_PATH_MAX;
	if (l7_load(skb, moff + ts, rq->path, rq->tlen, KP_L7_PATH_MAX))
		return KP_L7_BAD;
	if (!s->nhost || !s->host_start) {
		rq->hlen = 0;
	} else if (s->host_end - s->host_start > KP_L7_HOST_BUF) {
		rq->hlen = 255;
	} else {
		rq->hraw = s->host_end - s->host_start;
		if (l7_load(skb, moff + s->host_start, rq->host, rq->hraw, KP_L7_HOST_BUF))
			return KP_L7_BAD;
		l7_host(rq);
	}
	return 0;
}

static __always_inline int l7_rule_matches(const struct kp_l7_rule *r, const struct kp_l7_req *rq)
{
	const __u64 *a, *b;
	__u32 w, left;
	__u64 mask;

	if (r->method_len) {
		a = (const __u64 *)r->method;
		b = (const __u64 *)rq->method;
		if (r->method_len != rq->mlen || a[0] != b[0] || a[1] != b[1])
			return 0;
	}
	if (r->host_len) {
		if (r->host_len != rq->hlen)
			return 0;
		a = (const __u64 *)r->host;
		b = (const __u64 *)rq->host;
		for (w = 0; w < KP_L7_HOST_MAX / 8; w++)
			if (a[w] != b[w])
				return 0;
	}
	if (r->path_len) {
		if (rq->tlen < r->path_len)
			return 0;
		a = (const __u64 *)r->path;
		b = (const __u64 *)rq->path;
		for (w = 0; w < KP_L7_PATH_MAX / 8; w++) {
			if (w * 8 >= r->path_len)
				break;
			left = r->path_len - w * 8;
			/* Little endian: the prefix's last bytes are a word's low ones. */
			mask = left >= 8 ? ~0ULL : (1ULL << (left * 8)) - 1;
			if ((a[w] ^ b[w]) & mask)
				return 0;
		}
	}
	return 1;
}

struct l7_match {
	struct kp_l7_req *rq;
	__u32 base, n;
	int hit;
	__u32 action;
};

static long l7_rule_cb(__u32 i, void *data)
{
	struct l7_match *m = data;
	struct kp_l7_rule *r;
	__u32 k = m->base + i;

	if (i >= m->n)
		return 1;
	r = bpf_map_lookup_elem(&kp_mux_rules, &k);
	if (!r)
		return 1;
	if (!l7_rule_matches(r, m->rq))
		return 0;
	m->hit = i;
	m->action = r->action;
	return 1;
}

/* FNV-1a of @n (at most @max, a power of two) bytes of @p, in a map value. */
static __always_inline __u32 l7_fnv(const __u8 *p, __u32 n, __u32 max)
{
	__u32 h = 2166136261u, i;

	for (i = 0; i < max; i++) {
		if (i >= n)
			break;
		h = (h ^ p[i]) * 16777619u;
	}
	return h;
}

/*
 * The policy's word on the request at the current message of @skb:
 * KP_L7_PASS, the index of the deny rule that matched, KP_L7_BY_DEFAULT or
 * KP_L7_BAD (only if cfg->l7_on: else KP_L7_PASS or KP_L7_BAD). Counts the
 * rule's hit (or the default's in @st). With cfg->hash_http, *@hash is the
 * hash of the request's host or path (0 if the request could not be read).
 */
static __always_inline int kp_l7_judge(struct __sk_buff *skb, const struct kp_mux_cfg *cfg,
				       struct kp_mux_sk *ms, struct kp_mux_stats *st, __u32 *hash)
{
	struct l7_match m = { .hit = -1, .base = ms->mux_id * KP_L7_MAX_RULES };
	struct kp_http_scratch *x;
	int ret = KP_L7_BAD, i;
	__u64 *hits;
	__u32 k;

	/* A level of the scratch, for the request's bytes (rq). */
	i = http_slot(&x);
	if (i < 0 || !x)
		return KP_L7_BAD;
	m.rq = &x->req[i & (KP_HTTP_NEST - 1)];
	if (l7_fill(skb, kp_msg_offset(skb), &ms->spans, m.rq))
		goto out;
	if (cfg->hash_http == KP_MUX_HASH_HOST)
		*hash = l7_fnv(m.rq->host, m.rq->hlen == 255 ? KP_L7_HOST_BUF : m.rq->hlen,
			       KP_L7_HOST_BUF);
	else if (cfg->hash_http == KP_MUX_HASH_PATH)
		*hash = l7_fnv(m.rq->path, m.rq->tlen, KP_L7_PATH_MAX);
	if (!cfg->l7_on) {
		ret = KP_L7_PASS;
		goto out;
	}
	m.n = cfg->l7_nrules < KP_L7_MAX_RULES ? cfg->l7_nrules : KP_L7_MAX_RULES;
	bpf_loop(KP_L7_MAX_RULES, l7_rule_cb, &m, 0);
	if (m.hit >= 0) {
		k = m.base + m.hit;
		hits = bpf_map_lookup_elem(&kp_mux_rule_hits, &k);
		if (hits)
			(*hits)++;
		ret = m.action == KP_L7_DENY ? m.hit : KP_L7_PASS;
	} else {
		if (st)
			st->l7_default_hits++;
		ret = cfg->l7_default == KP_L7_DENY ? KP_L7_BY_DEFAULT : KP_L7_PASS;
	}
out:
	http_leave(x);
	return ret;
}

#endif
