// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * XXH64 (Yann Collet's xxHash, 64-bit variant), written from its published
 * specification. xfer hashes every byte sent and every byte received with it.
 * A hash we carry ourselves rather than gnutls': kpperf links only what the
 * Makefile gives every binary (libbpf, json-c), and XXH64 runs at memory
 * speed, so it never limits a 64 MiB transfer.
 */
#include <endian.h>
#include <string.h>

#include "kpperf.h"

#define P1 0x9e3779b185ebca87ull
#define P2 0xc2b2ae3d27d4eb4full
#define P3 0x165667b19e3779f9ull
#define P4 0x85ebca77c2b2ae63ull
#define P5 0x27d4eb2f165667c5ull

static inline uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static inline uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static inline uint64_t xxh_round(uint64_t acc, uint64_t in)
{
	acc += in * P2;
	acc = rotl64(acc, 31);
	return acc * P1;
}

static inline uint64_t xxh_merge(uint64_t acc, uint64_t val)
{
	acc ^= xxh_round(0, val);
	return acc * P1 + P4;
}

void kp_xxh64_init(struct kp_xxh64 *s, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	s->seed = seed;
	s->v[0] = seed + P1 + P2;
	s->v[1] = seed + P2;
	s->v[2] = seed;
	s->v[3] = seed - P1;
}

void kp_xxh64_update(struct kp_xxh64 *s, const void *data, size_t len)
{
	const uint8_t *p = data, *end = p + len;
	uint64_t v0, v1, v2, v3;

	s->total += len;
	if (s->memsize + len < 32) {
		memcpy(s->mem + s->memsize, p, len);
		s->memsize += len;
		return;
	}
	if (s->memsize) {
		size_t fill = 32 - s->memsize;

		memcpy(s->mem + s->memsize, p, fill);
		s->v[0] = xxh_round(s->v[0], rd64(s->mem));
		s->v[1] = xxh_round(s->v[1], rd64(s->mem + 8));
		s->v[2] = xxh_round(s->v[2], rd64(s->mem + 16));
		s->v[3] = xxh_round(s->v[3], rd64(s->mem + 24));
		p += fill;
		s->memsize = 0;
	}
	v0 = s->v[0];
	v1 = s->v[1];
	v2 = s->v[2];
	v3 = s->v[3];
	while (end - p >= 32) {
		v0 = xxh_round(v0, rd64(p));
		v1 = xxh_round(v1, rd64(p + 8));
		v2 = xxh_round(v2, rd64(p + 16));
		v3 = xxh_round(v3, rd64(p + 24));
		p += 32;
	}
	s->v[0] = v0;
	s->v[1] = v1;
	s->v[2] = v2;
	s->v[3] = v3;
	if (p < end) {
		memcpy(s->mem, p, end - p);
		s->memsize = end - p;
	}
}

uint64_t kp_xxh64_digest(const struct kp_xxh64 *s)
{
	const uint8_t *p = s->mem, *end = p + s->memsize;
	uint64_t h;

	if (s->total >= 32) {
		h = rotl64(s->v[0], 1) + rotl64(s->v[1], 7) + rotl64(s->v[2], 12) +
		    rotl64(s->v[3], 18);
		h = xxh_merge(h, s->v[0]);
		h = xxh_merge(h, s->v[1]);
		h = xxh_merge(h, s->v[2]);
		h = xxh_merge(h, s->v[3]);
	} else {
		h = s->seed + P5;
	}
	h += s->total;
	while (end - p >= 8) {
		h ^= xxh_round(0, rd64(p));
		h = rotl64(h, 27) * P1 + P4;
		p += 8;
	}
	if (end - p >= 4) {
		h ^= (uint64_t)rd32(p) * P1;
		h = rotl64(h, 23) * P2 + P3;
		p += 4;
	}
	while (p < end) {
		h ^= *p * P5;
		h = rotl64(h, 11) * P1;
		p++;
	}
	h ^= h >> 33;
	h *= P2;
	h ^= h >> 29;
	h *= P3;
	h ^= h >> 32;
	return h;
}

uint64_t kp_xxh64(const void *data, size_t len, uint64_t seed)
{
	struct kp_xxh64 s;

	kp_xxh64_init(&s, seed);
	kp_xxh64_update(&s, data, len);
	return kp_xxh64_digest(&s);
}
