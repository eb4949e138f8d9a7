/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * kproxyd: the node agent. It owns the listeners, accepts clients, connects
 * to backends, hands each pair of sockets to the kernel dataplane and looks
 * after the ends of connections (FIN, reset, close), which the kernel does not
 * forward.
 *
 * Threading model: one thread, one epoll loop. Nothing blocks: connects are
 * non-blocking with a deadline, the control socket answers one request per
 * connection, and the few bytes the kernel hands back (SK_PASS: ordering,
 * backpressure, no peer yet) are relayed with non-blocking reads and writes.
 * Steady-state data never reaches this process.
 */
#ifndef KPROXYD_H
#define KPROXYD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <json-c/json.h>

#include "kproxy.h"
#include "libkproxy.h"
#include "log.h"
#include "uri.h"
#include "tlsagent.h"

#define KPD_MAX_BACKENDS	16
#define KPD_RELAY_BUF		(128 * 1024)
#define KPD_CONNECT_TIMEOUT_MS	3000
#define KPD_MAX_CONNS_DEFAULT	10000

enum ev_type { EV_LISTENER = 1, EV_SIDE, EV_CTL_LISTEN, EV_SIGNAL, EV_TLS_AGENT, EV_MUX };

struct ev_src {
	int type;
};

#include "list.h"

enum balance { BAL_RR = 0, BAL_HASH };

#define KPD_PATH_MAX		256
#define KPD_SPLICE_PIPE		(256 * 1024)	/* pipe of a spliced (TLS) direction */

/*
 * TLS of a proxy: the listener's side (tls:// listen: certificates chosen by
 * SNI, ALPN) and the backends' side (tls:// backends: trust, name, ALPN).
 * Lists are kept as given (comma-separated) so that they print back as typed.
 */
struct tls_cfg {
	char cert[KP_TLS_MAX_CERTS][KPD_PATH_MAX];
	char key[KP_TLS_MAX_CERTS][KPD_PATH_MAX];
	int ncerts, nkeys;
	char alpn[KP_TLS_ALPN_MAX];
	char ciphers[128];
	char versions[16];		/* "", "1.2", "1.3" or "1.2,1.3" */
	bool sni_strict;		/* unknown_sni refuse */
	unsigned int timeout_ms;	/* handshake_timeout */
	char ca[KPD_PATH_MAX];		/* backends: trust anchors ("" system store) */
	char sni[KP_TLS_NAME_MAX];	/* backends: server name ("" the backend's address) */
	char backend_alpn[KP_TLS_ALPN_MAX];
	bool insecure;			/* backends: verify off (tests only) */
};

struct proxy_cfg {
	char name[KP_NAME_LEN];
	struct kp_uri listen;
	struct kp_uri backends[KPD_MAX_BACKENDS];
	int nbackends;
	int balance;
	unsigned int max_conns;
	unsigned int connect_timeout_ms;
	unsigned int backlog;		/* bytes, bound of the kernel queue per direction */
	int rcvbuf;			/* 0: kernel default */
	int sndbuf;			/* 0: kernel default */
	struct tls_cfg tls;
};

struct proxy {
	struct ev_src ev;		/* EV_LISTENER */
	struct proxy_cfg cfg;
	__u32 id;			/* kp_stats slot */
	int lfd;
	unsigned int rr_next;
	unsigned int nconns;
	bool deleted;			/* draining: no listener, ends with its last connection */
	struct list_head conns;
	struct list_head node;
	/* counters kept by kproxyd */
	__u64 accepted, rejected, backend_fail, closed, resets, fallbacks;
	__u64 user_bytes;		/* bytes relayed in user space (passed by the verdict) */
	/* TLS (tls.c) */
	__u32 tls_srv_ctx, tls_cli_ctx;	/* agent contexts, 0: none */
	__u64 tls_handshakes, tls_failed, tls_resumed, tls_key_updates, tls_alerts;
	__u64 tls_peer_gone;		/* the peer closed during its handshake (not a failure) */
	__u64 spliced_bytes;		/* TLS plaintext moved by splice (never in user space) */
};

#define KPD_SVC_MAX_ARGS	48
#define HANDOVER_ENV		"KPROXYD_HANDOVER"	/* memfd with the state a restart hands over */

struct svc_cfg {
	char name[KP_NAME_LEN];
	struct kp_uri vip;
	struct kp_uri backends[KPD_MAX_BACKENDS];
	int nbackends;
	char via[KP_NAME_LEN];		/* a proxy: its listener is the one backend */
	char cgroup[256];		/* "" : the cgroup2 root */
	unsigned int check_ms;		/* health check interval, 0: none */
};

struct service {
	struct svc_cfg cfg;
	__u32 id;			/* kp_svc_stats slot */
	__u64 cgid;
	__u32 level;
	char cgroup_path[256];
	bool healthy[KPD_MAX_BACKENDS];
	int probe[KPD_MAX_BACKENDS];	/* connect in flight, -1: none */
	__u64 next_check_ms;
	char *argv[KPD_SVC_MAX_ARGS];	/* the words that made it (for show and restart) */
	int argc;
	struct list_head node;
};

/*
 * CONN_TLS_ACCEPT: the agent runs the client's handshake; CONN_CONNECTING: a
 * backend connect is in flight; CONN_TLS_CONNECT: the agent runs the
 * backend's handshake; CONN_ACTIVE: bytes flow.
 */
enum conn_state { CONN_CONNECTING = 1, CONN_ACTIVE, CONN_DEAD, CONN_TLS_ACCEPT, CONN_TLS_CONNECT };

struct side {
	struct ev_src ev;		/* EV_SIDE */
	struct conn *conn;
	int idx;			/* 0 client, 1 backend */
	int fd;
	__u64 cookie;
	bool in_map;			/* in kp_socks */
	bool eof;			/* this socket sent its FIN */
	bool fin_fwd;			/* ...and we passed it on to the peer */
	bool blocked;			/* relay waits: peer full or kernel queue not drained */
	__u32 events;			/* epoll interest */
	char *buf;			/* bytes read from this side, not yet written to the peer */
	size_t len, off;
	__u64 fwd;			/* bytes of this side kproxyd wrote to the peer */
	__u64 out_base;			/* bytes_acked + SIOCOUTQ of this socket at pairing */
	__u64 drained_redir;		/* redirected bytes known to be in the peer's TCP queue */
	/* TLS: kTLS sockets never enter kp_socks; their bytes are spliced */
	bool ktls;			/* the kernel encrypts and decrypts this socket */
	int pipe[2];			/* this side -> peer, spliced; -1: none */
	size_t piped;			/* bytes in the pipe */
	struct kp_tls_info tls;		/* what the handshake agreed (ktls only) */
};

struct conn {
	__u64 id;
	struct proxy *px;
	struct side s[2];
	int state;
	int backend;			/* index of the backend tried now */
	int attempts;
	__u64 deadline_ms;
	__u64 opened_ms;
	struct sockaddr_storage caddr, baddr;
	bool ticking;			/* on the tick list: needs a look every millisecond */
	bool spliced;			/* a TLS connection: relayed with splice, not sockmap */
	bool tls_pending;		/* the agent holds one of its sockets */
	struct list_head node;		/* proxy's conns */
	struct list_head tick;
	struct conn *tls_next;		/* tls.c's table of connections with the agent */
};

struct kpd {
	int epfd;
	struct kp_dataplane *dp;
	struct kp_svc_dp *svc;		/* service hooks; NULL if they did not load */
	const char *conf_path;
	const char *ctl_path;
	const char *pin_dir;
	struct ev_src ctl_ev;
	int ctl_fd;
	struct ev_src sig_ev;
	int sig_fd;
	struct list_head proxies;
	struct list_head ticks;
	struct list_head dead;		/* connections freed after the current batch of events */
	struct list_head dead_proxies;
	__u64 next_conn_id;
	__u32 ids_used[KP_MAX_PROXIES];
	bool stop;
	bool restart;			/* SIGUSR2: re-exec and hand over */
	struct kp_tls_agent *tls_agent;	/* started with the first TLS proxy */
	struct ev_src tls_ev;
};

extern struct kpd kpd;

/* main.c */
__u64 now_ms(void);
/* ep_set() - add @fd to epoll or change its interest; *cur remembers what is set. */
int ep_set(int fd, struct ev_src *ev, __u32 *cur, __u32 want);
#define EP_REGISTERED	(1U << 31)
void emit_event(int type, struct proxy *px, struct conn *c, int err);
void emit_client_event(int type, struct proxy *px, const struct sockaddr_storage *ca, int err);

/* config.c */
int proxy_cfg_parse(int argc, char **argv, struct proxy_cfg *cfg, char *err, size_t errlen);
void tls_cfg_words(const struct tls_cfg *t, void (*w)(void *arg, const char *word), void *arg);
void kpd_json_word(void *arr, const char *word);
bool kpd_name_ok(const char *n);
int kpd_parse_num(const char *kw, const char *s, unsigned long min, unsigned long max,
		  unsigned long *out, char *err, size_t errlen);
int kpd_parse_words(const char *what, int argc, char **argv, char *name,
		    int (*kw)(void *obj, const char *kw, const char *arg, char *err, size_t errlen),
		    void *obj, char *err, size_t errlen);
int kpd_add_backend(const char *what, struct kp_uri *arr, int *n, const char *arg, char *err,
		    size_t errlen);
enum { CONF_SERVICE = 1, CONF_ACCEL, CONF_MUX };
struct conf_obj {
	int kind;			/* CONF_SERVICE, CONF_ACCEL or CONF_MUX */
	int argc;
	char *argv[KPD_SVC_MAX_ARGS];	/* NAME and the rest, pointing into buf */
	char buf[4096];
};
int config_load(const char *path, struct proxy_cfg **cfgs, int *n, struct conf_obj **objs,
		int *nobj, char *err, size_t errlen);

/* service.c */
int svc_cfg_parse(int argc, char **argv, struct svc_cfg *cfg, char *err, size_t errlen);
int service_add(int argc, char **argv, int want_id, char *err, size_t errlen);
int service_del(const char *name, char *err, size_t errlen);
struct service *service_find(const char *name);
void services_check(void);
__u64 services_next_check(void);
json_object *services_json(const char *name, char *err, size_t errlen);
json_object *services_handover_json(void);
int services_init(bool handover);
void services_shutdown(void);
void services_fini(void);
int accel_add(int argc, char **argv, int want_id, char *err, size_t errlen);
int accel_check(int argc, char **argv, char *err, size_t errlen);
/* Reload: keep what is unchanged, replace what changed, remove what is gone. */
void services_apply(const struct conf_obj *objs, int n, bool reload);
int accel_del(const char *name, char *err, size_t errlen);
void accels_shutdown(void);
json_object *accels_json(const char *name, char *err, size_t errlen);
json_object *accels_handover_json(void);
const char *accel_cgroup(__u32 id);
const char *accel_name(__u32 id);
bool same_words(char *const *a, int na, char *const *b, int nb);
const struct conf_obj *conf_find(const struct conf_obj *objs, int n, int kind, const char *name);
/* sockets.c */
json_object *sockets_json(char *err, size_t errlen);
struct list_head *kpd_services(void);

/* proxy.c */
int proxy_add(const struct proxy_cfg *cfg, char *err, size_t errlen);
int proxy_del(const char *name, char *err, size_t errlen);
struct proxy *proxy_find(const char *name);
/* Bytes @fd has taken to send so far: acknowledged plus still queued (SIOCOUTQ). */
int kpd_out_total(int fd, __u64 *v);
int kpd_listen_on(const struct kp_uri *u, char *err, size_t errlen);
void proxy_accept(struct proxy *px);
void proxy_maybe_free(struct proxy *px);
struct proxy *proxy_adopt(const struct proxy_cfg *cfg, int id, int lfd, bool deleted);
json_object *proxy_json(struct proxy *px, bool stats);

/* conn.c */
void conn_start(struct proxy *px, int cfd, const struct sockaddr_storage *ca);
struct conn *conn_new(struct proxy *px, int cfd, const struct sockaddr_storage *ca);
void conn_resume(struct conn *c, bool active);
void conn_event(struct side *s, __u32 events);
void conn_tick(struct conn *c);
void conn_abort(struct conn *c, bool reset);
void conn_tls_armed(struct conn *c, int idx);
void conn_bytes(struct conn *c, __u64 out[2]);
json_object *conn_json(struct conn *c);

/* mux.c */
int mux_add(int argc, char **argv, char *err, size_t errlen);
int mux_check(int argc, char **argv, char *err, size_t errlen);
void muxes_apply(const struct conf_obj *objs, int n, bool reload);
json_object *muxes_handover_json(void);
void muxes_adopt(json_object *root);
int mux_del(const char *name, char *err, size_t errlen);
json_object *muxes_json(const char *name, char *err, size_t errlen);
void mux_event(struct ev_src *src, __u32 events);
void mux_tick(void);
__u64 mux_next_wake(void);
void muxes_shutdown(void);

/* tls.c */
int tls_proxy_init(struct proxy *px, char *err, size_t errlen);
void tls_proxy_fini(struct proxy *px);
int tls_conn_start(struct conn *c, int idx);
void tls_conn_forget(struct conn *c);
void tls_agent_event(void);
int tls_control_record(struct side *s);
int tls_send_close_notify(int fd);
void tls_shutdown(void);
json_object *tls_side_json(const struct side *s);

/* handover.c */
int handover_exec(char **argv);
int handover_restore(void);
int handover_argv(json_object *o, char **argv, int max);
void handover_keep_fd(int fd);		/* stays open across the execve() */
void handover_adopt_fd(int fd);		/* ... and is close-on-exec again */
void hex_encode(const char *p, size_t n, char *out);
void hex_decode(const char *h, char *out, size_t n);
__u64 ju64(json_object *o, const char *k);
bool jbool(json_object *o, const char *k);

/* ctl.c */
int ctl_open(const char *path);
int ctl_publish(const char *path);
void ctl_accept(void);
void ctl_close(void);

#endif
