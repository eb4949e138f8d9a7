/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * For BPF programs that work with kproxy, kmux parsers above all (a mux's
 * `parser bpf:FILE`). Include after vmlinux.h, <bpf/bpf_helpers.h> and
 * <bpf/bpf_core_read.h>.
 *
 * The contract of a kmux parser, an `SEC("sk_skb/stream_parser")` program
 * (kmux tail-calls it, so it must be of that type):
 *   - it is handed the skb strparser is assembling; the current message
 *     starts at kp_msg_offset(skb), not at byte 0, and skb->len counts from
 *     byte 0 (so skb->len - kp_msg_offset(skb) bytes of the message are there);
 *   - it returns the message's whole length as soon as it can tell (the
 *     bytes need not all be there), 0 if it needs more bytes to tell, or a
 *     negative errno (-EBADMSG, -EMSGSIZE) to close that one connection;
 *   - read bytes with bpf_skb_load_bytes(skb, kp_msg_offset(skb) + i, ...):
 *     it reads non-linear skbs too.
 * examples/parsers/tlv.bpf.c is one.
 */
#ifndef KPROXY_BPF_H
#define KPROXY_BPF_H

/*
 * A field of strparser's struct strp_msg, in the skb's control block. The
 * program's context is the kernel's sk_buff, so it is read with
 * bpf_probe_read_kernel (6.1 has no kfunc to cast the context; CO-RE finds
 * the fields on every kernel).
 */
static __always_inline __u32 kp_strp_field(struct __sk_buff *skb, __u32 field_off)
{
	int v = 0;

	bpf_probe_read_kernel(&v, sizeof(v),
			      (void *)skb + bpf_core_field_offset(struct sk_buff, cb) +
			      bpf_core_field_offset(struct sk_skb_cb, strp) + field_off);
	return v < 0 ? 0 : v;
}

/* Where the current message starts: strp_msg(skb)->offset. */
static __always_inline __u32 kp_msg_offset(struct __sk_buff *skb)
{
	return kp_strp_field(skb, bpf_core_field_offset(struct strp_msg, offset));
}

#endif
