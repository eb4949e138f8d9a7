// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A log-bucket latency histogram in the manner of HdrHistogram: values below
 * KP_HIST_SUB are counted exactly, above that each power of two is split into
 * KP_HIST_SUB / 2 linear buckets. A fixed 116 KiB per thread records any
 * number of samples, so a long rr run never has to store or sort them, and
 * the tail percentiles the brief asks for keep their precision.
 */
#include "kpperf.h"

#define HALF	(KP_HIST_SUB / 2)

static unsigned int bucket_of(uint64_t v)
{
	unsigned int e;

	if (v < KP_HIST_SUB)
		return v;
	e = 63 - __builtin_clzll(v) - (KP_HIST_SUB_BITS - 1);
	return e * HALF + (v >> e);
}

/* The midpoint of the values that fall in bucket @b. */
static uint64_t bucket_value(unsigned int b)
{
	unsigned int e;
	uint64_t sub;

	if (b < KP_HIST_SUB)
		return b;
	e = b / HALF - 1;
	sub = b - e * HALF;
	return (sub << e) + ((1ull << e) >> 1);
}

void kp_hist_add(struct kp_hist *h, uint64_t v)
{
	h->buckets[bucket_of(v)]++;
	h->count++;
	if (v > h->max)
		h->max = v;
}

void kp_hist_merge(struct kp_hist *dst, const struct kp_hist *src)
{
	unsigned int i;

	for (i = 0; i < KP_HIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	if (src->max > dst->max)
		dst->max = src->max;
}

/* The smallest recorded value that at least @pct percent of samples do not exceed. */
uint64_t kp_hist_percentile(const struct kp_hist *h, double pct)
{
	uint64_t rank, seen = 0, v;
	unsigned int i;

	if (!h->count)
		return 0;
	rank = (uint64_t)(pct / 100.0 * h->count + 0.999999);
	if (rank < 1)
		rank = 1;
	for (i = 0; i < KP_HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			v = bucket_value(i);
			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}
