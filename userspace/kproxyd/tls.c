// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * TLS in kproxyd: tls:// listeners (termination) and tls:// backends
 * (origination). The handshake runs in kptlsd, the agent (its own process,
 * no capabilities, gnutls); the record layer runs in the kernel (kTLS): the
 * agent installs the traffic keys with setsockopt(SOL_TLS) and lets go of
 * the socket. kproxyd never sees a key.
 *
 * Why TLS connections are spliced and not in kp_socks: the stable kernels
 * we run on (Debian's 6.1.19x and 6.12.11x, and mainline) refuse kTLS on a
 * socket that has a psock, in both orders ("tls: reject the combination of
 * TLS and sockmap", CVE-2026-93824): sockmap refuses a socket with a ULP,
 * and TLS_TX/TLS_RX fail with EINVAL on a socket in a sockmap. `kproxyctl
 * feature` shows it as ktls_sockmap. So the plaintext of a TLS connection
 * moves with splice(): the kernel decrypts into a pipe and sends from it
 * (and encrypts what is spliced into a kTLS socket); the bytes never reach
 * this process, which only makes the two splice calls per chunk.
 *
 * Records that are not application data stop splice (EINVAL) and are read
 * here with recvmsg(): close_notify ends the stream like a FIN, any other
 * alert resets the connection, a NewSessionTicket is ignored, a KeyUpdate
 * ends the connection cleanly (these kernels cannot rekey kTLS; 6.14 can)
 * and is counted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netdb.h>
#include <linux/tls.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "kproxyd.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

#define TLS_TABLE	1024		/* buckets of connections with the agent */

enum {
	REC_CHANGE_CIPHER_SPEC = 20,
	REC_ALERT = 21,
	REC_HANDSHAKE = 22,
	REC_DATA = 23,
};

enum { HS_NEW_SESSION_TICKET = 4, HS_KEY_UPDATE = 24 };

static struct conn *table[TLS_TABLE];

static void table_add(struct conn *c)
{
	struct conn **b = &table[c->id % TLS_TABLE];

	c->tls_next = *b;
	*b = c;
	c->tls_pending = true;
}

static struct conn *table_take(__u64 id)
{
	struct conn **p;

	for (p = &table[id % TLS_TABLE]; *p; p = &(*p)->tls_next) {
		struct conn *c = *p;

		if (c->id == id) {
			*p = c->tls_next;
			c->tls_next = NULL;
			c->tls_pending = false;
			return c;
		}
	}
	return NULL;
}

static int agent_start(char *err, size_t errlen)
{
	struct kp_tls_agent_opts o = { .syslog = false };
	__u32 dummy = 0;
	char why[256];
	int r;

	r = kp_ktls_probe(why, sizeof(why));
	if (r == 0) {
		snprintf(err, errlen, "%s", why);
		return -ENOPROTOOPT;
	}
	kp_ktls_warm();
	kpd.tls_agent = kp_tls_agent_start(&o, err, errlen);
	if (!kpd.tls_agent)
		return errno ? -errno : -EIO;
	kpd.tls_ev.type = EV_TLS_AGENT;
	if (ep_set(kp_tls_agent_fd(kpd.tls_agent), &kpd.tls_ev, &dummy, EPOLLIN)) {
		snprintf(err, errlen, "epoll: %s", strerror(errno));
		kp_tls_agent_stop(kpd.tls_agent);
		kpd.tls_agent = NULL;
		return -EIO;
	}
	kp_info("TLS: handshake agent kptlsd started (pid %d)", kp_tls_agent_pid(kpd.tls_agent));
	return 0;
}

/* "a,b,c" into @out (pointers into @buf, which it modifies). */
static int split_list(char *buf, const char *out[], int max)
{
	char *save = NULL, *t;
	int n = 0;

	for (t = strtok_r(buf, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save))
		out[n++] = t;
	return n;
}

static unsigned int versions_of(const char *v)
{
	if (!strcmp(v, "1.2"))
		return KP_TLS_V12;
	if (!strcmp(v, "1.3"))
		return KP_TLS_V13;
	return 0;
}

/* The agent's contexts for @px: one for its listener, one for its backends. */
int tls_proxy_init(struct proxy *px, char *err, size_t errlen)
{
	const struct tls_cfg *t = &px->cfg.tls;
	char alpn[KP_TLS_ALPN_MAX], perr[KP_TLS_REASON_MAX];
	bool backends = false;
	int i, ret;

	for (i = 0; i < px->cfg.nbackends; i++)
		backends |= px->cfg.backends[i].scheme == KP_URI_TLS;
	if (px->cfg.listen.scheme != KP_URI_TLS && !backends)
		return 0;
	if (!kpd.tls_agent) {
		ret = agent_start(perr, sizeof(perr));
		if (ret) {
			snprintf(err, errlen, "proxy '%s': %s", px->cfg.name, perr);
			return ret;
		}
	}
	if (px->cfg.listen.scheme == KP_URI_TLS) {
		struct kp_tls_ctx_conf c = {
			.role = KP_TLS_SERVER,
			.ncerts = t->ncerts,
			.ciphers = t->ciphers[0] ? t->ciphers : NULL,
			.versions = versions_of(t->versions),
			.timeout_ms = t->timeout_ms,
			.flags = t->sni_strict ? KP_TLS_SNI_STRICT : 0,
		};

		for (i = 0; i < t->ncerts; i++) {
			c.cert[i] = t->cert[i];
			c.key[i] = t->key[i];
		}
		snprintf(alpn, sizeof(alpn), "%s", t->alpn);
		c.nalpn = split_list(alpn, c.alpn, KP_TLS_MAX_ALPN);
		ret = kp_tls_ctx_add(kpd.tls_agent, &c, &px->tls_srv_ctx, perr, sizeof(perr));
		if (ret) {
			snprintf(err, errlen, "proxy '%s': %s", px->cfg.name, perr);
			return ret;
		}
	}
	if (backends) {
		struct kp_tls_ctx_conf c = {
			.role = KP_TLS_CLIENT,
			.ca_file = t->ca[0] ? t->ca : NULL,
			.server_name = t->sni[0] ? t->sni : NULL,
			.ciphers = t->ciphers[0] ? t->ciphers : NULL,
			.versions = versions_of(t->versions),
			.timeout_ms = t->timeout_ms,
			.flags = t->insecure ? KP_TLS_INSECURE : 0,
		};

		snprintf(alpn, sizeof(alpn), "%s", t->backend_alpn);
		c.nalpn = split_list(alpn, c.alpn, KP_TLS_MAX_ALPN);
		ret = kp_tls_ctx_add(kpd.tls_agent, &c, &px->tls_cli_ctx, perr, sizeof(perr));
		if (ret) {
			snprintf(err, errlen, "proxy '%s': backends: %s", px->cfg.name, perr);
			tls_proxy_fini(px);
			return ret;
		}
	}
	return 0;
}

void tls_proxy_fini(struct proxy *px)
{
	if (!kpd.tls_agent)
		return;
	if (px->tls_srv_ctx)
		kp_tls_ctx_del(kpd.tls_agent, px->tls_srv_ctx);
	if (px->tls_cli_ctx)
		kp_tls_ctx_del(kpd.tls_agent, px->tls_cli_ctx);
	px->tls_srv_ctx = px->tls_cli_ctx = 0;
}

/* Hand side @idx of @c to the agent for its handshake. */
int tls_conn_start(struct conn *c, int idx)
{
	struct side *s = &c->s[idx];
	__u32 ctx = idx ? c->px->tls_cli_ctx : c->px->tls_srv_ctx;
	char name[NI_MAXHOST];
	const char *sni = NULL;
	int ret;

	if (!kpd.tls_agent || !ctx)
		return -ENOPROTOOPT;
	/* No name configured: the backend's address is what we verify. */
	if (idx && !c->px->cfg.tls.sni[0] &&
	    !getnameinfo((struct sockaddr *)&c->baddr, sizeof(c->baddr), name, sizeof(name), NULL, 0,
			 NI_NUMERICHOST))
		sni = name;
	ret = kp_tls_handshake(kpd.tls_agent, ctx, c->id, s->fd, sni);
	if (ret)
		return ret;
	c->state = idx ? CONN_TLS_CONNECT : CONN_TLS_ACCEPT;
	table_add(c);
	/* The agent reads and writes the socket now; we do not even watch it. */
	if (s->events & EP_REGISTERED) {
		epoll_ctl(kpd.epfd, EPOLL_CTL_DEL, s->fd, NULL);
		s->events = 0;
	}
	return 0;
}

/* @c goes away: the agent drops its handshake, if it has one. */
void tls_conn_forget(struct conn *c)
{
	if (!c->tls_pending)
		return;
	table_take(c->id);
	if (kpd.tls_agent)
		kp_tls_abort(kpd.tls_agent, c->id);
}

static void agent_lost(void)
{
	struct list_head *p;
	int i;

	kp_warn("TLS: the handshake agent went away; handshakes in progress fail, the next TLS "
		"connection starts a new agent");
	for (i = 0; i < TLS_TABLE; i++) {
		while (table[i]) {
			struct conn *c = table[i];

			table_take(c->id);
			c->px->tls_failed++;
			conn_abort(c, true);
		}
	}
	epoll_ctl(kpd.epfd, EPOLL_CTL_DEL, kp_tls_agent_fd(kpd.tls_agent), NULL);
	kp_tls_agent_stop(kpd.tls_agent);
	kpd.tls_agent = NULL;
	/* Contexts lived in the old agent: make them again in a new one. */
	for (p = kpd.proxies.next; p != &kpd.proxies; p = p->next) {
		struct proxy *px = container_of(p, struct proxy, node);
		char err[512];

		px->tls_srv_ctx = px->tls_cli_ctx = 0;
		if (!px->deleted && tls_proxy_init(px, err, sizeof(err)))
			kp_warn("TLS: %s", err);
	}
}

void tls_agent_event(void)
{
	struct kp_tls_event ev;
	int n, ret;

	for (n = 0; n < 64 && kpd.tls_agent; n++) {
		struct conn *c;
		int idx;

		ret = kp_tls_agent_recv(kpd.tls_agent, &ev);
		if (ret == 0)
			return;
		if (ret < 0) {
			if (ret == -EPIPE)
				agent_lost();
			else
				kp_warn("TLS: reading from the agent: %s", strerror(-ret));
			return;
		}
		if (ev.type == KP_TLS_EV_HANDSHAKEN) {
			/*
			 * Here the socket would enter kp_socks before the keys, but
			 * these kernels refuse kTLS on sockmap sockets (top of file).
			 */
			kp_tls_arm(kpd.tls_agent, ev.conn_id);
			continue;
		}
		c = table_take(ev.conn_id);
		if (!c)
			continue;	/* aborted meanwhile */
		idx = c->state == CONN_TLS_CONNECT;
		if (ev.type == KP_TLS_EV_FAILED && ev.err == -ECONNRESET) {
			/*
			 * The peer went away (openssl s_time closes right after its
			 * handshake): not a TLS failure, and no reason to log each.
			 */
			c->px->tls_peer_gone++;
			kp_debug("proxy %s: conn %llu: the %s went away during the TLS handshake: %s",
				 c->px->cfg.name, (unsigned long long)c->id,
				 idx ? "backend" : "client", ev.reason);
			conn_abort(c, true);
			continue;
		}
		if (ev.type == KP_TLS_EV_FAILED) {
			c->px->tls_failed++;
			kp_info("proxy %s: conn %llu: TLS handshake with the %s failed: %s",
				c->px->cfg.name, (unsigned long long)c->id,
				idx ? "backend" : "client", ev.reason);
			emit_event(KP_EV_TLS_FAIL, c->px, c, -ev.err);
			conn_abort(c, true);
			continue;
		}
		c->s[idx].ktls = true;
		c->s[idx].tls = ev.info;
		c->px->tls_handshakes++;
		if (ev.info.resumed)
			c->px->tls_resumed++;
		kp_debug("proxy %s: conn %llu: %s %s %s%s%s", c->px->cfg.name,
			 (unsigned long long)c->id, idx ? "backend" : "client",
			 ev.info.version_name, ev.info.cipher_name,
			 ev.info.alpn[0] ? " alpn " : "", ev.info.alpn);
		conn_tls_armed(c, idx);
	}
}

/*
 * A record splice() would not take (it moves application data only): read it
 * with its type. 0: go on; 1: the peer closed (close_notify); -errno: end the
 * connection (-ECONNRESET: with a reset, -ECONNABORTED: cleanly).
 */
int tls_control_record(struct side *s)
{
	struct proxy *px = s->conn->px;
	char cbuf[CMSG_SPACE(sizeof(unsigned char))];
	unsigned char rec[16640];
	struct iovec iov = { .iov_base = rec, .iov_len = sizeof(rec) };
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	int type = REC_DATA;
	ssize_t n;

	n = recvmsg(s->fd, &m, MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		return 1;
	cm = CMSG_FIRSTHDR(&m);
	if (cm && cm->cmsg_level == SOL_TLS && cm->cmsg_type == TLS_GET_RECORD_TYPE)
		type = *CMSG_DATA(cm);
	switch (type) {
	case REC_DATA:
		/* Data after all (splice raced us): relay it from the buffer. */
		if (!s->buf && !(s->buf = malloc(KPD_RELAY_BUF)))
			return -ENOMEM;
		memcpy(s->buf, rec, n);
		s->off = 0;
		s->len = n;
		return 0;
	case REC_ALERT:
		if (n >= 2 && rec[1] == 0)
			return 1;	/* close_notify */
		px->tls_alerts++;
		kp_info("proxy %s: conn %llu: TLS alert %d (level %d) from the %s: resetting",
			px->cfg.name, (unsigned long long)s->conn->id, n >= 2 ? rec[1] : -1,
			rec[0], s->idx ? "backend" : "client");
		return -ECONNRESET;
	case REC_HANDSHAKE:
		if (rec[0] == HS_NEW_SESSION_TICKET)
			return 0;
		if (rec[0] == HS_KEY_UPDATE) {
			px->tls_key_updates++;
			kp_info("proxy %s: conn %llu: the %s sent a TLS KeyUpdate; kTLS cannot take "
				"new keys before Linux 6.14: closing the connection",
				px->cfg.name, (unsigned long long)s->conn->id,
				s->idx ? "backend" : "client");
			return -ECONNABORTED;
		}
		/* fall through */
	default:
		px->tls_alerts++;
		kp_info("proxy %s: conn %llu: unexpected TLS record type %d (handshake type %d) "
			"from the %s: resetting", px->cfg.name, (unsigned long long)s->conn->id,
			type, rec[0], s->idx ? "backend" : "client");
		return -ECONNRESET;
	}
}

/* The TLS way to say FIN: a close_notify alert (the caller shuts down after). */
int tls_send_close_notify(int fd)
{
	char cbuf[CMSG_SPACE(sizeof(unsigned char))] = { 0 };
	unsigned char alert[2] = { 1, 0 };	/* warning, close_notify */
	struct iovec iov = { .iov_base = alert, .iov_len = sizeof(alert) };
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);

	cm->cmsg_level = SOL_TLS;
	cm->cmsg_type = TLS_SET_RECORD_TYPE;
	cm->cmsg_len = CMSG_LEN(sizeof(unsigned char));
	*CMSG_DATA(cm) = REC_ALERT;
	return sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) == 2 ? 0 : -errno;
}

void tls_shutdown(void)
{
	if (!kpd.tls_agent)
		return;
	epoll_ctl(kpd.epfd, EPOLL_CTL_DEL, kp_tls_agent_fd(kpd.tls_agent), NULL);
	kp_tls_agent_stop(kpd.tls_agent);
	kpd.tls_agent = NULL;
}

json_object *tls_side_json(const struct side *s)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "version", json_object_new_string(s->tls.version_name));
	json_object_object_add(o, "cipher", json_object_new_string(s->tls.cipher_name));
	json_object_object_add(o, "alpn", json_object_new_string(s->tls.alpn));
	json_object_object_add(o, "sni", json_object_new_string(s->tls.sni));
	json_object_object_add(o, "resumed", json_object_new_boolean(s->tls.resumed));
	return o;
}
