// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * idpeer: both ends of kmux's ID-tagged correlation tests. Messages are
 * [4-byte big-endian length of the whole message][4-byte big-endian ID][payload]
 * (kmux: "parser len:size=4,be id 4:4").
 *
 *   idpeer server ADDR:PORT [--reorder] [--delay-ms N] [--answer-twice K]
 *		[--bogus-every K] [--close-after K]
 *	a backend: answers every request with the request itself, byte for byte.
 *	--reorder answers the complete messages of each read in reverse order;
 *	--delay-ms holds each response 0..N ms (a hash of its bytes), so the
 *	order is scrambled across reads too. --answer-twice K sends every K-th
 *	response of a connection twice; --bogus-every K sends, after every K-th
 *	response, a message with ID 0xdeadbeef and payload "BOGUSMSG" that
 *	answers nothing. --close-after K closes a connection when its K-th
 *	request arrives, unanswered, after flushing the responses already due
 *	(held ones included). A length < 8 or > 16 MiB closes the connection.
 *	Runs until killed; SIGTERM exits 0.
 *
 *   idpeer client ADDR:PORT --conns N --msgs M [--window W] [--size S]
 *		[--same-ids | --unique-ids] [--timeout-ms T] [--allow-reset]
 *	N connections, M requests of S bytes each, up to W in flight on each.
 *	With --same-ids (the default) every connection draws its IDs from the
 *	same set 1..W, so connections collide on purpose; --unique-ids uses
 *	(conn << 20) | seq. Payloads derive from (conn, seq), so a response
 *	that is corrupt, misrouted or matched to the wrong request shows. Every
 *	response must carry an ID outstanding on its connection and equal the
 *	request sent under it. Prints
 *	"idpeer: N conns x M msgs: ok, R responses, X out of order, D connections reset"
 *	(X: responses that overtook an older one) and exits 0; else one line
 *	on stderr naming the connection, sequence and ID, and exits 1.
 *	--allow-reset counts a connection that ends early instead of failing.
 *
 * Bad usage exits 2. One thread and one epoll loop per process: nothing
 * here blocks but connect(), and every socket is nonblocking after it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <linux/types.h>

#define HDR_LEN		8
#define MAX_MSG		(16U << 20)
#define READ_MIN	(64 * 1024)
/* Stop reading a connection whose responses pile up faster than it takes them. */
#define OUT_HIGH	(32U << 20)
/* The client generates requests only while this little is queued unsent. */
#define CLIENT_OUT_LOW	(256 * 1024)
#define BOGUS_ID	0xdeadbeefU
#define MAX_EVENTS	256

static const char *prog = "idpeer";

static int usage(void)
{
	fprintf(stderr,
		"usage: idpeer server ADDR:PORT [--reorder] [--delay-ms N] [--answer-twice K]\n"
		"                [--bogus-every K] [--close-after K]\n"
		"       idpeer client ADDR:PORT --conns N --msgs M [--window W] [--size S]\n"
		"                [--same-ids | --unique-ids] [--timeout-ms T] [--allow-reset]\n");
	return 2;
}

static __u64 now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

static __u32 get_be32(const unsigned char *p)
{
	return (__u32)p[0] << 24 | (__u32)p[1] << 16 | (__u32)p[2] << 8 | p[3];
}

static void put_be32(unsigned char *p, __u32 v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

/* Parse a decimal in [min, max] into *v; false if it is anything else. */
static bool parse_num(const char *s, unsigned long min, unsigned long max, unsigned long *v)
{
	char *end;

	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	*v = strtoul(s, &end, 10);
	return !errno && !*end && *v >= min && *v <= max;
}

static bool parse_addr(const char *s, struct sockaddr_in *sin)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	unsigned long port;

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host))
		return false;
	memcpy(host, s, colon - s);
	host[colon - s] = '\0';
	if (!parse_num(colon + 1, 1, 65535, &port))
		return false;
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	return inet_pton(AF_INET, host, &sin->sin_addr) == 1;
}

/* 200 connections a side and more must not trip over a soft limit of 1024. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) ? -errno : 0;
}

/* A byte queue: data[head, tail) is queued, data[tail, cap) is free. */
struct buf {
	unsigned char *data;
	size_t head, tail, cap;
};

static size_t buf_len(const struct buf *b)
{
	return b->tail - b->head;
}

/* Make room for @n more bytes at the tail. */
static int buf_reserve(struct buf *b, size_t n)
{
	size_t len = buf_len(b), cap;
	unsigned char *p;

	if (b->cap - b->tail >= n)
		return 0;
	if (b->head && b->cap - len >= n) {
		memmove(b->data, b->data + b->head, len);
		b->head = 0;
		b->tail = len;
		return 0;
	}
	for (cap = b->cap ? b->cap : READ_MIN; cap - len < n; cap *= 2)
		;
	if (b->head) {
		memmove(b->data, b->data + b->head, len);
		b->head = 0;
		b->tail = len;
	}
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

static int buf_append(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n))
		return -ENOMEM;
	memcpy(b->data + b->tail, p, n);
	b->tail += n;
	return 0;
}

static void buf_consume(struct buf *b, size_t n)
{
	b->head += n;
	if (b->head == b->tail)
		b->head = b->tail = 0;
}

static void buf_free(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* Send what is queued; 0 when sent or the socket is full, else -errno. */
static int buf_flush(int fd, struct buf *b)
{
	while (buf_len(b)) {
		ssize_t n = send(fd, b->data + b->head, buf_len(b), MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -errno;
		}
		buf_consume(b, n);
	}
	return 0;
}

/*
 * Read once into @b, with room for at least @want bytes. Returns the count
 * read, 0 at EOF, -EAGAIN when there is nothing, or -errno.
 */
static ssize_t buf_read(int fd, struct buf *b, size_t want)
{
	ssize_t n;

	if (buf_reserve(b, want < READ_MIN ? READ_MIN : want))
		return -ENOMEM;
	do
		n = recv(fd, b->data + b->tail, b->cap - b->tail, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	b->tail += n;
	return n;
}

/* Room a read needs so that the message at the head of @b fits whole. */
static size_t want_for(const struct buf *b)
{
	__u32 len;

	if (buf_len(b) < HDR_LEN)
		return READ_MIN;
	len = get_be32(b->data + b->head);
	return len > buf_len(b) && len <= MAX_MSG ? len - buf_len(b) : READ_MIN;
}

/* ---------------------------------------------------------------- server */

static struct {
	bool reorder;
	unsigned long delay_ms;
	unsigned long answer_twice;
	unsigned long bogus_every;
	unsigned long close_after;
} so;

struct sconn {
	int fd;
	struct buf in, out;
	unsigned long requests, responses;
	unsigned int held;	/* responses waiting in the delay heap */
	bool closing;		/* reads no more: close once out and held are empty */
	__u32 events;
	char peer[32];
};

/* A response held back by --delay-ms; @c is NULL once its connection is gone. */
struct held {
	__u64 due, order;
	struct sconn *c;
	unsigned char *msg;
	__u32 len;
};

static struct {
	struct held *v;
	size_t n, cap;
	__u64 order;
} heap;

static bool held_before(const struct held *a, const struct held *b)
{
	return a->due < b->due || (a->due == b->due && a->order < b->order);
}

static int heap_push(struct held h)
{
	size_t i;

	if (heap.n == heap.cap) {
		size_t cap = heap.cap ? heap.cap * 2 : 256;
		struct held *v = realloc(heap.v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		heap.v = v;
		heap.cap = cap;
	}
	h.order = heap.order++;
	for (i = heap.n++; i; i = (i - 1) / 2) {
		if (!held_before(&h, &heap.v[(i - 1) / 2]))
			break;
		heap.v[i] = heap.v[(i - 1) / 2];
	}
	heap.v[i] = h;
	return 0;
}

static struct held heap_pop(void)
{
	struct held top = heap.v[0], last = heap.v[--heap.n];
	size_t i = 0, k;

	while ((k = 2 * i + 1) < heap.n) {
		if (k + 1 < heap.n && held_before(&heap.v[k + 1], &heap.v[k]))
			k++;
		if (!held_before(&heap.v[k], &last))
			break;
		heap.v[i] = heap.v[k];
		i = k;
	}
	if (heap.n)
		heap.v[i] = last;
	return top;
}

static int epfd;

static void sconn_destroy(struct sconn *c)
{
	size_t i;

	/* Its held responses stay in the heap, keyed as they were, owned by nobody. */
	for (i = 0; c->held && i < heap.n; i++) {
		if (heap.v[i].c == c) {
			heap.v[i].c = NULL;
			c->held--;
		}
	}
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

/* Closes @c if it is done; else asks epoll for what it now waits for. */
static void sconn_update(struct sconn *c)
{
	struct epoll_event ev = { .data.ptr = c };

	if (c->closing && !buf_len(&c->out) && !c->held) {
		sconn_destroy(c);
		return;
	}
	if (!c->closing && buf_len(&c->out) < OUT_HIGH)
		ev.events |= EPOLLIN;
	if (buf_len(&c->out))
		ev.events |= EPOLLOUT;
	if (ev.events != c->events) {
		c->events = ev.events;
		epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
	}
}

static int respond(struct sconn *c, const unsigned char *msg, __u32 len)
{
	static const unsigned char bogus[16] = {
		0, 0, 0, 16, 0xde, 0xad, 0xbe, 0xef, 'B', 'O', 'G', 'U', 'S', 'M', 'S', 'G'
	};
	int err;

	err = buf_append(&c->out, msg, len);
	c->responses++;
	if (!err && so.answer_twice && c->responses % so.answer_twice == 0)
		err = buf_append(&c->out, msg, len);
	if (!err && so.bogus_every && c->responses % so.bogus_every == 0)
		err = buf_append(&c->out, bogus, sizeof(bogus));
	return err;
}

/* FNV-1a over the length and the first 4 KiB: the delay of one response. */
static __u64 delay_of(const unsigned char *msg, __u32 len)
{
	__u32 h = 2166136261U, i;

	for (i = 0; i < len && i < 4096; i++)
		h = (h ^ msg[i]) * 16777619U;
	h = (h ^ len) * 16777619U;
	return h % (so.delay_ms + 1);
}

/*
 * Answer the complete messages now in c->in, in reverse order with
 * --reorder. 0, or -1 when the connection was destroyed.
 */
static int serve_batch(struct sconn *c)
{
	static size_t *offs;
	static size_t offs_cap;
	size_t n = 0, pos = c->in.head, i;
	bool discard = false;
	int err = 0;

	while (c->in.tail - pos >= HDR_LEN) {
		__u32 len = get_be32(c->in.data + pos);

		if (len < HDR_LEN || len > MAX_MSG) {
			fprintf(stderr, "%s: server: %s sent a message of length %u (must be 8..%u), closing it\n",
				prog, c->peer, len, MAX_MSG);
			sconn_destroy(c);
			return -1;
		}
		if (c->in.tail - pos < len)
			break;
		if (so.close_after && ++c->requests == so.close_after) {
			/* The K-th request dies unanswered, with what came after it. */
			c->closing = true;
			discard = true;
			break;
		}
		if (n == offs_cap) {
			size_t cap = offs_cap ? offs_cap * 2 : 64;
			size_t *p = realloc(offs, cap * sizeof(*p));

			if (!p) {
				err = -ENOMEM;
				break;
			}
			offs = p;
			offs_cap = cap;
		}
		offs[n++] = pos;
		pos += len;
	}
	for (i = 0; !err && i < n; i++) {
		size_t off = offs[so.reorder ? n - 1 - i : i];
		const unsigned char *msg = c->in.data + off;
		__u32 len = get_be32(msg);
		struct held h = { .c = c, .len = len };

		if (!so.delay_ms) {
			err = respond(c, msg, len);
			continue;
		}
		h.due = now_ms() + delay_of(msg, len);
		h.msg = malloc(len);
		if (!h.msg) {
			err = -ENOMEM;
			break;
		}
		memcpy(h.msg, msg, len);
		err = heap_push(h);
		if (err)
			free(h.msg);
		else
			c->held++;
	}
	if (err) {
		fprintf(stderr, "%s: server: %s: out of memory, closing it\n", prog, c->peer);
		sconn_destroy(c);
		return -1;
	}
	if (discard)
		c->in.head = c->in.tail = 0;
	else
		buf_consume(&c->in, pos - c->in.head);
	return 0;
}


/* A write to @c failed (@err < 0): say so unless the client just went, and drop it. */
static bool write_failed(struct sconn *c, int err)
{
	if (!err)
		return false;
	if (err != -ECONNRESET && err != -EPIPE)
		fprintf(stderr, "%s: server: write to %s: %s\n", prog, c->peer, strerror(-err));
	sconn_destroy(c);
	return true;
}

static void sconn_event(struct sconn *c, __u32 events)
{
	if (c->closing && (events & (EPOLLERR | EPOLLHUP))) {
		sconn_destroy(c);
		return;
	}
	while (!c->closing && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) &&
	       buf_len(&c->out) < OUT_HIGH) {
		ssize_t n = buf_read(c->fd, &c->in, want_for(&c->in));

		if (n == -EAGAIN)
			break;
		if (n < 0) {
			if (n != -ECONNRESET)
				fprintf(stderr, "%s: server: read from %s: %s\n", prog, c->peer,
					strerror(-n));
			sconn_destroy(c);
			return;
		}
		if (!n) {
			/* The peer is done sending: answer what it sent, then close. */
			c->closing = true;
			break;
		}
		if (serve_batch(c))
			return;
	}
	if (write_failed(c, buf_flush(c->fd, &c->out)))
		return;
	sconn_update(c);
}

static void release_due(void)
{
	__u64 now = now_ms();

	while (heap.n && heap.v[0].due <= now) {
		struct held h = heap_pop();
		struct sconn *c = h.c;
		int err;

		if (!c) {
			free(h.msg);
			continue;
		}
		c->held--;
		err = respond(c, h.msg, h.len);
		free(h.msg);
		if (!err)
			err = buf_flush(c->fd, &c->out);
		if (write_failed(c, err))
			continue;
		sconn_update(c);
	}
}

static void accept_all(int lfd)
{
	for (;;) {
		struct sockaddr_in sin;
		socklen_t sl = sizeof(sin);
		struct epoll_event ev;
		struct sconn *c;
		int fd, one = 1;

		fd = accept4(lfd, (struct sockaddr *)&sin, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				fprintf(stderr, "%s: server: accept: %s\n", prog, strerror(errno));
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (!c) {
			fprintf(stderr, "%s: server: out of memory, refusing a connection\n", prog);
			close(fd);
			continue;
		}
		c->fd = fd;
		snprintf(c->peer, sizeof(c->peer), "%s:%u", inet_ntoa(sin.sin_addr),
			 ntohs(sin.sin_port));
		c->events = EPOLLIN;
		ev.events = c->events;
		ev.data.ptr = c;
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)) {
			fprintf(stderr, "%s: server: epoll: %s\n", prog, strerror(errno));
			close(fd);
			free(c);
		}
	}
}

static void on_sigterm(int sig)
{
	_exit(0);
}

static int run_server(const struct sockaddr_in *sin)
{
	struct epoll_event ev, evs[MAX_EVENTS];
	static int listener_tag;
	int lfd, one = 1;

	signal(SIGTERM, on_sigterm);
	signal(SIGPIPE, SIG_IGN);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (const struct sockaddr *)sin, sizeof(*sin)) || listen(lfd, 4096)) {
		fprintf(stderr, "%s: server: cannot listen on %s:%u: %s\n", prog,
			inet_ntoa(sin->sin_addr), ntohs(sin->sin_port), strerror(errno));
		return 1;
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	ev.events = EPOLLIN;
	ev.data.ptr = &listener_tag;
	if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev)) {
		fprintf(stderr, "%s: server: epoll: %s\n", prog, strerror(errno));
		return 1;
	}
	for (;;) {
		int timeout = -1, n, i;

		if (heap.n) {
			__u64 now = now_ms();

			timeout = heap.v[0].due > now ? (int)(heap.v[0].due - now) : 0;
		}
		n = epoll_wait(epfd, evs, MAX_EVENTS, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s: server: epoll_wait: %s\n", prog, strerror(errno));
			return 1;
		}
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == &listener_tag)
				accept_all(lfd);
			else
				sconn_event(evs[i].data.ptr, evs[i].events);
		}
		release_due();
	}
}

/* ---------------------------------------------------------------- client */

enum { REQ_UNSENT, REQ_OUT, REQ_ANSWERED };

#define NO_SEQ	0xffffffffU

static struct {
	unsigned long conns, msgs, window, size, timeout_ms;
	bool unique_ids, allow_reset;
} co = { .window = 8, .size = 64, .timeout_ms = 30000 };

struct cconn {
	int fd;
	__u32 idx;
	struct buf in, out;
	__u32 next_seq;		/* next request to generate */
	__u32 answered;
	__u32 low;		/* oldest request not yet answered */
	__u32 inflight;
	unsigned char *state;	/* REQ_* by sequence number */
	__u32 *seq_of;		/* --same-ids: sequence carried by ID i + 1, or NO_SEQ */
	__u32 *freeq;		/* --same-ids: free IDs, first in first out */
	__u32 fq_head, fq_count;
	__u32 *id_of;		/* ID each sequence number went out under */
	bool done;
};

static struct cconn *cc;
static unsigned long responses, out_of_order, resets, active;
static unsigned char *expect;

static __u64 splitmix64(__u64 *s)
{
	__u64 z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The payload of request @seq on connection @idx: no two share a prefix. */
static void fill_payload(unsigned char *p, size_t n, __u32 idx, __u32 seq)
{
	__u64 s = ((__u64)idx << 32 | seq) * 0xd1342543de82ef95ULL + 0x5851f42d4c957f2dULL;
	size_t k;

	for (k = 0; k < n; k += 8) {
		__u64 w = splitmix64(&s);

		memcpy(p + k, &w, n - k < 8 ? n - k : 8);
	}
}

static void fill_request(unsigned char *p, __u32 idx, __u32 seq, __u32 id)
{
	put_be32(p, co.size);
	put_be32(p + 4, id);
	fill_payload(p + HDR_LEN, co.size - HDR_LEN, idx, seq);
}

static __u32 oldest_outstanding(const struct cconn *c)
{
	__u32 s;

	for (s = c->low; s < c->next_seq; s++)
		if (c->state[s] == REQ_OUT)
			return s;
	return NO_SEQ;
}

/* Names the request a payload that matches none of its own is whole copy of, if any. */
static void whose_payload(const unsigned char *payload, size_t n, char *out, size_t sz)
{
	unsigned char probe[8], *full;
	__u32 i, s;

	snprintf(out, sz, "%s", "");
	if (n < 8 || (__u64)co.conns * co.msgs > 20000000ULL)
		return;
	for (i = 0; i < co.conns; i++) {
		for (s = 0; s < co.msgs; s++) {
			fill_payload(probe, 8, i, s);
			if (memcmp(probe, payload, 8))
				continue;
			full = malloc(n);
			if (!full)
				return;
			fill_payload(full, n, i, s);
			if (!memcmp(full, payload, n))
				snprintf(out, sz, "; its payload is that of conn %u seq %u", i, s);
			free(full);
			return;
		}
	}
}

static void fail_conn(const struct cconn *c, __u32 seq, __u32 id, bool has_id, const char *what)
{
	char s[16] = "-", i[16] = "-";

	if (seq != NO_SEQ)
		snprintf(s, sizeof(s), "%u", seq);
	if (has_id)
		snprintf(i, sizeof(i), "%#x", id);
	fprintf(stderr, "%s: client: conn %u seq %s id %s: %s\n", prog, c->idx, s, i, what);
	exit(1);
}

static void cconn_close(struct cconn *c)
{
	close(c->fd);
	c->fd = -1;
	c->done = true;
	active--;
	buf_free(&c->in);
	buf_free(&c->out);
}

/* EOF or reset before every answer came: counted with --allow-reset, else fatal. */
static void cconn_lost(struct cconn *c, const char *why)
{
	char what[256];
	__u32 seq;

	if (co.allow_reset) {
		resets++;
		cconn_close(c);
		return;
	}
	seq = oldest_outstanding(c);
	snprintf(what, sizeof(what), "%s with %u of %lu answered, %u outstanding%s", why,
		 c->answered, co.msgs, c->inflight,
		 buf_len(&c->in) ? ", a response cut short" : "");
	fail_conn(c, seq == NO_SEQ ? c->next_seq : seq, seq == NO_SEQ ? 0 : c->id_of[seq],
		  seq != NO_SEQ, what);
}

/* Queue requests while the window and the unsent backlog allow. */
static int cconn_fill(struct cconn *c)
{
	while (c->inflight < co.window && c->next_seq < co.msgs &&
	       buf_len(&c->out) < CLIENT_OUT_LOW) {
		__u32 seq = c->next_seq++, id;

		if (co.unique_ids) {
			id = c->idx << 20 | seq;
		} else {
			id = c->freeq[c->fq_head];
			c->fq_head = (c->fq_head + 1) % co.window;
			c->fq_count--;
			c->seq_of[id - 1] = seq;
		}
		if (buf_reserve(&c->out, co.size))
			return -ENOMEM;
		fill_request(c->out.data + c->out.tail, c->idx, seq, id);
		c->out.tail += co.size;
		c->id_of[seq] = id;
		c->state[seq] = REQ_OUT;
		c->inflight++;
	}
	return 0;
}

/* The sequence number @id stands for on @c, or NO_SEQ if none is outstanding. */
static __u32 lookup_id(const struct cconn *c, __u32 id)
{
	__u32 seq;

	if (co.unique_ids) {
		seq = id & 0xfffff;
		if (id >> 20 != c->idx || seq >= c->next_seq)
			return NO_SEQ;
	} else {
		if (id < 1 || id > co.window)
			return NO_SEQ;
		seq = c->seq_of[id - 1];
		if (seq == NO_SEQ)
			return NO_SEQ;
	}
	return c->state[seq] == REQ_OUT ? seq : NO_SEQ;
}

/* Check and retire every complete response in c->in. */
static void cconn_check(struct cconn *c)
{
	char what[256], whose[96];

	while (buf_len(&c->in) >= HDR_LEN) {
		const unsigned char *r = c->in.data + c->in.head;
		__u32 len = get_be32(r), id = get_be32(r + 4), seq;
		size_t k;

		seq = lookup_id(c, id);
		if (seq == NO_SEQ) {
			snprintf(what, sizeof(what),
				 "response with an ID not outstanding on this connection (length %u)",
				 len);
			fail_conn(c, NO_SEQ, id, true, what);
		}
		if (len != co.size) {
			snprintf(what, sizeof(what), "response of length %u, the request had %lu",
				 len, co.size);
			fail_conn(c, seq, id, true, what);
		}
		if (buf_len(&c->in) < len)
			return;
		fill_request(expect, c->idx, seq, id);
		if (memcmp(expect, r, len)) {
			for (k = 0; expect[k] == r[k]; k++)
				;
			whose_payload(r + HDR_LEN, len - HDR_LEN, whose, sizeof(whose));
			snprintf(what, sizeof(what),
				 "response differs from its request at byte %zu of %u (0x%02x, not 0x%02x)%s",
				 k, len, r[k], expect[k], whose);
			fail_conn(c, seq, id, true, what);
		}
		buf_consume(&c->in, len);
		if (seq != c->low)
			out_of_order++;
		c->state[seq] = REQ_ANSWERED;
		while (c->low < c->next_seq && c->state[c->low] == REQ_ANSWERED)
			c->low++;
		c->answered++;
		c->inflight--;
		if (!co.unique_ids) {
			c->seq_of[id - 1] = NO_SEQ;
			c->freeq[(c->fq_head + c->fq_count++) % co.window] = id;
		}
		responses++;
	}
}

static int cconn_epoll(struct cconn *c, int op)
{
	struct epoll_event ev = { .data.ptr = c, .events = EPOLLIN };

	if (buf_len(&c->out))
		ev.events |= EPOLLOUT;
	return epoll_ctl(epfd, op, c->fd, &ev);
}

/* Returns true when a response came in (progress). */
static bool cconn_event(struct cconn *c, __u32 events)
{
	__u32 before = c->answered;
	int err;

	for (;;) {
		ssize_t n = buf_read(c->fd, &c->in, want_for(&c->in));

		if (n == -EAGAIN)
			break;
		if (n < 0) {
			char why[96];

			if (n == -ENOMEM)
				fail_conn(c, NO_SEQ, 0, false, "out of memory");
			snprintf(why, sizeof(why), "connection failed (%s)", strerror(-n));
			cconn_lost(c, why);
			return c->answered != before;
		}
		if (!n) {
			cconn_check(c);
			if (c->answered == co.msgs) {
				cconn_close(c);
				return true;
			}
			cconn_lost(c, "connection closed by peer (EOF)");
			return c->answered != before;
		}
		cconn_check(c);
	}
	if (c->answered == co.msgs) {
		cconn_close(c);
		return true;
	}
	if (cconn_fill(c))
		fail_conn(c, NO_SEQ, 0, false, "out of memory");
	err = buf_flush(c->fd, &c->out);
	if (err) {
		char why[96];

		snprintf(why, sizeof(why), "connection failed on write (%s)", strerror(-err));
		cconn_lost(c, why);
		return c->answered != before;
	}
	cconn_epoll(c, EPOLL_CTL_MOD);
	return c->answered != before;
}

static void fail_timeout(void)
{
	char what[160];
	unsigned long stuck = 0, i;
	struct cconn *first = NULL;
	__u32 seq;

	for (i = 0; i < co.conns; i++) {
		if (!cc[i].done) {
			stuck++;
			if (!first)
				first = &cc[i];
		}
	}
	if (!first)
		exit(1);
	seq = oldest_outstanding(first);

	snprintf(what, sizeof(what),
		 "no response for %lu ms (%u of %lu answered, %u outstanding; %lu conns unfinished)",
		 co.timeout_ms, first->answered, co.msgs, first->inflight, stuck);
	fail_conn(first, seq == NO_SEQ ? first->next_seq : seq,
		  seq == NO_SEQ ? 0 : first->id_of[seq], seq != NO_SEQ, what);
}

static int run_client(const struct sockaddr_in *sin)
{
	struct epoll_event evs[MAX_EVENTS];
	__u64 last;
	__u32 i, k;

	signal(SIGPIPE, SIG_IGN);
	cc = calloc(co.conns, sizeof(*cc));
	expect = malloc(co.size);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!cc || !expect || epfd < 0) {
		fprintf(stderr, "%s: client: %s\n", prog, strerror(errno));
		return 1;
	}
	for (i = 0; i < co.conns; i++) {
		struct cconn *c = &cc[i];
		int one = 1;

		c->idx = i;
		c->state = calloc(co.msgs, 1);
		c->id_of = calloc(co.msgs, sizeof(*c->id_of));
		if (!co.unique_ids) {
			c->seq_of = malloc(co.window * sizeof(*c->seq_of));
			c->freeq = malloc(co.window * sizeof(*c->freeq));
			if (!c->seq_of || !c->freeq)
				fail_conn(c, NO_SEQ, 0, false, "out of memory");
			for (k = 0; k < co.window; k++) {
				c->seq_of[k] = NO_SEQ;
				c->freeq[k] = k + 1;
			}
			c->fq_count = co.window;
		}
		if (!c->state || !c->id_of)
			fail_conn(c, NO_SEQ, 0, false, "out of memory");
		c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c->fd < 0 || connect(c->fd, (const struct sockaddr *)sin, sizeof(*sin))) {
			char what[160];

			snprintf(what, sizeof(what), "cannot connect to %s:%u: %s",
				 inet_ntoa(sin->sin_addr), ntohs(sin->sin_port), strerror(errno));
			fail_conn(c, NO_SEQ, 0, false, what);
		}
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (set_nonblock(c->fd) || cconn_fill(c) || cconn_epoll(c, EPOLL_CTL_ADD))
			fail_conn(c, NO_SEQ, 0, false, strerror(errno));
		active++;
	}
	/* Every connection is up before any sends: they all run at once. */
	for (i = 0; i < co.conns; i++)
		cconn_event(&cc[i], 0);
	last = now_ms();
	while (active) {
		__u64 now = now_ms();
		int n, j;

		if (now - last >= co.timeout_ms)
			fail_timeout();
		n = epoll_wait(epfd, evs, MAX_EVENTS, co.timeout_ms - (now - last));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s: client: epoll_wait: %s\n", prog, strerror(errno));
			return 1;
		}
		for (j = 0; j < n; j++) {
			struct cconn *c = evs[j].data.ptr;

			if (!c->done && cconn_event(c, evs[j].events))
				last = now_ms();
		}
	}
	printf("%s: %lu conns x %lu msgs: ok, %lu responses, %lu out of order, %lu connections reset\n",
	       prog, co.conns, co.msgs, responses, out_of_order, resets);
	return 0;
}

/* ---------------------------------------------------------------- main */

enum {
	OPT_REORDER = 256, OPT_DELAY, OPT_TWICE, OPT_BOGUS, OPT_CLOSE_AFTER,
	OPT_CONNS, OPT_MSGS, OPT_WINDOW, OPT_SIZE, OPT_SAME, OPT_UNIQUE, OPT_TIMEOUT,
	OPT_ALLOW_RESET,
};

int main(int argc, char **argv)
{
	static const struct option server_opts[] = {
		{ "reorder", no_argument, NULL, OPT_REORDER },
		{ "delay-ms", required_argument, NULL, OPT_DELAY },
		{ "answer-twice", required_argument, NULL, OPT_TWICE },
		{ "bogus-every", required_argument, NULL, OPT_BOGUS },
		{ "close-after", required_argument, NULL, OPT_CLOSE_AFTER },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	static const struct option client_opts[] = {
		{ "conns", required_argument, NULL, OPT_CONNS },
		{ "msgs", required_argument, NULL, OPT_MSGS },
		{ "window", required_argument, NULL, OPT_WINDOW },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "same-ids", no_argument, NULL, OPT_SAME },
		{ "unique-ids", no_argument, NULL, OPT_UNIQUE },
		{ "timeout-ms", required_argument, NULL, OPT_TIMEOUT },
		{ "allow-reset", no_argument, NULL, OPT_ALLOW_RESET },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct sockaddr_in sin;
	bool server, have_conns = false, have_msgs = false;
	int opt, li;

	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "server"))
		server = true;
	else if (!strcmp(argv[1], "client"))
		server = false;
	else
		return usage();
	argc--;
	argv++;
	opterr = 1;
	while ((opt = getopt_long(argc, argv, "h", server ? server_opts : client_opts,
				  &li)) != -1) {
		unsigned long *v = NULL, min = 1, max = 0;

		switch (opt) {
		case OPT_REORDER:
			so.reorder = true;
			break;
		case OPT_DELAY:
			v = &so.delay_ms, min = 0, max = 60000;
			break;
		case OPT_TWICE:
			v = &so.answer_twice, max = ~0UL;
			break;
		case OPT_BOGUS:
			v = &so.bogus_every, max = ~0UL;
			break;
		case OPT_CLOSE_AFTER:
			v = &so.close_after, max = ~0UL;
			break;
		case OPT_CONNS:
			v = &co.conns, max = 65536;
			have_conns = true;
			break;
		case OPT_MSGS:
			v = &co.msgs, max = 1UL << 30;
			have_msgs = true;
			break;
		case OPT_WINDOW:
			v = &co.window, max = 1 << 20;
			break;
		case OPT_SIZE:
			v = &co.size, min = HDR_LEN, max = MAX_MSG;
			break;
		case OPT_SAME:
			co.unique_ids = false;
			break;
		case OPT_UNIQUE:
			co.unique_ids = true;
			break;
		case OPT_TIMEOUT:
			v = &co.timeout_ms, max = 24 * 3600 * 1000UL;
			break;
		case OPT_ALLOW_RESET:
			co.allow_reset = true;
			break;
		default:
			return usage();
		}
		if (v && !parse_num(optarg, min, max, v)) {
			fprintf(stderr, "%s: --%s needs a number from %lu to %lu, not '%s'\n", prog,
				(server ? server_opts : client_opts)[li].name, min, max, optarg);
			return usage();
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "%s: %s\n", prog, optind < argc ? "one ADDR:PORT, please" :
			"ADDR:PORT is missing");
		return usage();
	}
	if (!parse_addr(argv[optind], &sin)) {
		fprintf(stderr, "%s: '%s' is not an IPv4 ADDR:PORT\n", prog, argv[optind]);
		return usage();
	}
	raise_nofile();
	if (server)
		return run_server(&sin);
	if (!have_conns || !have_msgs) {
		fprintf(stderr, "%s: client needs --conns and --msgs\n", prog);
		return usage();
	}
	/* (conn << 20) | seq must stay unique within 32 bits. */
	if (co.unique_ids && (co.conns > 4096 || co.msgs > 1UL << 20)) {
		fprintf(stderr, "%s: --unique-ids allows at most 4096 conns and 1048576 msgs\n",
			prog);
		return usage();
	}
	return run_client(&sin);
}
