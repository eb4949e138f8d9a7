// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tlsecho: the TLS agent (kptlsd) under test, without kproxyd.
 *
 *   tlsecho --probe
 *	print whether this kernel has kTLS (exit 0) or the sentence why not (exit 1)
 *   tlsecho server --listen URI --cert F --key F [--cert F --key F ...] [OPTIONS]
 *	accept TLS clients; each socket goes to the agent, is armed as soon as
 *	it is handshaken (there is no sockmap here), then echoes what it reads
 *	through kTLS, or with --http FILE answers one HTTP request with FILE.
 *	One line per event on stdout: "conn N handshaken|armed KEY=VALUE...",
 *	"conn N failed: REASON", "conn N closed echoed=BYTES".
 *   tlsecho client --connect URI [--ca F] [--sni NAME] [--insecure] [OPTIONS]
 *	originate TLS through the agent, then send --bytes of a pattern through
 *	kTLS and check every byte that comes back (an echo server). Exit 0 if
 *	all came back intact, 1 if the handshake or arming failed, 3 otherwise.
 *
 * Options for both: --alpn P (repeat), --ciphers LIST, --versions 1.2|1.3,
 * --timeout MS (handshake), --agent PATH (default ../kptlsd from this
 * binary), --max-handshakes N, -v. Server: --sni-strict, --close-after N
 * (close after echoing N bytes), --http FILE. Client: --bytes N (default 1 MiB).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/tls.h>

#include "tlsagent.h"
#include "uri.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

#define REC_ALERT	21
#define REC_HANDSHAKE	22
#define REC_DATA	23
#define BUF_SIZE	(64 * 1024)

static struct {
	const char *uri;
	const char *agent;
	struct kp_tls_ctx_conf ctx;
	unsigned int max_handshakes;
	unsigned long long bytes;
	unsigned long long close_after;
	const char *http;
	int verbose;
} o = { .bytes = 1 << 20 };

static __u64 mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/*
 * Byte @i of the test pattern: not periodic, so a lost or repeated block
 * shows; text without NULs, lines of 76, because gnutls-serv --echo treats
 * what it echoes as a C string.
 */
static unsigned char pattern(unsigned long long i)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	__u64 z = i / 8 + 0x9E3779B97F4A7C15ULL;

	if (i % 77 == 76)
		return '\n';
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	z ^= z >> 31;
	return b64[(z >> ((i % 8) * 6)) & 63];
}

static void print_info(const char *what, __u64 id, const struct kp_tls_info *i)
{
	printf("conn %llu %s version=%s cipher=%s alpn=%s sni=%s resumed=%s tx=%s rx=%s\n",
	       (unsigned long long)id, what, i->version_name, i->cipher_name,
	       i->alpn[0] ? i->alpn : "-", i->sni[0] ? i->sni : "-", i->resumed ? "yes" : "no",
	       i->tx ? "yes" : "no", i->rx ? "yes" : "no");
}

/* Read one record's worth of plaintext; *type gets the TLS record type. */
static ssize_t ktls_recv(int fd, void *buf, size_t len, int *type)
{
	union {
		char b[CMSG_SPACE(sizeof(unsigned char))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			    .msg_controllen = sizeof(u.b) };
	struct cmsghdr *c;
	ssize_t n;

	n = recvmsg(fd, &m, MSG_DONTWAIT);
	*type = REC_DATA;
	if (n < 0)
		return -errno;
	c = CMSG_FIRSTHDR(&m);
	if (c && c->cmsg_level == SOL_TLS && c->cmsg_type == TLS_GET_RECORD_TYPE)
		*type = *(unsigned char *)CMSG_DATA(c);
	return n;
}

/* A TLS close_notify alert through kTLS, then FIN. */
static void ktls_close_notify(int fd)
{
	unsigned char alert[2] = { 1, 0 };	/* warning, close_notify */
	union {
		char b[CMSG_SPACE(sizeof(unsigned char))];
		struct cmsghdr align;
	} u = {};
	struct iovec iov = { .iov_base = alert, .iov_len = sizeof(alert) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			    .msg_controllen = sizeof(u.b) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);

	c->cmsg_level = SOL_TLS;
	c->cmsg_type = TLS_SET_RECORD_TYPE;
	c->cmsg_len = CMSG_LEN(sizeof(unsigned char));
	*(unsigned char *)CMSG_DATA(c) = REC_ALERT;
	sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);
}

static struct kp_tls_agent *agent_start(char *argv0)
{
	struct kp_tls_agent_opts ao = { .exe = o.agent, .max_handshakes = o.max_handshakes,
					.verbose = o.verbose };
	char path[PATH_MAX], err[KP_TLS_REASON_MAX];
	struct kp_tls_agent *a;
	ssize_t n;

	if (!ao.exe) {
		/* build/tests/tlsecho -> build/kptlsd */
		n = readlink("/proc/self/exe", path, sizeof(path) - 16);
		if (n > 0) {
			path[n] = '\0';
			*strrchr(path, '/') = '\0';
			strcat(path, "/../kptlsd");
			ao.exe = path;
		}
	}
	a = kp_tls_agent_start(&ao, err, sizeof(err));
	if (!a) {
		fprintf(stderr, "tlsecho: %s\n", err);
		exit(3);
	}
	printf("agent pid %d\n", kp_tls_agent_pid(a));
	return a;
}

static __u32 ctx_add(struct kp_tls_agent *a)
{
	char err[KP_TLS_REASON_MAX];
	__u32 id;
	int ret = kp_tls_ctx_add(a, &o.ctx, &id, err, sizeof(err));

	if (ret) {
		printf("ctx failed: %s\n", err);
		fflush(stdout);
		kp_tls_agent_stop(a);
		exit(1);
	}
	printf("ctx %u\n", id);
	return id;
}

/* ---------------------------------------------------------------- server */

enum { C_TLS = 1, C_DATA };

struct conn {
	int kind;			/* epoll tag: 0 listener, 1 agent, 2 signal, else conn */
	int fd;
	__u64 id;
	int state;
	unsigned char *buf;		/* pending output */
	size_t len, off;
	unsigned long long echoed;
	bool peer_done;
	char req[4096];			/* --http: the request so far */
	size_t reqlen;
	bool responded;
	const unsigned char *body;	/* --http: what is left to send */
	size_t bodylen;
	struct conn *next;
};

static struct conn *conns;
static int epfd;
static const unsigned char *http_data;
static size_t http_len;

static struct conn *conn_find(__u64 id)
{
	struct conn *c;

	for (c = conns; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

static void conn_close(struct conn *c, bool notify)
{
	struct conn **pp;

	if (c->state == C_DATA) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
		if (notify)
			ktls_close_notify(c->fd);
		printf("conn %llu closed echoed=%llu\n", (unsigned long long)c->id, c->echoed);
	}
	close(c->fd);
	for (pp = &conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	free(c->buf);
	free(c);
}

static void conn_want(struct conn *c, __u32 ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };

	epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
}

/* Move bytes; false once the connection is closed. */
static bool conn_io(struct conn *c)
{
	int type;
	ssize_t n;

	for (;;) {
		/* Output first: never read more than can be written back. */
		while (c->off < c->len || c->bodylen) {
			const unsigned char *p = c->off < c->len ? c->buf + c->off : c->body;
			size_t l = c->off < c->len ? c->len - c->off : c->bodylen;

			n = send(c->fd, p, l, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n < 0 && errno == EAGAIN) {
				conn_want(c, EPOLLOUT);
				return true;
			}
			if (n < 0) {
				printf("conn %llu failed: write: %s\n", (unsigned long long)c->id,
				       strerror(errno));
				conn_close(c, false);
				return false;
			}
			if (c->off < c->len) {
				c->off += n;
				c->echoed += n;
			} else {
				c->body += n;
				c->bodylen -= n;
			}
		}
		c->off = c->len = 0;
		if ((o.close_after && c->echoed >= o.close_after) || c->peer_done ||
		    (o.http && c->responded)) {
			conn_close(c, true);
			return false;
		}
		n = ktls_recv(c->fd, c->buf, BUF_SIZE, &type);
		if (n == -EAGAIN) {
			conn_want(c, EPOLLIN);
			return true;
		}
		if (n < 0) {
			printf("conn %llu failed: read: %s\n", (unsigned long long)c->id,
			       strerror(-n));
			conn_close(c, false);
			return false;
		}
		if (n == 0) {
			c->peer_done = true;
			continue;
		}
		if (type == REC_ALERT) {
			/* close_notify, or a fatal alert: either way the peer is done. */
			if (n >= 2 && c->buf[1] != 0)
				printf("conn %llu alert %u\n", (unsigned long long)c->id, c->buf[1]);
			c->peer_done = true;
			continue;
		}
		if (type != REC_DATA) {
			printf("conn %llu record type %d ignored (%zd bytes)\n",
			       (unsigned long long)c->id, type, n);
			continue;
		}
		if (!o.http) {
			c->len = n;
			continue;
		}
		if (c->reqlen + n >= sizeof(c->req)) {
			printf("conn %llu failed: HTTP request too long\n", (unsigned long long)c->id);
			conn_close(c, false);
			return false;
		}
		memcpy(c->req + c->reqlen, c->buf, n);
		c->reqlen += n;
		c->req[c->reqlen] = '\0';
		if (!c->responded && strstr(c->req, "\r\n\r\n")) {
			c->len = snprintf((char *)c->buf, BUF_SIZE, "HTTP/1.1 200 OK\r\n"
					  "Content-Length: %zu\r\nConnection: close\r\n\r\n",
					  http_len);
			c->body = http_data;
			c->bodylen = http_len;
			c->responded = true;
			/* The header is not payload: do not count it as echoed. */
			c->echoed -= c->len;
		}
	}
}

static void on_event(struct kp_tls_agent *a, const struct kp_tls_event *ev)
{
	struct conn *c = conn_find(ev->conn_id);
	struct epoll_event e = { .events = EPOLLIN };

	if (!c)
		return;
	switch (ev->type) {
	case KP_TLS_EV_HANDSHAKEN:
		print_info("handshaken", ev->conn_id, &ev->info);
		/* No sockmap here: arm at once. */
		if (kp_tls_arm(a, ev->conn_id)) {
			printf("conn %llu failed: cannot send ARM\n", (unsigned long long)c->id);
			conn_close(c, false);
		}
		break;
	case KP_TLS_EV_ARMED:
		print_info("armed", ev->conn_id, &ev->info);
		c->state = C_DATA;
		c->buf = malloc(BUF_SIZE);
		e.data.ptr = c;
		if (!c->buf || epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &e)) {
			printf("conn %llu failed: %s\n", (unsigned long long)c->id, strerror(errno));
			c->state = C_TLS;
			conn_close(c, false);
			break;
		}
		conn_io(c);
		break;
	case KP_TLS_EV_FAILED:
		printf("conn %llu failed: %s\n", (unsigned long long)c->id, ev->reason);
		conn_close(c, false);
		break;
	}
}

static int run_server(char *argv0)
{
	static int tag_listen = 0, tag_agent = 1, tag_sig = 2;
	char err[256], buf[KP_URI_MAX];
	struct epoll_event e = { .events = EPOLLIN }, evs[64];
	struct kp_tls_event ev;
	struct kp_tls_agent *a;
	struct kp_uri u;
	__u64 next_id = 1;
	int lfd, sfd, one = 1, i, n, ret;
	sigset_t sigs;
	__u32 ctx;

	if (!o.uri || kp_uri_parse(o.uri, &u, err, sizeof(err))) {
		fprintf(stderr, "tlsecho: --listen: %s\n", o.uri ? err : "missing");
		return 2;
	}
	if (o.http) {
		int fd = open(o.http, O_RDONLY);
		struct stat st;

		if (fd < 0 || fstat(fd, &st)) {
			fprintf(stderr, "tlsecho: %s: %s\n", o.http, strerror(errno));
			return 2;
		}
		http_len = st.st_size;
		http_data = http_len ? mmap(NULL, http_len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
		close(fd);
		if (http_data == MAP_FAILED) {
			fprintf(stderr, "tlsecho: mmap %s: %s\n", o.http, strerror(errno));
			return 2;
		}
	}
	o.ctx.role = KP_TLS_SERVER;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);

	lfd = socket(u.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&u.addr, u.addrlen) || listen(lfd, 1024)) {
		fprintf(stderr, "tlsecho: listen %s: %s\n", o.uri, strerror(errno));
		return 3;
	}
	a = agent_start(argv0);
	ctx = ctx_add(a);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	e.data.ptr = &tag_listen;
	epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &e);
	e.data.ptr = &tag_agent;
	epoll_ctl(epfd, EPOLL_CTL_ADD, kp_tls_agent_fd(a), &e);
	e.data.ptr = &tag_sig;
	epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &e);
	printf("listening %s\n", kp_uri_format(KP_URI_TCP, (struct sockaddr *)&u.addr, buf,
					       sizeof(buf)));
	fflush(stdout);

	for (;;) {
		n = epoll_wait(epfd, evs, 64, -1);
		if (n < 0 && errno == EINTR)
			continue;
		for (i = 0; i < n; i++) {
			int *tag = evs[i].data.ptr;

			if (tag == &tag_sig)
				goto out;
			if (tag == &tag_listen) {
				for (;;) {
					int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
					struct conn *c;

					if (fd < 0)
						break;
					c = calloc(1, sizeof(*c));
					c->kind = 3;
					c->fd = fd;
					c->id = next_id++;
					c->state = C_TLS;
					c->next = conns;
					conns = c;
					ret = kp_tls_handshake(a, ctx, c->id, fd, NULL);
					if (ret) {
						printf("conn %llu failed: cannot hand over: %s\n",
						       (unsigned long long)c->id, strerror(-ret));
						conn_close(c, false);
					}
				}
			} else if (tag == &tag_agent) {
				while ((ret = kp_tls_agent_recv(a, &ev)) > 0)
					on_event(a, &ev);
				if (ret < 0) {
					printf("agent gone: %s\n", strerror(-ret));
					goto out;
				}
			} else {
				conn_io((struct conn *)tag);
			}
		}
		fflush(stdout);
	}
out:
	fflush(stdout);
	kp_tls_agent_stop(a);
	while (conns)
		conn_close(conns, false);
	return 0;
}

/* ---------------------------------------------------------------- client */

static int transfer(int fd)
{
	unsigned long long sent = 0, got = 0;
	unsigned char *out = malloc(BUF_SIZE), *in = malloc(BUF_SIZE);
	struct pollfd p = { .fd = fd };
	__u64 start = mono_ms();
	size_t olen = 0, ooff = 0, i;
	int type, ret = 3;
	ssize_t n;

	while (got < o.bytes) {
		if (ooff == olen && sent < o.bytes) {
			olen = o.bytes - sent < BUF_SIZE ? o.bytes - sent : BUF_SIZE;
			for (i = 0; i < olen; i++)
				out[i] = pattern(sent + i);
			ooff = 0;
		}
		p.events = POLLIN | (ooff < olen ? POLLOUT : 0);
		if (poll(&p, 1, 30000) <= 0) {
			printf("failed: no progress for 30 s (%llu of %llu bytes back)\n", got, o.bytes);
			goto out;
		}
		if (ooff < olen && (p.revents & POLLOUT)) {
			n = send(fd, out + ooff, olen - ooff, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n < 0 && errno != EAGAIN) {
				printf("failed: write: %s\n", strerror(errno));
				goto out;
			}
			if (n > 0) {
				ooff += n;
				sent += n;
			}
		}
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = ktls_recv(fd, in, BUF_SIZE, &type);
		if (n == -EAGAIN)
			continue;
		if (n < 0) {
			printf("failed: read: %s\n", strerror(-n));
			goto out;
		}
		if (n == 0 || type == REC_ALERT) {
			printf("failed: the server closed after %llu of %llu bytes\n", got, o.bytes);
			goto out;
		}
		if (type != REC_DATA)
			continue;	/* a post-handshake message: not data */
		if (got + n > sent) {
			printf("failed: %llu bytes back, only %llu sent\n", got + n, sent);
			goto out;
		}
		for (i = 0; i < (size_t)n; i++) {
			if (in[i] != pattern(got + i)) {
				printf("failed: byte %llu is 0x%02x, sent 0x%02x\n", got + i, in[i],
				       pattern(got + i));
				goto out;
			}
		}
		got += n;
	}
	printf("ok %llu bytes sent and verified in %llu ms\n", got,
	       (unsigned long long)(mono_ms() - start));
	ktls_close_notify(fd);
	ret = 0;
out:
	free(out);
	free(in);
	return ret;
}

static int run_client(char *argv0)
{
	char err[256];
	struct kp_tls_event ev;
	struct kp_tls_agent *a;
	struct kp_uri u;
	struct pollfd p;
	__u64 deadline;
	int fd, ret;
	__u32 ctx;

	if (!o.uri || kp_uri_parse(o.uri, &u, err, sizeof(err))) {
		fprintf(stderr, "tlsecho: --connect: %s\n", o.uri ? err : "missing");
		return 2;
	}
	o.ctx.role = KP_TLS_CLIENT;
	a = agent_start(argv0);
	ctx = ctx_add(a);
	fd = socket(u.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&u.addr, u.addrlen)) {
		printf("failed: connect %s: %s\n", o.uri, strerror(errno));
		kp_tls_agent_stop(a);
		return 3;
	}
	ret = kp_tls_handshake(a, ctx, 1, fd, NULL);
	if (ret) {
		printf("failed: cannot hand over: %s\n", strerror(-ret));
		kp_tls_agent_stop(a);
		return 3;
	}
	deadline = mono_ms() + 60000;
	p.fd = kp_tls_agent_fd(a);
	p.events = POLLIN;
	for (ret = -1; ret < 0;) {
		if (mono_ms() > deadline) {
			printf("failed: no answer from the agent in 60 s\n");
			ret = 3;
			break;
		}
		poll(&p, 1, 1000);
		while (ret < 0 && kp_tls_agent_recv(a, &ev) > 0) {
			if (ev.type == KP_TLS_EV_HANDSHAKEN) {
				print_info("handshaken", ev.conn_id, &ev.info);
				kp_tls_arm(a, ev.conn_id);
			} else if (ev.type == KP_TLS_EV_ARMED) {
				print_info("armed", ev.conn_id, &ev.info);
				fflush(stdout);
				ret = transfer(fd);
			} else {
				printf("conn %llu failed: %s\n", (unsigned long long)ev.conn_id,
				       ev.reason);
				ret = 1;
			}
		}
	}
	fflush(stdout);
	close(fd);
	kp_tls_agent_stop(a);
	return ret;
}

/* ---------------------------------------------------------------- main */

static unsigned long long num(const char *s, const char *opt)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || !*s) {
		fprintf(stderr, "tlsecho: bad number '%s' for %s\n", s, opt);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "probe", no_argument, NULL, 'P' },
		{ "listen", required_argument, NULL, 'l' },
		{ "connect", required_argument, NULL, 'c' },
		{ "cert", required_argument, NULL, 'C' },
		{ "key", required_argument, NULL, 'K' },
		{ "ca", required_argument, NULL, 'A' },
		{ "sni", required_argument, NULL, 'n' },
		{ "insecure", no_argument, NULL, 'I' },
		{ "sni-strict", no_argument, NULL, 'S' },
		{ "alpn", required_argument, NULL, 'a' },
		{ "ciphers", required_argument, NULL, 'x' },
		{ "versions", required_argument, NULL, 'V' },
		{ "timeout", required_argument, NULL, 't' },
		{ "agent", required_argument, NULL, 'g' },
		{ "max-handshakes", required_argument, NULL, 'm' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "close-after", required_argument, NULL, 'z' },
		{ "http", required_argument, NULL, 'H' },
		{ "verbose", no_argument, NULL, 'v' },
		{}
	};
	const char *mode = NULL;
	char why[KP_TLS_REASON_MAX];
	int opt, ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		switch (opt) {
		case 'P':
			ret = kp_ktls_probe(why, sizeof(why));
			if (ret == 1)
				printf("kTLS: yes\n");
			else
				printf("%s\n", why);
			return ret == 1 ? 0 : ret == 0 ? 1 : 3;
		case 'l': o.uri = optarg; break;
		case 'c': o.uri = optarg; break;
		case 'C':
			if (o.ctx.ncerts == KP_TLS_MAX_CERTS)
				return fprintf(stderr, "tlsecho: too many --cert\n"), 2;
			o.ctx.cert[o.ctx.ncerts++] = optarg;
			break;
		case 'K':
			if (!o.ctx.ncerts || o.ctx.key[o.ctx.ncerts - 1])
				return fprintf(stderr, "tlsecho: --key comes after its --cert\n"), 2;
			o.ctx.key[o.ctx.ncerts - 1] = optarg;
			break;
		case 'A': o.ctx.ca_file = optarg; break;
		case 'n': o.ctx.server_name = optarg; break;
		case 'I': o.ctx.flags |= KP_TLS_INSECURE; break;
		case 'S': o.ctx.flags |= KP_TLS_SNI_STRICT; break;
		case 'a':
			if (o.ctx.nalpn == KP_TLS_MAX_ALPN)
				return fprintf(stderr, "tlsecho: too many --alpn\n"), 2;
			o.ctx.alpn[o.ctx.nalpn++] = optarg;
			break;
		case 'x': o.ctx.ciphers = optarg; break;
		case 'V':
			o.ctx.versions = (strstr(optarg, "1.2") ? KP_TLS_V12 : 0) |
					 (strstr(optarg, "1.3") ? KP_TLS_V13 : 0);
			if (!o.ctx.versions)
				return fprintf(stderr, "tlsecho: --versions takes 1.2, 1.3 or both\n"), 2;
			break;
		case 't': o.ctx.timeout_ms = num(optarg, "--timeout"); break;
		case 'g': o.agent = optarg; break;
		case 'm': o.max_handshakes = num(optarg, "--max-handshakes"); break;
		case 'b': o.bytes = num(optarg, "--bytes"); break;
		case 'z': o.close_after = num(optarg, "--close-after"); break;
		case 'H': o.http = optarg; break;
		case 'v': o.verbose++; break;
		default:
			return 2;
		}
	}
	if (optind < argc)
		mode = argv[optind];
	signal(SIGPIPE, SIG_IGN);
	if (mode && !strcmp(mode, "server"))
		return run_server(argv[0]);
	if (mode && !strcmp(mode, "client"))
		return run_client(argv[0]);
	fprintf(stderr, "usage: tlsecho --probe | server --listen URI --cert F --key F ... | "
		"client --connect URI ... (see the comment at the top of tests/tools/tlsecho.c)\n");
	return 2;
}
