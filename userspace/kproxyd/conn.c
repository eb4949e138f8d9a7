// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * One proxied connection: connect to a backend, hand both sockets to the
 * kernel, relay what the kernel passes back, and carry FIN and reset across,
 * which the kernel does not do.
 *
 * Order of operations at pairing, and why:
 *  1. Nothing is read from either socket before it enters kp_socks, so every
 *     byte reaches the peer through the verdict, in order.
 *  2. kp_conns/kp_fwd entries exist before a socket enters kp_socks.
 *  3. After insertion, SO_RCVLOWAT makes TCP call sk_data_ready once, which
 *     the psock turns into a verdict pass over the bytes that arrived before
 *     insertion (otherwise they wait for the next segment, maybe forever).
 *  4. A socket that cannot enter the map (it closed before we got to it) is
 *     relayed in user space; the verdict of its peer passes its bytes too,
 *     since no peer socket is in the map.
 *
 * A FIN is forwarded only when every data byte received on the source is in
 * the destination's TCP write queue (bytes_acked + SIOCOUTQ): a shutdown()
 * before that would truncate the stream.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <linux/tcp.h>	/* glibc's tcp_info lacks bytes_acked/bytes_received */
#include <linux/sockios.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>

#include "kproxyd.h"

static struct side *peer_of(struct side *s)
{
	return &s->conn->s[!s->idx];
}

static void conn_try_backend(struct conn *c, bool next);
static void conn_connected(struct conn *c);

static void tick_on(struct conn *c)
{
	if (!c->ticking) {
		c->ticking = true;
		list_add_tail(&c->tick, &kpd.ticks);
	}
}

static void tick_off(struct conn *c)
{
	if (c->ticking) {
		c->ticking = false;
		list_del_init(&c->tick);
	}
}

/* Bytes this socket has put in its TCP write queue so far (plus a constant). */
int kpd_out_total(int fd, __u64 *v)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int outq = 0;

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) || ioctl(fd, SIOCOUTQ, &outq))
		return -errno;
	*v = ti.tcpi_bytes_acked + (__u64)outq;
	return 0;
}

static int in_total(int fd, __u64 *v)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return -errno;
	*v = ti.tcpi_bytes_received;
	return 0;
}

/* Bytes from @s that have reached the peer's write queue. */
static __u64 delivered(struct side *s)
{
	struct side *p = peer_of(s);
	__u64 v;

	if (kpd_out_total(p->fd, &v))
		return 0;
	return v - p->out_base;
}

/* Bytes of @s the kernel redirected to the peer. */
static __u64 redirected(struct side *s)
{
	struct kp_conn kc;

	if (!s->in_map || kp_dp_conn_get(kpd.dp, s->cookie, &kc))
		return 0;
	return kc.redir_bytes;
}

/*
 * Has every byte the kernel redirected from @s reached the peer's TCP write
 * queue? Only then may kproxyd write: its bytes must follow those. While
 * kproxyd holds passed bytes the verdict redirects nothing, so the redirect
 * count rarely moves: one map lookup, and the two socket queries only when
 * it did.
 */
static bool kernel_drained(struct side *s)
{
	__u64 r = redirected(s);

	if (r == s->drained_redir)
		return true;
	if (r + s->fwd > delivered(s))
		return false;
	s->drained_redir = r;
	return true;
}

/* Bytes read from @s (or spliced off it) that its peer has not taken yet. */
static size_t held(const struct side *s)
{
	return s->len - s->off + s->piped;
}

static void side_interest(struct side *s)
{
	__u32 want = 0;
	struct side *p = peer_of(s);

	if (s->fd < 0)
		return;
	if (!s->eof && !s->blocked && !held(s))
		want |= EPOLLIN | EPOLLRDHUP;
	if (held(p) && p->blocked)
		want |= EPOLLOUT;
	ep_set(s->fd, &s->ev, &s->events, want);
}

static void conn_free(struct conn *c)
{
	struct proxy *px = c->px;
	int i;

	tick_off(c);
	tls_conn_forget(c);
	for (i = 0; i < 2; i++) {
		struct side *s = &c->s[i];

		if (s->cookie && s->in_map)
			kp_dp_sock_del(kpd.dp, s->cookie);
		if (s->fd >= 0)
			close(s->fd);
		if (s->pipe[0] >= 0) {
			close(s->pipe[0]);
			close(s->pipe[1]);
		}
		free(s->buf);
	}
	list_del_init(&c->node);
	px->nconns--;
	px->closed++;
	/* Events of this batch may still point at it: free after the batch. */
	c->state = CONN_DEAD;
	list_add_tail(&c->node, &kpd.dead);
	proxy_maybe_free(px);
}

static void conn_close(struct conn *c)
{
	emit_event(KP_EV_CONN_CLOSE, c->px, c, 0);
	conn_free(c);
}

/* Abort both sides; with @reset the peers see a reset rather than a FIN. */
void conn_abort(struct conn *c, bool reset)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int i;

	if (reset) {
		for (i = 0; i < 2; i++)
			if (c->s[i].fd >= 0)
				setsockopt(c->s[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		c->px->resets++;
	}
	conn_close(c);
}

static int sock_error(int fd)
{
	int e = 0;
	socklen_t l = sizeof(e);

	getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l);
	return e;
}

/*
 * Write what we hold from @s to its peer. Returns 0 when all was written,
 * -EAGAIN when the relay must wait, or another -errno on a dead peer.
 */
static int flush_side(struct side *s)
{
	struct side *p = peer_of(s);
	ssize_t n;

	while (s->off < s->len) {
		/*
		 * Bytes the kernel redirected earlier may still wait in the peer's
		 * psock queue; writing now would put ours before them.
		 */
		if (s->in_map && !kernel_drained(s)) {
			s->blocked = true;
			tick_on(s->conn);
			return -EAGAIN;
		}
		n = send(p->fd, s->buf + s->off, s->len - s->off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				s->blocked = true;
				return -EAGAIN;
			}
			return -errno;
		}
		s->off += n;
		s->fwd += n;
		s->conn->px->user_bytes += n;
		/* Only now may the verdict redirect again: our bytes are queued first. */
		if (s->in_map)
			kp_dp_fwd_set(kpd.dp, s->cookie, s->fwd);
	}
	s->off = s->len = 0;
	s->blocked = false;
	return 0;
}

/* Forward @s's FIN once all its data is in the peer's write queue. */
static void try_fin(struct side *s)
{
	struct side *p = peer_of(s);
	__u64 in = 0;

	if (!s->eof || s->fin_fwd || held(s))
		return;
	if (s->conn->spliced) {
		/* Every byte is in the peer's write queue once splice() returned. */
		if (p->ktls)
			tls_send_close_notify(p->fd);
		shutdown(p->fd, SHUT_WR);
		s->fin_fwd = true;
		return;
	}
	if (in_total(s->fd, &in))
		return;
	/* tcpi_bytes_received counts the FIN as one byte. */
	if (in == 0 || delivered(s) < in - 1) {
		tick_on(s->conn);
		return;
	}
	shutdown(p->fd, SHUT_WR);
	s->fin_fwd = true;
}

/*
 * A TLS connection: move @s's bytes to its peer through @s's pipe. The kernel
 * decrypts into the pipe (kTLS source) or encrypts from it (kTLS peer); the
 * bytes themselves never come up here.
 */
static int relay_splice(struct side *s)
{
	struct side *p = peer_of(s);
	ssize_t n;
	int ret;

	for (;;) {
		ret = flush_side(s);	/* a record recvmsg() read (tls_control_record) */
		if (ret)
			return ret;
		while (s->piped) {
			n = splice(s->pipe[0], NULL, p->fd, NULL, s->piped,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR) {
					s->blocked = true;
					return -EAGAIN;
				}
				return -errno;
			}
			s->piped -= n;
			s->fwd += n;
			s->conn->px->spliced_bytes += n;
		}
		s->blocked = false;
		if (s->eof)
			return 0;
		n = splice(s->fd, NULL, s->pipe[1], NULL, KPD_SPLICE_PIPE,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			s->piped = n;
			continue;
		}
		if (n == 0) {
			s->eof = true;
			return 0;
		}
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		if (errno != EINVAL || !s->ktls)
			return -errno;
		/* Not application data: an alert, a ticket, a KeyUpdate. */
		ret = tls_control_record(s);
		if (ret < 0)
			return ret;
		if (ret == 1)
			s->eof = true;
	}
}

/* Relay everything the kernel passed to user space on @s. */
static int relay(struct side *s)
{
	ssize_t n;
	int ret;

	if (s->conn->spliced)
		return relay_splice(s);
	for (;;) {
		ret = flush_side(s);
		if (ret)
			return ret;
		if (s->eof && !s->in_map)
			return 0;
		if (!s->buf) {
			s->buf = malloc(KPD_RELAY_BUF);
			if (!s->buf)
				return -ENOMEM;
		}
		n = recv(s->fd, s->buf, KPD_RELAY_BUF, MSG_DONTWAIT);
		if (n > 0) {
			s->len = n;
			s->off = 0;
			continue;
		}
		if (n == 0) {
			s->eof = true;
			return 0;
		}
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		return -errno;
	}
}

static void conn_step(struct conn *c)
{
	bool waiting = false;
	int i, ret;

	for (i = 0; i < 2; i++) {
		struct side *s = &c->s[i];

		ret = relay(s);
		if (ret && ret != -EAGAIN) {
			if (ret == -ECONNABORTED) {
				/* Clean end (a TLS KeyUpdate we cannot follow): FIN both ways. */
				for (i = 0; i < 2; i++) {
					if (c->s[i].ktls)
						tls_send_close_notify(c->s[i].fd);
					shutdown(c->s[i].fd, SHUT_WR);
				}
				conn_close(c);
				return;
			}
			conn_abort(c, true);
			return;
		}
		try_fin(s);
	}
	for (i = 0; i < 2; i++) {
		side_interest(&c->s[i]);
		if (c->s[i].blocked || (c->s[i].eof && !c->s[i].fin_fwd))
			waiting = true;
	}
	if (c->s[0].fin_fwd && c->s[1].fin_fwd) {
		conn_close(c);
		return;
	}
	if (!waiting)
		tick_off(c);
}

void conn_event(struct side *s, __u32 events)
{
	struct conn *c = s->conn;

	if (c->state == CONN_DEAD || c->state == CONN_TLS_ACCEPT || c->state == CONN_TLS_CONNECT)
		return;	/* the agent has the socket: it reports the end (FAILED) */
	if (c->state == CONN_CONNECTING) {
		if (s->idx == 0) {
			/* The client went away before we reached a backend. */
			conn_abort(c, true);
			return;
		}
		conn_connected(c);
		return;
	}
	if (events & (EPOLLERR | EPOLLHUP)) {
		int e = sock_error(s->fd);

		if (e) {
			/* A reset on one side becomes a reset on the other. */
			conn_abort(c, true);
			return;
		}
	}
	/* A socket outside the map reports its end by recv() == 0 instead. */
	if ((events & (EPOLLRDHUP | EPOLLHUP)) && s->in_map)
		s->eof = true;
	conn_step(c);
}

void conn_tick(struct conn *c)
{
	if (c->state == CONN_TLS_ACCEPT || c->state == CONN_TLS_CONNECT)
		return;
	if (c->state == CONN_CONNECTING) {
		if (now_ms() >= c->deadline_ms) {
			c->px->backend_fail++;
			emit_event(KP_EV_BACKEND_FAIL, c->px, c, ETIMEDOUT);
			conn_try_backend(c, true);
		} else {
			tick_on(c);
		}
		return;
	}
	conn_step(c);
}

/* Both directions, as seen by the kernel and by kproxyd. */
void conn_bytes(struct conn *c, __u64 out[2])
{
	int i;

	for (i = 0; i < 2; i++) {
		struct kp_conn kc;

		out[i] = c->s[i].fwd;
		if (c->s[i].in_map && c->s[i].cookie && !kp_dp_conn_get(kpd.dp, c->s[i].cookie, &kc))
			out[i] += kc.redir_bytes;
	}
}

static unsigned int pick_backend(struct conn *c)
{
	struct proxy *px = c->px;
	unsigned int h = 2166136261u;
	const unsigned char *a;
	size_t i, n;

	if (px->cfg.balance == BAL_RR)
		return px->rr_next++ % px->cfg.nbackends;
	/* Hash of the client address (not the port): one client sticks to one backend. */
	if (c->caddr.ss_family == AF_INET6) {
		a = (const unsigned char *)&((struct sockaddr_in6 *)&c->caddr)->sin6_addr;
		n = 16;
	} else {
		a = (const unsigned char *)&((struct sockaddr_in *)&c->caddr)->sin_addr;
		n = 4;
	}
	for (i = 0; i < n; i++)
		h = (h ^ a[i]) * 16777619u;
	return h % px->cfg.nbackends;
}

/* Connect to the next backend without blocking; give up after trying each once. */
static void conn_try_backend(struct conn *c, bool next)
{
	struct proxy *px = c->px;
	struct side *b = &c->s[1];
	const struct kp_uri *u;

	for (;;) {
		if (b->fd >= 0) {
			epoll_ctl(kpd.epfd, EPOLL_CTL_DEL, b->fd, NULL);
			close(b->fd);
			b->fd = -1;
			b->events = 0;
		}
		if (c->attempts >= px->cfg.nbackends) {
			kp_info("proxy %s: conn %llu: no backend reachable, resetting the client",
				px->cfg.name, (unsigned long long)c->id);
			conn_abort(c, true);
			return;
		}
		if (next || c->attempts == 0)
			c->backend = c->attempts == 0 ? (int)pick_backend(c)
						       : (c->backend + 1) % px->cfg.nbackends;
		c->attempts++;
		u = &px->cfg.backends[c->backend];
		memcpy(&c->baddr, &u->addr, sizeof(u->addr));
		b->fd = socket(u->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (b->fd < 0) {
			kp_warn("proxy %s: socket: %s", px->cfg.name, strerror(errno));
			conn_abort(c, true);
			return;
		}
		if (px->cfg.rcvbuf)
			setsockopt(b->fd, SOL_SOCKET, SO_RCVBUF, &px->cfg.rcvbuf,
				   sizeof(px->cfg.rcvbuf));
		if (!connect(b->fd, (const struct sockaddr *)&u->addr, u->addrlen) ||
		    errno == EINPROGRESS) {
			c->deadline_ms = now_ms() + px->cfg.connect_timeout_ms;
			ep_set(b->fd, &b->ev, &b->events, EPOLLOUT);
			tick_on(c);
			return;
		}
		px->backend_fail++;
		emit_event(KP_EV_BACKEND_FAIL, px, c, errno);
		next = true;
	}
}

/*
 * A TLS connection: no kp_socks (the kernel refuses kTLS sockets there, see
 * tls.c); one pipe per direction for splice().
 */
static void conn_pair_spliced(struct conn *c)
{
	int i, one = 1;

	c->state = CONN_ACTIVE;
	c->spliced = true;
	for (i = 0; i < 2; i++) {
		struct side *s = &c->s[i];

		setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (pipe2(s->pipe, O_NONBLOCK | O_CLOEXEC)) {
			s->pipe[0] = s->pipe[1] = -1;
			kp_warn("proxy %s: pipe: %s", c->px->cfg.name, strerror(errno));
			conn_abort(c, true);
			return;
		}
		/* Larger pipes, fewer splice calls; the default (64 KiB) if refused. */
		fcntl(s->pipe[1], F_SETPIPE_SZ, KPD_SPLICE_PIPE);
		kp_sock_cookie(s->fd, &s->cookie);
	}
	emit_event(KP_EV_CONN_OPEN, c->px, c, 0);
	conn_step(c);
}

/* The agent has armed kTLS on side @idx of @c: go on where the handshake began. */
void conn_tls_armed(struct conn *c, int idx)
{
	if (idx == 0) {
		c->state = CONN_CONNECTING;
		conn_try_backend(c, false);
		return;
	}
	conn_connected(c);
}

static void conn_connected(struct conn *c)
{
	struct side *b = &c->s[1];
	int e = sock_error(b->fd), i, one = 1, ret;

	if (e) {
		c->px->backend_fail++;
		emit_event(KP_EV_BACKEND_FAIL, c->px, c, e);
		conn_try_backend(c, true);
		return;
	}
	tick_off(c);
	if (c->px->cfg.backends[c->backend].scheme == KP_URI_TLS && !b->ktls) {
		/* Originate TLS: the agent's handshake first, then conn_tls_armed(). */
		ret = tls_conn_start(c, 1);
		if (ret) {
			kp_warn("proxy %s: conn %llu: cannot start the backend's TLS handshake: %s",
				c->px->cfg.name, (unsigned long long)c->id, strerror(-ret));
			conn_abort(c, true);
		}
		return;
	}
	if (c->s[0].ktls || b->ktls) {
		conn_pair_spliced(c);
		return;
	}
	c->state = CONN_ACTIVE;
	for (i = 0; i < 2; i++) {
		struct side *s = &c->s[i];

		setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		/*
		 * The psock's egress worker backs off a whole jiffy when the write
		 * queue is full; a larger send buffer makes that rarer.
		 */
		if (c->px->cfg.sndbuf)
			setsockopt(s->fd, SOL_SOCKET, SO_SNDBUFFORCE, &c->px->cfg.sndbuf,
				   sizeof(c->px->cfg.sndbuf));
		if (kp_sock_cookie(s->fd, &s->cookie) || kpd_out_total(s->fd, &s->out_base)) {
			conn_abort(c, true);
			return;
		}
	}
	/* The client first: bytes the backend sends before the client is in passes to us. */
	for (i = 0; i < 2; i++) {
		struct side *s = &c->s[i];
		struct kp_conn kc = {
			.peer_cookie = c->s[!i].cookie,
			.conn_id = c->id,
			.proxy_id = c->px->id,
			.flags = i ? KP_SIDE_BACKEND : KP_SIDE_CLIENT,
			.backlog_limit = c->px->cfg.backlog,
		};

		ret = kp_dp_sock_add(kpd.dp, s->fd, s->cookie, &kc);
		if (!ret) {
			s->in_map = true;
			continue;
		}
		/* Not established any more (closed early), or the map is full. */
		if (ret == -ENOSPC || ret == -E2BIG)
			kp_warn("proxy %s: the sockhash '%s' is full (%d sockets): relaying in user "
				"space; raise KP_MAX_SOCKS or max_conns", c->px->cfg.name, KP_MAP_SOCKS,
				KP_MAX_SOCKS);
		c->px->fallbacks++;
		emit_event(KP_EV_FALLBACK, c->px, c, -ret);
	}
	/* Run the verdict over bytes that arrived before insertion (see top of file). */
	for (i = 0; i < 2; i++)
		if (c->s[i].in_map)
			setsockopt(c->s[i].fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
	emit_event(KP_EV_CONN_OPEN, c->px, c, 0);
	conn_step(c);
}

struct conn *conn_new(struct proxy *px, int cfd, const struct sockaddr_storage *ca)
{
	struct conn *c = calloc(1, sizeof(*c));
	int i;

	if (!c)
		return NULL;
	c->id = ++kpd.next_conn_id;
	c->px = px;
	c->state = CONN_CONNECTING;
	c->opened_ms = now_ms();
	if (ca)
		memcpy(&c->caddr, ca, sizeof(*ca));
	LIST_INIT(&c->tick);
	for (i = 0; i < 2; i++) {
		c->s[i].ev.type = EV_SIDE;
		c->s[i].conn = c;
		c->s[i].idx = i;
		c->s[i].fd = -1;
		c->s[i].pipe[0] = c->s[i].pipe[1] = -1;
	}
	c->s[0].fd = cfd;
	list_add_tail(&c->node, &px->conns);
	px->nconns++;
	return c;
}

void conn_start(struct proxy *px, int cfd, const struct sockaddr_storage *ca)
{
	struct conn *c = conn_new(px, cfd, ca);

	if (!c) {
		close(cfd);
		return;
	}
	if (px->cfg.rcvbuf)
		setsockopt(cfd, SOL_SOCKET, SO_RCVBUF, &px->cfg.rcvbuf, sizeof(px->cfg.rcvbuf));
	if (px->cfg.listen.scheme == KP_URI_TLS) {
		/* The agent does the handshake; conn_tls_armed() goes on from there. */
		int ret = tls_conn_start(c, 0);

		if (ret) {
			kp_warn("proxy %s: conn %llu: cannot start the TLS handshake: %s",
				px->cfg.name, (unsigned long long)c->id, strerror(-ret));
			conn_abort(c, true);
		}
		return;
	}
	/* No EPOLLIN before pairing: the client's bytes stay in its queue, in order. */
	ep_set(cfd, &c->s[0].ev, &c->s[0].events, 0);
	conn_try_backend(c, false);
}

/* A connection handed over by the previous kproxyd (handover.c). */
void conn_resume(struct conn *c, bool active)
{
	int i;

	if (!active) {
		ep_set(c->s[0].fd, &c->s[0].ev, &c->s[0].events, 0);
		conn_try_backend(c, false);
		return;
	}
	c->state = CONN_ACTIVE;
	memcpy(&c->baddr, &c->px->cfg.backends[c->backend].addr, sizeof(c->baddr));
	for (i = 0; i < 2; i++)
		ep_set(c->s[i].fd, &c->s[i].ev, &c->s[i].events, 0);
	conn_step(c);
}

json_object *conn_json(struct conn *c)
{
	json_object *o = json_object_new_object();
	char buf[KP_URI_MAX];
	struct sockaddr_storage la;
	socklen_t ll = sizeof(la);
	__u64 bytes[2];
	const char *st;

	json_object_object_add(o, "id", json_object_new_int64(c->id));
	json_object_object_add(o, "proxy", json_object_new_string(c->px->cfg.name));
	kp_uri_format(KP_URI_TCP, (struct sockaddr *)&c->caddr, buf, sizeof(buf));
	json_object_object_add(o, "client", json_object_new_string(buf));
	if (!getsockname(c->s[0].fd, (struct sockaddr *)&la, &ll)) {
		kp_uri_format(KP_URI_TCP, (struct sockaddr *)&la, buf, sizeof(buf));
		json_object_object_add(o, "listen", json_object_new_string(buf));
	}
	kp_uri_format(KP_URI_TCP, (struct sockaddr *)&c->baddr, buf, sizeof(buf));
	json_object_object_add(o, "backend", json_object_new_string(buf));
	ll = sizeof(la);
	if (c->s[1].fd >= 0 && !getsockname(c->s[1].fd, (struct sockaddr *)&la, &ll)) {
		kp_uri_format(KP_URI_TCP, (struct sockaddr *)&la, buf, sizeof(buf));
		json_object_object_add(o, "local", json_object_new_string(buf));
	}
	st = c->state == CONN_CONNECTING ? "connecting" :
	     c->state == CONN_TLS_ACCEPT ? "tls-accept" :
	     c->state == CONN_TLS_CONNECT ? "tls-connect" :
	     (c->s[0].eof || c->s[1].eof) ? "half-closed" : "established";
	json_object_object_add(o, "state", json_object_new_string(st));
	json_object_object_add(o, "path", json_object_new_string(
		c->state != CONN_ACTIVE ? "none" : c->spliced ? "splice" :
		(c->s[0].in_map && c->s[1].in_map) ? "kernel" : "user"));
	if (c->s[0].ktls)
		json_object_object_add(o, "client_tls", tls_side_json(&c->s[0]));
	if (c->s[1].ktls)
		json_object_object_add(o, "backend_tls", tls_side_json(&c->s[1]));
	conn_bytes(c, bytes);
	json_object_object_add(o, "bytes_to_backend", json_object_new_int64(bytes[0]));
	json_object_object_add(o, "bytes_to_client", json_object_new_int64(bytes[1]));
	json_object_object_add(o, "user_bytes", json_object_new_int64(
		c->spliced ? 0 : c->s[0].fwd + c->s[1].fwd));
	json_object_object_add(o, "age_ms", json_object_new_int64(now_ms() - c->opened_ms));
	return o;
}
