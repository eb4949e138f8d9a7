// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fuzz_parse: libFuzzer target for kp_parse() (userspace/common/parse.c).
 *
 * Input: a 12-byte config header, then the stream.
 *   byte 0	bits 0-1: kind (0 len, 1 line, 2 http, 3 len)
 *		bit 2: len big endian / http responses
 *		bits 3-4: max_msg scale of M (bytes 2-3, little endian):
 *		  0: M + 1, 1: M % 1024 + 1, 2: M * 1024, 3: KP_PARSE_MAX_MSG
 *		bit 5: len_adj * 65536
 *   byte 1	bits 0-1: len_size 1, 2, 4 or 8; bits 2-7: len_off
 *   bytes 2-3	M
 *   bytes 4-5	len_adj, signed 16 bits, little endian
 *   byte 6	bits 0-1: delim_len - 1
 *   bytes 7-10	delim; bytes 7-8 also max_hdr (little endian, at least 16, at most max_msg)
 *   byte 11	unused
 * A line parser's max_msg is cut to KP_PARSE_LINE_SCAN. Configs that
 * kp_parser_cfg_check() refuses are skipped (and kept out of the corpus).
 *
 * With r = kp_parse(cfg, s, n), every violation of these aborts:
 *  1. contract: r > 0 and r <= max_msg, or r is 0, -EMSGSIZE or -EBADMSG.
 *  2. determinism: the same r again, from a copy of exactly n bytes, and
 *     from a copy followed by other bytes that n excludes.
 *  3. finality: for every prefix p <= n, kp_parse(s, p) is 0 or r, and the
 *     prefixes that give r are exactly those from some d (the decision point)
 *     on: a non-zero answer, length or error, never changes with more bytes.
 *     All prefixes of streams up to 96 bytes; of longer ones 24 pseudo-random
 *     prefixes, and d found by bisection, checked with d-1, d and d+1.
 *  4. self-delimiting: r > 0 implies kp_parse(s, min(r, n)) = r.
 *  5. nothing after the decision point matters: r != 0 stays r when the
 *     bytes from d on are changed, and when more bytes follow.
 *  6. len and line: r equals an independent oracle (the field read into a
 *     128-bit integer; memmem() for the delimiter). http: r > 0 implies a
 *     header section that starts right (a request token after optional
 *     CRLFs, "HTTP/1." for a response), ends at the first CRLF CRLF at some
 *     h <= max_hdr with h <= r and has no bare LF and no NUL before h;
 *     h = r for a 1xx, 204 or 304 response; a chunked message ends in CRLF
 *     and r <= n.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

#define HDR		12
#define ALL_PREFIXES	96	/* check every prefix of streams up to this long */
#define SAMPLES		24	/* else this many pseudo-random ones */

#define CHECK(cond, ...)                                                                          \
	do {                                                                                      \
		if (!(cond)) {                                                                    \
			fprintf(stderr, "fuzz_parse: %s: ", #cond);                               \
			fprintf(stderr, __VA_ARGS__);                                             \
			fputc('\n', stderr);                                                      \
			abort();                                                                  \
		}                                                                                 \
	} while (0)

static int make_cfg(const uint8_t *d, struct kp_parser_cfg *cfg)
{
	static const uint8_t sizes[] = { 1, 2, 4, 8 };
	uint32_t m = d[2] | d[3] << 8, max;
	int32_t adj = (int16_t)(d[4] | d[5] << 8);
	uint32_t max_hdr = d[7] | d[8] << 8;

	memset(cfg, 0, sizeof(*cfg));
	switch ((d[0] >> 3) & 3) {
	case 0: max = m + 1; break;
	case 1: max = m % 1024 + 1; break;
	case 2: max = m * 1024; break;
	default: max = KP_PARSE_MAX_MSG;
	}
	cfg->max_msg = max;
	switch (d[0] & 3) {
	case 1:
		cfg->kind = KP_PARSER_LINE;
		if (cfg->max_msg > KP_PARSE_LINE_SCAN)
			cfg->max_msg = KP_PARSE_LINE_SCAN;
		cfg->delim_len = (d[6] & 3) + 1;
		memcpy(cfg->delim, d + 7, cfg->delim_len);
		break;
	case 2:
		cfg->kind = KP_PARSER_HTTP;
		cfg->http_responses = !!(d[0] & 4);
		if (max_hdr < KP_HTTP_MIN_HDR)
			max_hdr = KP_HTTP_MIN_HDR;
		if (max_hdr > cfg->max_msg)
			max_hdr = cfg->max_msg;
		cfg->max_hdr = max_hdr;
		break;
	default:
		cfg->kind = KP_PARSER_LEN;
		cfg->len_be = !!(d[0] & 4);
		cfg->len_size = sizes[d[1] & 3];
		cfg->len_off = d[1] >> 2;
		cfg->len_adj = d[0] & 0x20 ? adj * 65536 : adj;
	}
	return kp_parser_cfg_check(cfg, NULL, 0);
}

static long oracle_len(const struct kp_parser_cfg *cfg, const uint8_t *s, size_t n)
{
	size_t hdr = (size_t)cfg->len_off + cfg->len_size;
	unsigned __int128 v = 0;
	__int128 total;
	int i;

	if (n < hdr)
		return 0;
	for (i = 0; i < cfg->len_size; i++) {
		if (cfg->len_be)
			v = v << 8 | s[cfg->len_off + i];
		else
			v |= (unsigned __int128)s[cfg->len_off + i] << (8 * i);
	}
	total = (__int128)v + cfg->len_adj;
	if (total < (__int128)hdr)
		return -EBADMSG;
	if (total > cfg->max_msg)
		return -EMSGSIZE;
	return (long)total;
}

static long oracle_line(const struct kp_parser_cfg *cfg, const uint8_t *s, size_t n)
{
	size_t scan = cfg->max_msg < KP_PARSE_LINE_SCAN ? cfg->max_msg : KP_PARSE_LINE_SCAN;
	size_t m = n < scan ? n : scan;
	const uint8_t *p = memmem(s, m, cfg->delim, cfg->delim_len);

	if (p)
		return p - s + cfg->delim_len;
	return n >= scan ? -EMSGSIZE : 0;
}

/* Whether @word (lower case) is in the first @n bytes of @s, case-insensitively. */
static int has_lower(const uint8_t *s, size_t n, const char *word)
{
	uint8_t *low = malloc(n + 1);
	size_t i;
	int ret;

	for (i = 0; i < n; i++)
		low[i] = s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i];
	ret = memmem(low, n, word, strlen(word)) != NULL;
	free(low);
	return ret;
}

static void check_http(const struct kp_parser_cfg *cfg, const uint8_t *s, size_t n, long r)
{
	size_t i = 0, h, lim;
	const uint8_t *e;
	int status;

	if (r <= 0)
		return;
	CHECK(r >= KP_HTTP_MIN_HDR, "r=%ld", r);
	if (cfg->http_responses) {
		CHECK(n >= 12 && !memcmp(s, "HTTP/1.", 7), "a response starts with HTTP/1.");
	} else {
		while (i + 1 < n && s[i] == '\r' && s[i + 1] == '\n')
			i += 2;
		CHECK(i < n && s[i] > ' ' && s[i] != ':' && s[i] < 0x7f, "request starts at %zu", i);
	}
	lim = n < (size_t)r ? n : (size_t)r;
	e = memmem(s + i, lim - i, "\r\n\r\n", 4);
	CHECK(e, "no CRLF CRLF in the %zu bytes of a message of %ld", lim, r);
	h = e - s + 4;
	CHECK(h <= cfg->max_hdr, "header section of %zu bytes, max_hdr %u", h, cfg->max_hdr);
	for (i = 0; i < h; i++) {
		CHECK(s[i] != 0, "NUL at %zu in the header section", i);
		CHECK(s[i] != '\n' || (i > 0 && s[i - 1] == '\r'), "bare LF at %zu", i);
	}
	if (cfg->http_responses) {
		status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
		if (status / 100 == 1 || status == 204 || status == 304)
			CHECK((size_t)r == h, "status %d has no body: r=%ld h=%zu", status, r, h);
	}
	/* Without Content-Length, a body is chunked: it ends in CRLF, and only once it is all there. */
	if ((size_t)r > h && !has_lower(s, h, "content-length:"))
		CHECK((size_t)r <= n && s[r - 2] == '\r' && s[r - 1] == '\n', "chunked r=%ld", r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *s = data + HDR;
	struct kp_parser_cfg cfg;
	size_t n, p, d, lo, hi;
	uint32_t x;
	uint8_t *copy;
	long r, rp;
	int seen, i;

	if (size < HDR || make_cfg(data, &cfg))
		return -1;
	n = size - HDR;
	r = kp_parse(&cfg, s, n);

	/* 1. contract */
	CHECK((r > 0 && r <= (long)cfg.max_msg) || r == 0 || r == -EMSGSIZE || r == -EBADMSG,
	      "r=%ld max_msg=%u", r, cfg.max_msg);

	/* 2. determinism, from an exact copy and with bytes beyond n */
	copy = malloc(n + 64 + 1);
	memcpy(copy, s, n);
	CHECK(kp_parse(&cfg, copy, n) == r, "a copy gives another result");
	memset(copy + n, n & 1 ? 0x0a : 0x0d, 64);
	CHECK(kp_parse(&cfg, copy, n) == r, "bytes beyond len change the result");

	/* 3. finality, and d: the shortest prefix that decides */
	d = n + 1;
	if (n <= ALL_PREFIXES) {
		seen = 0;
		for (p = 0; p <= n; p++) {
			rp = kp_parse(&cfg, s, p);
			CHECK(rp == 0 || rp == r, "prefix %zu gives %ld, all %zu bytes %ld", p, rp, n, r);
			CHECK(!seen || rp != 0, "prefix %zu gives 0 after an answer at %zu", p, d);
			if (rp && !seen) {
				seen = 1;
				d = p;
			}
		}
	} else {
		/* Pseudo-random prefixes (the same for the same input), then d by bisection. */
		for (i = 0, x = n * 2654435761u + (uint32_t)r; i < SAMPLES; i++) {
			x = x * 1103515245u + 12345u;
			p = (x >> 8) % (n + 1);
			rp = kp_parse(&cfg, s, p);
			CHECK(rp == 0 || rp == r, "prefix %zu gives %ld, all %zu bytes %ld", p, rp, n, r);
		}
		if (r) {
			lo = 0;
			hi = n;	/* kp_parse(hi) != 0 */
			while (lo < hi) {
				p = lo + (hi - lo) / 2;
				if (kp_parse(&cfg, s, p))
					hi = p;
				else
					lo = p + 1;
			}
			d = lo;
			CHECK(kp_parse(&cfg, s, d) == r, "decision at %zu", d);
			CHECK(d == 0 || kp_parse(&cfg, s, d - 1) == 0, "decision at %zu", d);
			CHECK(d == n || kp_parse(&cfg, s, d + 1) == r, "decision at %zu", d);
		}
	}
	CHECK((r == 0) == (d == n + 1), "r=%ld d=%zu", r, d);

	/* 4. a message's own bytes tell its length */
	if (r > 0)
		CHECK(kp_parse(&cfg, s, (size_t)r < n ? (size_t)r : n) == r, "r=%ld", r);

	/* 5. bytes from the decision point on do not matter */
	if (r) {
		for (p = d; p < n + 64; p++)
			copy[p] = p < n ? ~s[p] : (uint8_t)(p * 7);
		CHECK(kp_parse(&cfg, copy, n) == r, "changed bytes after the decision at %zu", d);
		CHECK(kp_parse(&cfg, copy, n + 64) == r, "more bytes after the decision at %zu", d);
	}
	free(copy);

	/* 6. per kind */
	switch (cfg.kind) {
	case KP_PARSER_LEN:
		CHECK(r == oracle_len(&cfg, s, n), "r=%ld oracle %ld", r, oracle_len(&cfg, s, n));
		CHECK(r <= 0 || (size_t)r >= (size_t)cfg.len_off + cfg.len_size, "r=%ld", r);
		break;
	case KP_PARSER_LINE:
		CHECK(r == oracle_line(&cfg, s, n), "r=%ld oracle %ld", r, oracle_line(&cfg, s, n));
		break;
	case KP_PARSER_HTTP:
		check_http(&cfg, s, n, r);
		break;
	}
	return 0;
}
