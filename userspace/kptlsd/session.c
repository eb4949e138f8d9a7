// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * One handshake: a gnutls session on a socket kproxyd handed over, driven by
 * the socket's readiness, with a deadline. When the handshake is done the
 * socket is muted (SO_RCVLOWAT) and left alone until ARM installs the keys,
 * or ABORT or the deadline drops it.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "kptlsd.h"

#define HASH_BITS	12
#define HASH_SIZE	(1U << HASH_BITS)

static struct kpt_session *hash[HASH_SIZE];

static unsigned int hash_of(__u64 id)
{
	return (unsigned int)((id * 0x9E3779B97F4A7C15ULL) >> (64 - HASH_BITS));
}

struct kpt_session *session_find(__u64 conn_id)
{
	struct kpt_session *s;

	for (s = hash[hash_of(conn_id)]; s; s = s->hnext)
		if (s->conn_id == conn_id)
			return s;
	return NULL;
}

static void hash_del(struct kpt_session *s)
{
	struct kpt_session **pp;

	for (pp = &hash[hash_of(s->conn_id)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == s) {
			*pp = s->hnext;
			return;
		}
	}
}

/* ---------------------------------------------------------------- transport */

/*
 * gnutls' transport, without blocking and without touching the socket's file
 * status flags (shared with kproxyd's descriptor). gnutls asks for exactly
 * the bytes of the record it is reading, so nothing after the last
 * handshake record is taken from the socket.
 */
static ssize_t pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	struct kpt_session *s = p;
	ssize_t n;

	do {
		n = recv(s->fd, buf, len, MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		gnutls_transport_set_errno(s->tls, errno == EWOULDBLOCK ? EAGAIN : errno);
		return -1;
	}
	if (n == 0)
		s->eof = true;
	if (s->nread < sizeof(s->first))
		memcpy(s->first + s->nread, buf,
		       (size_t)n < sizeof(s->first) - s->nread ? (size_t)n
								: sizeof(s->first) - s->nread);
	s->nread += n;
	return n;
}

static ssize_t vec_push(gnutls_transport_ptr_t p, const giovec_t *iov, int iovcnt)
{
	struct kpt_session *s = p;
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = iovcnt };
	ssize_t n;

	do {
		n = sendmsg(s->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		gnutls_transport_set_errno(s->tls, errno == EWOULDBLOCK ? EAGAIN : errno);
		return -1;
	}
	return n;
}

/* gnutls may ask whether data waits; never wait, the loop does that. */
static int pull_timeout(gnutls_transport_ptr_t p, unsigned int ms)
{
	struct kpt_session *s = p;
	char c;
	ssize_t n = recv(s->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n >= 0)
		return 1;	/* data or EOF: a read will not block */
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	gnutls_transport_set_errno(s->tls, errno);
	return -1;
}

/* ---------------------------------------------------------------- callbacks */

static int post_client_hello(gnutls_session_t tls)
{
	struct kpt_session *s = gnutls_session_get_ptr(tls);
	size_t len = sizeof(s->sni);
	unsigned int type;

	if (gnutls_server_name_get(tls, s->sni, &len, &type, 0) < 0 || type != GNUTLS_NAME_DNS)
		s->sni[0] = '\0';
	if (!(s->ctx->flags & KP_TLS_SNI_STRICT))
		return 0;
	/* Without 'sni strict', gnutls serves the first certificate to any name. */
	if (!s->sni[0]) {
		snprintf(s->why, sizeof(s->why), "the client sent no server name and the "
			 "context has 'sni strict'");
		s->why_err = -EPROTO;
		return GNUTLS_E_UNRECOGNIZED_NAME;
	}
	if (ctx_cert_for(s->ctx, s->sni) < 0) {
		snprintf(s->why, sizeof(s->why), "no certificate for server name '%s' "
			 "(the context has 'sni strict')", s->sni);
		s->why_err = -EPROTO;
		return GNUTLS_E_UNRECOGNIZED_NAME;
	}
	return 0;
}

static int secret_cb(gnutls_session_t tls, gnutls_record_encryption_level_t level,
		     const void *rx, const void *tx, size_t len)
{
	struct kpt_session *s = gnutls_session_get_ptr(tls);

	return s->keys->secret(s, level, rx, tx, len);
}

/* ---------------------------------------------------------------- lifecycle */

static void ep_want(struct kpt_session *s, __u32 events)
{
	if (ep_set(s->fd, s, &s->events, events))
		pr_warn("conn %llu: epoll: %s", (unsigned long long)s->conn_id, strerror(errno));
}

void session_free(struct kpt_session *s)
{
	ep_want(s, 0);
	list_del_init(&s->timer);
	hash_del(s);
	close(s->fd);
	/* gnutls_deinit() wipes the session's keys and secrets. */
	if (s->tls)
		gnutls_deinit(s->tls);
	ctx_put(s->ctx);
	kpt.nsessions--;
	gnutls_memset(s, 0, sizeof(*s));
	free(s);
}

static void fail(struct kpt_session *s, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct kpt_session *s, int err, const char *fmt, ...)
{
	char why[KP_TLS_REASON_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	pr_debug("conn %llu: failed: %s", (unsigned long long)s->conn_id, why);
	reply_failed(s->conn_id, err, "%s", why);
	session_free(s);
}

int session_start(struct kpt_ctx *c, __u64 conn_id, int fd, const char *sni, char *why,
		  size_t len)
{
	unsigned int flags = GNUTLS_NONBLOCK;
	const char *name = NULL;
	struct kpt_session *s;
	unsigned char addr[16];
	int ret;

	if (sni && *sni && c->role != KP_TLS_CLIENT) {
		snprintf(why, len, "a server name per connection is for client contexts; "
			 "context %u is a server", c->id);
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	s->ev_type = EV_SESSION;
	s->conn_id = conn_id;
	s->fd = fd;
	s->ctx = c;
	s->keys = &kpt_keys_ktls;
	LIST_INIT(&s->timer);

	if (c->role == KP_TLS_SERVER) {
		flags |= GNUTLS_SERVER;
	} else {
		/*
		 * No tickets: a TLS 1.3 server would otherwise send
		 * NewSessionTicket after the handshake, a record kproxy's data
		 * path would then have to handle.
		 */
		flags |= GNUTLS_CLIENT | GNUTLS_NO_TICKETS;
		name = sni && *sni ? sni : c->server_name[0] ? c->server_name : NULL;
		if (!name && !(c->flags & KP_TLS_INSECURE)) {
			snprintf(why, len, "no server name to verify the backend's certificate "
				 "against: set 'server_name' in context %u or pass one with the "
				 "connection", c->id);
			free(s);
			return -EINVAL;
		}
	}
	ret = gnutls_init(&s->tls, flags);
	if (ret < 0)
		goto gnutls_fail;
	gnutls_session_set_ptr(s->tls, s);
	ret = gnutls_priority_set(s->tls, c->prio);
	if (ret >= 0)
		ret = gnutls_credentials_set(s->tls, GNUTLS_CRD_CERTIFICATE, c->cred);
	if (ret >= 0 && c->nalpn)
		ret = gnutls_alpn_set_protocols(s->tls, c->alpn, c->nalpn,
						c->role == KP_TLS_SERVER ?
						GNUTLS_ALPN_SERVER_PRECEDENCE : 0);
	if (ret < 0)
		goto gnutls_fail;
	if (c->role == KP_TLS_SERVER) {
		gnutls_certificate_server_set_request(s->tls, GNUTLS_CERT_IGNORE);
		gnutls_handshake_set_post_client_hello_function(s->tls, post_client_hello);
		ret = gnutls_session_ticket_enable_server(s->tls, &c->ticket_key);
		if (ret < 0)
			goto gnutls_fail;
	} else if (name) {
		snprintf(s->sni, sizeof(s->sni), "%s", name);
		/* RFC 6066: SNI carries host names, never address literals. */
		if (inet_pton(AF_INET, name, addr) != 1 && inet_pton(AF_INET6, name, addr) != 1) {
			ret = gnutls_server_name_set(s->tls, GNUTLS_NAME_DNS, name, strlen(name));
			if (ret < 0)
				goto gnutls_fail;
		}
		if (!(c->flags & KP_TLS_INSECURE))
			gnutls_session_set_verify_cert(s->tls, name, 0);
	}
	gnutls_transport_set_ptr(s->tls, s);
	gnutls_transport_set_pull_function(s->tls, pull);
	gnutls_transport_set_vec_push_function(s->tls, vec_push);
	gnutls_transport_set_pull_timeout_function(s->tls, pull_timeout);
	if (s->keys->secret)
		gnutls_handshake_set_secret_function(s->tls, secret_cb);
	ret = s->keys->setup(s);
	if (ret) {
		snprintf(why, len, "cannot prepare the %s key consumer: %s", s->keys->name,
			 strerror(-ret));
		gnutls_deinit(s->tls);
		free(s);
		return ret;
	}

	s->started_ms = now_ms();
	s->deadline_ms = s->started_ms + c->timeout_ms;
	s->state = SESS_HANDSHAKING;
	c->refs++;
	kpt.nsessions++;
	s->hnext = hash[hash_of(conn_id)];
	hash[hash_of(conn_id)] = s;
	/* Same timeout for all of a context's sessions: appending keeps the order. */
	list_add_tail(&s->timer, &c->sessions);
	pr_debug("conn %llu: %s handshake with context %u%s%s", (unsigned long long)conn_id,
		 c->role == KP_TLS_SERVER ? "server" : "client", c->id, s->sni[0] ? " for " : "",
		 s->sni);
	/* A server waits for the ClientHello; a client sends its own now. */
	if (c->role == KP_TLS_SERVER)
		ep_want(s, EPOLLIN);
	else
		session_io(s, EPOLLOUT);
	return 0;

gnutls_fail:
	snprintf(why, len, "cannot set up a TLS session: %s", gnutls_strerror(ret));
	if (s->tls)
		gnutls_deinit(s->tls);
	free(s);
	return -ENOMEM;
}

/* The first bytes, printable, for "this is not TLS" messages. */
static void first_bytes(const struct kpt_session *s, char *buf, size_t len)
{
	size_t i, n = s->nread < sizeof(s->first) ? s->nread : sizeof(s->first), off = 0;

	for (i = 0; i < n && off + 5 < len; i++) {
		unsigned char ch = s->first[i];

		off += snprintf(buf + off, len - off, isprint(ch) ? "%c" : "\\x%02x", ch);
	}
	buf[off] = '\0';
}

/* Why a handshake failed, in one sentence, and the class as -errno. */
static void handshake_failed(struct kpt_session *s, int ret)
{
	bool server = s->ctx->role == KP_TLS_SERVER;
	const char *peer = server ? "client" : "server";
	char bytes[48];

	/*
	 * gnutls leaves the alert to us: tell the peer why, best effort (the
	 * socket is non-blocking and the session is dropped right after).
	 */
	if (ret != GNUTLS_E_FATAL_ALERT_RECEIVED && ret != GNUTLS_E_PREMATURE_TERMINATION &&
	    ret != GNUTLS_E_PULL_ERROR && ret != GNUTLS_E_PUSH_ERROR && !s->eof)
		gnutls_alert_send_appropriate(s->tls, ret);
	if (s->why[0]) {
		fail(s, s->why_err ? s->why_err : -EPROTO, "%s", s->why);
		return;
	}
	if (server && s->nread && s->first[0] != 0x16 && s->first[0] != 0x15) {
		first_bytes(s, bytes, sizeof(bytes));
		if (s->first[0] & 0x80)
			fail(s, -EPROTO, "the client offered no TLS 1.2 or 1.3 (an SSLv2-style "
			     "hello)");
		else
			fail(s, -EPROTO, "the client did not start a TLS handshake: its first "
			     "bytes are '%s' (plain text to a TLS port?)", bytes);
		return;
	}
	switch (ret) {
	case GNUTLS_E_UNSUPPORTED_VERSION_PACKET:
		fail(s, -EPROTO, "the %s offered no TLS 1.2 or 1.3 (kTLS needs one of them)", peer);
		return;
	case GNUTLS_E_NO_CIPHER_SUITES:
	case GNUTLS_E_UNKNOWN_CIPHER_SUITE:
	case GNUTLS_E_INSUFFICIENT_CREDENTIALS:
		fail(s, -EPROTO, "no TLS version and cipher suite in common with the %s: the "
		     "context allows %s with %s (%s)", peer, s->ctx->versions, s->ctx->ciphers,
		     gnutls_strerror(ret));
		return;
	case GNUTLS_E_FATAL_ALERT_RECEIVED:
		fail(s, -EPROTO, "the %s refused the handshake with alert '%s'", peer,
		     gnutls_alert_get_name(gnutls_alert_get(s->tls)));
		return;
	case GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR:
	case GNUTLS_E_CERTIFICATE_ERROR: {
		unsigned int st = gnutls_session_get_verify_cert_status(s->tls);
		gnutls_datum_t out = {};

		if (st && gnutls_certificate_verification_status_print(st, GNUTLS_CRT_X509,
									&out, 0) >= 0) {
			fail(s, -EKEYREJECTED, "the certificate of the server for '%s' was refused: "
			     "%s", s->sni, out.data);
			gnutls_free(out.data);
		} else {
			fail(s, -EKEYREJECTED, "the certificate of the server for '%s' was refused: "
			     "%s", s->sni, gnutls_strerror(ret));
		}
		return;
	}
	case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
	case GNUTLS_E_PREMATURE_TERMINATION:
	case GNUTLS_E_PULL_ERROR:
	case GNUTLS_E_PUSH_ERROR:
		if (s->eof || ret == GNUTLS_E_PREMATURE_TERMINATION) {
			fail(s, -ECONNRESET, "the %s closed the connection during the handshake%s",
			     peer, s->nread ? "" : " (before sending anything)");
			return;
		}
		if (ret != GNUTLS_E_UNEXPECTED_PACKET_LENGTH) {
			fail(s, -ECONNRESET, "the connection broke during the handshake: %s",
			     strerror(gnutls_record_get_direction(s->tls) ? EPIPE : ECONNRESET));
			return;
		}
		break;
	}
	fail(s, -EPROTO, "TLS handshake with the %s failed: %s", peer, gnutls_strerror(ret));
}

static void fill_info(struct kpt_session *s)
{
	struct kp_tls_info *i = &s->info;
	gnutls_protocol_t v = gnutls_protocol_get_version(s->tls);
	gnutls_cipher_algorithm_t c = gnutls_cipher_get(s->tls);
	gnutls_datum_t alpn;

	memset(i, 0, sizeof(*i));
	i->version = v == GNUTLS_TLS1_3 ? 0x0304 : v == GNUTLS_TLS1_2 ? 0x0303 : 0;
	i->cipher = ktls_cipher(c);
	i->resumed = gnutls_session_is_resumed(s->tls) ? 1 : 0;
	snprintf(i->version_name, sizeof(i->version_name), "%s",
		 gnutls_protocol_get_name(v) ? gnutls_protocol_get_name(v) : "?");
	snprintf(i->cipher_name, sizeof(i->cipher_name), "%s",
		 gnutls_cipher_get_name(c) ? gnutls_cipher_get_name(c) : "?");
	if (gnutls_alpn_get_selected_protocol(s->tls, &alpn) == 0)
		snprintf(i->alpn, sizeof(i->alpn), "%.*s", (int)alpn.size, alpn.data);
	snprintf(i->sni, sizeof(i->sni), "%s", s->sni);
}

static void handshake_done(struct kpt_session *s)
{
	int lowat = INT_MAX;

	fill_info(s);
	/* The priorities allow nothing else; a library surprise must not reach the kernel. */
	if (!s->info.version || !s->info.cipher) {
		fail(s, -ENOPROTOOPT, "the handshake agreed on %s with %s, which kTLS cannot carry",
		     s->info.version_name, s->info.cipher_name);
		return;
	}
	/*
	 * gnutls read only the handshake records; had it decrypted application
	 * data, those bytes would be lost to the kernel's record layer.
	 */
	if (gnutls_record_check_pending(s->tls)) {
		fail(s, -EPROTO, "the %s sent application data that gnutls already read before "
		     "kTLS could be set (%zu bytes)", s->ctx->role == KP_TLS_SERVER ? "client" :
		     "server", gnutls_record_check_pending(s->tls));
		return;
	}
	/*
	 * Stop TCP from waking readers: whatever arrives from now on stays in
	 * the receive queue, unconsumed by the sockmap, until kTLS is armed.
	 * The kernel caps the value.
	 */
	if (setsockopt(s->fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat))) {
		fail(s, -errno, "cannot set SO_RCVLOWAT on the socket: %s", strerror(errno));
		return;
	}
	ep_want(s, 0);	/* no more reads: the next bytes are the kernel's */
	s->state = SESS_HANDSHAKEN;
	pr_debug("conn %llu: handshaken in %llu ms: %s %s%s%s%s%s%s",
		 (unsigned long long)s->conn_id, (unsigned long long)(now_ms() - s->started_ms),
		 s->info.version_name, s->info.cipher_name, s->info.alpn[0] ? " alpn " : "",
		 s->info.alpn, s->info.sni[0] ? " sni " : "", s->info.sni,
		 s->info.resumed ? " resumed" : "");
	reply(KP_TLS_MSG_HANDSHAKEN, s->conn_id, s->ctx->id, 0, &s->info, sizeof(s->info));
}

void session_io(struct kpt_session *s, __u32 events)
{
	int ret, i;

	if (s->state != SESS_HANDSHAKING)
		return;
	/* Non-fatal results (a warning alert) mean: go on; bounded all the same. */
	for (i = 0; i < 16; i++) {
		ret = gnutls_handshake(s->tls);
		if (ret == GNUTLS_E_SUCCESS) {
			handshake_done(s);
			return;
		}
		if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED) {
			ep_want(s, gnutls_record_get_direction(s->tls) ? EPOLLOUT : EPOLLIN);
			return;
		}
		if (gnutls_error_is_fatal(ret))
			break;
		pr_debug("conn %llu: %s", (unsigned long long)s->conn_id, gnutls_strerror(ret));
	}
	handshake_failed(s, ret);
}

void session_arm(struct kpt_session *s)
{
	char why[KP_TLS_REASON_MAX];
	int ret;

	if (s->state != SESS_HANDSHAKEN) {
		fail(s, -EINVAL, "ARM before HANDSHAKEN: the handshake is not finished");
		return;
	}
	ret = s->keys->install(s, &s->info, why, sizeof(why));
	if (ret) {
		fail(s, ret, "%s", why);
		return;
	}
	pr_debug("conn %llu: armed", (unsigned long long)s->conn_id);
	reply(KP_TLS_MSG_ARMED, s->conn_id, s->ctx->id, 0, &s->info, sizeof(s->info));
	session_free(s);
}

int sessions_expire(void)
{
	__u64 now = now_ms(), next = UINT64_MAX;
	struct list_head *p, *nx;

	for (p = kpt.ctxs.next; p != &kpt.ctxs; p = nx) {
		struct kpt_ctx *c = container_of(p, struct kpt_ctx, node);

		/* The last session of a deleted context frees it: hold on. */
		c->refs++;
		while (!list_empty(&c->sessions)) {
			struct kpt_session *s = container_of(c->sessions.next, struct kpt_session,
							     timer);
			if (s->deadline_ms > now) {
				if (s->deadline_ms < next)
					next = s->deadline_ms;
				break;
			}
			if (s->state == SESS_HANDSHAKEN)
				fail(s, -ETIMEDOUT, "kproxyd did not arm the connection within %u ms "
				     "of the handshake's start", c->timeout_ms);
			else if (!s->nread && c->role == KP_TLS_SERVER)
				fail(s, -ETIMEDOUT, "handshake timed out after %u ms (the client sent "
				     "nothing)", c->timeout_ms);
			else
				fail(s, -ETIMEDOUT, "handshake timed out after %u ms (the %s stopped "
				     "answering)", c->timeout_ms,
				     c->role == KP_TLS_SERVER ? "client" : "server");
		}
		nx = p->next;
		ctx_put(c);
	}
	return next == UINT64_MAX ? -1 : (int)(next - now);
}

void sessions_free_all(void)
{
	unsigned int i;

	for (i = 0; i < HASH_SIZE; i++)
		while (hash[i])
			session_free(hash[i]);
}
