// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * kcmserver: an AF_KCM echo server for tests/bench/kmux.sh, the kernel's own
 * connection multiplexor as the anchor for kmux (the KCM cover letter's
 * kcmperf, server side).
 *
 *   kcmserver HOST:PORT [--buf BYTES]
 *
 * Accepts TCP connections; each one gets an AF_KCM multiplexor of its own
 * (socket(AF_KCM, SOCK_DGRAM, KCMPROTO_CONNECTED)) and is attached to it with
 * SIOCKCMATTACH and a BPF_PROG_TYPE_SOCKET_FILTER parser that returns the
 * message length from a 4-byte big-endian field at offset 0 (kpperf rr
 * --frame len4: the length of the whole message, header included). Every
 * whole message received on the KCM socket is sent back on it.
 *
 * Why one multiplexor per TCP connection: KCM sends a message on whichever
 * attached TCP socket is free, not on the one the request came in on, so with
 * several TCP connections on one multiplexor replies would cross between
 * clients (kpperf checks every echoed byte and would fail). One KCM socket
 * and one TCP socket per multiplexor keeps every reply on its connection;
 * this is how kmux.sh measures KCM.
 *
 * The parser is three hand-assembled instructions loaded with bpf() (no
 * libbpf in a bench tool): r6 = ctx; r0 = ntohl(*(u32 *)(skb + 0))
 * (BPF_LD|BPF_ABS|BPF_W); exit. KCM runs it on the skb strparser is
 * assembling, and offset 0 of that skb is the message's first byte only when
 * the message starts its skb: two messages in one TCP segment break the
 * framing (SOCKMAP-NOTES, "KCM's own parser has the same offset trap").
 * Request/response with one request in flight per connection (kpperf rr)
 * never puts two messages in one skb, so the echo holds there; pipelined
 * senders would not work with this parser.
 *
 * Buffers: strparser drops a message larger than the TCP socket's receive
 * buffer and a 1 MB message stalls with the defaults, so each TCP socket's
 * SO_RCVBUFFORCE/SO_SNDBUFFORCE and each KCM socket's are raised (root)
 * before attaching (default 4 MiB each).
 *
 * One thread, one level-triggered epoll loop over the KCM sockets (and the
 * TCP sockets for their close: KCM reports a state change of an attached TCP
 * socket as EPOLLERR on it), like kpperf's own echo server. Replies are sent
 * blocking; the KCM send buffer holds a whole message, so a send does not
 * wait for the peer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/kcm.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AF_KCM
#define AF_KCM 41
#endif
#ifndef SIOCKCMATTACH
#define SIOCKCMATTACH (SIOCPROTOPRIVATE + 0)
#endif

#define MAX_MSG		(16u << 20)

struct conn {
	int tcp, kcm;
	int tag_tcp, tag_kcm;	/* epoll cookies point here */
	unsigned long long msgs;
};

static int listen_tag;
static int bufsize = 4 << 20;
static unsigned char *buf;
static unsigned long long total_msgs, total_conns;

static int load_parser(void)
{
	static char log[4096];
	struct bpf_insn insns[] = {
		/* r6 = r1 (LD_ABS takes the skb from r6) */
		{ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_6, .src_reg = BPF_REG_1 },
		/* r0 = ntohl(*(u32 *)(skb->data + 0)); out of bounds: the program returns 0 */
		{ .code = BPF_LD | BPF_ABS | BPF_W, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	union bpf_attr a;
	int fd;

	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
	a.insns = (unsigned long)insns;
	a.insn_cnt = sizeof(insns) / sizeof(insns[0]);
	a.license = (unsigned long)"GPL";
	a.log_buf = (unsigned long)log;
	a.log_size = sizeof(log);
	a.log_level = 1;
	fd = syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof(a));
	if (fd < 0)
		fprintf(stderr, "kcmserver: BPF_PROG_LOAD: %s\n%s", strerror(errno), log);
	return fd;
}

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

static void setbuf_force(int fd, const char *what)
{
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsize, sizeof(bufsize)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsize, sizeof(bufsize)))
		fprintf(stderr, "kcmserver: %s: SO_*BUFFORCE: %s\n", what, strerror(errno));
}

static void conn_close(int ep, struct conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->kcm, NULL);
	epoll_ctl(ep, EPOLL_CTL_DEL, c->tcp, NULL);
	close(c->kcm);	/* the last KCM socket of its mux: the TCP socket is unattached */
	close(c->tcp);
	free(c);
}

static void on_accept(int ep, int lfd, int prog)
{
	for (;;) {
		struct kcm_attach att;
		struct epoll_event ev;
		struct conn *c;
		int one = 1, fd, kfd;

		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				fprintf(stderr, "kcmserver: accept: %s\n", strerror(errno));
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setbuf_force(fd, "tcp");
		kfd = socket(AF_KCM, SOCK_DGRAM | SOCK_CLOEXEC, KCMPROTO_CONNECTED);
		if (kfd < 0) {
			fprintf(stderr, "kcmserver: socket(AF_KCM): %s\n", strerror(errno));
			close(fd);
			continue;
		}
		setbuf_force(kfd, "kcm");
		att.fd = fd;
		att.bpf_fd = prog;
		if (ioctl(kfd, SIOCKCMATTACH, &att)) {
			fprintf(stderr, "kcmserver: SIOCKCMATTACH: %s\n", strerror(errno));
			close(kfd);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(kfd);
			close(fd);
			continue;
		}
		c->tcp = fd;
		c->tag_tcp = 1;
		c->kcm = kfd;
		ev.events = EPOLLIN;
		ev.data.ptr = &c->tag_kcm;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, kfd, &ev)) {
			fprintf(stderr, "kcmserver: epoll: %s\n", strerror(errno));
			close(kfd);
			close(fd);
			free(c);
			continue;
		}
		/* only its close: EPOLLERR/EPOLLHUP are always reported */
		ev.events = EPOLLRDHUP;
		ev.data.ptr = &c->tag_tcp;
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
		total_conns++;
	}
}

/* Every whole message waiting on the KCM socket, each sent straight back. */
static int on_kcm(struct conn *c)
{
	for (;;) {
		ssize_t n = recv(c->kcm, buf, MAX_MSG, MSG_DONTWAIT), m;

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			return -1;
		}
		if (n == 0)
			return -1;
		do
			m = send(c->kcm, buf, n, MSG_NOSIGNAL);
		while (m < 0 && errno == EINTR);
		if (m != n) {
			fprintf(stderr, "kcmserver: send of %zd bytes: %s\n", n,
				m < 0 ? strerror(errno) : "short");
			return -1;
		}
		c->msgs++;
		total_msgs++;
	}
}

static volatile sig_atomic_t stop;
static void on_signal(int sig) { stop = 1; }

int main(int argc, char **argv)
{
	struct epoll_event evs[256], ev;
	struct sockaddr_in sin;
	struct rlimit rl;
	int i, lfd, ep, prog, one = 1;

	if (argc < 2 || parse_hostport(argv[1], &sin)) {
		fprintf(stderr, "usage: kcmserver HOST:PORT [--buf BYTES]\n");
		return 64;
	}
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--buf") && i + 1 < argc)
			bufsize = atoi(argv[++i]);
		else {
			fprintf(stderr, "kcmserver: unknown argument '%s'\n", argv[i]);
			return 64;
		}
	}
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	buf = malloc(MAX_MSG);
	if (!buf)
		return 1;

	/* Fail early, before the listener exists, if this kernel has no KCM. */
	i = socket(AF_KCM, SOCK_DGRAM, KCMPROTO_CONNECTED);
	if (i < 0) {
		fprintf(stderr, "kcmserver: socket(AF_KCM): %s (no kcm module?)\n", strerror(errno));
		return 1;
	}
	close(i);
	prog = load_parser();
	if (prog < 0)
		return 1;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) || listen(lfd, 4096)) {
		fprintf(stderr, "kcmserver: %s: %s\n", argv[1], strerror(errno));
		return errno == EADDRINUSE ? 2 : 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.events = EPOLLIN;
	ev.data.ptr = &listen_tag;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev)) {
		fprintf(stderr, "kcmserver: epoll: %s\n", strerror(errno));
		return 1;
	}
	fprintf(stderr, "kcmserver: listening on %s, one KCM mux per connection, buffers %d\n",
		argv[1], bufsize);

	while (!stop) {
		int n = epoll_wait(ep, evs, 256, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "kcmserver: epoll_wait: %s\n", strerror(errno));
			return 1;
		}
		for (i = 0; i < n; i++) {
			int *tag = evs[i].data.ptr;
			struct conn *c;

			if (tag == &listen_tag) {
				on_accept(ep, lfd, prog);
				continue;
			}
			/* closed connections are freed at the end of a batch */
			if (!tag)
				continue;
			if (*tag) {	/* the TCP socket: closed or failed */
				c = (struct conn *)((char *)tag - offsetof(struct conn, tag_tcp));
			} else {
				c = (struct conn *)((char *)tag - offsetof(struct conn, tag_kcm));
				if (!on_kcm(c))
					continue;
			}
			/* drop any later event of this batch for c before freeing it */
			for (int j = i + 1; j < n; j++)
				if (evs[j].data.ptr == &c->tag_kcm || evs[j].data.ptr == &c->tag_tcp)
					evs[j].data.ptr = NULL;
			conn_close(ep, c);
		}
	}
	fprintf(stderr, "kcmserver: %llu connections, %llu messages echoed\n", total_conns,
		total_msgs);
	return 0;
}
