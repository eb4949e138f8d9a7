// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * umux: a user-space message multiplexor with kmux's semantics, the fair
 * user-space baseline for tests/bench/kmux.sh.
 *
 *   umux [--conns M] [--max BYTES] BACKEND_HOST:PORT LISTEN_HOST:PORT [LISTEN_HOST:PORT ...]
 *
 * Each LISTEN address is one mux with M (default 16) pooled connections to
 * BACKEND. Messages are length-framed: a 4-byte big-endian length of the whole
 * message (header included) at its start, as kmux's 'len:size=4,be' and
 * kpperf rr --frame len4; a length under 4 or over --max (default 1048576)
 * closes that client.
 *
 * Routing is kmux's (docs/kmux.md): a client that owns no backend connection
 * (a slot) claims a free one, round robin; requests go to the slot the client
 * owns, and a count of requests outstanding goes up at the first byte of
 * each; each whole response read on the slot goes to its owner and the count
 * goes down; at zero (and nothing of the client's left in flight) the slot is
 * free again. So responses come back in order to the right client and two
 * clients' messages never meet on one backend connection. A client that finds
 * no free slot waits in a FIFO for one (kmux hands such a client to
 * kproxyd's user-space relay instead; here everything is user space anyway).
 *
 * Differences worth knowing when comparing: a message's bytes are forwarded as
 * they arrive once its client owns a slot (cut-through; the exclusive owner
 * makes that safe), where kmux's strparser forwards a message once it is
 * whole; a client that closes with requests in flight, or a backend
 * connection that dies, costs that slot its backend connection (it is
 * reopened), where kmux drains the orphaned responses.
 *
 * One thread, one level-triggered epoll loop, non-blocking sockets,
 * TCP_NODELAY, recv()/send() through 64 KiB buffers (one per client for
 * requests, one per slot for responses): the same shape as rwproxy.c. On
 * SIGTERM it prints its counters to stderr.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define BUFSZ		(64 * 1024)
#define MAX_LISTEN	16

enum { K_LISTEN, K_CLIENT, K_SLOT };

struct parser {
	int inmsg, hlen;
	unsigned char hdr[4];
	uint32_t need;
};

struct mux;
struct slot;

struct client {
	int kind;
	int fd;
	uint32_t ev;
	struct mux *m;
	struct slot *slot;
	struct parser req;
	size_t off, len;		/* request bytes read, not yet sent to the slot */
	int waiting, dead;
	struct client *wnext;		/* FIFO of clients waiting for a slot */
	struct client *dnext;		/* freed after the epoll batch */
	unsigned char buf[BUFSZ];
};

struct slot {
	int kind;
	int fd;
	uint32_t ev;
	struct mux *m;
	struct client *owner;
	long outstanding;
	struct parser resp;
	size_t off, len;		/* response bytes read, not yet sent to the owner */
	unsigned char buf[BUFSZ];
};

struct mux {
	int kind;
	int lfd;
	struct slot *slots;
	int rr;
	struct client *whead, *wtail;
};

static struct sockaddr_in backend;
static struct mux muxes[MAX_LISTEN];
static int nmux, nslots = 16, ep, slots_down;
static uint32_t max_msg = 1048576;
static struct client *dead_list;
static struct {
	unsigned long long accepted, closed, requests, responses, waits, slot_resets,
		client_resets, bad_frames;
} st;

static void client_kill(struct client *c);
static void slot_reset(struct slot *s);

static int parse_hostport(const char *s, struct sockaddr_in *sin)
{
	char host[64];
	const char *colon = strrchr(s, ':');

	if (!colon || colon - s >= (int)sizeof(host))
		return -1;
	memcpy(host, s, colon - s);
	host[colon - s] = 0;
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(atoi(colon + 1));
	return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

/*
 * Walk @n bytes of a length-framed stream: *starts is how many messages
 * begin in them, *ends how many end. -1: a bad length.
 */
static int parse(struct parser *p, const unsigned char *d, size_t n, int *starts, int *ends)
{
	size_t pos = 0, take;

	*starts = *ends = 0;
	while (pos < n) {
		if (!p->inmsg) {
			p->inmsg = 1;
			p->hlen = 0;
			(*starts)++;
		}
		if (p->hlen < 4) {
			take = (size_t)(4 - p->hlen) < n - pos ? (size_t)(4 - p->hlen) : n - pos;
			memcpy(p->hdr + p->hlen, d + pos, take);
			p->hlen += take;
			pos += take;
			if (p->hlen < 4)
				break;
			p->need = (uint32_t)p->hdr[0] << 24 | p->hdr[1] << 16 | p->hdr[2] << 8 | p->hdr[3];
			if (p->need < 4 || p->need > max_msg)
				return -1;
			p->need -= 4;
		} else {
			take = p->need < n - pos ? p->need : n - pos;
			p->need -= take;
			pos += take;
		}
		if (p->need == 0) {
			p->inmsg = 0;
			(*ends)++;
		}
	}
	return 0;
}

static void set_ev(int fd, void *ptr, uint32_t *cur, uint32_t want)
{
	struct epoll_event ev = { .events = want, .data.ptr = ptr };

	if (*cur == want || fd < 0)
		return;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev))
		fprintf(stderr, "umux: epoll_ctl: %s\n", strerror(errno));
	*cur = want;
}

static void refresh_client(struct client *c)
{
	uint32_t want = 0;

	if (c->dead)
		return;
	if (c->waiting)
		want = EPOLLRDHUP;
	else if (!c->slot || c->len == 0)
		want = EPOLLIN;
	if (c->slot && c->slot->len)
		want |= EPOLLOUT;
	set_ev(c->fd, c, &c->ev, want);
}

static void refresh_slot(struct slot *s)
{
	uint32_t want = 0;

	if (s->fd < 0)
		return;
	if (s->len == 0)
		want |= EPOLLIN;
	if (s->owner && s->owner->len)
		want |= EPOLLOUT;
	set_ev(s->fd, s, &s->ev, want);
}

static void assign(struct slot *s, struct client *c)
{
	s->owner = c;
	c->slot = s;
	s->outstanding = 0;
}

/* A free slot goes to the first client waiting for one. */
static void give_slot(struct slot *s)
{
	struct mux *m = s->m;
	struct client *c = m->whead;

	if (!c || s->fd < 0 || s->owner)
		return;
	m->whead = c->wnext;
	if (!m->whead)
		m->wtail = NULL;
	c->wnext = NULL;
	c->waiting = 0;
	assign(s, c);
	refresh_client(c);
	refresh_slot(s);
}

static int claim(struct client *c)
{
	struct mux *m = c->m;
	int i;

	if (m->whead)	/* others were first */
		return 0;
	for (i = 0; i < nslots; i++) {
		int k = (m->rr + i) % nslots;
		struct slot *s = &m->slots[k];

		if (s->fd >= 0 && !s->owner) {
			m->rr = k + 1;
			assign(s, c);
			return 1;
		}
	}
	return 0;
}

static void release(struct slot *s)
{
	struct client *c = s->owner;

	c->slot = NULL;
	s->owner = NULL;
	refresh_client(c);
	give_slot(s);
	refresh_slot(s);
}

static int idle(struct slot *s)
{
	struct client *c = s->owner;

	return s->outstanding == 0 && !c->req.inmsg && c->len == 0 && s->len == 0;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) ? -1 : 0;
}

static void slot_connect(struct slot *s)
{
	struct timeval tv = { .tv_sec = 1 };
	struct epoll_event ev;
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&backend, sizeof(backend))) {
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (set_nonblock(fd)) {
		close(fd);
		return;
	}
	s->fd = fd;
	s->ev = EPOLLIN;
	s->len = s->off = 0;
	s->outstanding = 0;
	memset(&s->resp, 0, sizeof(s->resp));
	ev.events = s->ev;
	ev.data.ptr = s;
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	slots_down--;
	give_slot(s);
}

static void slot_reset(struct slot *s)
{
	struct client *c = s->owner;

	if (s->fd < 0)
		return;
	st.slot_resets++;
	if (c) {
		s->owner = NULL;
		c->slot = NULL;
		if (s->outstanding || c->req.inmsg || c->len || s->len) {
			st.client_resets++;
			client_kill(c);
		} else {
			refresh_client(c);
		}
	}
	epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
	close(s->fd);
	s->fd = -1;
	s->len = s->off = 0;
	slots_down++;
}

static void client_kill(struct client *c)
{
	struct mux *m = c->m;
	struct slot *s = c->slot;

	if (c->dead)
		return;
	c->dead = 1;
	st.closed++;
	if (c->waiting) {
		struct client **pp = &m->whead, *prev = NULL;

		while (*pp && *pp != c) {
			prev = *pp;
			pp = &(*pp)->wnext;
		}
		if (*pp)
			*pp = c->wnext;
		if (m->wtail == c)
			m->wtail = prev;
	}
	if (s) {
		if (idle(s)) {
			c->slot = NULL;
			s->owner = NULL;
			give_slot(s);
			refresh_slot(s);
		} else {
			/* requests or responses of a client that is gone in flight on it */
			s->owner = NULL;
			c->slot = NULL;
			slot_reset(s);
		}
	}
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->dnext = dead_list;
	dead_list = c;
}

/* Request bytes of @c to its slot. */
static void flush_req(struct client *c)
{
	struct slot *s = c->slot;

	while (c->off < c->len) {
		ssize_t n = send(s->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			slot_reset(s);
			return;
		}
		c->off += n;
	}
	if (c->off == c->len)
		c->off = c->len = 0;
	refresh_client(c);
	refresh_slot(s);
}

/* Response bytes on @s to its owner. */
static void flush_resp(struct slot *s)
{
	struct client *c = s->owner;

	while (s->off < s->len) {
		ssize_t n = send(c->fd, s->buf + s->off, s->len - s->off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			client_kill(c);
			return;
		}
		s->off += n;
	}
	if (s->off == s->len)
		s->off = s->len = 0;
	if (idle(s)) {
		release(s);
		return;
	}
	refresh_client(c);
	refresh_slot(s);
}

static void client_in(struct client *c)
{
	struct slot *s;
	int starts, ends;
	ssize_t n;

	if (!c->slot && !claim(c)) {
		c->waiting = 1;
		if (c->m->wtail)
			c->m->wtail->wnext = c;
		else
			c->m->whead = c;
		c->m->wtail = c;
		st.waits++;
		refresh_client(c);
		return;
	}
	s = c->slot;
	do
		n = recv(c->fd, c->buf, BUFSZ, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN) {
		if (idle(s))
			release(s);
		return;
	}
	if (n <= 0) {
		client_kill(c);
		return;
	}
	if (parse(&c->req, c->buf, n, &starts, &ends)) {
		st.bad_frames++;
		client_kill(c);
		return;
	}
	s->outstanding += starts;
	st.requests += starts;
	c->off = 0;
	c->len = n;
	flush_req(c);
}

static void slot_in(struct slot *s)
{
	int starts, ends;
	ssize_t n;

	do
		n = recv(s->fd, s->buf, BUFSZ, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0 || !s->owner || parse(&s->resp, s->buf, n, &starts, &ends) ||
	    (s->outstanding -= ends) < 0) {
		/* closed, or a response nobody asked for: this connection is out of step */
		if (n > 0)
			st.bad_frames++;
		slot_reset(s);
		return;
	}
	st.responses += ends;
	s->off = 0;
	s->len = n;
	flush_resp(s);
}

static void on_accept(struct mux *m)
{
	for (;;) {
		struct epoll_event ev;
		struct client *c;
		int one = 1, fd;

		fd = accept4(m->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				fprintf(stderr, "umux: accept: %s\n", strerror(errno));
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = malloc(sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		memset(c, 0, offsetof(struct client, buf));
		c->kind = K_CLIENT;
		c->fd = fd;
		c->m = m;
		c->ev = EPOLLIN;
		ev.events = c->ev;
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd);
			free(c);
			continue;
		}
		st.accepted++;
	}
}

static volatile sig_atomic_t stop;
static void on_signal(int sig) { stop = 1; }

int main(int argc, char **argv)
{
	struct epoll_event evs[256];
	struct rlimit rl;
	int i, j, one = 1;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--conns") && i + 1 < argc)
			nslots = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--max") && i + 1 < argc)
			max_msg = strtoul(argv[++i], NULL, 0);
		else
			break;
	}
	if (argc - i < 2 || nslots < 1 || nslots > 4096 || max_msg < 4 ||
	    parse_hostport(argv[i], &backend)) {
		fprintf(stderr, "usage: umux [--conns M] [--max BYTES] BACKEND_HOST:PORT "
			"LISTEN_HOST:PORT [LISTEN_HOST:PORT ...]\n");
		return 64;
	}
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return 1;
	for (i++; i < argc && nmux < MAX_LISTEN; i++) {
		struct mux *m = &muxes[nmux++];
		struct sockaddr_in sin;
		struct epoll_event ev;

		m->kind = K_LISTEN;
		if (parse_hostport(argv[i], &sin)) {
			fprintf(stderr, "umux: bad address '%s'\n", argv[i]);
			return 64;
		}
		m->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		setsockopt(m->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (m->lfd < 0 || bind(m->lfd, (struct sockaddr *)&sin, sizeof(sin)) ||
		    listen(m->lfd, 4096)) {
			fprintf(stderr, "umux: %s: %s\n", argv[i], strerror(errno));
			return errno == EADDRINUSE ? 2 : 1;
		}
		ev.events = EPOLLIN;
		ev.data.ptr = m;
		epoll_ctl(ep, EPOLL_CTL_ADD, m->lfd, &ev);
		m->slots = calloc(nslots, sizeof(*m->slots));
		if (!m->slots)
			return 1;
		for (j = 0; j < nslots; j++) {
			m->slots[j].kind = K_SLOT;
			m->slots[j].fd = -1;
			m->slots[j].m = m;
			slots_down++;
		}
	}
	if (i < argc) {
		fprintf(stderr, "umux: at most %d listeners\n", MAX_LISTEN);
		return 64;
	}
	for (i = 0; i < nmux; i++)
		for (j = 0; j < nslots; j++)
			slot_connect(&muxes[i].slots[j]);
	fprintf(stderr, "umux: %d mux(es) of %d backend connections (%d up) to %s:%d\n", nmux,
		nslots, nmux * nslots - slots_down, inet_ntoa(backend.sin_addr),
		ntohs(backend.sin_port));

	while (!stop) {
		int n = epoll_wait(ep, evs, 256, slots_down ? 100 : -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "umux: epoll_wait: %s\n", strerror(errno));
			return 1;
		}
		for (i = 0; i < n; i++) {
			int kind = *(int *)evs[i].data.ptr;
			uint32_t e = evs[i].events;

			if (kind == K_LISTEN) {
				on_accept(evs[i].data.ptr);
			} else if (kind == K_CLIENT) {
				struct client *c = evs[i].data.ptr;

				if (c->dead)
					continue;
				if ((e & (EPOLLHUP | EPOLLERR)) || ((e & EPOLLRDHUP) && c->waiting)) {
					client_kill(c);
					continue;
				}
				if ((e & EPOLLOUT) && c->slot && c->slot->len)
					flush_resp(c->slot);
				if (!c->dead && (e & EPOLLIN) && !c->waiting && (!c->slot || !c->len))
					client_in(c);
			} else {
				struct slot *s = evs[i].data.ptr;

				if (s->fd < 0)
					continue;
				if (e & (EPOLLHUP | EPOLLERR)) {
					slot_reset(s);
					continue;
				}
				if ((e & EPOLLOUT) && s->owner && s->owner->len)
					flush_req(s->owner);
				if (s->fd >= 0 && (e & EPOLLIN) && s->len == 0)
					slot_in(s);
			}
		}
		while (dead_list) {
			struct client *c = dead_list;

			dead_list = c->dnext;
			free(c);
		}
		if (slots_down)
			for (i = 0; i < nmux; i++)
				for (j = 0; j < nslots; j++)
					if (muxes[i].slots[j].fd < 0)
						slot_connect(&muxes[i].slots[j]);
	}
	fprintf(stderr, "umux: accepted %llu closed %llu; requests %llu responses %llu; waited for a "
		"slot %llu times; backend connections reset %llu (clients reset %llu); bad frames %llu\n",
		st.accepted, st.closed, st.requests, st.responses, st.waits, st.slot_resets,
		st.client_resets, st.bad_frames);
	return 0;
}
