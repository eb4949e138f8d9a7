// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A kmux parser of one's own (kproxyctl mux add ... parser bpf:tlv.bpf.o):
 * type-length-value messages, one byte of type, two bytes of length (big
 * endian) of the value that follows. Build:
 *   clang -O2 -g -target bpf -D__TARGET_ARCH_x86 -I. -Iinclude \
 *         -c examples/parsers/tlv.bpf.c -o tlv.bpf.o
 * The contract is in include/kproxy_bpf.h.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "kproxy_bpf.h"

#define TLV_HDR		3
#define EBADMSG		74

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("sk_skb/stream_parser")
int tlv_parser(struct __sk_buff *skb)
{
	__u32 off = kp_msg_offset(skb);
	__u8 h[TLV_HDR];

	if (skb->len < off + TLV_HDR)
		return 0;	/* the header is not all here yet */
	if (bpf_skb_load_bytes(skb, off, h, TLV_HDR))
		return -EBADMSG;
	if (h[0] == 0)
		return -EBADMSG;	/* type 0 is not a message */
	return TLV_HDR + ((h[1] << 8) | h[2]);
}
