// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Framed messages, kcmperf's framing: each message starts with its whole
 * length (header included) as a 4-byte big-endian number, the framing
 * `parser len:size=4,be` of a kmux mux delineates.
 *
 * A connection's messages all have the same size S and are laid end to end
 * over its kpperf stream (pattern.c): message m is stream bytes
 * [m * S, (m + 1) * S) with its first four replaced by the length. So a
 * message's content is a function of the connection's key, its sequence
 * number and the offset in it; a reader checks an echo of any part of the
 * message stream without a copy, and a message that comes back in another
 * place (reordered, repeated, lost) differs from the one expected there.
 */
#include "kpperf.h"

static uint8_t header_byte(uint64_t size, unsigned int i)
{
	return (uint8_t)(size >> (8 * (KP_FRAME_HDR - 1 - i)));
}

uint8_t kp_frame_byte(const struct kp_pattern *p, uint64_t size, uint64_t off)
{
	uint64_t in = off % size;

	return in < KP_FRAME_HDR ? header_byte(size, in) : kp_pattern_byte(p, off);
}

void kp_frame_fill(const struct kp_pattern *p, uint64_t size, uint64_t off, void *buf, size_t len)
{
	uint8_t *out = buf;
	uint64_t m, end = off + len;

	kp_pattern_fill(p, off, buf, len);
	/* then the headers of the messages that start in, or just before, the range */
	for (m = off / size * size; m < end; m += size) {
		unsigned int i;

		for (i = 0; i < KP_FRAME_HDR; i++)
			if (m + i >= off && m + i < end)
				out[m + i - off] = header_byte(size, i);
	}
}

size_t kp_frame_check(const struct kp_pattern *p, uint64_t size, uint64_t off, const void *buf,
		      size_t len)
{
	const uint8_t *in = buf;
	size_t done = 0;

	while (done < len) {
		uint64_t pos = off + done, at = pos % size;
		size_t n, k;

		if (at < KP_FRAME_HDR) {
			if (in[done] != header_byte(size, at))
				return done;
			done++;
			continue;
		}
		n = size - at < len - done ? size - at : len - done;
		k = kp_pattern_check(p, pos, in + done, n);
		if (k < n)
			return done + k;
		done += n;
	}
	return len;
}
