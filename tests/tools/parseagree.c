// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * parseagree [ROUNDS [QUIET_MS]]: kmux's BPF parser (bpf/mux.bpf.c,
 * kp_mux_parse) and its user-space twin (userspace/common/parse.c) delineate
 * the same bytes the same way. sk_skb programs have no BPF_PROG_TEST_RUN
 * (ENOTSUPP on 6.1 to 6.18), so the BPF side runs over real sockets: each
 * input is written on a fresh TCP connection whose accepted end is in
 * kp_mux_socks as a kmux client of a test mux, whose one slot is another
 * connection the tool reads. What arrives there is the messages the BPF
 * parser found (the verdict moves each whole); an error shows as the
 * socket's error (EBADMSG or EMSGSIZE, strparser's abort). The twin walks
 * the same bytes message by message. The two must agree on the bytes
 * delivered and on the error.
 *
 * Inputs: for several len and line configurations, streams around every
 * boundary (headers cut short; lengths at, under and over max; zero;
 * delimiters at each position, cut by the end, repeated first bytes; no
 * delimiter within the scan), and random ones. Runs in a private bpffs
 * (tests/suite.sh gives each case one): the object pins its maps by name.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "kproxy.h"
#include "parse.h"
#include "mux.skel.h"

static struct mux_bpf *skel;
static unsigned long checked, disagreed;

static unsigned int rnd(void)
{
	static unsigned long long s = 0x9e3779b97f4a7c15ULL;

	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return (unsigned int)(s >> 11);
}

static int quiet_ms = 40;
static int rcvbuf;		/* the mux's: strparser refuses messages over it (EMSGSIZE) */
static int lfd = -1;

static int tcp_pair(int *cl, int *srv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int one = 1;

	if (lfd < 0) {
		lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lfd < 0 || bind(lfd, (void *)&a, sizeof(a)) || listen(lfd, 64))
			return -1;
	}
	if (getsockname(lfd, (void *)&a, &al))
		return -1;
	*cl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*cl < 0 || connect(*cl, (void *)&a, sizeof(a)))
		return -1;
	*srv = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	setsockopt(*cl, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return *srv < 0 ? -1 : 0;
}

static __u64 cookie_of(int fd)
{
	__u64 c = 0;
	socklen_t l = sizeof(c);

	getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &l);
	return c;
}

static void insert(int fd, const struct kp_mux_sk *ms)
{
	__u64 ck = cookie_of(fd), v = fd;

	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.kp_mux_sk), &ck, ms, BPF_ANY) ||
	    bpf_map_update_elem(bpf_map__fd(skel->maps.kp_mux_socks), &ck, &v, BPF_NOEXIST)) {
		fprintf(stderr, "parseagree: insert: %s\n", strerror(errno));
		exit(2);
	}
}

static void forget(int fd)
{
	__u64 ck = cookie_of(fd);

	bpf_map_delete_elem(bpf_map__fd(skel->maps.kp_mux_socks), &ck);
	bpf_map_delete_elem(bpf_map__fd(skel->maps.kp_mux_sk), &ck);
	close(fd);
}

/*
 * What the BPF side did with @in. A fresh client (a -> b, b in the map) and
 * a fresh slot (c in the map, d ours) for each input, so nothing of an
 * earlier input can arrive late. What d reads is what the request parser
 * delivered; d echoes it, so the slot's responses come back (through the
 * response parser, the same config) and the client never has 64 requests
 * outstanding. Returns the bytes delivered ((size_t)-1 if they are not the
 * input's), the socket's error in *@err.
 */
static size_t bpf_answer(const __u8 *in, size_t len, size_t expect, int *err)
{
	struct kp_mux_sk cms = { .mux_id = 0, .role = KP_MUX_CLIENT };
	struct kp_mux_sk bms = { .mux_id = 0, .role = KP_MUX_BACKEND, .slot = 0 };
	static __u8 got[KP_PARSE_LINE_SCAN * 4], back[KP_PARSE_LINE_SCAN * 4];
	size_t n = 0, nback = 0;
	int a, b, c, d, sink[2];
	socklen_t l;
	__u32 k = 0;
	__u64 ck, v;

	if (tcp_pair(&d, &c) || tcp_pair(&a, &b)) {
		fprintf(stderr, "parseagree: loopback: %s\n", strerror(errno));
		exit(2);
	}
	insert(c, &bms);
	{
		struct kp_mux_slot s = { .state = KP_SLOT_FREE, .cookie = cookie_of(c) };

		if (bpf_map_update_elem(bpf_map__fd(skel->maps.kp_mux_slots), &k, &s, BPF_F_LOCK)) {
			fprintf(stderr, "parseagree: slot: %s\n", strerror(errno));
			exit(2);
		}
	}
	/* Its sink, as kproxyd makes one: what overflows comes out of sink[0]. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sink)) {
		fprintf(stderr, "parseagree: socketpair: %s\n", strerror(errno));
		exit(2);
	}
	ck = cookie_of(b);
	v = sink[1];
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.kp_mux_sinks), &ck, &v, BPF_ANY)) {
		fprintf(stderr, "parseagree: sink: %s\n", strerror(errno));
		exit(2);
	}
	insert(b, &cms);
	if (len && write(a, in, len) != (ssize_t)len) {
		fprintf(stderr, "parseagree: write: %s\n", strerror(errno));
		exit(2);
	}
	int bfd = b;	/* -1 once b has its error: what it passed before may still come */

	for (;;) {
		struct pollfd p[4] = { { .fd = d, .events = POLLIN }, { .fd = a, .events = POLLIN },
				       { .fd = sink[0], .events = POLLIN }, { .fd = bfd } };
		/* Only a stream of whole messages has nothing more to wait for. */
		int done = n == expect && nback == expect && expect == len, r;
		ssize_t m;

		r = poll(p, 4, done ? 1 : quiet_ms);
		if (r <= 0)
			break;
		if (p[0].revents & POLLIN) {
			m = read(d, got + n % sizeof(got), sizeof(got) - n % sizeof(got));
			if (m <= 0)
				break;
			if (n + m <= len && memcmp(got + n % sizeof(got), in + n, m))
				n = (size_t)-1 - m;	/* not the input's bytes */
			if (write(d, got + n % sizeof(got), m) != m)	/* the responses */
				break;
			n += m;
		}
		if (p[1].revents & POLLIN) {
			m = read(a, back, sizeof(back));
			if (m > 0)
				nback += m;
		}
		if (p[2].revents & POLLIN) {
			/*
			 * Overflow: more than 64 requests outstanding, and the verdict
			 * sends whole messages to the client's sink for kproxyd (here
			 * us); they follow the redirected ones in the stream.
			 */
			m = recv(sink[0], got, sizeof(got), MSG_DONTWAIT);
			if (m > 0) {
				if (n + m <= len && memcmp(got, in + n, m))
					n = (size_t)-1 - m;
				n += m;
				nback += m;	/* no response will come for these */
				continue;
			}
		}
		if (p[3].revents & (POLLERR | POLLHUP))
			bfd = -1;	/* wait for the quiet instead: redirected bytes may lag */
	}
	*err = 0;
	l = sizeof(*err);
	getsockopt(b, SOL_SOCKET, SO_ERROR, err, &l);
	forget(b);
	forget(c);
	close(a);
	close(d);
	close(sink[0]);
	close(sink[1]);	/* leaves kp_mux_sinks */
	return n;
}

/* The twin, walked message by message as strparser walks: bytes of whole messages, the error. */
static size_t twin_answer(const struct kp_parser_cfg *cfg, const __u8 *in, size_t len, int *err)
{
	size_t off = 0;

	*err = 0;
	while (off < len) {
		long r = kp_parse(cfg, in + off, len - off);

		if (r < 0) {
			*err = -r;
			break;
		}
		if (r == 0 || (size_t)r > len - off)
			break;
		off += r;
	}
	return off;
}

static void check(const struct kp_parser_cfg *cfg, const char *what, const __u8 *in, size_t len)
{
	int te, be;
	size_t t = twin_answer(cfg, in, len, &te), b = bpf_answer(in, len, t, &be);
	char spec[128];
	size_t i;

	checked++;
	if (t == b && te == be)
		return;
	if (++disagreed > 20)
		return;
	kp_parser_spec_format(cfg, spec, sizeof(spec));
	fprintf(stderr, "parseagree: %s (%s), %zu bytes:", spec, what, len);
	for (i = 0; i < len && i < 24; i++)
		fprintf(stderr, " %02x", in[i]);
	fprintf(stderr, "%s: twin %zu bytes error %d, BPF %zd bytes error %d\n", len > 24 ? " ..." : "",
		t, te, (ssize_t)b, be);
}

static void set_cfg(const struct kp_parser_cfg *cfg)
{
	struct kp_mux_cfg mc = { .req = *cfg, .resp = *cfg, .nslots = 1 };
	__u32 id = 0;

	/* As kproxyd sizes it (mux.c size_rcvbuf). */
	rcvbuf = cfg->max_msg * 2 + 65536;
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.kp_mux_cfg), &id, &mc, BPF_ANY)) {
		fprintf(stderr, "parseagree: map update: %s\n", strerror(errno));
		exit(2);
	}
}

static void put_len(__u8 *p, const struct kp_parser_cfg *c, unsigned long long v)
{
	int i, n = c->len_size;

	for (i = 0; i < n; i++)
		p[c->len_off + i] = c->len_be ? v >> (8 * (n - 1 - i)) : v >> (8 * i);
}

static void len_cases(const struct kp_parser_cfg *c, int rounds)
{
	unsigned int hdr = c->len_off + c->len_size, cut;
	long long want[] = { 0, 1, (long long)hdr - 1, hdr, hdr + 1, c->max_msg - 1, c->max_msg,
			     c->max_msg + 1LL, 1LL << 31, (1ULL << (8 * c->len_size)) - 1 };
	__u8 in[64];
	size_t i;
	int r;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		long long total = want[i], v = total - c->len_adj;

		if (v < 0 || (c->len_size < 8 && (unsigned long long)v >> (8 * c->len_size)))
			continue;
		for (r = 0; r < (int)sizeof(in); r++)
			in[r] = rnd();
		put_len(in, c, v);
		for (cut = 0; cut <= hdr + 2 && cut <= sizeof(in); cut++)
			check(c, "boundary", in, cut);
	}
	for (r = 0; r < rounds; r++) {
		size_t n = rnd() % 40;

		for (i = 0; i < sizeof(in); i++)
			in[i] = rnd();
		if (rnd() % 2)
			put_len(in, c, rnd() % (c->max_msg + 64));
		check(c, "random", in, n);
	}
}

static void line_cases(const struct kp_parser_cfg *c, int rounds)
{
	unsigned int limit = c->max_msg < KP_PARSE_LINE_SCAN ? c->max_msg : KP_PARSE_LINE_SCAN;
	static __u8 in[KP_PARSE_LINE_SCAN + 64];
	size_t i, pos, n;
	int r;

	for (r = 0; r < rounds; r++) {
		n = rnd() % 3 ? rnd() % 64 : rnd() % (limit + 32);
		for (i = 0; i < n; i++)
			in[i] = 'a' + rnd() % 3;
		if (n && rnd() % 4) {
			/* the delimiter somewhere, whole or cut by the end */
			pos = rnd() % n;
			for (i = 0; i < c->delim_len && pos + i < n; i++)
				in[pos + i] = c->delim[i];
		}
		if (n && !(rnd() % 8))	/* only the delimiter's first byte, again and again */
			for (i = 0; i < n; i++)
				in[i] = c->delim[0];
		check(c, "line", in, n);
	}
	/* No delimiter: 0 below the scan limit, an error at it. */
	memset(in, 'x', limit + 8);
	for (n = limit - 2; n <= limit + 2; n++)
		check(c, "no delimiter", in, n);
}

/* HTTP: well-formed messages, their cuts, mutations, and each framing rule's refusals. */
static const char *const http_reqs[] = {
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"\r\n\r\nGET /x?y=1 HTTP/1.0\r\n\r\n",
	"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
	"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"PUT /c HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"
	"3;ext=1\r\nabc\r\n10 \r\n0123456789abcdef\r\n000\r\nX-Trailer: t\r\n\r\n",
	"GET / HTTP/1.1\r\ncontent-length:  0 \r\nContent-Length: 0\r\n\r\n",
	"DELETE /a HTTP/1.1\r\nX: \x80\xff\t v\r\n\r\n",
	/* refusals */
	"GET / HTTP/1.1\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
	"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
	"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
	"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXY0\r\n\r\n",
	"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n",
	"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
	"GET / HTTP/2.0\r\n\r\n",
	"GET  / HTTP/1.1\r\n\r\n",
	"G\x01T / HTTP/1.1\r\n\r\n",
};

static const char *const http_resps[] = {
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 204\r\nContent-Length: 10\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n",
	"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nA: b\r\nC: d\r\n\r\n",
	"HTTP/1.1 200 OK\r\n\r\nclose-delimited",
	"HTTP/1.1 600 Bad\r\n\r\n",
	"HTTP/1.1 20 Short\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n",
};

static const __u8 http_bytes[] = { '\r', '\n', ' ', '\t', ':', ';', ',', '0', '9', 'a', 'F',
				   'x', 0, 0x7f, 0x80, 0xff, 'H' };

static void http_check_many(const struct kp_parser_cfg *c, const char *what, const __u8 *in,
			     size_t len, int rounds)
{
	static __u8 buf[8192];
	size_t cut;
	int r;

	if (len > sizeof(buf))
		return;
	check(c, what, in, len);
	/* Cut at random points (every point of the first few bytes). */
	for (r = 0; r < rounds / 8 + 1 && len; r++) {
		cut = r < 4 ? (size_t)r : rnd() % len;
		check(c, "cut", in, cut);
	}
	/* One byte changed to one that matters to the grammar. */
	for (r = 0; r < rounds / 8 + 1 && len; r++) {
		memcpy(buf, in, len);
		buf[rnd() % len] = http_bytes[rnd() % sizeof(http_bytes)];
		check(c, "mutated", buf, len);
	}
}

static void http_cases(const struct kp_parser_cfg *c, int rounds)
{
	const char *const *base = c->http_responses ? http_resps : http_reqs;
	size_t nbase = c->http_responses ? sizeof(http_resps) / sizeof(http_resps[0]) :
					   sizeof(http_reqs) / sizeof(http_reqs[0]);
	static __u8 in[8192];
	size_t i, n, k;
	int r;

	for (i = 0; i < nbase; i++)
		http_check_many(c, "http", (const __u8 *)base[i], strlen(base[i]), rounds);
	/* Pipelines of well-formed ones (the first 7 requests, the first 5 responses). */
	for (r = 0; r < rounds / 4 + 1; r++) {
		for (n = 0, k = rnd() % 4 + 2; k; k--) {
			const char *m = base[rnd() % (c->http_responses ? 5 : 7)];

			if (n + strlen(m) > sizeof(in))
				break;
			memcpy(in + n, m, strlen(m));
			n += strlen(m);
		}
		http_check_many(c, "pipeline", in, n, rounds / 4);
	}
	/* The bounds: fields (64 lines pass, 65 do not), header bytes, chunks, chunk lines. */
	for (r = KP_HTTP_MAX_FIELDS; r <= KP_HTTP_MAX_FIELDS + 1; r++) {
		n = snprintf((char *)in, sizeof(in), "%s", c->http_responses ?
			     "HTTP/1.1 200 OK\r\n" : "GET / HTTP/1.1\r\n");
		for (k = 1; k < (size_t)r; k++)
			n += snprintf((char *)in + n, sizeof(in) - n, "X-%zu: v\r\n", k);
		n += snprintf((char *)in + n, sizeof(in) - n, "Content-Length: 0\r\n\r\n");
		check(c, r > KP_HTTP_MAX_FIELDS ? "65 fields" : "64 fields", in, n);
	}
	/* 255 data chunks and the last pass, 256 do not. */
	for (r = KP_HTTP_MAX_CHUNKS - 1; r <= KP_HTTP_MAX_CHUNKS; r++) {
		n = snprintf((char *)in, sizeof(in), "%s", c->http_responses ?
			     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" :
			     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
		for (k = 0; k < (size_t)r; k++)
			n += snprintf((char *)in + n, sizeof(in) - n, "1\r\n%c\r\n",
				      'a' + (int)(k % 26));
		n += snprintf((char *)in + n, sizeof(in) - n, "0\r\n\r\n");
		check(c, "chunks", in, n);
	}
	/* A chunk-size line of 128 bytes with its CRLF passes, 129 do not. */
	for (r = KP_HTTP_MAX_CHUNK_LINE; r <= KP_HTTP_MAX_CHUNK_LINE + 1; r++) {
		n = snprintf((char *)in, sizeof(in), "%s", c->http_responses ?
			     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" :
			     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;");
		memset(in + n, 'e', r - 4);
		n += r - 4;
		n += snprintf((char *)in + n, sizeof(in) - n, "\r\nx\r\n0\r\n\r\n");
		check(c, "chunk line", in, n);
	}
	/* A header section of max_hdr bytes passes, one more does not. */
	for (r = c->max_hdr - 1; r <= c->max_hdr + 1; r++) {
		size_t start = snprintf((char *)in, sizeof(in), "%s", c->http_responses ?
					"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: " :
					"GET / HTTP/1.1\r\nX: ");

		if ((size_t)r < start + 4 || (size_t)r > sizeof(in))
			continue;
		memset(in + start, 'h', r - start - 4);
		memcpy(in + r - 4, "\r\n\r\n", 4);
		check(c, "max_hdr", in, r);
	}
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 50;
	struct kp_parser_cfg lens[] = {
		{ .kind = KP_PARSER_LEN, .max_msg = 1 << 20, .len_size = 4, .len_be = 1 },
		{ .kind = KP_PARSER_LEN, .max_msg = 65535, .len_size = 2, .len_be = 0, .len_adj = 2 },
		{ .kind = KP_PARSER_LEN, .max_msg = 300, .len_off = 3, .len_size = 1, .len_be = 1,
		  .len_adj = 4 },
		{ .kind = KP_PARSER_LEN, .max_msg = 64 << 20, .len_off = 8, .len_size = 8, .len_be = 1,
		  .len_adj = 16 },
		{ .kind = KP_PARSER_LEN, .max_msg = 100000, .len_off = 2, .len_size = 4, .len_be = 0,
		  .len_adj = -10 },
	};
	struct kp_parser_cfg lines[] = {
		{ .kind = KP_PARSER_LINE, .max_msg = 4096, .delim = "\r\n", .delim_len = 2 },
		{ .kind = KP_PARSER_LINE, .max_msg = 4096, .delim = "\n", .delim_len = 1 },
		{ .kind = KP_PARSER_LINE, .max_msg = 100, .delim = "END!", .delim_len = 4 },
		{ .kind = KP_PARSER_LINE, .max_msg = 3000, .delim = "\r\n\r", .delim_len = 3 },
	};
	struct kp_parser_cfg https[] = {
		{ .kind = KP_PARSER_HTTP, .max_msg = 1 << 20, .max_hdr = 2048 },
		{ .kind = KP_PARSER_HTTP, .max_msg = 4000, .max_hdr = 600 },
		{ .kind = KP_PARSER_HTTP, .max_msg = 1 << 20, .max_hdr = 2048, .http_responses = 1 },
	};
	char err[256];
	size_t i;
	int ret;

	if (argc > 2)
		quiet_ms = atoi(argv[2]);
	skel = mux_bpf__open();
	if (!skel || (ret = mux_bpf__load(skel)) ||
	    bpf_prog_attach(bpf_program__fd(skel->progs.kp_mux_parse),
			    bpf_map__fd(skel->maps.kp_mux_socks), BPF_SK_SKB_STREAM_PARSER, 0) ||
	    bpf_prog_attach(bpf_program__fd(skel->progs.kp_mux_verdict),
			    bpf_map__fd(skel->maps.kp_mux_socks), BPF_SK_SKB_STREAM_VERDICT, 0)) {
		fprintf(stderr, "parseagree: cannot load and attach bpf/mux.bpf.o: %s\n",
			strerror(errno));
		return 2;
	}
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		if (kp_parser_cfg_check(&lens[i], err, sizeof(err))) {
			fprintf(stderr, "parseagree: bad test config: %s\n", err);
			return 2;
		}
		set_cfg(&lens[i]);
		len_cases(&lens[i], rounds);
	}
	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		if (kp_parser_cfg_check(&lines[i], err, sizeof(err))) {
			fprintf(stderr, "parseagree: bad test config: %s\n", err);
			return 2;
		}
		set_cfg(&lines[i]);
		line_cases(&lines[i], rounds);
	}
	for (i = 0; i < sizeof(https) / sizeof(https[0]); i++) {
		if (kp_parser_cfg_check(&https[i], err, sizeof(err))) {
			fprintf(stderr, "parseagree: bad test config: %s\n", err);
			return 2;
		}
		set_cfg(&https[i]);
		http_cases(&https[i], rounds / 4);
	}
	printf("parseagree: %lu inputs, %lu disagreements\n", checked, disagreed);
	mux_bpf__destroy(skel);
	return disagreed ? 1 : 0;
}
