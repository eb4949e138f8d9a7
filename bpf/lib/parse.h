/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Message parsers for sk_skb stream parsers: the BPF side of the contract in
 * kproxy.h (struct kp_parser_cfg), mirrored by userspace/common/parse.c,
 * which the fuzzer and the tests check against this one.
 *
 * A stream parser is handed the strparser's head skb: its byte 0 is not the
 * message's first byte. The message starts at strp_msg(skb)->offset in the
 * skb's control block (SOCKMAP-NOTES #1); 6.1 has no kfunc to cast the
 * context, but the context is the kernel's sk_buff, so the offset is read
 * with bpf_probe_read_kernel (CAP_PERFMON), as the proxy reads the TCP
 * sequence number.
 */
#ifndef KP_BPF_PARSE_H
#define KP_BPF_PARSE_H

#ifndef EBADMSG
#define EBADMSG		74
#endif
#ifndef EMSGSIZE
#define EMSGSIZE	90
#endif

#include "kproxy_bpf.h"	/* kp_msg_offset(): where the current message starts */

/* The current message's length, in a stream verdict of strparser mode. */
static __always_inline __u32 kp_strp_full_len(struct __sk_buff *skb)
{
	return kp_strp_field(skb, bpf_core_field_offset(struct strp_msg, full_len));
}

static __always_inline long kp_parse_len(const struct kp_parser_cfg *pc, struct __sk_buff *skb,
					 __u32 off)
{
	__u32 hdr = pc->len_off + pc->len_size, at = off + pc->len_off;
	__u8 b[8] = {};
	__u64 v = 0;
	__s64 total;
	int i, n = pc->len_size;

	if (skb->len < off || skb->len - off < hdr)
		return 0;
	switch (n) {
	case 1: if (bpf_skb_load_bytes(skb, at, b, 1)) return 0; break;
	case 2: if (bpf_skb_load_bytes(skb, at, b, 2)) return 0; break;
	case 4: if (bpf_skb_load_bytes(skb, at, b, 4)) return 0; break;
	case 8: if (bpf_skb_load_bytes(skb, at, b, 8)) return 0; break;
	default: return -EBADMSG;
	}
	for (i = 0; i < 8; i++) {
		if (i >= n)
			break;
		if (pc->len_be)
			v = (v << 8) | b[i];
		else
			v |= (__u64)b[i] << (8 * i);
	}
	/* Beyond any max_msg either way; keeps the signed sum exact. */
	if (v > KP_PARSE_MAX_MSG + (1ULL << 32))
		return -EMSGSIZE;
	total = (__s64)v + pc->len_adj;
	if (total < (__s64)hdr)
		return -EBADMSG;
	if (total > pc->max_msg)
		return -EMSGSIZE;
	return total;
}

/* State of a line scan: bpf_loop() verifies its callback once, not per byte. */
struct kp_line_scan {
	struct __sk_buff *skb;
	__u32 off, end;			/* scan [off, off + end) */
	__u32 want, mask, dlen;
	__u32 win;
	long ret;			/* -1 while not found */
};

static long kp_line_step(__u32 i, void *data)
{
	struct kp_line_scan *ls = data;
	__u8 c;

	if (i >= ls->end)
		return 1;
	if (bpf_skb_load_bytes(ls->skb, ls->off + i, &c, 1))
		return 1;
	ls->win = (ls->win << 8) | c;
	if (i + 1 >= ls->dlen && (ls->win & ls->mask) == ls->want) {
		ls->ret = i + 1;
		return 1;
	}
	return 0;
}

/*
 * The first delimiter in the first min(available, max_msg, KP_PARSE_LINE_SCAN)
 * bytes; the message ends after it. The last delim_len bytes are kept in a
 * shift register, so each byte is read once.
 */
static __always_inline long kp_parse_line(const struct kp_parser_cfg *pc, struct __sk_buff *skb,
					  __u32 off)
{
	struct kp_line_scan ls = { .skb = skb, .off = off, .ret = -1 };
	__u32 avail, limit, i;

	if (pc->delim_len < 1 || pc->delim_len > 4)
		return -EBADMSG;
	if (skb->len <= off)
		return 0;
	avail = skb->len - off;
	limit = pc->max_msg < KP_PARSE_LINE_SCAN ? pc->max_msg : KP_PARSE_LINE_SCAN;
	ls.end = avail < limit ? avail : limit;
	ls.dlen = pc->delim_len;
	for (i = 0; i < 4; i++)
		if (i < pc->delim_len)
			ls.want = (ls.want << 8) | pc->delim[i];
	ls.mask = pc->delim_len == 4 ? 0xffffffff : (1U << (8 * pc->delim_len)) - 1;
	bpf_loop(KP_PARSE_LINE_SCAN, kp_line_step, &ls, 0);
	if (ls.ret > 0)
		return ls.ret;
	return avail >= limit ? -EMSGSIZE : 0;
}

#include "http.h"

/* One message's length from @off in @skb, by @pc: the contract of kproxy.h. */
static __always_inline long kp_parse(const struct kp_parser_cfg *pc, struct __sk_buff *skb,
				     __u32 off)
{
	switch (pc->kind) {
	case KP_PARSER_LEN:
		return kp_parse_len(pc, skb, off);
	case KP_PARSER_LINE:
		return kp_parse_line(pc, skb, off);
	case KP_PARSER_HTTP:
		return kp_parse_http(pc, skb, off);
	default:
		return -EBADMSG;
	}
}

#endif
