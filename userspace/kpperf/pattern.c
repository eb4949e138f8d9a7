// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The data every kpperf stream carries, a function of (key, offset) only, so
 * a reader checks every byte without a copy of what was sent and a writer
 * makes any part of the stream without remembering the rest.
 *
 * The stream is 64-bit little-endian words. Word i is
 *
 *	table[i % KP_PAT_WORDS] ^ mix(i / KP_PAT_WORDS)
 *
 * where table[] is KP_PAT_WORDS splitmix64 outputs of the key and mix(b) a
 * splitmix64 output of the key and the 4 KiB block number b. One XOR per
 * eight bytes keeps generation and checking near memcpy speed (a full PRNG
 * step per word halved loopback throughput), while the per-block mix makes
 * every block different, so dropped, repeated or reordered data is caught.
 *
 * table[0] is the key itself and mix(0) is 0, so the first eight bytes of a
 * stream name its key: a reader that did not choose the key (a sink server,
 * a client of a source server) learns it there, and the next eight bytes,
 * which follow from the key, tell a kpperf stream from foreign data.
 */
#include <endian.h>
#include <string.h>

#include "kpperf.h"

#define GOLDEN	0x9e3779b97f4a7c15ull
#define GOLDEN2	0xd1b54a32d192ed03ull
#define CHECK_GROUP 64	/* words compared before one branch on the result */

/* splitmix64's finalizer: a bijection, so distinct inputs give distinct keys */
static inline uint64_t fmix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t block_mix(const struct kp_pattern *p, uint64_t block)
{
	return block ? fmix64(p->key ^ (block * GOLDEN2)) : 0;
}

static inline uint64_t load64(const uint8_t *b)
{
	uint64_t v;

	memcpy(&v, b, 8);
	return v;
}

/* The key of connection @conn in a run seeded with @seed. */
uint64_t kp_pattern_key(uint64_t seed, uint64_t conn)
{
	return fmix64(seed * GOLDEN + conn + 1);
}

void kp_pattern_init(struct kp_pattern *p, uint64_t key)
{
	unsigned int j;

	p->key = key;
	p->table[0] = key;
	for (j = 1; j < KP_PAT_WORDS; j++)
		p->table[j] = fmix64(key + j * GOLDEN);
}

/* The little-endian word that holds stream byte @off. */
static inline uint64_t word_at(const struct kp_pattern *p, uint64_t off)
{
	uint64_t wi = off >> 3;

	return htole64(p->table[wi % KP_PAT_WORDS] ^ block_mix(p, wi / KP_PAT_WORDS));
}

uint8_t kp_pattern_byte(const struct kp_pattern *p, uint64_t off)
{
	uint64_t w = word_at(p, off);

	return ((const uint8_t *)&w)[off & 7];
}

/* Write stream bytes [@off, @off + @len) to @buf. */
void kp_pattern_fill(const struct kp_pattern *p, uint64_t off, void *buf, size_t len)
{
	uint8_t *out = buf;

	while (len) {
		uint64_t wi = off >> 3;
		unsigned int j = wi % KP_PAT_WORDS, s = off & 7;
		uint64_t m, w;
		size_t n, k;

		if (s || len < 8) {
			w = word_at(p, off);
			n = 8 - s < len ? 8 - s : len;
			memcpy(out, (uint8_t *)&w + s, n);
		} else {
			m = block_mix(p, wi / KP_PAT_WORDS);
			n = KP_PAT_WORDS - j;
			if (n > len / 8)
				n = len / 8;
			for (k = 0; k < n; k++) {
				w = htole64(p->table[j + k] ^ m);
				memcpy(out + 8 * k, &w, 8);
			}
			n *= 8;
		}
		out += n;
		off += n;
		len -= n;
	}
}

static size_t first_diff(const struct kp_pattern *p, uint64_t off, const uint8_t *b, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i] != kp_pattern_byte(p, off + i))
			return i;
	return len;
}

/*
 * Compare @buf with stream bytes [@off, @off + @len). Returns the index in
 * @buf of the first byte that differs, or @len if all match.
 */
size_t kp_pattern_check(const struct kp_pattern *p, uint64_t off, const void *buf, size_t len)
{
	const uint8_t *in = buf;
	size_t done = 0;

	while (done < len) {
		uint64_t wi = off >> 3, m, diff = 0;
		unsigned int j = wi % KP_PAT_WORDS, s = off & 7;
		size_t n, k, left = len - done;

		if (s || left < 8) {
			n = 8 - s < left ? 8 - s : left;
			k = first_diff(p, off, in, n);
			if (k < n)
				return done + k;
		} else {
			m = block_mix(p, wi / KP_PAT_WORDS);
			n = KP_PAT_WORDS - j;
			if (n > left / 8)
				n = left / 8;
			if (n > CHECK_GROUP)
				n = CHECK_GROUP;
			/* OR of all differences: no branch per word, so it vectorises */
			for (k = 0; k < n; k++)
				diff |= load64(in + 8 * k) ^ htole64(p->table[j + k] ^ m);
			n *= 8;
			if (diff)
				return done + first_diff(p, off, in, n);
		}
		in += n;
		off += n;
		done += n;
	}
	return len;
}

/*
 * Given the first 16 bytes of a stream, decide whether it is a kpperf stream
 * and, if so, set @p up to check the rest of it.
 */
bool kp_pattern_recognise(struct kp_pattern *p, const void *head16)
{
	const uint8_t *h = head16;
	uint64_t key = le64toh(load64(h));

	if (le64toh(load64(h + 8)) != fmix64(key + GOLDEN))
		return false;
	kp_pattern_init(p, key);
	return true;
}
