/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The TLS handshake agent (kptlsd) and the client library kproxyd uses to
 * talk to it. The agent runs TLS handshakes with gnutls on TCP sockets it is
 * handed, then installs the traffic keys into the kernel (kTLS), so that the
 * record layer runs in the kernel and the sockets can carry data through the
 * sockmap like any other. This library does not link gnutls: only kptlsd does.
 *
 * One connection, in order (docs/tls-agent.md has the why):
 *
 *   kproxyd                                   kptlsd
 *   kp_tls_handshake(ctx, conn, fd) ------>   handshake, non-blocking
 *                             <------ HANDSHAKEN (TCP readers now muted)
 *   put fd into the sockmap
 *   kp_tls_arm(conn)           ------>   TCP_ULP "tls", TLS_TX, TLS_RX
 *                             <------ ARMED (info) or FAILED (reason)
 *
 * FAILED may come at any point instead; kp_tls_abort() may be sent at any
 * point and is never answered. The library is meant for one thread with an
 * epoll loop: nothing blocks except kp_tls_agent_start() and kp_tls_ctx_add(),
 * which wait for the agent's answer (bounded).
 *
 * Functions return 0 or -errno; kp_tls_agent_start() returns NULL and sets
 * errno. Where an @err buffer is passed it receives one sentence.
 */
#ifndef KP_TLSAGENT_H
#define KP_TLSAGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#define KP_TLS_MAX_CERTS	8	/* (cert, key) pairs of a server context */
#define KP_TLS_MAX_ALPN		8	/* ALPN protocols of a context */
#define KP_TLS_NAME_MAX		256	/* server name (SNI), with its NUL */
#define KP_TLS_ALPN_MAX		256	/* one ALPN protocol, with its NUL */
#define KP_TLS_REASON_MAX	512	/* a FAILED or CTX_ADD error sentence, with its NUL */
#define KP_TLS_TIMEOUT_DEFAULT_MS 10000
#define KP_TLS_MAX_HANDSHAKES_DEFAULT 1024

enum kp_tls_role {
	KP_TLS_SERVER = 1,	/* kproxy terminates TLS from clients */
	KP_TLS_CLIENT,		/* kproxy originates TLS to a backend */
};

/* kp_tls_ctx_conf.flags */
#define KP_TLS_SNI_STRICT	(1U << 0)	/* server: refuse an unknown or missing server name */
#define KP_TLS_INSECURE		(1U << 1)	/* client: do not verify the server (tests only) */

/* kp_tls_ctx_conf.versions; 0 means both */
#define KP_TLS_V12		(1U << 0)
#define KP_TLS_V13		(1U << 1)

/**
 * struct kp_tls_ctx_conf - a TLS context: what one listener or one backend
 * group needs for its handshakes. Strings are borrowed for the call only.
 * @role:	KP_TLS_SERVER or KP_TLS_CLIENT
 * @cert, @key:	server: @ncerts PEM certificate chains and their PEM keys;
 *		the client's server name picks one, the first is the default
 * @ca_file:	client: PEM trust anchors (NULL: /etc/ssl/certs/ca-certificates.crt)
 * @server_name: client: name sent as SNI and checked against the backend's
 *		certificate (a per-connection name in kp_tls_handshake() wins)
 * @alpn:	@nalpn protocols; the server selects, the client offers
 * @ciphers:	NULL for all that kTLS supports, else a list of them separated
 *		by ':', ',' or ' ': AES-128-GCM, AES-256-GCM, CHACHA20-POLY1305
 * @versions:	KP_TLS_V12 | KP_TLS_V13 (0: both)
 * @timeout_ms:	from HANDSHAKE to ARMED, at most (0: 10000)
 * @flags:	KP_TLS_SNI_STRICT, KP_TLS_INSECURE
 */
struct kp_tls_ctx_conf {
	int role;
	const char *cert[KP_TLS_MAX_CERTS];
	const char *key[KP_TLS_MAX_CERTS];
	int ncerts;
	const char *ca_file;
	const char *server_name;
	const char *alpn[KP_TLS_MAX_ALPN];
	int nalpn;
	const char *ciphers;
	unsigned int versions;
	unsigned int timeout_ms;
	unsigned int flags;
};

/*
 * What a finished handshake agreed on. Sent with HANDSHAKEN (tx = rx = 0) and
 * with ARMED. Also the wire format: fixed size, strings NUL-terminated.
 */
struct kp_tls_info {
	__u16 version;			/* 0x0303 TLS 1.2, 0x0304 TLS 1.3 */
	__u16 cipher;			/* TLS_CIPHER_* of <linux/tls.h> */
	__u8 resumed;			/* an abbreviated (ticket) handshake */
	__u8 tx;			/* TLS_TX is set: the kernel encrypts */
	__u8 rx;			/* TLS_RX is set: the kernel decrypts */
	__u8 pad;
	char version_name[16];		/* "TLS1.3" */
	char cipher_name[32];		/* "AES-128-GCM" */
	char alpn[KP_TLS_ALPN_MAX];	/* "" when none was agreed */
	char sni[KP_TLS_NAME_MAX];	/* server: what the client asked for; client: what we sent */
};
_Static_assert(sizeof(struct kp_tls_info) == 568, "kp_tls_info is wire format");

enum kp_tls_event_type {
	KP_TLS_EV_HANDSHAKEN = 1,	/* insert the socket into the sockmap, then kp_tls_arm() */
	KP_TLS_EV_ARMED,		/* kTLS is on; the agent has let go of the socket */
	KP_TLS_EV_FAILED,		/* close the connection: reason says why */
};

/**
 * struct kp_tls_event - one answer from the agent.
 * @err: FAILED: the class of failure as -errno: -ETIMEDOUT (timeout),
 *	-ECONNRESET (peer went away), -EPROTO (TLS protocol error or alert),
 *	-EKEYREJECTED (the peer's certificate was refused), -ENOPROTOOPT (no kTLS
 *	for this socket or cipher), -EBUSY (too many handshakes), -ENOENT
 *	(unknown context), -EINVAL (misuse of the protocol), other -errno.
 */
struct kp_tls_event {
	int type;			/* enum kp_tls_event_type */
	int err;
	__u64 conn_id;
	struct kp_tls_info info;	/* HANDSHAKEN, ARMED */
	char reason[KP_TLS_REASON_MAX];	/* FAILED */
};

struct kp_tls_agent;

/**
 * struct kp_tls_agent_opts - how to start the agent.
 * @exe:	 path of kptlsd (NULL: "kptlsd" next to /proc/self/exe)
 * @max_handshakes: concurrent handshakes, beyond which HANDSHAKE fails at
 *		 once (0: 1024)
 * @verbose:	 0 warnings and info, 1 debug, 2 also gnutls' own messages
 * @syslog:	 the agent logs to syslog too, not only to standard error
 */
struct kp_tls_agent_opts {
	const char *exe;
	unsigned int max_handshakes;
	int verbose;
	bool syslog;
};

/**
 * kp_tls_agent_start() - start kptlsd as a child process and wait until it is
 * ready (a few ms; at most 5 s). The child dies with this process and exits
 * when kp_tls_agent_stop() closes its socket. NULL and errno, with one
 * sentence in @err, if it cannot be started.
 */
struct kp_tls_agent *kp_tls_agent_start(const struct kp_tls_agent_opts *opts, char *err,
					size_t errlen);

/**
 * kp_tls_agent_fd() - the descriptor to watch for EPOLLIN (level-triggered):
 * readable while kp_tls_agent_recv() has an event to return, including events
 * queued while kp_tls_ctx_add() waited for its answer.
 */
int kp_tls_agent_fd(const struct kp_tls_agent *a);

/** kp_tls_agent_pid() - the agent's process id. */
int kp_tls_agent_pid(const struct kp_tls_agent *a);

/**
 * kp_tls_agent_stop() - close the agent's socket, wait up to 2 s for it to
 * exit (then SIGKILL) and reap it. The agent drops every handshake in
 * progress. NULL is fine.
 */
void kp_tls_agent_stop(struct kp_tls_agent *a);

/**
 * kp_tls_ctx_add() - add a context; its id in @ctx_id. Synchronous: waits for
 * the agent (which loads the certificates) for at most 10 s; events arriving
 * meanwhile are kept for kp_tls_agent_recv(). -EINVAL with a sentence naming
 * the bad file or option in @err.
 */
int kp_tls_ctx_add(struct kp_tls_agent *a, const struct kp_tls_ctx_conf *c, __u32 *ctx_id,
		   char *err, size_t errlen);

/**
 * kp_tls_ctx_del() - remove a context. Handshakes already started with it
 * finish with it. No answer.
 */
int kp_tls_ctx_del(struct kp_tls_agent *a, __u32 ctx_id);

/**
 * kp_tls_handshake() - hand the connected TCP socket @fd to the agent for a
 * handshake with context @ctx_id (its role decides who we are). @conn_id
 * names the connection in every event; it must be unique among the
 * connections with the agent. @sni: client role only, the server name for
 * this connection (NULL: the context's). The agent gets its own descriptor
 * of the socket (SCM_RIGHTS); the caller keeps @fd and must neither read nor
 * write it until ARMED or FAILED.
 */
int kp_tls_handshake(struct kp_tls_agent *a, __u32 ctx_id, __u64 conn_id, int fd,
		     const char *sni);

/** kp_tls_arm() - after HANDSHAKEN and the sockmap insert: install the keys. */
int kp_tls_arm(struct kp_tls_agent *a, __u64 conn_id);

/** kp_tls_abort() - forget @conn_id: the agent drops its session and descriptor. */
int kp_tls_abort(struct kp_tls_agent *a, __u64 conn_id);

/**
 * kp_tls_agent_recv() - the next event, without blocking: 1 and @ev filled,
 * 0 if there is none, -EPIPE if the agent is gone (every connection with it
 * has failed; start a new one), other -errno.
 */
int kp_tls_agent_recv(struct kp_tls_agent *a, struct kp_tls_event *ev);

/** kp_tls_event_name() - "handshaken", "armed" or "failed". */
const char *kp_tls_event_name(int type);

/**
 * kp_ktls_probe() - can this kernel do kTLS? 1 if yes; 0 if not, with one
 * sentence that says why and what to do in @why; -errno if it cannot tell
 * (no loopback to probe on). Tries TCP_ULP "tls" on a connected loopback
 * socket, which also loads the tls module where there is one (that needs
 * CAP_NET_ADMIN: call it from kproxyd, before the first handshake, since
 * the agent runs without capabilities).
 */
int kp_ktls_probe(char *why, size_t len);

/** kp_ktls_warm() - load the kernel's kTLS ciphers now rather than in a handshake. */
void kp_ktls_warm(void);

/*
 * ---------------------------------------------------------------- wire
 * The protocol between the library and kptlsd, over a SOCK_SEQPACKET
 * socketpair: one message per packet, a header then a body. Private to the
 * two; both are built from this tree, and HELLO checks they agree.
 */
#define KP_TLS_WIRE_VERSION	1
#define KP_TLS_MSG_MAX		65536	/* a packet, header included */
#define KP_TLS_AGENT_FD		3	/* the agent's end, in the agent */

enum kp_tls_msg_type {
	/* kproxyd -> agent */
	KP_TLS_MSG_CTX_ADD = 1,	/* id: request id; body: TLVs (enum kp_tls_tlv) */
	KP_TLS_MSG_CTX_DEL,	/* ctx_id */
	KP_TLS_MSG_HANDSHAKE,	/* id: conn_id, ctx_id; body: SNI or empty; one fd (SCM_RIGHTS) */
	KP_TLS_MSG_ARM,		/* id: conn_id */
	KP_TLS_MSG_ABORT,	/* id: conn_id */
	/* agent -> kproxyd */
	KP_TLS_MSG_HELLO = 64,	/* status: KP_TLS_WIRE_VERSION; id: max handshakes */
	KP_TLS_MSG_CTX_REPLY,	/* id: request id; status 0 and ctx_id, or -errno and body: sentence */
	KP_TLS_MSG_HANDSHAKEN,	/* id: conn_id; body: struct kp_tls_info */
	KP_TLS_MSG_ARMED,	/* id: conn_id; body: struct kp_tls_info */
	KP_TLS_MSG_FAILED,	/* id: conn_id; status: -errno class; body: sentence */
};

struct kp_tls_msg_hdr {
	__u16 type;		/* enum kp_tls_msg_type */
	__u16 pad;
	__s32 status;
	__u32 ctx_id;
	__u32 len;		/* body bytes that follow */
	__u64 id;
};
_Static_assert(sizeof(struct kp_tls_msg_hdr) == 24, "kp_tls_msg_hdr is wire format");

/*
 * CTX_ADD body: a sequence of { __u16 tag; __u16 len; value[len] }, strings
 * without their NUL, numbers as __u32 in host order. CERT and KEY alternate,
 * one pair per certificate; ALPN repeats, one protocol each.
 */
enum kp_tls_tlv {
	KP_TLS_TLV_ROLE = 1,	/* __u32 enum kp_tls_role */
	KP_TLS_TLV_CERT,
	KP_TLS_TLV_KEY,
	KP_TLS_TLV_CA,
	KP_TLS_TLV_SERVER_NAME,
	KP_TLS_TLV_ALPN,
	KP_TLS_TLV_CIPHERS,
	KP_TLS_TLV_VERSIONS,	/* __u32 KP_TLS_V12 | KP_TLS_V13 */
	KP_TLS_TLV_TIMEOUT_MS,	/* __u32 */
	KP_TLS_TLV_FLAGS,	/* __u32 KP_TLS_SNI_STRICT | KP_TLS_INSECURE */
};

struct kp_tls_tlv_hdr {
	__u16 tag;
	__u16 len;
};

#endif
