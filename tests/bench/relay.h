/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * relay.h: the event loop shared by the two baseline proxies of the benchmark,
 * rwproxy.c (read/write through a 64 KiB buffer) and spliceproxy.c (splice
 * through a pipe). Each of those files defines how one direction moves bytes
 * (struct pipe_ops) and calls relay_main(); everything else, accepting,
 * connecting, half-close and teardown, is here so that the two proxies differ
 * only in the copy.
 *
 * Threading model: one thread, one epoll instance, non-blocking sockets,
 * edge-triggered. Every pump runs until a system call says EAGAIN (or EOF, or
 * an error), so an edge is never lost: when a direction stops because its
 * destination is full it is resumed by the destination's EPOLLOUT, when it
 * stops because its source is empty by the source's EPOLLIN, and any event on
 * either socket of a pair pumps both directions.
 *
 * Half-close: when a source reads EOF and everything read from it has been
 * written, the destination is shut down for writing; the pair is closed when
 * both directions have done that, or at the first error (then with a reset,
 * as a proxy that lost one side cannot finish the other).
 *
 * This header is only meant to be included once, by one .c file.
 */
#ifndef RELAY_H
#define RELAY_H

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define RELAY_BUF	(64 * 1024)
#define RELAY_EVENTS	256

/* One direction: bytes read from src are written to dst. */
struct dir {
	int src, dst;
	bool eof;		/* src said EOF */
	bool done;		/* dst shut down for writing */
	void *state;		/* the copy's own state: a buffer or a pipe */
};

struct pipe_ops {
	const char *name;
	/* Allocate d->state; 0 or -errno. */
	int (*init)(struct dir *d);
	void (*fini)(struct dir *d);
	/*
	 * Move bytes from d->src to d->dst until a call would block. Sets d->eof
	 * when src reached EOF and everything has been written. Returns 0, or
	 * -errno on a socket error (the pair is then torn down).
	 */
	int (*pump)(struct dir *d);
};

struct pair;

/* What epoll hands back: a socket and the pair it belongs to. */
struct end {
	struct pair *p;
	int fd;
};

struct pair {
	struct end client, backend;
	struct dir up, down;	/* up: client to backend, down: backend to client */
	bool connecting;
	bool dead;
	struct pair *next_dead;
};

static const struct pipe_ops *ops;
static struct sockaddr_storage backend_addr;
static socklen_t backend_len;
static int epfd;
static struct pair *dead_list;
static unsigned long long n_accepted, n_failed;

static void die(const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", ops->name, what, strerror(errno));
	exit(1);
}

/*
 * "HOST:PORT" or "[V6HOST]:PORT" into a socket address; names are resolved,
 * since it costs nothing at start-up.
 */
static int parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *port, *colon;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	size_t n;
	int err;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':')
			return -1;
		n = end - s - 1;
		port = end + 2;
		s++;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		n = colon - s;
		port = colon + 1;
	}
	if (n >= sizeof(host) || !*port)
		return -1;
	memcpy(host, s, n);
	host[n] = 0;
	err = getaddrinfo(host, port, &hints, &res);
	if (err) {
		fprintf(stderr, "%s: %s: %s\n", ops->name, s, gai_strerror(err));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void set_nodelay(int fd)
{
	int one = 1;

	/* The request/response benchmark would otherwise measure Nagle's timer. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void pair_kill(struct pair *p, bool reset)
{
	if (p->dead)
		return;
	p->dead = true;
	if (reset) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(p->client.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		setsockopt(p->backend.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	/* close() also removes the sockets from the epoll set. */
	close(p->client.fd);
	close(p->backend.fd);
	ops->fini(&p->up);
	ops->fini(&p->down);
	/* Other events of this epoll_wait() batch may still point at p. */
	p->next_dead = dead_list;
	dead_list = p;
}

/* Half-close: pass the EOF on once everything before it has been written. */
static int dir_step(struct dir *d)
{
	int err;

	if (d->done)
		return 0;
	err = d->eof ? 0 : ops->pump(d);
	if (err)
		return err;
	if (d->eof && !d->done) {
		if (shutdown(d->dst, SHUT_WR) && errno != ENOTCONN)
			return -errno;
		d->done = true;
	}
	return 0;
}

static void pair_run(struct pair *p)
{
	int err;

	if (p->dead)
		return;
	if (p->connecting) {
		socklen_t len = sizeof(err);

		if (getsockopt(p->backend.fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
			n_failed++;
			pair_kill(p, true);
			return;
		}
		/* No error but no EPOLLOUT yet either: still connecting. */
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);

		if (getpeername(p->backend.fd, (struct sockaddr *)&peer, &plen))
			return;
		p->connecting = false;
	}
	err = dir_step(&p->up);
	if (!err)
		err = dir_step(&p->down);
	if (err) {
		pair_kill(p, true);
		return;
	}
	if (p->up.done && p->down.done)
		pair_kill(p, false);
}

static void accept_all(int lfd)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };
	struct pair *p;
	int cfd, bfd;

	for (;;) {
		cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return;
			if (errno == EMFILE || errno == ENFILE) {
				perror("accept");
				return;
			}
			die("accept");
		}
		n_accepted++;
		bfd = socket(backend_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (bfd < 0) {
			perror("socket");
			close(cfd);
			continue;
		}
		set_nodelay(cfd);
		set_nodelay(bfd);
		p = calloc(1, sizeof(*p));
		if (!p)
			die("calloc");
		p->client = (struct end){ p, cfd };
		p->backend = (struct end){ p, bfd };
		p->up = (struct dir){ .src = cfd, .dst = bfd };
		p->down = (struct dir){ .src = bfd, .dst = cfd };
		if (ops->init(&p->up) || ops->init(&p->down))
			die("buffer");
		if (connect(bfd, (struct sockaddr *)&backend_addr, backend_len) == 0)
			p->connecting = false;
		else if (errno == EINPROGRESS)
			p->connecting = true;
		else {
			n_failed++;
			pair_kill(p, true);
			continue;
		}
		ev.data.ptr = &p->client;
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, cfd, &ev))
			die("epoll_ctl");
		ev.data.ptr = &p->backend;
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, bfd, &ev))
			die("epoll_ctl");
		/* Registration reported nothing yet: data may already be waiting. */
		pair_run(p);
	}
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static int relay_main(int argc, char **argv, const struct pipe_ops *o)
{
	struct epoll_event evs[RELAY_EVENTS], ev = { .events = EPOLLIN };
	struct sockaddr_storage laddr;
	socklen_t llen;
	struct sigaction sa = { .sa_handler = on_signal };
	int lfd, one = 1, n, i;

	ops = o;
	if (argc != 3) {
		fprintf(stderr, "usage: %s LISTEN_HOST:PORT BACKEND_HOST:PORT\n"
			"  IPv6 addresses in brackets: [::1]:8000\n", o->name);
		return 64;
	}
	if (parse_hostport(argv[1], &laddr, &llen) || parse_hostport(argv[2], &backend_addr,
								       &backend_len)) {
		fprintf(stderr, "%s: bad address; want HOST:PORT or [V6HOST]:PORT\n", o->name);
		return 64;
	}
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	lfd = socket(laddr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&laddr, llen)) {
		fprintf(stderr, "%s: cannot listen on %s: %s\n", o->name, argv[1], strerror(errno));
		return errno == EADDRINUSE ? 2 : 1;
	}
	if (listen(lfd, 1024))
		die("listen");
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1");
	ev.data.ptr = NULL;	/* NULL marks the listener */
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev))
		die("epoll_ctl");
	fprintf(stderr, "%s: %s -> %s\n", o->name, argv[1], argv[2]);

	while (!stop) {
		n = epoll_wait(epfd, evs, RELAY_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (i = 0; i < n; i++) {
			struct end *e = evs[i].data.ptr;

			if (!e)
				accept_all(lfd);
			else
				pair_run(e->p);
		}
		while (dead_list) {
			struct pair *p = dead_list;

			dead_list = p->next_dead;
			free(p);
		}
	}
	fprintf(stderr, "%s: %llu connections, %llu backend failures\n", o->name, n_accepted,
		n_failed);
	return 0;
}

#endif /* RELAY_H */
