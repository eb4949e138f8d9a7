// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The message parsers' user-space twin, and their text form. The semantics
 * and the bounds are documented in parse.h; this file is the reference the
 * BPF stream parsers mirror, so it keeps to what the verifier accepts:
 *
 *  - struct kp_stream stands for the skb and kp_ld() is the only place that
 *    reads it (bpf_skb_load_bytes() on the BPF side);
 *  - every loop runs at most a constant number of times (the #defines of
 *    parse.h, or KP_PARSE_LINE_SCAN); the HTTP scanners are one step function
 *    over a small state struct, the shape of a bpf_loop() callback and its
 *    context;
 *  - no recursion, no allocation, 64-bit arithmetic where sums could overflow;
 *  - helpers return 0/1 or -errno, only kp_parse() hands a result out.
 *
 * Every decision is taken at a byte position, reading only the bytes before
 * it, and scanning stops at the first one: that is what makes every non-zero
 * answer final for all longer prefixes (parse.h, and tests/fuzz/fuzz_parse.c
 * which checks it).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"

/* ------------------------------------------------------------------ the stream */

struct kp_stream {
	const __u8 *buf;
	__u64 len;
};

/* The one accessor: the byte at @off, or -1 if it has not arrived yet. */
static inline int kp_ld(const struct kp_stream *s, __u64 off)
{
	if (off >= s->len)
		return -1;
	return s->buf[off];
}

static inline __u64 min_u64(__u64 a, __u64 b)
{
	return a < b ? a : b;
}

/* ------------------------------------------------------------------ len */

static long parse_len(const struct kp_parser_cfg *cfg, const struct kp_stream *s)
{
	__u64 hdr = (__u64)cfg->len_off + cfg->len_size;
	__u64 val = 0;
	__s64 total;
	int i, c;

	if (s->len < hdr)
		return 0;
	for (i = 0; i < 8; i++) {
		if (i >= cfg->len_size)
			break;
		c = kp_ld(s, (__u64)cfg->len_off + i);
		if (c < 0)
			return 0;
		if (cfg->len_be)
			val = val << 8 | (__u64)c;
		else
			val |= (__u64)c << (8 * i);
	}
	/* Too long whatever len_adj is (>= -2^31), and stops the signed sum below from overflowing. */
	if (val > (__u64)KP_PARSE_MAX_MSG + 0x80000000ULL)
		return -EMSGSIZE;
	total = (__s64)val + cfg->len_adj;
	if (total < (__s64)hdr)
		return -EBADMSG;
	if (total > (__s64)cfg->max_msg)
		return -EMSGSIZE;
	return total;
}

/* ------------------------------------------------------------------ line */

static long parse_line(const struct kp_parser_cfg *cfg, const struct kp_stream *s)
{
	__u64 scan = min_u64(cfg->max_msg, KP_PARSE_LINE_SCAN);
	__u64 n = min_u64(s->len, scan);
	__u32 dl = cfg->delim_len;
	__u32 i, j;

	for (i = 0; i < KP_PARSE_LINE_SCAN; i++) {
		if (i + dl > n)
			break;
		for (j = 0; j < 4; j++) {
			if (j >= dl || kp_ld(s, i + j) != cfg->delim[j])
				break;
		}
		if (j == dl)
			return i + dl;
	}
	return s->len >= scan ? -EMSGSIZE : 0;
}

/* ------------------------------------------------------------------ http */

/* RFC 9110 5.6.2: the bytes of a token (method, field name). */
static inline int is_tchar(int c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
	case '-': case '.': case '^': case '_': case '`': case '|': case '~':
		return 1;
	}
	return 0;
}

/* Field values, reason phrases, chunk extensions: HTAB, SP, VCHAR, obs-text. */
static inline int is_text(int c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static inline int is_ows(int c)
{
	return c == ' ' || c == '\t';
}

static inline int to_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static inline int hex_val(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = to_lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Content-Length and chunk sizes saturate here, above any max_msg, so they never overflow. */
#define KP_SIZE_CAP ((__u64)KP_PARSE_MAX_MSG + 1)

enum http_state {
	H_METHOD,	/* the request method; empty lines before it are skipped */
	H_LEAD_LF,	/* the CR of an empty line before the request line: LF must follow */
	H_TARGET,	/* the request target */
	H_VERSION,	/* "HTTP/1.0" or "HTTP/1.1": pos bytes of it seen */
	H_STATUS,	/* the status code: pos digits of it seen */
	H_STATUS_END,	/* SP before a reason phrase, or CR */
	H_REASON,
	H_LF,		/* a CR ended a line: LF must follow */
	H_LINE,		/* the start of a field line or of the empty line */
	H_NAME,
	H_VALUE,
	H_END_LF,	/* the empty line's CR: LF must follow, and ends the section */
};

enum http_field {
	F_OTHER,
	F_CL,		/* Content-Length */
	F_TE,		/* Transfer-Encoding */
};

static const char kp_http_version[] = "HTTP/1.";	/* then '0' or '1' */
static const char kp_name_cl[] = "content-length";
static const char kp_name_te[] = "transfer-encoding";
static const char kp_chunked[] = "chunked";

struct http_scan {
	__u8 state;		/* enum http_state */
	__u8 responses;		/* a status line, not a request line */
	__u8 trailers;		/* a trailer section: only H_LINE onwards, fields not interpreted */
	__u8 minor;		/* HTTP/1.<minor> */
	__u16 pos;		/* bytes of the current start line token seen (0 or 1 for method, target) */
	__u16 status;
	__u16 nfields;
	__u8 field;		/* enum http_field of the current line */
	__u8 cand;		/* while the name may still be Content-Length or Transfer-Encoding */
	__u8 name_pos;		/* bytes of the candidate's name matched */
	__u8 cl_state;		/* in a Content-Length value: 0 leading OWS, 1 digits, 2 trailing OWS */
	__u8 cl_seen;
	__u8 te_seen;
	__u8 te_chunked;	/* the last coding of the last Transfer-Encoding line is chunked */
	__u8 tok_len;		/* the current coding in a Transfer-Encoding line: bytes (up to 8) */
	__u8 tok_ok;		/* ... and whether they still spell "chunked" */
	__u8 tok_end;		/* ... and whether OWS followed them */
	__u8 line_last;		/* the last non-empty coding of this line was "chunked" */
	__u64 cl_cur;		/* the value of this Content-Length line */
	__u64 cl;		/* the value of the Content-Length lines before */
};

static inline void te_end_token(struct http_scan *h)
{
	if (h->tok_len)
		h->line_last = h->tok_len == sizeof(kp_chunked) - 1 && h->tok_ok;
	h->tok_len = 0;
	h->tok_ok = 1;
	h->tok_end = 0;
}

/* One byte of a Content-Length or Transfer-Encoding value (not CR); 0 or -EBADMSG. */
static int http_value_step(struct http_scan *h, int c)
{
	if (h->field == F_CL) {
		if (c >= '0' && c <= '9') {
			if (h->cl_state == 2)
				return -EBADMSG;	/* "1 2" */
			h->cl_cur = h->cl_cur * 10 + (c - '0');
			if (h->cl_cur > KP_SIZE_CAP)
				h->cl_cur = KP_SIZE_CAP;
			h->cl_state = 1;
			return 0;
		}
		if (is_ows(c)) {
			if (h->cl_state == 1)
				h->cl_state = 2;
			return 0;
		}
		return -EBADMSG;	/* a sign, a comma, a letter */
	}
	if (h->field == F_TE) {
		if (c == ',') {
			te_end_token(h);
		} else if (is_ows(c)) {
			if (h->tok_len)
				h->tok_end = 1;
		} else {
			/* Anything but the letters of "chunked" in order makes another coding. */
			if (h->tok_end || h->tok_len >= sizeof(kp_chunked) - 1 ||
			    to_lower(c) != kp_chunked[h->tok_len])
				h->tok_ok = 0;
			if (h->tok_len < sizeof(kp_chunked))
				h->tok_len++;
		}
	}
	return 0;
}

/* The CR at the end of a field line. */
static int http_field_end(struct http_scan *h)
{
	if (h->field == F_CL) {
		if (h->cl_state == 0)
			return -EBADMSG;	/* empty */
		if (h->cl_seen && h->cl != h->cl_cur)
			return -EBADMSG;	/* two lengths: which one would the peer believe? */
		h->cl_seen = 1;
		h->cl = h->cl_cur;
	} else if (h->field == F_TE) {
		te_end_token(h);
		h->te_seen = 1;
		h->te_chunked = h->line_last;
	}
	return 0;
}

/* The first byte of a field name, already known to be a tchar. */
static void http_name_start(struct http_scan *h, int c)
{
	c = to_lower(c);
	h->cand = F_OTHER;
	if (!h->trailers && c == kp_name_cl[0])
		h->cand = F_CL;
	else if (!h->trailers && c == kp_name_te[0])
		h->cand = F_TE;
	h->name_pos = 1;
}

static void http_name_step(struct http_scan *h, int c)
{
	const char *name = h->cand == F_CL ? kp_name_cl : kp_name_te;
	__u8 n = h->cand == F_CL ? sizeof(kp_name_cl) - 1 : sizeof(kp_name_te) - 1;

	if (h->cand == F_OTHER)
		return;
	if (h->name_pos < n && to_lower(c) == name[h->name_pos])
		h->name_pos++;
	else
		h->cand = F_OTHER;
}

static void http_value_start(struct http_scan *h)
{
	__u8 n = h->cand == F_CL ? sizeof(kp_name_cl) - 1 : sizeof(kp_name_te) - 1;

	h->field = h->cand != F_OTHER && h->name_pos == n ? h->cand : F_OTHER;
	h->cl_state = 0;
	h->cl_cur = 0;
	h->tok_len = 0;
	h->tok_ok = 1;
	h->tok_end = 0;
	h->line_last = 0;
}

/*
 * One byte of a header or trailer section. Returns 0 to go on, 1 when this
 * byte (the empty line's LF) ends the section, -EBADMSG or -EMSGSIZE.
 */
static int http_step(struct http_scan *h, int c)
{
	switch (h->state) {
	case H_METHOD:
		if (is_tchar(c)) {
			h->pos = 1;
			return 0;
		}
		if (c == ' ' && h->pos) {
			h->state = H_TARGET;
			h->pos = 0;
			return 0;
		}
		if (c == '\r' && !h->pos) {
			h->state = H_LEAD_LF;
			return 0;
		}
		return -EBADMSG;
	case H_LEAD_LF:
		if (c != '\n')
			return -EBADMSG;
		h->state = H_METHOD;
		return 0;
	case H_TARGET:
		if (c == ' ' && h->pos) {
			h->state = H_VERSION;
			h->pos = 0;
			return 0;
		}
		if (c > 0x20 && c != 0x7f) {
			h->pos = 1;
			return 0;
		}
		return -EBADMSG;
	case H_VERSION:
		if (h->pos < sizeof(kp_http_version) - 1) {
			if (c != kp_http_version[h->pos])
				return -EBADMSG;
			h->pos++;
			return 0;
		}
		if (h->pos == sizeof(kp_http_version) - 1) {
			if (c != '0' && c != '1')
				return -EBADMSG;
			h->minor = c - '0';
			h->pos++;
			return 0;
		}
		if (!h->responses && c == '\r') {
			h->state = H_LF;
			return 0;
		}
		if (h->responses && c == ' ') {
			h->state = H_STATUS;
			h->pos = 0;
			return 0;
		}
		return -EBADMSG;
	case H_STATUS:
		if (c < '0' || c > '9' || (h->pos == 0 && (c < '1' || c > '5')))
			return -EBADMSG;
		h->status = h->status * 10 + (c - '0');
		if (++h->pos == 3)
			h->state = H_STATUS_END;
		return 0;
	case H_STATUS_END:
		if (c == ' ') {
			h->state = H_REASON;
			return 0;
		}
		if (c == '\r') {
			h->state = H_LF;
			return 0;
		}
		return -EBADMSG;
	case H_REASON:
		if (c == '\r') {
			h->state = H_LF;
			return 0;
		}
		return is_text(c) ? 0 : -EBADMSG;
	case H_LF:
		if (c != '\n')
			return -EBADMSG;
		h->state = H_LINE;
		return 0;
	case H_LINE:
		if (c == '\r') {
			h->state = H_END_LF;
			return 0;
		}
		/* Not a name: SP or HTAB (obs-fold), ':' (empty name), a bare LF, ... */
		if (!is_tchar(c))
			return -EBADMSG;
		if (++h->nfields > KP_HTTP_MAX_FIELDS)
			return -EMSGSIZE;
		http_name_start(h, c);
		h->state = H_NAME;
		return 0;
	case H_NAME:
		if (c == ':') {
			http_value_start(h);
			h->state = H_VALUE;
			return 0;
		}
		if (!is_tchar(c))
			return -EBADMSG;	/* SP before the colon included (RFC 9112 5.1) */
		http_name_step(h, c);
		return 0;
	case H_VALUE:
		if (c == '\r') {
			h->state = H_LF;
			return http_field_end(h);
		}
		if (!is_text(c))
			return -EBADMSG;
		return http_value_step(h, c);
	case H_END_LF:
		return c == '\n' ? 1 : -EBADMSG;
	}
	return -EBADMSG;
}

/*
 * Scan a header or trailer section from @off; it must end before @limit.
 * Returns 1 and its end in @end, 0 if more bytes are needed, or -errno.
 */
static int http_section(struct http_scan *h, const struct kp_stream *s, __u64 off, __u64 limit,
			__u64 *end)
{
	int i, c, ret;

	/* limit - off <= max_hdr <= KP_HTTP_MAX_HDR_LIMIT */
	for (i = 0; i < KP_HTTP_MAX_HDR_LIMIT; i++) {
		if (off >= limit)
			return -EMSGSIZE;
		c = kp_ld(s, off);
		if (c < 0)
			return 0;
		ret = http_step(h, c);
		off++;
		if (ret < 0)
			return ret;
		if (ret > 0) {
			*end = off;
			return 1;
		}
	}
	return -EMSGSIZE;
}

enum chunk_state {
	C_FIRST,	/* the first hex digit of the size */
	C_SIZE,		/* more hex digits */
	C_WS,		/* SP or HTAB after the size */
	C_EXT,		/* an extension, from its ';' on */
	C_LF,		/* CR seen: LF must follow */
};

/*
 * A chunk-size line from @off. Returns 1 with the size in @size and the
 * offset after the line's LF in @end, 0 if more bytes are needed, or -errno.
 */
static int http_chunk_line(const struct kp_parser_cfg *cfg, const struct kp_stream *s, __u64 off,
			   __u64 *size, __u64 *end)
{
	__u64 limit = min_u64(off + KP_HTTP_MAX_CHUNK_LINE, cfg->max_msg);
	__u8 state = C_FIRST;
	__u64 sz = 0;
	int i, c, v;

	for (i = 0; i < KP_HTTP_MAX_CHUNK_LINE; i++) {
		if (off >= limit)
			return -EMSGSIZE;
		c = kp_ld(s, off);
		if (c < 0)
			return 0;
		off++;
		v = hex_val(c);
		switch (state) {
		case C_FIRST:
		case C_SIZE:
			if (v >= 0) {
				sz = sz * 16 + v;
				if (sz > KP_SIZE_CAP)
					sz = KP_SIZE_CAP;
				state = C_SIZE;
				break;
			}
			if (state == C_FIRST)
				return -EBADMSG;	/* no size: "", "+5", "x5" */
			/* fall through */
		case C_WS:
			if (is_ows(c))
				state = C_WS;
			else if (c == ';')
				state = C_EXT;
			else if (c == '\r')
				state = C_LF;
			else
				return -EBADMSG;	/* "1 0", "5x" */
			break;
		case C_EXT:
			if (c == '\r')
				state = C_LF;
			else if (!is_text(c))
				return -EBADMSG;
			break;
		case C_LF:
			if (c != '\n')
				return -EBADMSG;
			*size = sz;
			*end = off;
			return 1;
		}
	}
	return -EMSGSIZE;
}

/* A chunked body from @off (after the header section) to the end of its trailer section. */
static long http_chunked(const struct kp_parser_cfg *cfg, const struct kp_stream *s, __u64 off)
{
	struct http_scan h;
	__u64 size, end;
	int n, ret, c;

	for (n = 0; n < KP_HTTP_MAX_CHUNKS; n++) {
		ret = http_chunk_line(cfg, s, off, &size, &off);
		if (ret <= 0)
			return ret;
		if (size == 0)
			break;
		/* The data and its CRLF, which must end within max_msg. */
		off += size + 2;
		if (off > cfg->max_msg)
			return -EMSGSIZE;
		c = kp_ld(s, off - 2);
		if (c < 0)
			return 0;
		if (c != '\r')
			return -EBADMSG;
		c = kp_ld(s, off - 1);
		if (c < 0)
			return 0;
		if (c != '\n')
			return -EBADMSG;
	}
	if (n == KP_HTTP_MAX_CHUNKS)
		return -EMSGSIZE;

	memset(&h, 0, sizeof(h));
	h.state = H_LINE;
	h.trailers = 1;
	ret = http_section(&h, s, off, min_u64(off + cfg->max_hdr, cfg->max_msg), &end);
	if (ret <= 0)
		return ret;
	return end;
}

static long parse_http(const struct kp_parser_cfg *cfg, const struct kp_stream *s)
{
	struct http_scan h;
	__u64 hdr_len;
	int ret;

	memset(&h, 0, sizeof(h));
	h.responses = cfg->http_responses;
	h.state = h.responses ? H_VERSION : H_METHOD;
	ret = http_section(&h, s, 0, min_u64(cfg->max_hdr, cfg->max_msg), &hdr_len);
	if (ret <= 0)
		return ret;

	/* RFC 9112 6.3, in its order. */
	if (h.responses && (h.status / 100 == 1 || h.status == 204 || h.status == 304))
		return hdr_len;
	if (h.te_seen) {
		/* HTTP/1.0 has no chunked coding; both lengths: request smuggling. */
		if (h.minor == 0 || h.cl_seen || !h.te_chunked)
			return -EBADMSG;
		return http_chunked(cfg, s, hdr_len);
	}
	if (h.cl_seen) {
		if (hdr_len + h.cl > cfg->max_msg)
			return -EMSGSIZE;
		return hdr_len + h.cl;
	}
	if (!h.responses)
		return hdr_len;
	/* A response delimited by the connection's close: no message boundary to give. */
	return -EBADMSG;
}

/* ------------------------------------------------------------------ kp_parse */

long kp_parse(const struct kp_parser_cfg *cfg, const __u8 *buf, size_t len)
{
	struct kp_stream s = { .buf = buf, .len = len };

	switch (cfg->kind) {
	case KP_PARSER_LEN:
		if (cfg->len_size != 1 && cfg->len_size != 2 && cfg->len_size != 4 &&
		    cfg->len_size != 8)
			return -EINVAL;
		return parse_len(cfg, &s);
	case KP_PARSER_LINE:
		if (cfg->delim_len < 1 || cfg->delim_len > sizeof(cfg->delim))
			return -EINVAL;
		return parse_line(cfg, &s);
	case KP_PARSER_HTTP:
		return parse_http(cfg, &s);
	case KP_PARSER_BPF:
		return -EOPNOTSUPP;
	}
	return -EINVAL;
}

/* ------------------------------------------------------------------ config check */

static int errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	char *p;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
		/* Sentences quote what the user typed: keep control bytes out of logs and terminals. */
		for (p = err; *p; p++) {
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
		}
	}
	return -EINVAL;
}

static const char *kind_name(__u32 kind)
{
	switch (kind) {
	case KP_PARSER_LEN:
		return "len";
	case KP_PARSER_LINE:
		return "line";
	case KP_PARSER_HTTP:
		return "http";
	case KP_PARSER_BPF:
		return "bpf";
	}
	return NULL;
}

/* Sentences both the config check and the text form give; the value as the user wrote it. */
#define MAX_MSG_TOO_BIG "%s parser: max=%s is over the limit of %u (64 MiB)"
#define LEN_BAD_SIZE	"len parser: size=%s is not 1, 2, 4 or 8"
#define LINE_MAX_BIG	"line parser: max=%s is over %u: the line parser looks for the " \
			"delimiter in the first %u bytes only"

int kp_parser_cfg_check(const struct kp_parser_cfg *cfg, char *err, size_t errlen)
{
	const char *kind = kind_name(cfg->kind);
	int len_fields, line_fields, http_fields;
	char num[24];
	__u64 hdr;
	int i;

	if (!kind)
		return errf(err, errlen, "unknown parser kind %u: use len, line or http", cfg->kind);
	if (cfg->max_msg == 0)
		return errf(err, errlen, "%s parser: max=0: a message is at least 1 byte", kind);
	snprintf(num, sizeof(num), "%u", cfg->max_msg);
	if (cfg->max_msg > KP_PARSE_MAX_MSG)
		return errf(err, errlen, MAX_MSG_TOO_BIG, kind, num, KP_PARSE_MAX_MSG);
	if (cfg->_pad0 || cfg->_pad1)
		return errf(err, errlen, "%s parser: the padding fields _pad0 and _pad1 must be 0",
			    kind);
	len_fields = cfg->len_off || cfg->len_size || cfg->len_be || cfg->len_adj;
	line_fields = cfg->delim_len || cfg->delim[0] || cfg->delim[1] || cfg->delim[2] ||
		      cfg->delim[3];
	http_fields = cfg->http_responses || cfg->max_hdr;
	/* Zero, so that a config means one thing, and a field can later gain a meaning. */
	if (cfg->kind != KP_PARSER_LEN && len_fields)
		return errf(err, errlen,
			    "%s parser: len_off, len_size, len_be and len_adj configure the len parser and must be 0",
			    kind);
	if (cfg->kind != KP_PARSER_LINE && line_fields)
		return errf(err, errlen,
			    "%s parser: delim and delim_len configure the line parser and must be 0", kind);
	if (cfg->kind != KP_PARSER_HTTP && http_fields)
		return errf(err, errlen,
			    "%s parser: http_responses and max_hdr configure the http parser and must be 0",
			    kind);

	switch (cfg->kind) {
	case KP_PARSER_LEN:
		if (cfg->len_size != 1 && cfg->len_size != 2 && cfg->len_size != 4 &&
		    cfg->len_size != 8)
		{
			snprintf(num, sizeof(num), "%u", cfg->len_size);
			return errf(err, errlen, LEN_BAD_SIZE, num);
		}
		if (cfg->len_be > 1)
			return errf(err, errlen, "len parser: len_be=%u is neither 0 (le) nor 1 (be)",
				    cfg->len_be);
		hdr = (__u64)cfg->len_off + cfg->len_size;
		if (hdr > cfg->max_msg)
			return errf(err, errlen,
				    "len parser: the length field ends at byte %llu (off=%u + size=%u), beyond max=%u",
				    (unsigned long long)hdr, cfg->len_off, cfg->len_size, cfg->max_msg);
		if (cfg->len_adj > 0 && (__u64)cfg->len_adj > cfg->max_msg)
			return errf(err, errlen,
				    "len parser: adj=%d alone exceeds max=%u: every message would be too long",
				    cfg->len_adj, cfg->max_msg);
		if (cfg->len_size < 8 &&
		    (__s64)((1ULL << (8 * cfg->len_size)) - 1) + cfg->len_adj < (__s64)hdr)
			return errf(err, errlen,
				    "len parser: with size=%u and adj=%d a message is at most %lld bytes, less than the %llu up to the length field's end: every message would be malformed",
				    cfg->len_size, cfg->len_adj,
				    (long long)((1ULL << (8 * cfg->len_size)) - 1) + cfg->len_adj,
				    (unsigned long long)hdr);
		return 0;
	case KP_PARSER_LINE:
		if (cfg->delim_len == 0)
			return errf(err, errlen,
				    "line parser: the delimiter is empty: give 1 to 4 bytes, e.g. delim=\\r\\n");
		if (cfg->delim_len > sizeof(cfg->delim))
			return errf(err, errlen,
				    "line parser: delim_len=%u: a delimiter is 1 to 4 bytes",
				    cfg->delim_len);
		for (i = cfg->delim_len; i < (int)sizeof(cfg->delim); i++) {
			if (cfg->delim[i])
				return errf(err, errlen,
					    "line parser: the delim bytes after delim_len=%u must be 0",
					    cfg->delim_len);
		}
		if (cfg->max_msg > KP_PARSE_LINE_SCAN)
			return errf(err, errlen, LINE_MAX_BIG, num, KP_PARSE_LINE_SCAN,
				    KP_PARSE_LINE_SCAN);
		if (cfg->max_msg < cfg->delim_len)
			return errf(err, errlen,
				    "line parser: max=%u is shorter than the %u-byte delimiter",
				    cfg->max_msg, cfg->delim_len);
		return 0;
	case KP_PARSER_HTTP:
		if (cfg->http_responses > 1)
			return errf(err, errlen,
				    "http parser: http_responses=%u is neither 0 (requests) nor 1 (responses)",
				    cfg->http_responses);
		if (cfg->max_hdr < KP_HTTP_MIN_HDR)
			return errf(err, errlen,
				    "http parser: max_hdr=%u is too small: the shortest header section (HTTP/1.1 200, CRLF, CRLF) is %u bytes",
				    cfg->max_hdr, KP_HTTP_MIN_HDR);
		if (cfg->max_hdr > cfg->max_msg)
			return errf(err, errlen,
				    "http parser: max_hdr=%u exceeds max=%u: the header section is part of the message",
				    cfg->max_hdr, cfg->max_msg);
		return 0;
	}
	return 0;	/* KP_PARSER_BPF: max_msg only */
}

/* ------------------------------------------------------------------ text form */

/*
 * Decimal digits with an optional k or m suffix (x1024, x1048576); -1 if it is
 * not a number. Saturates at 2^40, beyond every limit, so it cannot overflow.
 */
static int spec_number(const char *s, size_t n, __u64 *out)
{
	const __u64 cap = 1ULL << 40;
	__u64 v = 0, mul = 1;
	size_t i;

	if (n && (s[n - 1] == 'k' || s[n - 1] == 'K')) {
		mul = 1024;
		n--;
	} else if (n && (s[n - 1] == 'm' || s[n - 1] == 'M')) {
		mul = 1024 * 1024;
		n--;
	}
	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
		if (v > cap)
			v = cap;
	}
	*out = v * mul > cap ? cap : v * mul;
	return 0;
}

/* The delim= value into @cfg; 0 or -EINVAL with a sentence. */
static int spec_delim(const char *v, size_t n, struct kp_parser_cfg *cfg, char *err, size_t errlen)
{
	static const char hint[] = "use \\r \\n \\t \\\\ \\0 or \\xHH";
	size_t i = 0;
	int c, hi, lo;

	while (i < n) {
		c = (unsigned char)v[i];
		if (c == '\\') {
			if (i + 1 >= n)
				return errf(err, errlen,
					    "line parser: delim=%.*s ends in a lone backslash: write a backslash as \\\\ and a comma as \\x2c",
					    (int)n, v);
			switch (v[i + 1]) {
			case 'r': c = '\r'; break;
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case '\\': c = '\\'; break;
			case '0': c = 0; break;
			case 'x':
				hi = i + 2 < n ? hex_val((unsigned char)v[i + 2]) : -1;
				lo = i + 3 < n ? hex_val((unsigned char)v[i + 3]) : -1;
				if (hi < 0 || lo < 0)
					return errf(err, errlen,
						    "line parser: \\x in delim=%.*s needs two hex digits, e.g. \\x2c",
						    (int)n, v);
				c = hi << 4 | lo;
				i += 2;
				break;
			default:
				return errf(err, errlen,
					    "line parser: unknown escape '\\%c' in delim=%.*s: %s",
					    v[i + 1], (int)n, v, hint);
			}
			i += 2;
		} else if (c <= 0x20 || c >= 0x7f) {
			return errf(err, errlen,
				    "line parser: write spaces, control characters and non-ASCII bytes in delim= as \\xHH (byte 0x%02x)",
				    c);
		} else {
			i++;
		}
		if (cfg->delim_len == sizeof(cfg->delim))
			return errf(err, errlen,
				    "line parser: delim=%.*s has more than 4 bytes: a delimiter is 1 to 4 bytes",
				    (int)n, v);
		cfg->delim[cfg->delim_len++] = c;
	}
	if (cfg->delim_len == 0)
		return errf(err, errlen,
			    "line parser: delim= is empty: give 1 to 4 bytes, e.g. delim=\\r\\n");
	return 0;
}

enum spec_opt {
	O_OFF, O_SIZE, O_BE, O_LE, O_ADJ, O_MAX, O_DELIM, O_REQUESTS, O_RESPONSES, O_MAX_HDR,
};

static const struct {
	const char *name;
	__u32 kind;
	__u8 opt;
	__u8 has_value;
} spec_opts[] = {
	{ "off", KP_PARSER_LEN, O_OFF, 1 },
	{ "size", KP_PARSER_LEN, O_SIZE, 1 },
	{ "be", KP_PARSER_LEN, O_BE, 0 },
	{ "le", KP_PARSER_LEN, O_LE, 0 },
	{ "adj", KP_PARSER_LEN, O_ADJ, 1 },
	{ "max", KP_PARSER_LEN, O_MAX, 1 },
	{ "delim", KP_PARSER_LINE, O_DELIM, 1 },
	{ "max", KP_PARSER_LINE, O_MAX, 1 },
	{ "requests", KP_PARSER_HTTP, O_REQUESTS, 0 },
	{ "responses", KP_PARSER_HTTP, O_RESPONSES, 0 },
	{ "max", KP_PARSER_HTTP, O_MAX, 1 },
	{ "max_hdr", KP_PARSER_HTTP, O_MAX_HDR, 1 },
};

static const char *const spec_usage[] = {
	[KP_PARSER_LEN] = "off=, size=, be, le, adj= or max=",
	[KP_PARSER_LINE] = "delim= or max=",
	[KP_PARSER_HTTP] = "requests, responses, max= or max_hdr=",
};

#define SPEC_HINT "use len:size=N[,...], line[:...] or http[:...], e.g. len:size=4,adj=4"

/* One option, @k (@kn bytes) with its value @v (@vn bytes, NULL without '='). */
static int spec_option(struct kp_parser_cfg *cfg, const char *k, size_t kn, const char *v,
		       size_t vn, __u32 *seen, char *err, size_t errlen)
{
	const char *kind = kind_name(cfg->kind);
	char text[32];
	unsigned int i;
	__u64 num = 0;
	int opt = -1, neg = 0;

	for (i = 0; i < sizeof(spec_opts) / sizeof(spec_opts[0]); i++) {
		if (spec_opts[i].kind == cfg->kind && strlen(spec_opts[i].name) == kn &&
		    !memcmp(spec_opts[i].name, k, kn)) {
			opt = spec_opts[i].opt;
			break;
		}
	}
	if (opt < 0)
		return errf(err, errlen, "unknown option '%.*s' for the %s parser: use %s", (int)kn,
			    k, kind, spec_usage[cfg->kind]);
	if (*seen & (1U << opt))
		return errf(err, errlen, "%s parser: '%.*s' is given twice", kind, (int)kn, k);
	*seen |= 1U << opt;
	if (!spec_opts[i].has_value) {
		if (v)
			return errf(err, errlen, "%s parser: '%.*s' takes no value", kind, (int)kn, k);
	} else if (!v) {
		return errf(err, errlen, "%s parser: '%.*s' needs a value, e.g. %.*s=%s", kind,
			    (int)kn, k, (int)kn, k,
			    opt == O_DELIM ? "\\r\\n" : opt == O_SIZE ? "4" : "1024");
	} else if (opt != O_DELIM) {
		/* The value as written, for the sentences below. */
		snprintf(text, sizeof(text), "%.*s%s", vn > 20 ? 20 : (int)vn, v, vn > 20 ? "..." : "");
		if (opt == O_ADJ && vn && (v[0] == '-' || v[0] == '+')) {
			neg = v[0] == '-';
			v++;
			vn--;
		}
		if (spec_number(v, vn, &num))
			return errf(err, errlen,
				    "%s parser: bad number '%s' for %.*s: use decimal digits, optionally with a k or m suffix",
				    kind, text, (int)kn, k);
	}

	switch (opt) {
	case O_OFF:
		if (num > KP_PARSE_MAX_MSG)
			return errf(err, errlen,
				    "len parser: off=%s is beyond the largest max=%u: the length field must be within the message",
				    text, KP_PARSE_MAX_MSG);
		cfg->len_off = num;
		return 0;
	case O_SIZE:
		if (num != 1 && num != 2 && num != 4 && num != 8)
			return errf(err, errlen, LEN_BAD_SIZE, text);
		cfg->len_size = num;
		return 0;
	case O_BE:
	case O_LE:
		if ((*seen & (1U << O_BE)) && (*seen & (1U << O_LE)))
			return errf(err, errlen,
				    "len parser: be and le contradict: the length field is big endian (be, the default) or little endian (le)");
		cfg->len_be = opt == O_BE;
		return 0;
	case O_ADJ:
		if ((!neg && num > 0x7fffffffULL) || (neg && num > 0x80000000ULL))
			return errf(err, errlen,
				    "len parser: adj=%s is out of range (-2147483648 to 2147483647)",
				    text);
		cfg->len_adj = neg ? (__s32)(-(__s64)num) : (__s32)num;
		return 0;
	case O_MAX:
		if (cfg->kind == KP_PARSER_LINE && num > KP_PARSE_LINE_SCAN)
			return errf(err, errlen, LINE_MAX_BIG, text, KP_PARSE_LINE_SCAN,
				    KP_PARSE_LINE_SCAN);
		if (num > KP_PARSE_MAX_MSG)
			return errf(err, errlen, MAX_MSG_TOO_BIG, kind, text, KP_PARSE_MAX_MSG);
		cfg->max_msg = num;
		return 0;
	case O_DELIM:
		return spec_delim(v, vn, cfg, err, errlen);
	case O_REQUESTS:
	case O_RESPONSES:
		if ((*seen & (1U << O_REQUESTS)) && (*seen & (1U << O_RESPONSES)))
			return errf(err, errlen,
				    "http parser: requests and responses contradict: a parser frames one direction");
		cfg->http_responses = opt == O_RESPONSES;
		return 0;
	case O_MAX_HDR:
		if (num > KP_HTTP_MAX_HDR_LIMIT)
			return errf(err, errlen, "http parser: max_hdr=%s is over %u", text,
				    KP_HTTP_MAX_HDR_LIMIT);
		cfg->max_hdr = num;
		return 0;
	}
	return 0;
}

int kp_parser_spec_parse(const char *spec, struct kp_parser_cfg *cfg, char *err, size_t errlen)
{
	const char *p, *end, *eq;
	__u32 seen = 0;
	size_t kn;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	if (!spec || !*spec)
		return errf(err, errlen, "empty parser spec: " SPEC_HINT);
	p = strchr(spec, ':');
	kn = p ? (size_t)(p - spec) : strlen(spec);
	if (kn == 3 && !memcmp(spec, "len", 3))
		cfg->kind = KP_PARSER_LEN;
	else if (kn == 4 && !memcmp(spec, "line", 4))
		cfg->kind = KP_PARSER_LINE;
	else if (kn == 4 && !memcmp(spec, "http", 4))
		cfg->kind = KP_PARSER_HTTP;
	else
		return errf(err, errlen, "unknown parser '%.*s' in '%s': " SPEC_HINT, (int)kn, spec,
			    spec);

	if (p) {
		p++;
		/* An option per comma; "len:" and "len:a,,b" have an empty one. */
		for (;;) {
			end = strchr(p, ',');
			if (!end)
				end = p + strlen(p);
			if (end == p)
				return errf(err, errlen, "empty option in '%s': " SPEC_HINT, spec);
			eq = memchr(p, '=', end - p);
			ret = spec_option(cfg, p, eq ? (size_t)(eq - p) : (size_t)(end - p), eq ? eq + 1 : NULL,
					  eq ? (size_t)(end - eq - 1) : 0, &seen, err, errlen);
			if (ret)
				return ret;
			if (!*end)
				break;
			p = end + 1;
		}
	}

	switch (cfg->kind) {
	case KP_PARSER_LEN:
		if (!(seen & (1U << O_SIZE)))
			return errf(err, errlen,
				    "len parser: size= is missing: give the length field's size, 1, 2, 4 or 8 bytes, e.g. len:size=4");
		if (!(seen & (1U << O_LE)))
			cfg->len_be = 1;
		if (!(seen & (1U << O_MAX)))
			cfg->max_msg = KP_PARSE_DEFAULT_MAX;
		break;
	case KP_PARSER_LINE:
		if (!(seen & (1U << O_DELIM))) {
			cfg->delim[0] = '\n';
			cfg->delim_len = 1;
		}
		if (!(seen & (1U << O_MAX)))
			cfg->max_msg = KP_PARSE_DEFAULT_LINE_MAX;
		break;
	case KP_PARSER_HTTP:
		if (!(seen & (1U << O_MAX)))
			cfg->max_msg = KP_PARSE_DEFAULT_MAX;
		if (!(seen & (1U << O_MAX_HDR)))
			cfg->max_hdr = min_u64(KP_HTTP_DEFAULT_MAX_HDR, cfg->max_msg);
		break;
	}
	return kp_parser_cfg_check(cfg, err, errlen);
}

char *kp_parser_spec_format(const struct kp_parser_cfg *cfg, char *buf, size_t len)
{
	char delim[4 * 4 + 1], *d = delim;
	int i, c;

	if (!len)
		return buf;
	switch (cfg->kind) {
	case KP_PARSER_LEN:
		snprintf(buf, len, "len:off=%u,size=%u,%s,adj=%d,max=%u", cfg->len_off, cfg->len_size,
			 cfg->len_be ? "be" : "le", cfg->len_adj, cfg->max_msg);
		break;
	case KP_PARSER_LINE:
		for (i = 0; i < cfg->delim_len && i < (int)sizeof(cfg->delim); i++) {
			c = cfg->delim[i];
			switch (c) {
			case '\r': d += sprintf(d, "\\r"); break;
			case '\n': d += sprintf(d, "\\n"); break;
			case '\t': d += sprintf(d, "\\t"); break;
			case '\\': d += sprintf(d, "\\\\"); break;
			case 0: d += sprintf(d, "\\0"); break;
			default:
				if (c > 0x20 && c < 0x7f && c != ',')
					*d++ = c;
				else
					d += sprintf(d, "\\x%02x", c);
			}
		}
		*d = '\0';
		snprintf(buf, len, "line:delim=%s,max=%u", delim, cfg->max_msg);
		break;
	case KP_PARSER_HTTP:
		snprintf(buf, len, "http:%s,max=%u,max_hdr=%u",
			 cfg->http_responses ? "responses" : "requests", cfg->max_msg, cfg->max_hdr);
		break;
	case KP_PARSER_BPF:
		snprintf(buf, len, "bpf");
		break;
	default:
		snprintf(buf, len, "none");
	}
	return buf;
}
