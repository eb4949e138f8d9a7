/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The HTTP/1.1 message parser for sk_skb stream parsers: the BPF mirror of
 * parse_http() in userspace/common/parse.c, which documents the grammar, the
 * framing rules and the bounds (parse.h), and which tests/tools/parseagree
 * holds this one to over real sockets.
 *
 * The twin's nested scanners (a header section, chunk-size lines, chunk
 * data, a trailer section) become one state machine advanced by one
 * bpf_loop() callback, one byte (or one jump over chunk data) per call, so
 * the verifier checks the step once and the bounds are the twin's: a header
 * or trailer section of at most max_hdr bytes and KP_HTTP_MAX_FIELDS lines,
 * KP_HTTP_MAX_CHUNKS chunks, KP_HTTP_MAX_CHUNK_LINE bytes per chunk-size
 * line. Bytes are read 64 at a time into a small cache.
 *
 * With `record` set, the scan also notes where the method, the request
 * target and the Host field's value are, for the L7 policy (l7.h).
 */
#ifndef KP_BPF_HTTP_H
#define KP_BPF_HTTP_H

#ifndef KP_HTTP_MAX_FIELDS
#define KP_HTTP_MAX_FIELDS	64
#endif
#ifndef KP_HTTP_MAX_CHUNKS
#define KP_HTTP_MAX_CHUNKS	256
#endif
#ifndef KP_HTTP_MAX_CHUNK_LINE
#define KP_HTTP_MAX_CHUNK_LINE	128
#endif
#define KP_SIZE_CAP		((__u64)KP_PARSE_MAX_MSG + 1)
#define KP_HTTP_CACHE		64
/* Calls of the step: two sections of at most 64 KiB, 256 chunk lines of 128 bytes, their data. */
#define KP_HTTP_STEPS		(1U << 18)

/* The twin's enum http_state, in its order. */
enum {
	H_METHOD, H_LEAD_LF, H_TARGET, H_VERSION, H_STATUS, H_STATUS_END, H_REASON,
	H_LF, H_LINE, H_NAME, H_VALUE, H_END_LF,
};
enum { F_OTHER, F_CL, F_TE };
enum { C_FIRST, C_SIZE, C_WS, C_EXT, C_LF };
/* Where the scan is (the twin's call nesting). */
enum { HP_HEADER, HP_CHUNK_LINE, HP_CHUNK_CRLF, HP_TRAILER };

struct kp_http_scan {
	__u32 moff;			/* the message's first byte in the skb */
	__u32 avail;			/* bytes of the message there */
	__u32 max_msg;
	__u32 max_hdr;
	__u64 off;			/* the next byte, from the message's start */
	__u64 limit;			/* the current section or line ends before this */
	long ret;			/* the answer, once done */
	__u8 done;
	__u8 phase;			/* HP_* */
	__u8 cstate;			/* C_*: the chunk-size line */
	__u8 record;			/* record the spans the policy needs */
	__u8 slot;			/* its index in kp_http_scratch */
	__u8 head;			/* a response to a HEAD: no body, whatever the fields say */
	__u16 nchunks;
	__u64 csize;
	/* The twin's struct http_scan. */
	__u8 state, responses, trailers, minor;
	__u16 pos, status, nfields;
	__u8 field, cand, name_pos, cl_state, cl_seen, te_seen, te_chunked;
	__u8 tok_len, tok_ok, tok_end, line_last;
	__u64 cl_cur, cl;
	/* record: the spans the policy needs (offsets from the message start) */
	__u32 method_start, method_end, target_end;
	__u32 host_start, host_end;
	__u8 host_pos;			/* bytes of "host" matched in this field name */
	__u8 in_host, nhost;
	/* the byte cache */
	__u64 cache_off;
	__u32 cache_len;
	__u8 cache[KP_HTTP_CACHE];
};

/*
 * Byte classes and the names the scan matches, as read-only tables: a table
 * read at a variable index is one unknown value to the verifier, where a
 * switch over the byte or the position would split its states at every case
 * (and multiply them past its limit).
 */
#define HC_TCHAR	0x01	/* RFC 9110 5.6.2 token */
#define HC_TEXT		0x02	/* HTAB, SP, VCHAR, obs-text: values, reasons, extensions */
#define HC_OWS		0x04	/* SP, HTAB */
#define HC_TARGET	0x08	/* a request target's bytes: > 0x20, not DEL */
#define HC_UPPER	0x10	/* A-Z */

#define HC_T	(HC_TCHAR | HC_TEXT | HC_TARGET)
#define HC_V	(HC_TEXT | HC_TARGET)
#define HC_ROW_V	HC_V, HC_V, HC_V, HC_V, HC_V, HC_V, HC_V, HC_V, \
			HC_V, HC_V, HC_V, HC_V, HC_V, HC_V, HC_V, HC_V
static const __u8 kp_http_class[256] = {
	['\t'] = HC_TEXT | HC_OWS, [' '] = HC_TEXT | HC_OWS,
	['!'] = HC_T, ['"'] = HC_V, ['#'] = HC_T, ['$'] = HC_T, ['%'] = HC_T, ['&'] = HC_T,
	['\''] = HC_T, ['('] = HC_V, [')'] = HC_V, ['*'] = HC_T, ['+'] = HC_T, [','] = HC_V,
	['-'] = HC_T, ['.'] = HC_T, ['/'] = HC_V,
	['0' ... '9'] = HC_T, [':' ... '@'] = HC_V,
	['A' ... 'Z'] = HC_T | HC_UPPER, ['['] = HC_V, ['\\'] = HC_V, [']'] = HC_V,
	['^'] = HC_T, ['_'] = HC_T, ['`'] = HC_T, ['a' ... 'z'] = HC_T, ['{'] = HC_V,
	['|'] = HC_T, ['}'] = HC_V, ['~'] = HC_T,
	[0x80 ... 0xff] = HC_V,
};

/* The index is masked where the verifier sees it (the compiler would drop a mask it can prove). */
static __always_inline __u32 http_idx(__u32 i, __u32 mask)
{
	asm volatile("" : "+r"(i));
	return i & mask;
}

static __always_inline int http_class(int c)
{
	return kp_http_class[http_idx(c, 0xff)];
}

static __always_inline int http_is_tchar(int c)
{
	return http_class(c) & HC_TCHAR;
}

static __always_inline int http_is_text(int c)
{
	return http_class(c) & HC_TEXT;
}

static __always_inline int http_is_ows(int c)
{
	return http_class(c) & HC_OWS;
}

static __always_inline int http_lower(int c)
{
	return http_class(c) & HC_UPPER ? c + ('a' - 'A') : c;
}

static __always_inline int http_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = http_lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The names, one after the other: "HTTP/1." then the field names and the coding. */
static const char kp_http_names[64] = "HTTP/1.content-lengthtransfer-encodingchunkedhost";
#define HTTP_VERSION_AT		0
#define HTTP_VERSION_LEN	7
#define HTTP_CL_AT		7
#define HTTP_CL_LEN		14
#define HTTP_TE_AT		21
#define HTTP_TE_LEN		17
#define HTTP_CHUNKED_AT		38
#define HTTP_CHUNKED_LEN	7
#define HTTP_HOST_AT		45
#define HTTP_HOST_LEN		4

static __always_inline int http_name_at(__u32 at, __u32 i)
{
	return kp_http_names[http_idx(at + i, 63)];
}

static __always_inline int http_version_at(__u32 i)
{
	return http_name_at(HTTP_VERSION_AT, i);
}

static __always_inline int http_chunked_at(__u32 i)
{
	return http_name_at(HTTP_CHUNKED_AT, i);
}

static __always_inline int http_host_at(__u32 i)
{
	return http_name_at(HTTP_HOST_AT, i);
}

/* The byte at @off of the message, or -1 if it has not arrived. */
static __always_inline int http_ld(struct __sk_buff *skb, struct kp_http_scan *s, __u64 off)
{
	__u32 n;

	if (off >= s->avail)
		return -1;
	if (off < s->cache_off || off - s->cache_off >= s->cache_len) {
		n = s->avail - (__u32)off;
		if (n > KP_HTTP_CACHE)
			n = KP_HTTP_CACHE;
		/* 1..64 as the verifier sees it (n >= 1 since off < avail). */
		asm volatile("" : "+r"(n));
		n = ((n - 1) & (KP_HTTP_CACHE - 1)) + 1;
		if (bpf_skb_load_bytes(skb, s->moff + (__u32)off, s->cache, n))
			return -1;
		s->cache_off = off;
		s->cache_len = n;
	}
	return s->cache[(off - s->cache_off) & (KP_HTTP_CACHE - 1)];
}

static __always_inline void te_end_token(struct kp_http_scan *h)
{
	if (h->tok_len)
		h->line_last = h->tok_len == HTTP_CHUNKED_LEN && h->tok_ok;
	h->tok_len = 0;
	h->tok_ok = 1;
	h->tok_end = 0;
}

static __always_inline int http_value_step(struct kp_http_scan *h, int c)
{
	if (h->field == F_CL) {
		if (c >= '0' && c <= '9') {
			if (h->cl_state == 2)
				return -EBADMSG;
			h->cl_cur = h->cl_cur * 10 + (c - '0');
			if (h->cl_cur > KP_SIZE_CAP)
				h->cl_cur = KP_SIZE_CAP;
			h->cl_state = 1;
			return 0;
		}
		if (http_is_ows(c)) {
			if (h->cl_state == 1)
				h->cl_state = 2;
			return 0;
		}
		return -EBADMSG;
	}
	if (h->field == F_TE) {
		if (c == ',') {
			te_end_token(h);
		} else if (http_is_ows(c)) {
			if (h->tok_len)
				h->tok_end = 1;
		} else {
			if (h->tok_end || h->tok_len >= HTTP_CHUNKED_LEN ||
			    http_lower(c) != http_chunked_at(h->tok_len))
				h->tok_ok = 0;
			if (h->tok_len < HTTP_CHUNKED_LEN + 1)
				h->tok_len++;
		}
	}
	return 0;
}

static __always_inline int http_field_end(struct kp_http_scan *h)
{
	if (h->field == F_CL) {
		if (h->cl_state == 0)
			return -EBADMSG;
		if (h->cl_seen && h->cl != h->cl_cur)
			return -EBADMSG;
		h->cl_seen = 1;
		h->cl = h->cl_cur;
	} else if (h->field == F_TE) {
		te_end_token(h);
		h->te_seen = 1;
		h->te_chunked = h->line_last;
	}
	return 0;
}

static __always_inline void http_name_start(struct kp_http_scan *h, int c)
{
	c = http_lower(c);
	h->cand = F_OTHER;
	if (!h->trailers && c == 'c')
		h->cand = F_CL;
	else if (!h->trailers && c == 't')
		h->cand = F_TE;
	h->name_pos = 1;
}

static __always_inline void http_name_step(struct kp_http_scan *h, int c)
{
	__u8 n = h->cand == F_CL ? HTTP_CL_LEN : HTTP_TE_LEN;
	int want;

	if (h->cand == F_OTHER)
		return;
	want = http_name_at(h->cand == F_CL ? HTTP_CL_AT : HTTP_TE_AT, h->name_pos);
	if (h->name_pos < n && http_lower(c) == want)
		h->name_pos++;
	else
		h->cand = F_OTHER;
}

static __always_inline void http_value_start(struct kp_http_scan *h)
{
	__u8 n = h->cand == F_CL ? HTTP_CL_LEN : HTTP_TE_LEN;

	h->field = h->cand != F_OTHER && h->name_pos == n ? h->cand : F_OTHER;
	h->cl_state = 0;
	h->cl_cur = 0;
	h->tok_len = 0;
	h->tok_ok = 1;
	h->tok_end = 0;
	h->line_last = 0;
}

/* The twin's http_step(): 0 go on, 1 the section ends with this byte, or -errno. */
static __always_inline int http_step(struct kp_http_scan *h, int c)
{
	switch (h->state) {
	case H_METHOD:
		if (http_is_tchar(c)) {
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
		if (http_class(c) & HC_TARGET) {
			h->pos = 1;
			return 0;
		}
		return -EBADMSG;
	case H_VERSION:
		if (h->pos < HTTP_VERSION_LEN) {
			if (c != http_version_at(h->pos))
				return -EBADMSG;
			h->pos++;
			return 0;
		}
		if (h->pos == HTTP_VERSION_LEN) {
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
		return http_is_text(c) ? 0 : -EBADMSG;
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
		if (!http_is_tchar(c))
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
		if (!http_is_tchar(c))
			return -EBADMSG;
		http_name_step(h, c);
		return 0;
	case H_VALUE:
		if (c == '\r') {
			h->state = H_LF;
			return http_field_end(h);
		}
		if (!http_is_text(c))
			return -EBADMSG;
		return http_value_step(h, c);
	case H_END_LF:
		return c == '\n' ? 1 : -EBADMSG;
	}
	return -EBADMSG;
}

/* For the policy: the spans of method, target and Host, from byte @c at @off in state @old. */
static __always_inline void http_record(struct kp_http_scan *h, __u8 old, int c, __u32 off)
{
	switch (old) {
	case H_METHOD:
		if (h->state == H_TARGET)
			h->method_end = off;
		else if (h->state == H_METHOD && c != '\n' && !h->method_end && h->pos &&
			 h->method_start == 0xffffffff)
			h->method_start = off;
		break;
	case H_TARGET:
		if (h->state == H_VERSION)
			h->target_end = off;
		break;
	case H_LINE:
		if (h->state == H_NAME)
			h->host_pos = http_lower(c) == 'h';
		break;
	case H_NAME:
		if (h->state == H_VALUE) {
			h->in_host = h->host_pos == HTTP_HOST_LEN;
			if (h->in_host && h->nhost < 255)
				h->nhost++;
		} else if (h->host_pos && h->host_pos < HTTP_HOST_LEN &&
			   http_lower(c) == http_host_at(h->host_pos)) {
			h->host_pos++;
		} else {
			h->host_pos = 0;
		}
		break;
	case H_VALUE:
		if (!h->in_host)
			break;
		if (c == '\r') {
			h->in_host = 0;
		} else if (!http_is_ows(c)) {
			if (!h->host_start)
				h->host_start = off;
			h->host_end = off + 1;
		}
		break;
	}
}

static __always_inline long http_done(struct kp_http_scan *s, long ret)
{
	s->ret = ret;
	s->done = 1;
	return 1;
}

static __always_inline long http_min(__u64 a, __u64 b)
{
	return a < b ? a : b;
}

static __always_inline void http_chunk_line_start(struct kp_http_scan *s)
{
	s->phase = HP_CHUNK_LINE;
	s->cstate = C_FIRST;
	s->csize = 0;
	s->limit = http_min(s->off + KP_HTTP_MAX_CHUNK_LINE, s->max_msg);
}

/* The header section ended at s->off: RFC 9112 6.3, in the twin's order. */
static __always_inline long http_framing(struct kp_http_scan *s)
{
	__u64 hdr_len = s->off;

	if (s->responses && (s->status / 100 == 1 || s->status == 204 || s->status == 304 ||
			     s->head))
		return http_done(s, hdr_len);
	if (s->te_seen) {
		if (s->minor == 0 || s->cl_seen || !s->te_chunked)
			return http_done(s, -EBADMSG);
		http_chunk_line_start(s);
		return 0;
	}
	if (s->cl_seen) {
		if (hdr_len + s->cl > s->max_msg)
			return http_done(s, -EMSGSIZE);
		return http_done(s, hdr_len + s->cl);
	}
	if (!s->responses)
		return http_done(s, hdr_len);
	return http_done(s, -EBADMSG);
}

/* One byte of a chunk-size line (the twin's http_chunk_line()). */
static __always_inline long http_chunk_byte(struct __sk_buff *skb, struct kp_http_scan *s)
{
	int c, v;

	if (s->off >= s->limit)
		return http_done(s, -EMSGSIZE);
	c = http_ld(skb, s, s->off);
	if (c < 0)
		return http_done(s, 0);
	s->off++;
	v = http_hex(c);
	switch (s->cstate) {
	case C_FIRST:
	case C_SIZE:
		if (v >= 0) {
			s->csize = s->csize * 16 + v;
			if (s->csize > KP_SIZE_CAP)
				s->csize = KP_SIZE_CAP;
			s->cstate = C_SIZE;
			return 0;
		}
		if (s->cstate == C_FIRST)
			return http_done(s, -EBADMSG);
		/* fall through */
	case C_WS:
		if (http_is_ows(c))
			s->cstate = C_WS;
		else if (c == ';')
			s->cstate = C_EXT;
		else if (c == '\r')
			s->cstate = C_LF;
		else
			return http_done(s, -EBADMSG);
		return 0;
	case C_EXT:
		if (c == '\r')
			s->cstate = C_LF;
		else if (!http_is_text(c))
			return http_done(s, -EBADMSG);
		return 0;
	case C_LF:
		if (c != '\n')
			return http_done(s, -EBADMSG);
		if (s->csize == 0) {
			/* The trailer section: a fresh scan from H_LINE. */
			s->phase = HP_TRAILER;
			s->state = H_LINE;
			s->trailers = 1;
			s->nfields = 0;
			s->field = s->cand = s->name_pos = 0;
			s->limit = http_min(s->off + s->max_hdr, s->max_msg);
			return 0;
		}
		/* The data and its CRLF, which must end within max_msg. */
		s->off += s->csize + 2;
		if (s->off > s->max_msg)
			return http_done(s, -EMSGSIZE);
		s->phase = HP_CHUNK_CRLF;
		return 0;
	}
	return http_done(s, -EBADMSG);
}

/* bpf_loop()'s context: on the stack, so the verifier keeps both pointers' types. */
struct kp_http_ctx {
	struct __sk_buff *skb;
	struct kp_http_scan *s;
};

static long http_step_cb(__u32 i, void *data)
{
	struct kp_http_ctx *x = data;
	struct __sk_buff *skb = x->skb;
	struct kp_http_scan *s = x->s;
	__u8 old;
	int c, r;

	if (s->done)
		return 1;
	switch (s->phase) {
	case HP_HEADER:
	case HP_TRAILER:
		if (s->off >= s->limit)
			return http_done(s, -EMSGSIZE);
		c = http_ld(skb, s, s->off);
		if (c < 0)
			return http_done(s, 0);
		old = s->state;
		r = http_step(s, c);
		if (s->record && r >= 0)
			http_record(s, old, c, s->off);
		s->off++;
		if (r < 0)
			return http_done(s, r);
		if (r > 0) {
			if (s->phase == HP_TRAILER)
				return http_done(s, s->off);
			return http_framing(s);
		}
		return 0;
	case HP_CHUNK_LINE:
		return http_chunk_byte(skb, s);
	case HP_CHUNK_CRLF:
		c = http_ld(skb, s, s->off - 2);
		if (c < 0)
			return http_done(s, 0);
		if (c != '\r')
			return http_done(s, -EBADMSG);
		c = http_ld(skb, s, s->off - 1);
		if (c < 0)
			return http_done(s, 0);
		if (c != '\n')
			return http_done(s, -EBADMSG);
		if (++s->nchunks >= KP_HTTP_MAX_CHUNKS)
			return http_done(s, -EMSGSIZE);
		http_chunk_line_start(s);
		return 0;
	}
	return http_done(s, -EBADMSG);
}

/*
 * The scan's state lives in a per-CPU map, not on the stack: the verifier
 * follows a callback's stack through its constants call after call (6.8 and
 * later verify bpf_loop() callbacks as loop bodies) and gives up on a state
 * machine ("the sequence of 8193 jumps is too complex"), while a map value
 * is one unknown state, verified once. A parser or verdict running in
 * process context (strparser's work item) can be interrupted by a softirq
 * running another socket's: each nesting level has its own state.
 */
#define KP_HTTP_NEST	4
#define KP_L7_HOST_BUF	128	/* a Host value with its port, as it came */

/* A request as the L7 policy sees it (bpf/lib/l7.h), zero-padded. */
struct kp_l7_req {
	__u32 mlen;			/* method bytes; 255: longer than any rule's */
	__u32 tlen;			/* target bytes in path, at most KP_L7_PATH_MAX */
	__u32 hlen;			/* host bytes (lower case, no port, no final dot); 255: too long */
	__u32 hraw;			/* the Host value's bytes as they came, in host */
	__s32 colon, close;		/* scratch of l7_host(): the last ':' and ']' in host */
	__u8 method[KP_L7_METHOD_MAX];
	__u8 host[KP_L7_HOST_BUF];
	__u8 path[KP_L7_PATH_MAX];
};

struct kp_http_scratch {
	__u32 depth;
	__u32 _pad;
	struct kp_http_scan s[KP_HTTP_NEST];
	struct kp_l7_req req[KP_HTTP_NEST];	/* the policy's, same slot */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kp_http_scratch);
} kp_http_scratch SEC(".maps");

/*
 * A level of this CPU's scratch for the program run (a softirq parser can
 * interrupt a process-context one): its index, or -1 if there is none;
 * http_leave() after it (only if there was one).
 */
static __always_inline int http_slot(struct kp_http_scratch **xp)
{
	struct kp_http_scratch *x;
	__u32 zero = 0;

	x = bpf_map_lookup_elem(&kp_http_scratch, &zero);
	*xp = x;
	if (!x || x->depth >= KP_HTTP_NEST)
		return -1;
	return x->depth++ & (KP_HTTP_NEST - 1);
}

/* A fresh scan of the message at @off in @skb, or NULL; http_leave() after it. */
static __always_inline struct kp_http_scan *http_enter(struct kp_http_scratch **xp,
						       const struct kp_parser_cfg *pc,
						       struct __sk_buff *skb, __u32 off)
{
	struct kp_http_scan *s;
	int i = http_slot(xp);

	if (i < 0 || !*xp)
		return NULL;
	s = &(*xp)->s[i & (KP_HTTP_NEST - 1)];
	__builtin_memset(s, 0, sizeof(*s));
	s->slot = i & (KP_HTTP_NEST - 1);
	s->moff = off;
	s->avail = skb->len > off ? skb->len - off : 0;
	s->max_msg = pc->max_msg;
	s->max_hdr = pc->max_hdr;
	s->responses = pc->http_responses;
	s->state = s->responses ? H_VERSION : H_METHOD;
	s->limit = http_min(s->max_hdr, s->max_msg);
	s->method_start = 0xffffffff;
	return s;
}

static __always_inline void http_leave(struct kp_http_scratch *x)
{
	if (x && x->depth)
		x->depth--;
}

static __always_inline long kp_http_run(struct __sk_buff *skb, struct kp_http_scan *s)
{
	struct kp_http_ctx c = { .skb = skb, .s = s };

	bpf_loop(KP_HTTP_STEPS, http_step_cb, &c, 0);
	return s->done ? s->ret : -EMSGSIZE;
}

/* The length of the HTTP response at @off of @skb, @head if it answers a HEAD. */
static __always_inline long kp_parse_http_resp(const struct kp_parser_cfg *pc,
					       struct __sk_buff *skb, __u32 off, bool head)
{
	struct kp_http_scratch *x;
	struct kp_http_scan *s;
	long ret;

	s = http_enter(&x, pc, skb, off);
	if (!s)
		return -EBADMSG;
	s->head = head;
	ret = kp_http_run(skb, s);
	http_leave(x);
	return ret;
}

/* kp_parse_http() for requests, noting the spans of the one it frames in @sp. */
static __always_inline long kp_parse_http_req(const struct kp_parser_cfg *pc,
					      struct __sk_buff *skb, __u32 off,
					      struct kp_http_spans *sp)
{
	struct kp_http_scratch *x;
	struct kp_http_scan *s;
	long ret;

	sp->valid = 0;
	s = http_enter(&x, pc, skb, off);
	if (!s)
		return -EBADMSG;
	s->record = 1;
	ret = kp_http_run(skb, s);
	if (ret > 0) {
		sp->method_start = s->method_start;
		sp->method_end = s->method_end;
		sp->target_end = s->target_end;
		sp->host_start = s->host_start;
		sp->host_end = s->host_end;
		sp->nhost = s->nhost;
		sp->minor = s->minor;
		sp->valid = 1;
	}
	http_leave(x);
	return ret;
}

/* The length of the HTTP message at @off of @skb: kp_parse()'s contract. */
static __always_inline long kp_parse_http(const struct kp_parser_cfg *pc, struct __sk_buff *skb,
					  __u32 off)
{
	struct kp_http_scratch *x;
	struct kp_http_scan *s;
	long ret;

	s = http_enter(&x, pc, skb, off);
	if (!s)
		return -EBADMSG;	/* no level free: cannot happen (two at most) */
	ret = kp_http_run(skb, s);
	http_leave(x);
	return ret;
}

#endif
