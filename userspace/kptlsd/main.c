// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * kptlsd: options, privileges, the event loop and the control socket. See
 * kptlsd.h for the threading model and tlsagent.h for the protocol.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <linux/capability.h>

#include "kptlsd.h"

#define FD_RESERVE	64	/* descriptors beyond one per handshake */

struct kpt kpt = { .epfd = -1, .ctl = -1 };

/* Messages to kproxyd wait here while its socket is full. */
struct outmsg {
	struct outmsg *next;
	size_t len;
	unsigned char data[];
};

static struct outmsg *out_head, **out_tail = &out_head;
static __u32 ctl_events;
static int ctl_tag = EV_CTL;
static bool ctl_broken;

__u64 now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

int ep_set(int fd, void *tag, __u32 *cur, __u32 events)
{
	struct epoll_event e = { .events = events, .data.ptr = tag };

	if (*cur == events)
		return 0;
	/*
	 * The descriptor's file is kproxyd's too: closing ours would not take
	 * it out of the epoll set, so it is always removed explicitly.
	 */
	if (!events) {
		if (epoll_ctl(kpt.epfd, EPOLL_CTL_DEL, fd, NULL) && errno != ENOENT)
			return -errno;
	} else if (epoll_ctl(kpt.epfd, *cur ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &e)) {
		return -errno;
	}
	*cur = events;
	return 0;
}

static void ctl_want_out(bool on)
{
	if (ep_set(kpt.ctl, &ctl_tag, &ctl_events, EPOLLIN | (on ? EPOLLOUT : 0)))
		pr_warn("epoll on the control socket: %s", strerror(errno));
}

/* Send what is queued, in order; stop at the first that does not fit. */
static void flush_out(void)
{
	while (out_head && !ctl_broken) {
		struct outmsg *m = out_head;
		ssize_t n = send(kpt.ctl, m->data, m->len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			/* kproxyd is gone: the loop sees EOF and exits. */
			ctl_broken = true;
			break;
		}
		out_head = m->next;
		if (!out_head)
			out_tail = &out_head;
		free(m);
	}
	ctl_want_out(out_head && !ctl_broken);
}

void reply(int type, __u64 id, __u32 ctx_id, int status, const void *body, size_t len)
{
	struct kp_tls_msg_hdr h = { .type = type, .status = status, .ctx_id = ctx_id,
				    .len = len, .id = id };
	struct outmsg *m = malloc(sizeof(*m) + sizeof(h) + len);

	if (!m) {
		pr_warn("out of memory: a message to kproxyd is lost");
		return;
	}
	m->next = NULL;
	m->len = sizeof(h) + len;
	memcpy(m->data, &h, sizeof(h));
	if (len)
		memcpy(m->data + sizeof(h), body, len);
	*out_tail = m;
	out_tail = &m->next;
	if (out_head == m)
		flush_out();
}

void reply_failed(__u64 conn_id, int err, const char *fmt, ...)
{
	char why[KP_TLS_REASON_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(why))
		n = sizeof(why) - 1;
	reply(KP_TLS_MSG_FAILED, conn_id, 0, err, why, n);
}

/* ---------------------------------------------------------------- requests */

static void do_ctx_add(const struct kp_tls_msg_hdr *h, const void *body)
{
	char err[KP_TLS_REASON_MAX];
	struct kpt_ctx *c = ctx_add(body, h->len, err, sizeof(err));

	if (!c) {
		pr_info("context refused: %s", err);
		reply(KP_TLS_MSG_CTX_REPLY, h->id, 0, -EINVAL, err, strlen(err));
		return;
	}
	reply(KP_TLS_MSG_CTX_REPLY, h->id, c->id, 0, NULL, 0);
}

static bool is_tcp_stream(int fd)
{
	int type = 0, proto = 0;
	socklen_t l1 = sizeof(type), l2 = sizeof(proto);

	return !getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l1) && type == SOCK_STREAM &&
	       !getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l2) && proto == IPPROTO_TCP;
}

static void do_handshake(const struct kp_tls_msg_hdr *h, const char *body, int fd)
{
	char sni[KP_TLS_NAME_MAX], why[KP_TLS_REASON_MAX];
	struct kpt_ctx *c;
	int ret;

	if (fd < 0) {
		reply_failed(h->id, -EINVAL, "HANDSHAKE came without a socket");
		return;
	}
	if (kpt.nsessions >= kpt.max_handshakes) {
		reply_failed(h->id, -EBUSY, "too many handshakes in progress (%u, the agent's "
			     "--max-handshakes); refused at once", kpt.nsessions);
		goto drop;
	}
	if (session_find(h->id)) {
		reply_failed(h->id, -EINVAL, "a handshake for connection %llu is already in "
			     "progress: connection ids must be unique", (unsigned long long)h->id);
		goto drop;
	}
	c = ctx_find(h->ctx_id);
	if (!c) {
		reply_failed(h->id, -ENOENT, "no TLS context %u in the agent", h->ctx_id);
		goto drop;
	}
	if (!is_tcp_stream(fd)) {
		reply_failed(h->id, -EINVAL, "the descriptor handed over is not a TCP socket");
		goto drop;
	}
	if (h->len >= sizeof(sni) || memchr(body, '\0', h->len)) {
		reply_failed(h->id, -EINVAL, "bad server name in HANDSHAKE");
		goto drop;
	}
	memcpy(sni, body, h->len);
	sni[h->len] = '\0';
	ret = session_start(c, h->id, fd, sni, why, sizeof(why));
	if (ret) {
		reply_failed(h->id, ret, "%s", why);
		goto drop;
	}
	return;
drop:
	close(fd);
}

/* One packet from kproxyd: 1 handled, 0 none waiting, -1 kproxyd closed the socket. */
static int ctl_read(void)
{
	static unsigned char buf[KP_TLS_MSG_MAX];
	union {
		char b[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			    .msg_controllen = sizeof(u.b) };
	const struct kp_tls_msg_hdr *h = (const void *)buf;
	struct kpt_session *s;
	struct cmsghdr *cm;
	int fd = -1, extra = 0;
	ssize_t n;

	n = recvmsg(kpt.ctl, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			int *fds = (int *)CMSG_DATA(cm);
			size_t i, nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (i = 0; i < nfd; i++) {
				if (fd < 0) {
					fd = fds[i];
				} else {
					close(fds[i]);
					extra++;
				}
			}
		}
	}
	if (n == 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if ((size_t)n < sizeof(*h) || h->len != n - sizeof(*h) || (m.msg_flags & MSG_CTRUNC) ||
	    extra) {
		pr_warn("malformed message from kproxyd (%zd bytes%s): ignored", n,
			m.msg_flags & MSG_CTRUNC || extra ? ", too many descriptors" : "");
		if (fd >= 0)
			close(fd);
		return 1;
	}
	if (h->type != KP_TLS_MSG_HANDSHAKE && fd >= 0) {
		close(fd);
		fd = -1;
	}
	switch (h->type) {
	case KP_TLS_MSG_CTX_ADD:
		do_ctx_add(h, buf + sizeof(*h));
		break;
	case KP_TLS_MSG_CTX_DEL: {
		struct kpt_ctx *c = ctx_find(h->ctx_id);

		if (c)
			ctx_del(c);
		break;
	}
	case KP_TLS_MSG_HANDSHAKE:
		do_handshake(h, (const char *)buf + sizeof(*h), fd);
		break;
	case KP_TLS_MSG_ARM:
		s = session_find(h->id);
		if (s)
			session_arm(s);
		else
			reply_failed(h->id, -ENOENT, "ARM for connection %llu, which the agent does "
				     "not have (it failed, was aborted or never came)",
				     (unsigned long long)h->id);
		break;
	case KP_TLS_MSG_ABORT:
		s = session_find(h->id);
		if (s) {
			pr_debug("conn %llu: aborted by kproxyd", (unsigned long long)h->id);
			session_free(s);
		}
		break;
	default:
		pr_warn("unknown message type %u from kproxyd: ignored", h->type);
	}
	return 1;
}

/* ---------------------------------------------------------------- process */

/*
 * No capabilities at all, and none to regain: the agent parses what peers
 * send, so it keeps only what a handshake needs. It stays uid 0, so root's
 * 0600 key files stay readable (owner permission, no CAP_DAC_OVERRIDE).
 */
static int drop_privileges(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};
	int cap;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		pr_warn("prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
		return -errno;
	}
	/* The bounding set needs CAP_SETPCAP to shrink: before capset. */
	for (cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno == EINVAL)
			break;
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (syscall(SYS_capset, &hdr, data)) {
		pr_warn("capset: cannot drop capabilities: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static void raise_nofile(unsigned int want)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r))
		return;
	if (r.rlim_cur >= want)
		return;
	r.rlim_cur = r.rlim_max == RLIM_INFINITY || r.rlim_max > want ? want : r.rlim_max;
	setrlimit(RLIMIT_NOFILE, &r);
	if (r.rlim_cur < want)
		pr_warn("RLIMIT_NOFILE allows %llu descriptors, %u handshakes need %u: expect "
			"'too many open files' before the handshake limit",
			(unsigned long long)r.rlim_cur, kpt.max_handshakes, want);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: kptlsd [OPTIONS]\n"
		"The TLS handshake agent of kproxyd, which starts it; not run by hand.\n"
		"  --fd N                 control socket (SOCK_SEQPACKET) is descriptor N (default 3)\n"
		"  --max-handshakes N     handshakes at once, beyond which new ones fail (default %d)\n"
		"  --syslog               log to syslog too\n"
		"  -v, --verbose          debug messages; twice: gnutls' too\n"
		"  -h, --help             this text\n", KP_TLS_MAX_HANDSHAKES_DEFAULT);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "fd", required_argument, NULL, 'F' },
		{ "max-handshakes", required_argument, NULL, 'm' },
		{ "syslog", no_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct kp_tls_msg_hdr hello = { .type = KP_TLS_MSG_HELLO, .status = KP_TLS_WIRE_VERSION };
	struct epoll_event evs[64];
	int verbose = 0, opt, i, n, timeout, type = 0;
	__u32 ctl;
	bool use_syslog = false, running = true;
	socklen_t tl = sizeof(type);
	unsigned long v;
	char *end;

	kpt.ctl = KP_TLS_AGENT_FD;
	kpt.max_handshakes = KP_TLS_MAX_HANDSHAKES_DEFAULT;
	LIST_INIT(&kpt.ctxs);
	while ((opt = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'F':
		case 'm':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg || v > (opt == 'F' ? 1U << 20 : 1U << 20) ||
			    (opt == 'm' && v == 0)) {
				fprintf(stderr, "kptlsd: bad number '%s' for --%s\n", optarg,
					opt == 'F' ? "fd" : "max-handshakes");
				return 2;
			}
			if (opt == 'F')
				kpt.ctl = v;
			else
				kpt.max_handshakes = v;
			break;
		case 'S':
			use_syslog = true;
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	kpt_log_init(verbose, use_syslog);

	/* Die with kproxyd; and its socket's EOF covers the race before this. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);
	if (getsockopt(kpt.ctl, SOL_SOCKET, SO_TYPE, &type, &tl) || type != SOCK_SEQPACKET) {
		fprintf(stderr, "kptlsd: descriptor %d is not a SOCK_SEQPACKET socket: kptlsd is "
			"started by kproxyd, not by hand\n", kpt.ctl);
		return 2;
	}
	/* Only the control socket and stdio are ours: nothing else leaks in. */
	for (i = 3; i < 1024; i++)
		if (i != kpt.ctl)
			close(i);
	raise_nofile(kpt.max_handshakes + FD_RESERVE);
	if (drop_privileges())
		return 3;
	kpt.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (kpt.epfd < 0) {
		pr_warn("epoll_create1: %s", strerror(errno));
		return 3;
	}
	ctl_want_out(false);
	hello.id = kpt.max_handshakes;
	reply(KP_TLS_MSG_HELLO, hello.id, 0, hello.status, NULL, 0);
	pr_debug("ready: at most %u handshakes, gnutls %s", kpt.max_handshakes,
		 gnutls_check_version(NULL));

	while (running) {
		timeout = sessions_expire();
		n = epoll_wait(kpt.epfd, evs, sizeof(evs) / sizeof(evs[0]), timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			pr_warn("epoll_wait: %s", strerror(errno));
			break;
		}
		ctl = 0;
		for (i = 0; i < n; i++) {
			int *tag = evs[i].data.ptr;

			if (*tag == EV_CTL)
				ctl = evs[i].events;
			else
				session_io((struct kpt_session *)tag, evs[i].events);
		}
		/*
		 * Requests last: ARM and ABORT free sessions, which must not
		 * happen while this batch may still hold events for them.
		 */
		if (ctl & EPOLLOUT)
			flush_out();
		if (ctl & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
			int k, r = 1;

			/* A burst of requests, fairly: a bounded number per wakeup. */
			for (k = 0; k < 64 && r > 0; k++)
				r = ctl_read();
			running = r >= 0;
		}
	}
	pr_debug("control socket closed: exiting");
	sessions_free_all();
	while (!list_empty(&kpt.ctxs))
		ctx_del(container_of(kpt.ctxs.next, struct kpt_ctx, node));
	return 0;
}
