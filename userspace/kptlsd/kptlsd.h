/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * kptlsd: the TLS handshake agent. kproxyd starts it (tlsagent.c) and hands
 * it connected TCP sockets over a SOCK_SEQPACKET socketpair; it runs the
 * handshakes with gnutls and then installs the traffic keys into the kernel
 * (kTLS), after which it forgets the socket. The wire protocol is in
 * userspace/common/tlsagent.h, the reasoning in docs/tls-agent.md.
 *
 * Threading model: one thread, one epoll loop. Every handshake is a gnutls
 * session driven by readiness of its socket, with transport functions that
 * never block (MSG_DONTWAIT: the socket's file status flags are shared with
 * kproxyd and stay as they are), so one slow peer never holds up another.
 * Messages to kproxyd are queued and sent when the socket is writable, so
 * the agent never blocks on kproxyd either. Each session has a deadline;
 * sessions of one context share a timeout, so each context keeps its
 * sessions in deadline order and the loop only looks at the heads.
 *
 * Files: main.c (options, privileges, the loop, the control socket),
 * ctx.c (contexts: credentials, priorities, tickets), session.c (one
 * handshake), ktls.c (the keys into the kernel), log.c.
 */
#ifndef KPTLSD_H
#define KPTLSD_H

#include <stdbool.h>
#include <stddef.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <linux/types.h>

#include "tlsagent.h"

#include "list.h"

/* ---------------------------------------------------------------- log.c */

enum kpt_log_level { KPT_WARN, KPT_INFO, KPT_DEBUG };

void kpt_log_init(int verbose, bool use_syslog);
void kpt_log(enum kpt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pr_warn(...)	kpt_log(KPT_WARN, __VA_ARGS__)
#define pr_info(...)	kpt_log(KPT_INFO, __VA_ARGS__)
#define pr_debug(...)	kpt_log(KPT_DEBUG, __VA_ARGS__)

/* ---------------------------------------------------------------- ctx.c */

struct kpt_ctx {
	__u32 id;
	int role;			/* enum kp_tls_role */
	int refs;			/* the table's (until CTX_DEL) + one per session */
	bool deleted;
	unsigned int timeout_ms;
	unsigned int flags;		/* KP_TLS_SNI_STRICT, KP_TLS_INSECURE */
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	char ciphers[96];		/* what the priorities allow, for messages */
	char versions[32];
	gnutls_datum_t ticket_key;	/* server: session ticket encryption key */
	gnutls_x509_crt_t crt[KP_TLS_MAX_CERTS];	/* server: leaf of each chain, for SNI */
	int ncrt;
	gnutls_datum_t alpn[KP_TLS_MAX_ALPN];
	int nalpn;
	char server_name[KP_TLS_NAME_MAX];	/* client */
	struct list_head node;		/* kpt.ctxs */
	struct list_head sessions;	/* its sessions, earliest deadline first */
};

/* ctx_add() - a context from the TLVs of a CTX_ADD; NULL and a sentence in @err. */
struct kpt_ctx *ctx_add(const void *tlv, size_t len, char *err, size_t errlen);
struct kpt_ctx *ctx_find(__u32 id);
void ctx_del(struct kpt_ctx *c);
void ctx_put(struct kpt_ctx *c);
/* ctx_cert_for() - index of the certificate that serves @name, -1 if none does. */
int ctx_cert_for(const struct kpt_ctx *c, const char *name);

/* ---------------------------------------------------------------- session.c */

enum sess_state { SESS_HANDSHAKING = 1, SESS_HANDSHAKEN };

struct kpt_session;

/*
 * What is done with a session's traffic secrets: the seam where another
 * consumer of the handshake plugs in. TLS over TCP (ktls.c) takes the record
 * state gnutls ends up with and gives it to the kernel. A QUIC handshake
 * would set @secret to receive each encryption level's secrets as gnutls
 * derives them (gnutls_handshake_set_secret_function) and give the 1-RTT
 * ones to its packet protection in @install. See docs/tls-agent.md.
 */
struct kpt_keys {
	const char *name;
	/* Before the handshake: hook into the session what this consumer needs. */
	int (*setup)(struct kpt_session *s);
	/* gnutls derived the secrets of one encryption level; NULL if unused. */
	int (*secret)(struct kpt_session *s, gnutls_record_encryption_level_t level,
		      const void *rx_secret, const void *tx_secret, size_t len);
	/* On ARM: put the traffic keys to work, complete @info; -errno and @why. */
	int (*install)(struct kpt_session *s, struct kp_tls_info *info, char *why, size_t len);
};

extern const struct kpt_keys kpt_keys_ktls;

struct kpt_session {
	int ev_type;			/* EV_SESSION: first, the epoll tag */
	__u64 conn_id;
	int fd;
	int state;			/* enum sess_state */
	struct kpt_ctx *ctx;
	gnutls_session_t tls;
	const struct kpt_keys *keys;
	__u64 started_ms, deadline_ms;
	__u32 events;			/* registered with epoll; 0: not registered */
	bool eof;			/* the peer closed its side */
	size_t nread;			/* bytes received, the first few kept */
	unsigned char first[8];		/* first bytes (a ClientHello is not secret) */
	char sni[KP_TLS_NAME_MAX];	/* server: what the client asked; client: what we send */
	char why[KP_TLS_REASON_MAX];	/* a reason set by a callback */
	int why_err;
	struct kp_tls_info info;
	struct list_head timer;		/* in ctx->sessions */
	struct kpt_session *hnext;	/* hash chain */
};

/*
 * session_start() - take @fd (ours now) for a handshake of context @c. On
 * failure the caller reports it: -errno with @why filled, @fd left open.
 */
int session_start(struct kpt_ctx *c, __u64 conn_id, int fd, const char *sni, char *why,
		  size_t len);
void session_io(struct kpt_session *s, __u32 events);
void session_arm(struct kpt_session *s);
/* session_free() - forget it: epoll, descriptor, gnutls state, context reference. */
void session_free(struct kpt_session *s);
struct kpt_session *session_find(__u64 conn_id);
/* sessions_expire() - fail what is past its deadline; ms until the next one, or -1. */
int sessions_expire(void);
void sessions_free_all(void);

/* ---------------------------------------------------------------- ktls.c */

/*
 * ktls_install() - after a finished handshake: TCP_ULP "tls", then TLS_TX and
 * TLS_RX from gnutls' record state, then SO_RCVLOWAT back to 1. Every copy of
 * key material is zeroed before returning. 0, or -errno with a sentence.
 */
int ktls_install(int fd, gnutls_session_t tls, struct kp_tls_info *info, char *why, size_t len);
/* ktls_cipher() - TLS_CIPHER_* for a gnutls cipher, 0 if kTLS has none. */
int ktls_cipher(gnutls_cipher_algorithm_t c);

/* ---------------------------------------------------------------- main.c */

enum ev_type { EV_CTL = 1, EV_SESSION };

struct kpt {
	int epfd;
	int ctl;			/* the socket to kproxyd */
	unsigned int max_handshakes;
	unsigned int nsessions;
	struct list_head ctxs;		/* live contexts, and deleted ones still in use */
};

extern struct kpt kpt;

__u64 now_ms(void);
/* ep_set() - register @fd for @events (0: unregister); tracks it in *@cur. */
int ep_set(int fd, void *tag, __u32 *cur, __u32 events);
/* reply() - queue a message to kproxyd. */
void reply(int type, __u64 id, __u32 ctx_id, int status, const void *body, size_t len);
void reply_failed(__u64 conn_id, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
