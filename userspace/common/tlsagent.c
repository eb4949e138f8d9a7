// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Client side of the TLS agent protocol (tlsagent.h): start kptlsd, send it
 * requests, turn its answers into events. Also the kTLS probe.
 *
 * Sends block (bounded by SO_SNDTIMEO): the agent never blocks on its own
 * sends, it queues them, so it always comes back to read ours and a send
 * here cannot deadlock against one there. Receives never block.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/tls.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "tlsagent.h"

extern char **environ;

#define START_TIMEOUT_MS	5000
#define CTX_ADD_TIMEOUT_MS	10000
#define SEND_TIMEOUT_MS		5000
#define STOP_TIMEOUT_MS		2000

struct kp_tls_agent {
	int sock;		/* our end of the socketpair */
	int evfd;		/* counts the queued events */
	int epfd;		/* sock + evfd: what the caller polls */
	pid_t pid;
	__u64 next_req;
	bool dead;
	struct kp_tls_event *q;	/* ring of events received while waiting for a reply */
	size_t qhead, qlen, qcap;
	unsigned char *buf;	/* one packet */
};

static __u64 mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

const char *kp_tls_event_name(int type)
{
	switch (type) {
	case KP_TLS_EV_HANDSHAKEN: return "handshaken";
	case KP_TLS_EV_ARMED: return "armed";
	case KP_TLS_EV_FAILED: return "failed";
	}
	return "unknown";
}

static int send_msg(struct kp_tls_agent *a, const struct kp_tls_msg_hdr *h, const void *body,
		    int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov[2] = {
		{ .iov_base = (void *)h, .iov_len = sizeof(*h) },
		{ .iov_base = (void *)body, .iov_len = h->len },
	};
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = h->len ? 2 : 1 };
	ssize_t n;

	if (a->dead)
		return -EPIPE;
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		m.msg_control = u.buf;
		m.msg_controllen = sizeof(u.buf);
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	do {
		n = sendmsg(a->sock, &m, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN)
			return -ETIMEDOUT;	/* SO_SNDTIMEO: the agent is stuck */
		if (errno == EPIPE || errno == ECONNRESET)
			a->dead = true;
		return errno == ECONNRESET ? -EPIPE : -errno;
	}
	return 0;
}

static int send_simple(struct kp_tls_agent *a, int type, __u32 ctx_id, __u64 id)
{
	struct kp_tls_msg_hdr h = { .type = type, .ctx_id = ctx_id, .id = id };

	return send_msg(a, &h, NULL, -1);
}

/*
 * One packet from the agent into a->buf: its length, 0 if none is waiting
 * (@wait_ms 0) or came in time, -EPIPE when the agent is gone.
 */
static int recv_packet(struct kp_tls_agent *a, int wait_ms)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = a->buf, .iov_len = KP_TLS_MSG_MAX };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	ssize_t n;

	if (a->dead)
		return -EPIPE;
	if (wait_ms > 0) {
		struct pollfd p = { .fd = a->sock, .events = POLLIN };
		int r = poll(&p, 1, wait_ms);

		if (r < 0)
			return errno == EINTR ? 0 : -errno;
		if (r == 0)
			return 0;
	}
	m.msg_control = u.buf;
	m.msg_controllen = sizeof(u.buf);
	n = recvmsg(a->sock, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		if (errno == ECONNRESET) {
			a->dead = true;
			return -EPIPE;
		}
		return -errno;
	}
	/* The agent sends no descriptors; close any so that none leak. */
	for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int *fds = (int *)CMSG_DATA(c);
			size_t i, nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (i = 0; i < nfd; i++)
				close(fds[i]);
		}
	}
	if (n == 0) {
		a->dead = true;
		return -EPIPE;
	}
	if ((size_t)n < sizeof(struct kp_tls_msg_hdr) ||
	    ((struct kp_tls_msg_hdr *)a->buf)->len != n - sizeof(struct kp_tls_msg_hdr))
		return -EBADMSG;
	return n;
}

/* The packet in a->buf as an event: 1, or 0 if it is not one. */
static int packet_to_event(struct kp_tls_agent *a, struct kp_tls_event *ev)
{
	const struct kp_tls_msg_hdr *h = (const void *)a->buf;
	const unsigned char *body = a->buf + sizeof(*h);
	size_t n;

	memset(ev, 0, sizeof(*ev));
	ev->conn_id = h->id;
	switch (h->type) {
	case KP_TLS_MSG_HANDSHAKEN:
	case KP_TLS_MSG_ARMED:
		if (h->len != sizeof(ev->info))
			return 0;
		ev->type = h->type == KP_TLS_MSG_ARMED ? KP_TLS_EV_ARMED : KP_TLS_EV_HANDSHAKEN;
		memcpy(&ev->info, body, sizeof(ev->info));
		ev->info.version_name[sizeof(ev->info.version_name) - 1] = '\0';
		ev->info.cipher_name[sizeof(ev->info.cipher_name) - 1] = '\0';
		ev->info.alpn[sizeof(ev->info.alpn) - 1] = '\0';
		ev->info.sni[sizeof(ev->info.sni) - 1] = '\0';
		return 1;
	case KP_TLS_MSG_FAILED:
		ev->type = KP_TLS_EV_FAILED;
		ev->err = h->status < 0 ? h->status : -EPROTO;
		n = h->len < sizeof(ev->reason) ? h->len : sizeof(ev->reason) - 1;
		memcpy(ev->reason, body, n);
		ev->reason[n] = '\0';
		return 1;
	}
	/* A late CTX_REPLY (its request timed out) or an unknown type. */
	return 0;
}

static int queue_event(struct kp_tls_agent *a, const struct kp_tls_event *ev)
{
	__u64 one = 1;

	if (a->qlen == a->qcap) {
		size_t cap = a->qcap ? a->qcap * 2 : 16, i;
		struct kp_tls_event *q = malloc(cap * sizeof(*q));

		if (!q)
			return -ENOMEM;
		for (i = 0; i < a->qlen; i++)
			q[i] = a->q[(a->qhead + i) % a->qcap];
		free(a->q);
		a->q = q;
		a->qcap = cap;
		a->qhead = 0;
	}
	a->q[(a->qhead + a->qlen) % a->qcap] = *ev;
	if (a->qlen++ == 0 && write(a->evfd, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

int kp_tls_agent_recv(struct kp_tls_agent *a, struct kp_tls_event *ev)
{
	int n;

	if (a->qlen) {
		*ev = a->q[a->qhead];
		a->qhead = (a->qhead + 1) % a->qcap;
		if (--a->qlen == 0) {
			__u64 v;

			if (read(a->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				return -errno;
		}
		return 1;
	}
	for (;;) {
		n = recv_packet(a, 0);
		if (n == -EBADMSG)
			continue;	/* not from our agent: skip it */
		if (n <= 0)
			return n;
		if (packet_to_event(a, ev))
			return 1;
	}
}

int kp_tls_agent_fd(const struct kp_tls_agent *a)
{
	return a->epfd;
}

int kp_tls_agent_pid(const struct kp_tls_agent *a)
{
	return a->pid;
}

/* "kptlsd" in the directory of the running executable. */
static int default_exe(char *buf, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n < 0)
		return -errno;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	if ((size_t)snprintf(buf, len, "%s/kptlsd", self) >= len)
		return -ENAMETOOLONG;
	return 0;
}

static void reap(pid_t pid, int timeout_ms, int *status)
{
	__u64 end = mono_ms() + timeout_ms;
	int st = 0;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid || (r < 0 && errno != EINTR))
			break;
		if (mono_ms() >= end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			break;
		}
		usleep(10000);
	}
	if (status)
		*status = st;
}

static void describe_exit(int st, char *buf, size_t len)
{
	if (WIFEXITED(st))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(st),
			 strsignal(WTERMSIG(st)));
	else
		snprintf(buf, len, "stopped");
}

static void agent_free(struct kp_tls_agent *a)
{
	if (a->epfd >= 0)
		close(a->epfd);
	if (a->evfd >= 0)
		close(a->evfd);
	if (a->sock >= 0)
		close(a->sock);
	free(a->q);
	free(a->buf);
	free(a);
}

struct kp_tls_agent *kp_tls_agent_start(const struct kp_tls_agent_opts *opts, char *err,
					size_t errlen)
{
	struct kp_tls_agent_opts none = {};
	struct timeval tv = { .tv_sec = SEND_TIMEOUT_MS / 1000 };
	char exe[PATH_MAX], fdarg[16], maxarg[16], why[128];
	struct epoll_event e = { .events = EPOLLIN };
	posix_spawn_file_actions_t fa;
	const struct kp_tls_msg_hdr *h;
	struct kp_tls_agent *a;
	posix_spawnattr_t attr;
	char *argv[12];
	int sv[2], child = -1, argc = 0, ret, st;
	sigset_t sigs;
	__u64 end;

	if (!opts)
		opts = &none;
	a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(err, errlen, "cannot start the TLS agent: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	a->sock = a->evfd = a->epfd = -1;
	a->pid = -1;
	a->buf = malloc(KP_TLS_MSG_MAX);
	if (!a->buf) {
		ret = -ENOMEM;
		snprintf(err, errlen, "cannot start the TLS agent: out of memory");
		goto fail;
	}
	if (opts->exe) {
		snprintf(exe, sizeof(exe), "%s", opts->exe);
	} else if ((ret = default_exe(exe, sizeof(exe)))) {
		snprintf(err, errlen, "cannot find the TLS agent next to this program "
			 "(/proc/self/exe): %s", strerror(-ret));
		goto fail;
	}
	if (access(exe, X_OK)) {
		ret = -errno;
		snprintf(err, errlen, "cannot run the TLS agent %s: %s", exe, strerror(errno));
		goto fail;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		ret = -errno;
		snprintf(err, errlen, "cannot start the TLS agent: socketpair: %s", strerror(errno));
		goto fail;
	}
	a->sock = sv[0];
	/*
	 * Move the child's end away from low numbers so that dup2() to fd 3 in
	 * the child never finds it already there (and keeps its CLOEXEC).
	 */
	child = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
	close(sv[1]);
	if (child < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot start the TLS agent: %s", strerror(errno));
		goto fail;
	}
	setsockopt(a->sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

	snprintf(fdarg, sizeof(fdarg), "%d", KP_TLS_AGENT_FD);
	snprintf(maxarg, sizeof(maxarg), "%u",
		 opts->max_handshakes ? opts->max_handshakes : KP_TLS_MAX_HANDSHAKES_DEFAULT);
	argv[argc++] = exe;
	argv[argc++] = "--fd";
	argv[argc++] = fdarg;
	argv[argc++] = "--max-handshakes";
	argv[argc++] = maxarg;
	if (opts->verbose > 0)
		argv[argc++] = "-v";
	if (opts->verbose > 1)
		argv[argc++] = "-v";
	if (opts->syslog)
		argv[argc++] = "--syslog";
	argv[argc] = NULL;

	/*
	 * The caller (kproxyd) blocks its signals for a signalfd: the agent must
	 * start with none blocked and default dispositions.
	 */
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, child, KP_TLS_AGENT_FD);
	posix_spawnattr_init(&attr);
	sigemptyset(&sigs);
	posix_spawnattr_setsigmask(&attr, &sigs);
	sigfillset(&sigs);
	sigdelset(&sigs, SIGKILL);
	sigdelset(&sigs, SIGSTOP);
	posix_spawnattr_setsigdefault(&attr, &sigs);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	ret = posix_spawn(&a->pid, exe, &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(child);
	if (ret) {
		a->pid = -1;
		snprintf(err, errlen, "cannot run the TLS agent %s: %s", exe, strerror(ret));
		ret = -ret;
		goto fail;
	}

	/* Ready when it says HELLO: it has dropped its privileges by then. */
	end = mono_ms() + START_TIMEOUT_MS;
	for (;;) {
		__u64 now = mono_ms();

		ret = now < end ? recv_packet(a, end - now) : 0;
		if (ret > 0) {
			h = (const void *)a->buf;
			if (h->type != KP_TLS_MSG_HELLO)
				continue;
			if (h->status != KP_TLS_WIRE_VERSION) {
				ret = -EPROTO;
				snprintf(err, errlen, "the TLS agent %s speaks protocol version %d, "
					 "this program %d: install the kptlsd built with it",
					 exe, h->status, KP_TLS_WIRE_VERSION);
				goto fail;
			}
			break;
		}
		if (ret == -EPIPE) {
			reap(a->pid, STOP_TIMEOUT_MS, &st);
			a->pid = -1;
			describe_exit(st, why, sizeof(why));
			snprintf(err, errlen, "the TLS agent %s %s at start (its message is above)",
				 exe, why);
			goto fail;
		}
		if (ret < 0 || mono_ms() >= end) {
			if (!ret)
				ret = -ETIMEDOUT;
			snprintf(err, errlen, "the TLS agent %s did not get ready within %d ms%s%s",
				 exe, START_TIMEOUT_MS, ret == -ETIMEDOUT ? "" : ": ",
				 ret == -ETIMEDOUT ? "" : strerror(-ret));
			goto fail;
		}
	}

	a->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (a->evfd < 0 || a->epfd < 0 ||
	    epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->sock, &e) ||
	    epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->evfd, &e)) {
		ret = -errno;
		snprintf(err, errlen, "cannot start the TLS agent: %s", strerror(errno));
		goto fail;
	}
	return a;

fail:
	if (a->pid > 0) {
		close(a->sock);
		a->sock = -1;
		reap(a->pid, STOP_TIMEOUT_MS, NULL);
	}
	agent_free(a);
	errno = -ret;
	return NULL;
}

void kp_tls_agent_stop(struct kp_tls_agent *a)
{
	if (!a)
		return;
	/* EOF on its socket is the agent's signal to exit. */
	close(a->sock);
	a->sock = -1;
	if (a->pid > 0)
		reap(a->pid, STOP_TIMEOUT_MS, NULL);
	agent_free(a);
}

static int tlv_put(unsigned char *buf, size_t *off, int tag, const void *v, size_t len)
{
	struct kp_tls_tlv_hdr t = { .tag = tag, .len = len };

	if (len > 0xffff || *off + sizeof(t) + len > KP_TLS_MSG_MAX - sizeof(struct kp_tls_msg_hdr))
		return -E2BIG;
	memcpy(buf + *off, &t, sizeof(t));
	memcpy(buf + *off + sizeof(t), v, len);
	*off += sizeof(t) + len;
	return 0;
}

static int tlv_str(unsigned char *buf, size_t *off, int tag, const char *s)
{
	return s ? tlv_put(buf, off, tag, s, strlen(s)) : 0;
}

static int tlv_u32(unsigned char *buf, size_t *off, int tag, __u32 v)
{
	return tlv_put(buf, off, tag, &v, sizeof(v));
}

int kp_tls_ctx_add(struct kp_tls_agent *a, const struct kp_tls_ctx_conf *c, __u32 *ctx_id,
		   char *err, size_t errlen)
{
	struct kp_tls_msg_hdr h = { .type = KP_TLS_MSG_CTX_ADD };
	struct kp_tls_event ev;
	unsigned char *body;
	size_t off = 0;
	int i, ret = 0;
	__u64 end;

	if (c->role != KP_TLS_SERVER && c->role != KP_TLS_CLIENT) {
		snprintf(err, errlen, "a TLS context is either a server or a client");
		return -EINVAL;
	}
	if (c->ncerts < 0 || c->ncerts > KP_TLS_MAX_CERTS || c->nalpn < 0 ||
	    c->nalpn > KP_TLS_MAX_ALPN) {
		snprintf(err, errlen, "a TLS context has at most %d certificates and %d ALPN protocols",
			 KP_TLS_MAX_CERTS, KP_TLS_MAX_ALPN);
		return -EINVAL;
	}
	body = malloc(KP_TLS_MSG_MAX);
	if (!body) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret |= tlv_u32(body, &off, KP_TLS_TLV_ROLE, c->role);
	for (i = 0; i < c->ncerts; i++) {
		ret |= tlv_str(body, &off, KP_TLS_TLV_CERT, c->cert[i] ? c->cert[i] : "");
		ret |= tlv_str(body, &off, KP_TLS_TLV_KEY, c->key[i] ? c->key[i] : "");
	}
	ret |= tlv_str(body, &off, KP_TLS_TLV_CA, c->ca_file);
	ret |= tlv_str(body, &off, KP_TLS_TLV_SERVER_NAME, c->server_name);
	for (i = 0; i < c->nalpn; i++)
		ret |= tlv_str(body, &off, KP_TLS_TLV_ALPN, c->alpn[i] ? c->alpn[i] : "");
	ret |= tlv_str(body, &off, KP_TLS_TLV_CIPHERS, c->ciphers);
	ret |= tlv_u32(body, &off, KP_TLS_TLV_VERSIONS, c->versions);
	ret |= tlv_u32(body, &off, KP_TLS_TLV_TIMEOUT_MS, c->timeout_ms);
	ret |= tlv_u32(body, &off, KP_TLS_TLV_FLAGS, c->flags);
	if (ret) {
		snprintf(err, errlen, "the TLS context is too large (file names too long?)");
		ret = -E2BIG;
		goto out;
	}
	h.id = ++a->next_req;
	h.len = off;
	ret = send_msg(a, &h, body, -1);
	if (ret) {
		snprintf(err, errlen, "cannot reach the TLS agent: %s", strerror(-ret));
		goto out;
	}
	end = mono_ms() + CTX_ADD_TIMEOUT_MS;
	for (;;) {
		const struct kp_tls_msg_hdr *r = (const void *)a->buf;
		__u64 now = mono_ms();

		if (now >= end) {
			snprintf(err, errlen, "the TLS agent did not answer within %d ms",
				 CTX_ADD_TIMEOUT_MS);
			ret = -ETIMEDOUT;
			goto out;
		}
		ret = recv_packet(a, end - now);
		if (ret == -EBADMSG)
			continue;
		if (ret < 0) {
			snprintf(err, errlen, "the TLS agent %s",
				 ret == -EPIPE ? "has exited" : strerror(-ret));
			goto out;
		}
		if (ret == 0)
			continue;
		if (r->type == KP_TLS_MSG_CTX_REPLY && r->id == h.id) {
			if (r->status) {
				size_t n = r->len < errlen ? r->len : errlen - 1;

				memcpy(err, a->buf + sizeof(*r), n);
				err[n] = '\0';
				ret = r->status < 0 ? r->status : -EINVAL;
			} else {
				*ctx_id = r->ctx_id;
				ret = 0;
			}
			goto out;
		}
		if (packet_to_event(a, &ev) && (ret = queue_event(a, &ev))) {
			snprintf(err, errlen, "cannot keep an event of the TLS agent: %s",
				 strerror(-ret));
			goto out;
		}
	}
out:
	free(body);
	return ret;
}

int kp_tls_ctx_del(struct kp_tls_agent *a, __u32 ctx_id)
{
	return send_simple(a, KP_TLS_MSG_CTX_DEL, ctx_id, 0);
}

int kp_tls_handshake(struct kp_tls_agent *a, __u32 ctx_id, __u64 conn_id, int fd,
		     const char *sni)
{
	struct kp_tls_msg_hdr h = { .type = KP_TLS_MSG_HANDSHAKE, .ctx_id = ctx_id, .id = conn_id };

	if (fd < 0)
		return -EBADF;
	if (sni) {
		h.len = strlen(sni);
		if (h.len >= KP_TLS_NAME_MAX)
			return -ENAMETOOLONG;
	}
	return send_msg(a, &h, sni, fd);
}

int kp_tls_arm(struct kp_tls_agent *a, __u64 conn_id)
{
	return send_simple(a, KP_TLS_MSG_ARM, 0, conn_id);
}

int kp_tls_abort(struct kp_tls_agent *a, __u64 conn_id)
{
	return send_simple(a, KP_TLS_MSG_ABORT, 0, conn_id);
}

/* ---------------------------------------------------------------- probe */

static bool ulp_listed(void)
{
	char buf[256];
	ssize_t n;
	int fd = open("/proc/sys/net/ipv4/tcp_available_ulp", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	for (char *save, *t = strtok_r(buf, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
		if (!strcmp(t, "tls"))
			return true;
	return false;
}

/* A connected loopback TCP socket (and its listener) in @fds; 0 or -errno. */
static int loopback_pair(int family, int fds[2])
{
	struct sockaddr_storage ss = { .ss_family = family };
	socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int ret;

	if (family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	fds[0] = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	fds[1] = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fds[0] < 0 || fds[1] < 0 || bind(fds[0], (struct sockaddr *)&ss, len) ||
	    listen(fds[0], 1) || getsockname(fds[0], (struct sockaddr *)&ss, &len) ||
	    connect(fds[1], (struct sockaddr *)&ss, len)) {
		ret = -errno;
		if (fds[0] >= 0)
			close(fds[0]);
		if (fds[1] >= 0)
			close(fds[1]);
		return ret;
	}
	return 0;
}

/*
 * Load the kernel's AEADs for kTLS now (crypto_alloc_aead() loads modules on
 * first use): a throwaway TLS_TX of each cipher on a loopback connection.
 * Otherwise the first connection with a cipher waits for modprobe inside its
 * handshake deadline (seconds under emulation). Errors do not matter here.
 */
void kp_ktls_warm(void)
{
	static const struct { __u16 cipher; size_t len; } c[] = {
		{ TLS_CIPHER_AES_GCM_128, sizeof(struct tls12_crypto_info_aes_gcm_128) },
		{ TLS_CIPHER_AES_GCM_256, sizeof(struct tls12_crypto_info_aes_gcm_256) },
		{ TLS_CIPHER_CHACHA20_POLY1305, sizeof(struct tls12_crypto_info_chacha20_poly1305) },
	};
	unsigned char info[64];
	size_t i;
	int fds[2];

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct tls_crypto_info *ci = (struct tls_crypto_info *)info;

		if (loopback_pair(AF_INET, fds))
			return;
		memset(info, 0x5a, sizeof(info));
		ci->version = TLS_1_3_VERSION;
		ci->cipher_type = c[i].cipher;
		if (!setsockopt(fds[1], SOL_TCP, TCP_ULP, "tls", sizeof("tls")))
			setsockopt(fds[1], SOL_TLS, TLS_TX, info, c[i].len);
		close(fds[0]);
		close(fds[1]);
	}
}

int kp_ktls_probe(char *why, size_t len)
{
	struct utsname u;
	int fds[2], ret, err;

	if (ulp_listed())
		return 1;
	/* Not registered: setting it loads the module where there is one. */
	ret = loopback_pair(AF_INET, fds);
	if (ret)
		ret = loopback_pair(AF_INET6, fds);
	if (ret) {
		snprintf(why, len, "cannot probe for kTLS: no loopback TCP connection (%s); "
			 "bring lo up", strerror(-ret));
		return ret;
	}
	ret = setsockopt(fds[1], SOL_TCP, TCP_ULP, "tls", sizeof("tls"));
	err = errno;
	close(fds[0]);
	close(fds[1]);
	if (!ret)
		return 1;
	if (uname(&u))
		snprintf(u.release, sizeof(u.release), "?");
	if (err == ENOENT)
		snprintf(why, len, "this kernel (%s) has no kTLS: setsockopt(TCP_ULP, \"tls\") failed: "
			 "%s (CONFIG_TLS is not built in and the tls module is not loaded; "
			 "try 'modprobe tls'); tls:// needs a kernel with kTLS",
			 u.release, strerror(err));
	else
		snprintf(why, len, "kTLS is not usable on this kernel (%s): setsockopt(TCP_ULP, "
			 "\"tls\") failed: %s; tls:// needs a kernel with kTLS",
			 u.release, strerror(err));
	return 0;
}
