// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * kmux in kproxyd: N clients, M backend connections, whole messages.
 *
 * kproxyd owns the sockets and the BPF maps do the work (bpf/mux.bpf.c):
 * a mux's listener accepts clients into kp_mux_socks, and kproxyd keeps
 * `conns` connections to the backends there too, one per slot. The verdict
 * sends each client message to the slot its client owns and each response
 * back to the slot's owner. What is left here:
 *
 *  - the pool: connect each slot (round robin over the backends), and when a
 *    backend connection dies, reset the one client that had requests in
 *    flight on it (nobody else is affected), empty the slot, reconnect;
 *  - clients that found no free slot (KP_MUX_OVERFLOW): once their last
 *    in-kernel request is answered, kproxyd connects a backend connection of
 *    their own and relays both ways in user space (a plain proxy: message
 *    boundaries need no care on a connection of one client's own);
 *  - ends: a client's FIN waits for the responses it is owed, then closes.
 *
 * Threading: kproxyd's one epoll loop; nothing blocks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "kproxyd.h"
#include "parse.h"

#define MUX_CONNS_DEFAULT	8
#define MUX_RETRY_MS		500	/* reconnect a dead slot after this */
#define MUX_DRAIN_MS		30000	/* a closing client waits this long for its responses */
#define MUX_MSG_TIMEOUT_MS	10000	/* a message must be complete this long after it began */
#define MUX_SETTLE_MS		200	/* after a client's FIN: its last bytes still being parsed */
#define MUX_LINGER_MS		2000	/* a denied client: its bytes are read and dropped this long */
#define MUX_RESPONSE_TIMEOUT_MS	30000	/* a backend silent this long with a request waiting */

enum mux_kind { MK_LISTEN = 1, MK_CLIENT, MK_SLOT, MK_OVERFLOW, MK_SINK };

struct mux_ev {
	struct ev_src ev;		/* EV_MUX */
	int kind;			/* enum mux_kind */
	void *obj;
	int fd;
	__u32 events;
};

struct mux;

struct mux_slot {
	struct mux_ev e;		/* MK_SLOT */
	struct mux *m;
	int idx;
	int backend;			/* index into cfg.backends */
	__u64 cookie;
	bool up;			/* connected and in the map */
	__u64 retry_ms;			/* when to connect again (0: now) */
	__u64 conn_id;
};

struct mux_client {
	struct mux_ev e;		/* MK_CLIENT */
	struct mux_ev be;		/* MK_OVERFLOW: its own backend connection */
	struct mux_ev sk;		/* MK_SINK: what the verdict sends us of it comes out here */
	int sink_fd;			/* the sink's other end, in kp_mux_sinks */
	struct mux *m;
	__u64 id, cookie;
	bool overflow, eof, beof, fin_sent, bfin_sent, connecting;
	bool dead;			/* freed after this batch of events (stale events skip it) */
	__u64 close_by_ms;		/* 0: not closing */
	__u64 settle_ms;		/* after its FIN: bytes still being parsed until then */
	char *buf[2];			/* overflow relay: [0] client->backend, [1] backend->client */
	size_t len[2], off[2];
	__u64 rx;			/* overflow relay: client bytes read from the sink (its pass_at on) */
	bool denied;			/* the L7 policy denied a request: answer, then close */
	bool ceof;			/* the client's own FIN (overflow, denied: eof may be the cut) */
	__u64 deny_limit;		/* overflow relay: client bytes before the denied request */
	bool answered;			/* ... the answer is written, FIN sent: lingering */
	__u64 deny_by_ms;		/* give up waiting for earlier responses then */
	__u64 handed_by_ms;		/* overflow: give up waiting for its kernel answers then */
	struct list_head node;
};

struct mux {
	struct mux_ev e;		/* MK_LISTEN */
	char name[KP_NAME_LEN];
	__u32 id;
	struct kp_uri listen;
	struct kp_uri backends[KPD_MAX_BACKENDS];
	int nbackends;
	unsigned int conns;
	unsigned int max_clients;
	unsigned int msg_timeout_ms;
	unsigned int response_timeout_ms;	/* 0: none */
	__u64 next_rt_check;
	struct kp_mux_cfg kcfg;
	char parser_file[2][KPD_PATH_MAX];	/* parser bpf:FILE, requests and responses */
	struct bpf_object *parser_obj[2];
	char *argv[KPD_SVC_MAX_ARGS];	/* the words that made it */
	int argc;
	struct mux_slot slots[KP_MUX_MAX_SLOTS];
	struct list_head clients;
	unsigned int nclients;
	unsigned int rr;
	struct list_head node;
	__u64 accepted, rejected, closed, overflowed, slot_deaths, inflight_resets, backend_fail;
	__u64 msg_timeouts;		/* clients closed: a message did not complete in time */
	__u64 slot_recycles;		/* slots reconnected: their client left with requests in flight */
	__u64 response_timeouts;	/* slots reconnected, their client reset: the backend was silent */
	__u64 user_bytes;
	/* L7 policy (parser http): rules in order, first match wins */
	struct kp_l7_rule rules[KP_L7_MAX_RULES];
	unsigned int nrules;
	bool deny_close;		/* deny_action close: no 403/400, just the close */
	__u64 deny_answers;		/* 403 or 400 written to denied clients */
	__u64 deny_resets;		/* denied clients reset: their earlier responses never left */
	__u64 overflow_stalls;		/* overflowed clients reset: their kernel answers never came */
};

static struct kp_mux_dp *mdp;
static struct list_head muxes = { &muxes, &muxes };
static struct list_head dead_clients = { &dead_clients, &dead_clients };
static __u64 mux_wake_ms;		/* earliest time mux_tick() has work */

static void wake_at(__u64 t)
{
	if (!mux_wake_ms || t < mux_wake_ms)
		mux_wake_ms = t;
}

__u64 mux_next_wake(void)
{
	return mux_wake_ms;
}

static int ev_set(struct mux_ev *e, __u32 want)
{
	return ep_set(e->fd, &e->ev, &e->events, want);
}

static void ev_close(struct mux_ev *e)
{
	if (e->fd < 0)
		return;
	if (e->events & EP_REGISTERED)
		epoll_ctl(kpd.epfd, EPOLL_CTL_DEL, e->fd, NULL);
	close(e->fd);
	e->fd = -1;
	e->events = 0;
}

/* ------------------------------------------------------------ configuration */

struct mux_parse {
	struct mux *m;
	bool have_listen, have_parser, have_default;
};

/*
 * bpf:FILE[,max=N]: a user's own parser object; the rest of the grammar is
 * the parser twin's (kp_parser_spec_parse).
 */
static int bpf_parser_word(struct kp_parser_cfg *pc, char *file, const char *kw, const char *arg,
			   char *err, size_t errlen)
{
	const char *path = arg + strlen("bpf:"), *comma = strchr(path, ',');
	size_t plen = comma ? (size_t)(comma - path) : strlen(path);
	unsigned long v = 1 << 20;

	if (!plen || plen >= KPD_PATH_MAX) {
		snprintf(err, errlen, "%s '%s': bpf:FILE[,max=N] names a BPF object file", kw, arg);
		return -EINVAL;
	}
	if (comma && (strncmp(comma, ",max=", 5) ||
		      kpd_parse_num("max", comma + 5, 1, KP_PARSE_MAX_MSG, &v, err, errlen))) {
		if (strncmp(comma, ",max=", 5))
			snprintf(err, errlen, "%s '%s': after the file only ',max=N' may follow", kw,
				 arg);
		return -EINVAL;
	}
	memset(pc, 0, sizeof(*pc));
	pc->kind = KP_PARSER_BPF;
	pc->max_msg = v;
	memcpy(file, path, plen);
	file[plen] = '\0';
	return 0;
}

static int parser_word(struct kp_parser_cfg *pc, char *file, const char *kw, const char *arg,
		       char *err, size_t errlen)
{
	char perr[256];

	if (!strncmp(arg, "bpf:", 4))
		return bpf_parser_word(pc, file, kw, arg, err, errlen);
	if (kp_parser_spec_parse(arg, pc, perr, sizeof(perr))) {
		snprintf(err, errlen, "%s '%s': %s", kw, arg, perr);
		return -EINVAL;
	}
	return 0;
}

/*
 * allow|deny MATCH: "any", or comma-separated method=M, host=H, path=P (each
 * at most once). Checked here as the BPF side matches (bpf/lib/l7.h):
 * method exact, host in lower case without port and final dot, path a
 * prefix of the raw origin-form target.
 */
static int rule_word(struct mux *m, const char *kw, const char *arg, char *err, size_t errlen)
{
	struct kp_l7_rule *r = &m->rules[m->nrules];
	const char *p = arg;

	if (m->nrules >= KP_L7_MAX_RULES) {
		snprintf(err, errlen, "%s '%s': a mux has at most %d rules", kw, arg,
			 KP_L7_MAX_RULES);
		return -E2BIG;
	}
	memset(r, 0, sizeof(*r));
	r->action = !strcmp(kw, "deny") ? KP_L7_DENY : KP_L7_ALLOW;
	if (strcmp(arg, "any")) {
		while (*p) {
			const char *v = strchr(p, '='), *end = strchr(p, ',');
			size_t kn, vn, i;

			if (!end)
				end = p + strlen(p);
			if (!v || v > end) {
				snprintf(err, errlen, "%s '%s': use any, or method=M,host=H,path=P "
					 "(one or more, comma-separated)", kw, arg);
				return -EINVAL;
			}
			kn = v - p;
			v++;
			vn = end - v;
			if (kn == 6 && !strncmp(p, "method", 6) && !r->method_len) {
				if (!vn || vn > KP_L7_METHOD_MAX) {
					snprintf(err, errlen, "%s '%s': a method is 1 to %d characters",
						 kw, arg, KP_L7_METHOD_MAX);
					return -EINVAL;
				}
				for (i = 0; i < vn; i++) {
					if (v[i] < 'A' || v[i] > 'Z') {
						snprintf(err, errlen, "%s '%s': methods are upper case "
							 "letters, as they are sent (GET, POST, ...)",
							 kw, arg);
						return -EINVAL;
					}
				}
				memcpy(r->method, v, vn);
				r->method_len = vn;
			} else if (kn == 4 && !strncmp(p, "host", 4) && !r->host_len) {
				if (vn && v[vn - 1] == '.')
					vn--;
				if (!vn || vn > KP_L7_HOST_MAX) {
					snprintf(err, errlen, "%s '%s': a host is 1 to %d characters",
						 kw, arg, KP_L7_HOST_MAX);
					return -EINVAL;
				}
				for (i = 0; i < vn; i++) {
					char c = v[i];

					if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
					      (c >= '0' && c <= '9') || c == '-' || c == '.' ||
					      c == '_' || (v[0] == '[' && (c == '[' || c == ']' ||
									  c == ':')))) {
						snprintf(err, errlen, "%s '%s': a host is a name or an "
							 "address, without a port ([::1] for IPv6)",
							 kw, arg);
						return -EINVAL;
					}
					r->host[i] = c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
				}
				r->host_len = vn;
			} else if (kn == 4 && !strncmp(p, "path", 4) && !r->path_len) {
				if (!vn || vn > KP_L7_PATH_MAX || (v[0] != '/' && v[0] != '*')) {
					snprintf(err, errlen, "%s '%s': a path prefix starts with / "
						 "and is at most %d bytes", kw, arg, KP_L7_PATH_MAX);
					return -EINVAL;
				}
				for (i = 0; i < vn; i++) {
					if ((unsigned char)v[i] <= 0x20 || v[i] == 0x7f) {
						snprintf(err, errlen, "%s '%s': a path prefix has no "
							 "spaces or control characters", kw, arg);
						return -EINVAL;
					}
				}
				memcpy(r->path, v, vn);
				r->path_len = vn;
			} else {
				snprintf(err, errlen, "%s '%s': '%.*s' is not method, host or path, or "
					 "comes twice (a path prefix cannot hold a comma)", kw, arg,
					 (int)kn, p);
				return -EINVAL;
			}
			p = *end ? end + 1 : end;
		}
	}
	m->nrules++;
	return 0;
}

static int mux_word(void *obj, const char *kw, const char *arg, char *err, size_t errlen)
{
	struct mux_parse *mp = obj;
	struct mux *m = mp->m;
	unsigned long v;
	int ret;

	if (!strcmp(kw, "listen")) {
		ret = kp_uri_parse(arg, &m->listen, err, errlen);
		if (ret)
			return ret;
		if (m->listen.scheme != KP_URI_TCP) {
			snprintf(err, errlen, "a mux listens on tcp:// or tcp6://");
			return -EPROTONOSUPPORT;
		}
		mp->have_listen = true;
	} else if (!strcmp(kw, "backend")) {
		ret = kpd_add_backend("mux", m->backends, &m->nbackends, arg, err, errlen);
		if (!ret && m->backends[m->nbackends - 1].scheme != KP_URI_TCP) {
			snprintf(err, errlen, "a mux's backends are tcp:// or tcp6://");
			return -EPROTONOSUPPORT;
		}
		return ret;
	} else if (!strcmp(kw, "parser")) {
		if (parser_word(&m->kcfg.req, m->parser_file[0], kw, arg, err, errlen))
			return -EINVAL;
		m->kcfg.resp = m->kcfg.req;
		/* http: requests one way, responses the other. */
		if (m->kcfg.req.kind == KP_PARSER_HTTP) {
			m->kcfg.req.http_responses = 0;
			m->kcfg.resp.http_responses = 1;
		}
		memcpy(m->parser_file[1], m->parser_file[0], sizeof(m->parser_file[1]));
		mp->have_parser = true;
	} else if (!strcmp(kw, "request_parser")) {
		return parser_word(&m->kcfg.req, m->parser_file[0], kw, arg, err, errlen);
	} else if (!strcmp(kw, "response_parser")) {
		return parser_word(&m->kcfg.resp, m->parser_file[1], kw, arg, err, errlen);
	} else if (!strcmp(kw, "conns")) {
		if (kpd_parse_num(kw, arg, 1, KP_MUX_MAX_SLOTS, &v, err, errlen))
			return -EINVAL;
		m->conns = v;
	} else if (!strcmp(kw, "balance")) {
		if (!strcmp(arg, "rr")) {
			m->kcfg.balance = KP_MUX_BAL_RR;
		} else if (!strcmp(arg, "hash")) {
			m->kcfg.balance = KP_MUX_BAL_HASH;
		} else if (!strcmp(arg, "least")) {
			m->kcfg.balance = KP_MUX_BAL_LEAST;
		} else {
			snprintf(err, errlen, "balance '%s': use rr (any free connection), least (the "
				 "connection with the fewest requests in flight) or hash (the backend by "
				 "a key in each request, see hash_key)", arg);
			return -EINVAL;
		}
	} else if (!strcmp(kw, "hash_key")) {
		unsigned int off, len;
		char end;

		if (!strcmp(arg, "host") || !strcmp(arg, "path")) {
			m->kcfg.hash_http = arg[0] == 'h' ? KP_MUX_HASH_HOST : KP_MUX_HASH_PATH;
			m->kcfg.hash_len = 1;
			return 0;
		}
		if (sscanf(arg, "%u:%u%c", &off, &len, &end) != 2 || !len ||
		    len > KP_MUX_HASH_MAX || off > 65535) {
			snprintf(err, errlen, "hash_key '%s': OFFSET:LENGTH, the bytes of each request "
				 "that choose its backend (LENGTH 1 to %d); or host or path for "
				 "parser http", arg, KP_MUX_HASH_MAX);
			return -EINVAL;
		}
		m->kcfg.hash_off = off;
		m->kcfg.hash_len = len;
	} else if (!strcmp(kw, "id")) {
		unsigned int off, len;
		char end;

		if (sscanf(arg, "%u:%u%c", &off, &len, &end) != 2 || !len ||
		    len > KP_MUX_ID_MAX || off > 65535) {
			snprintf(err, errlen, "id '%s': OFFSET:LENGTH, where each request and its "
				 "response carry the same ID (LENGTH 1 to %d bytes)", arg,
				 KP_MUX_ID_MAX);
			return -EINVAL;
		}
		m->kcfg.id_off = off;
		m->kcfg.id_len = len;
	} else if (!strcmp(kw, "msg_timeout")) {
		if (kpd_parse_num(kw, arg, 10, 3600000, &v, err, errlen))
			return -EINVAL;
		m->msg_timeout_ms = v;
	} else if (!strcmp(kw, "allow") || !strcmp(kw, "deny")) {
		return rule_word(m, kw, arg, err, errlen);
	} else if (!strcmp(kw, "default")) {
		if (strcmp(arg, "allow") && strcmp(arg, "deny")) {
			snprintf(err, errlen, "default '%s': allow or deny (what happens to a "
				 "request no rule matches)", arg);
			return -EINVAL;
		}
		m->kcfg.l7_default = strcmp(arg, "deny") ? KP_L7_ALLOW : KP_L7_DENY;
		mp->have_default = true;
	} else if (!strcmp(kw, "deny_action")) {
		if (strcmp(arg, "403") && strcmp(arg, "close")) {
			snprintf(err, errlen, "deny_action '%s': 403 (answer 403 Forbidden, then "
				 "close) or close", arg);
			return -EINVAL;
		}
		m->deny_close = !strcmp(arg, "close");
		mp->have_default = true;
	} else if (!strcmp(kw, "response_timeout")) {
		if (kpd_parse_num(kw, arg, 0, 3600000, &v, err, errlen))
			return -EINVAL;
		if (v && v < 100) {
			snprintf(err, errlen, "response_timeout %lu: 0 (none) or at least 100 ms", v);
			return -EINVAL;
		}
		m->response_timeout_ms = v;
	} else if (!strcmp(kw, "max_clients")) {
		if (kpd_parse_num(kw, arg, 1, KP_MAX_SOCKS / 4, &v, err, errlen))
			return -EINVAL;
		m->max_clients = v;
	} else {
		snprintf(err, errlen, "unknown keyword '%s': expected listen, backend, parser, "
			 "request_parser, response_parser, conns, balance, hash_key, id, msg_timeout, "
			 "response_timeout, max_clients, allow, deny, default or deny_action", kw);
		return -EINVAL;
	}
	return 0;
}

/* A free mux id: @want if it is free (a restart keeps ids), else the lowest. */
static __u32 alloc_id(int want)
{
	bool used[KP_MAX_MUXES] = { false };
	struct list_head *p;
	__u32 i;

	for (p = muxes.next; p != &muxes; p = p->next)
		used[container_of(p, struct mux, node)->id] = true;
	if (want >= 0 && want < KP_MAX_MUXES && !used[want])
		return want;
	for (i = 0; i < KP_MAX_MUXES; i++)
		if (!used[i])
			return i;
	return KP_MAX_MUXES;
}

static struct mux *mux_find(const char *name)
{
	struct list_head *p;

	for (p = muxes.next; p != &muxes; p = p->next) {
		struct mux *m = container_of(p, struct mux, node);

		if (!strcmp(m->name, name))
			return m;
	}
	return NULL;
}

/* ------------------------------------------------------------ backend pool */

static void slot_connect(struct mux_slot *s)
{
	struct mux *m = s->m;
	const struct kp_uri *u;

	/* A slot keeps its backend over reconnects: hash balancing relies on it. */
	s->backend = s->idx % m->nbackends;
	u = &m->backends[s->backend];
	s->e.fd = socket(u->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->e.fd < 0) {
		s->retry_ms = now_ms() + MUX_RETRY_MS;
		wake_at(s->retry_ms);
		return;
	}
	s->conn_id = ++kpd.next_conn_id;
	if (connect(s->e.fd, (const struct sockaddr *)&u->addr, u->addrlen) && errno != EINPROGRESS) {
		m->backend_fail++;
		ev_close(&s->e);
		s->retry_ms = now_ms() + MUX_RETRY_MS;
		wake_at(s->retry_ms);
		return;
	}
	s->retry_ms = 0;
	ev_set(&s->e, EPOLLOUT);
}

/*
 * Before a socket enters the map. A message may be as large as the parser
 * allows: strparser needs it all in the receive buffer (it aborts with
 * EMSGSIZE over sk_rcvbuf). And strparser times a message from its first
 * byte with sk_rcvtimeo: one that never completes closes its connection
 * (ETIMEDOUT) and frees what it held.
 */
static void strp_limits(int fd, const struct kp_parser_cfg *pc, unsigned int timeout_ms)
{
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = timeout_ms % 1000 * 1000 };
	int want = pc->max_msg * 2 + 65536;

	if (want > 1 << 20)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static void slot_up(struct mux_slot *s)
{
	struct mux *m = s->m;
	struct kp_mux_sk ms = { .mux_id = m->id, .role = KP_MUX_BACKEND, .slot = s->idx,
				.conn_id = s->conn_id };
	struct kp_mux_slot ks = { .state = KP_SLOT_FREE, .backend = s->backend };
	int e = 0, one = 1, ret;
	socklen_t l = sizeof(e);

	getsockopt(s->e.fd, SOL_SOCKET, SO_ERROR, &e, &l);
	if (e) {
		m->backend_fail++;
		ev_close(&s->e);
		s->retry_ms = now_ms() + MUX_RETRY_MS;
		wake_at(s->retry_ms);
		return;
	}
	setsockopt(s->e.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	strp_limits(s->e.fd, &m->kcfg.resp, m->msg_timeout_ms);
	if (kp_sock_cookie(s->e.fd, &s->cookie) ||
	    (ret = kp_mux_sock_add(mdp, s->e.fd, s->cookie, &ms))) {
		kp_warn("mux %s: backend connection %d cannot enter %s; retrying", m->name, s->idx,
			KP_MAP_MUX_SOCKS);
		ev_close(&s->e);
		s->retry_ms = now_ms() + MUX_RETRY_MS;
		wake_at(s->retry_ms);
		return;
	}
	ks.cookie = s->cookie;
	kp_mux_reqs_clear(mdp, m->id, s->idx);	/* what a dead connection left */
	kp_mux_slot_set(mdp, m->id, s->idx, &ks);
	s->up = true;
	/* Responses never come up here; watch only for the end. */
	ev_set(&s->e, EPOLLRDHUP);
}

static void client_free(struct mux_client *c, bool reset);

/*
 * ID correlation: a dead slot had requests of any number of clients in
 * flight: its entries still taken once the slot is emptied (the verdicts
 * take and free them under the slot's lock, so a response that races with
 * us either freed its entry first, and goes, or finds the slot empty, and
 * is dropped). Each of those clients is reset.
 */
static void slot_down_ids(struct mux_slot *s, struct mux_client *leaving)
{
	struct mux *m = s->m;
	__u64 cookies[KP_MUX_ID_ENTRIES];
	unsigned int n = 0, e, i;
	struct list_head *p, *np;
	struct kp_mux_reqs *rq = calloc(1, sizeof(*rq));

	if (rq && !kp_mux_reqs_get(mdp, m->id, s->idx, rq)) {
		for (e = 0; e < KP_MUX_ID_ENTRIES; e++) {
			__u64 cl = rq->e[e].client;

			for (i = 0; cl && i < n && cookies[i] != cl; i++)
				;
			if (cl && i == n)
				cookies[n++] = cl;
		}
	}
	free(rq);
	for (p = m->clients.next; p != &m->clients; p = np) {
		struct mux_client *c = container_of(p, struct mux_client, node);

		np = p->next;
		for (i = 0; i < n && cookies[i] != c->cookie; i++)
			;
		if (i == n || c == leaving)
			continue;
		kp_info("mux %s: backend connection %d closed with request(s) of client %llu in "
			"flight: resetting that client", m->name, s->idx, (unsigned long long)c->id);
		m->inflight_resets++;
		client_free(c, true);
	}
}

/*
 * A backend connection died (or goes): whoever had requests in flight on it
 * is reset, unless it is @leaving, the client being freed that caused it.
 */
static void slot_down_except(struct mux_slot *s, struct mux_client *leaving)
{
	struct mux *m = s->m;
	struct kp_mux_slot ks = { 0 }, empty = { .state = KP_SLOT_EMPTY };
	struct list_head *p;

	kp_mux_slot_get(mdp, m->id, s->idx, &ks);
	kp_mux_slot_set(mdp, m->id, s->idx, &empty);
	if (s->cookie)
		kp_mux_sock_del(mdp, s->cookie);
	s->cookie = 0;
	s->up = false;
	ev_close(&s->e);
	m->slot_deaths++;
	if (m->kcfg.id_len) {
		slot_down_ids(s, leaving);
	} else if (ks.owner && ks.outstanding) {
		for (p = m->clients.next; p != &m->clients; p = p->next) {
			struct mux_client *c = container_of(p, struct mux_client, node);

			if (c->cookie == ks.owner && c != leaving) {
				kp_info("mux %s: backend connection %d closed with %u request(s) of "
					"client %llu in flight: resetting that client", m->name, s->idx,
					ks.outstanding, (unsigned long long)c->id);
				m->inflight_resets++;
				client_free(c, true);
				break;
			}
		}
	}
	s->retry_ms = now_ms() + MUX_RETRY_MS;
	wake_at(s->retry_ms);
}

static void slot_down(struct mux_slot *s)
{
	slot_down_except(s, NULL);
}

/* ------------------------------------------------------------ clients */

static __u32 in_flight(struct mux_client *c);

static void client_free(struct mux_client *c, bool reset)
{
	struct mux *m = c->m;
	struct kp_mux_sk ms;

	/*
	 * Leaving with requests unanswered: their responses may still come on
	 * the slot, and must not reach the slot's next owner. The slot's
	 * connection goes (and is made again) with them. (With ID correlation
	 * they find their entry, whose client is gone, and are dropped.)
	 */
	if (c->cookie && !c->overflow && !m->kcfg.id_len && in_flight(c) &&
	    !kp_mux_sk_get(mdp, c->cookie, &ms) && ms.slot && ms.slot <= m->conns) {
		struct mux_slot *s = &m->slots[ms.slot - 1];

		m->slot_recycles++;
		if (s->up)
			slot_down_except(s, c);
	}
	if (reset && c->e.fd >= 0) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(c->e.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	if (c->cookie)
		kp_mux_sock_del(mdp, c->cookie);
	ev_close(&c->e);
	ev_close(&c->be);
	ev_close(&c->sk);
	if (c->sink_fd >= 0)
		close(c->sink_fd);
	c->sink_fd = -1;
	free(c->buf[0]);
	free(c->buf[1]);
	c->buf[0] = c->buf[1] = NULL;
	list_del_init(&c->node);
	m->nclients--;
	m->closed++;
	/* Events of this batch may still point at it. */
	c->dead = true;
	list_add_tail(&c->node, &dead_clients);
	wake_at(now_ms());
}

/* Requests of @c the kernel sent to its slot and that are not answered yet. */
static __u32 in_flight(struct mux_client *c)
{
	struct kp_mux_sk ms;
	struct kp_mux_slot ks;

	if (kp_mux_sk_get(mdp, c->cookie, &ms))
		return 0;
	/* ID correlation: counted per client, its requests may be on any slot */
	if (c->m->kcfg.id_len)
		return ms.outstanding;
	if (!ms.slot || kp_mux_slot_get(mdp, c->m->id, ms.slot - 1, &ks) || ks.owner != c->cookie)
		return 0;
	return ks.outstanding;
}

/*
 * Has @c (after its FIN) bytes the parser has not turned into messages yet?
 * A request that came with the FIN may still be on its way to a slot; give
 * it until settle_ms. An incomplete message at the end is never answered.
 */
static bool unparsed(struct mux_client *c, __u64 now)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);
	struct kp_mux_sk ms;

	if (now >= c->settle_ms || kp_mux_sk_get(mdp, c->cookie, &ms) ||
	    getsockopt(c->e.fd, IPPROTO_TCP, TCP_INFO, &ti, &l))
		return false;
	/* tcpi_bytes_received counts the FIN as one byte. */
	return ms.bytes + 1 < ti.tcpi_bytes_received;
}

/* @c's sockets: its own @fd, its overflow connection @bfd, its sink's ends @sfd (ours), @afd. */
static void client_init(struct mux_client *c, struct mux *m, int fd, int bfd, int sfd, int afd)
{
	c->m = m;
	c->e.ev.type = c->be.ev.type = c->sk.ev.type = EV_MUX;
	c->e.kind = MK_CLIENT;
	c->be.kind = MK_OVERFLOW;
	c->sk.kind = MK_SINK;
	c->e.obj = c->be.obj = c->sk.obj = c;
	c->e.fd = fd;
	c->be.fd = bfd;
	c->sk.fd = sfd;
	c->sink_fd = afd;
}

/* What the verdict sends us of @c comes out of a socketpair: one end in kp_mux_sinks. 0, -errno. */
static int client_sink(struct mux_client *c)
{
	int sp[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp))
		return -errno;
	c->sk.fd = sp[0];
	c->sink_fd = sp[1];
	return kp_mux_sink_add(mdp, sp[1], c->cookie);
}

static void mux_accept(struct mux *m)
{
	struct sockaddr_storage ca;
	socklen_t calen;
	int fd, n, one = 1, err;

	for (n = 0; n < 64; n++) {
		struct mux_client *c;
		struct kp_mux_sk ms = { .mux_id = m->id, .role = KP_MUX_CLIENT };

		calen = sizeof(ca);
		fd = accept4(m->e.fd, (struct sockaddr *)&ca, &calen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		m->accepted++;
		c = calloc(1, sizeof(*c));
		if (!c || m->nclients >= m->max_clients) {
			struct linger lg = { .l_onoff = 1, .l_linger = 0 };

			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(fd);
			free(c);
			m->rejected++;
			continue;
		}
		client_init(c, m, fd, -1, -1, -1);
		c->id = ++kpd.next_conn_id;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		strp_limits(fd, &m->kcfg.req, m->msg_timeout_ms);
		ms.conn_id = c->id;
		list_add_tail(&c->node, &m->clients);
		m->nclients++;
		if (kp_sock_cookie(fd, &c->cookie)) {
			c->cookie = 0;
			client_free(c, false);
			continue;
		}
		/* Its sink first: the verdict may need it at its first message. */
		if ((err = client_sink(c))) {
			kp_info("mux %s: no sink for a client (%s): refusing it", m->name,
				strerror(-err));
			m->rejected++;
			client_free(c, true);
			continue;
		}
		if (kp_mux_sock_add(mdp, fd, c->cookie, &ms)) {
			/* Closed before we got to it (only established sockets enter a map). */
			client_free(c, false);
			continue;
		}
		/* Its end shows on its own socket; what we carry, on the sink. */
		ev_set(&c->e, EPOLLRDHUP);
		ev_set(&c->sk, EPOLLIN);
		/* Bytes that arrived before the insert: make TCP tell the parser. */
		setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
	}
}

static bool delivered(struct mux_client *c);

/*
 * Overflow: a backend connection of the client's own, once its kernel
 * requests are answered and those answers are in its socket (so the relayed
 * answers come after them).
 */
static void overflow_connect(struct mux_client *c)
{
	struct mux *m = c->m;
	const struct kp_uri *u = &m->backends[m->rr % m->nbackends];

	if (in_flight(c) || !delivered(c)) {
		struct kp_mux_sk ms = { 0 };
		__u64 sent = 0;

		if (now_ms() < c->handed_by_ms) {
			wake_at(now_ms() + 1);
			return;
		}
		kp_mux_sk_get(mdp, c->cookie, &ms);
		kpd_out_total(c->e.fd, &sent);
		kp_info("mux %s: client %llu overflowed, but %u request(s) of it in the kernel "
			"stayed unanswered (%llu of %llu response bytes delivered) for %d ms: "
			"resetting it", m->name, (unsigned long long)c->id, in_flight(c),
			(unsigned long long)sent, (unsigned long long)ms.resp_bytes, MUX_DRAIN_MS);
		m->overflow_stalls++;
		client_free(c, true);
		return;
	}
	m->rr++;
	c->be.fd = socket(u->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->be.fd < 0 || (connect(c->be.fd, (const struct sockaddr *)&u->addr, u->addrlen) &&
			     errno != EINPROGRESS)) {
		m->backend_fail++;
		client_free(c, true);
		return;
	}
	c->connecting = true;
	ev_set(&c->be, EPOLLOUT);
}

static int discard(struct mux_client *c);
static bool deny_start(struct mux_client *c);

/* The client's FIN: its own socket reads 0 (its bytes go to the parser, not here). 1, 0, -errno. */
static int client_fin(struct mux_client *c)
{
	char b;
	ssize_t n;

	if (c->ceof)
		return 1;
	n = recv(c->e.fd, &b, 1, MSG_DONTWAIT);
	if (n == 0) {
		c->ceof = true;
		c->settle_ms = now_ms() + MUX_SETTLE_MS;
		return 1;
	}
	if (n > 0)
		return -EPROTO;	/* nothing is passed up a client's socket */
	return errno == EAGAIN || errno == EINTR ? 0 : -errno;
}

/*
 * The client's bytes that kproxyd carries, from its sink: > 0 bytes; 0 at
 * the end (its FIN, and every message the verdict sent us has come out;
 * the parser gets until settle_ms for what came with the FIN, an incomplete
 * message is never sent, and the sink gets MUX_SETTLE_MS more for what is
 * still on its way); -1 and errno.
 */
static ssize_t carried_recv(struct mux_client *c, char *buf, size_t want)
{
	__u64 now = now_ms(), from;
	struct kp_mux_sk ms;
	ssize_t n = recv(c->sk.fd, buf, want, MSG_DONTWAIT);
	int fin;

	if (n > 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		return n;
	fin = client_fin(c);
	if (fin < 0) {
		errno = -fin;
		return -1;
	}
	if (fin && (kp_mux_sk_get(mdp, c->cookie, &ms) || now >= c->settle_ms + MUX_SETTLE_MS))
		return 0;
	if (fin) {
		from = ms.flags & KP_MUX_OVERFLOW ? ms.pass_at : ms.deny_at;
		if (c->rx + from >= ms.bytes && !unparsed(c, now))
			return 0;
		wake_at(now + 1);
	}
	errno = EAGAIN;
	return -1;
}

/* Move what one side holds to the other; read more when it is empty. 0, or -errno. */
static int relay_dir(struct mux_client *c, int dir)
{
	int to = dir ? c->e.fd : c->be.fd;
	bool *eof = dir ? &c->beof : &c->eof;
	size_t want;
	ssize_t n;

	for (;;) {
		while (c->off[dir] < c->len[dir]) {
			n = send(to, c->buf[dir] + c->off[dir], c->len[dir] - c->off[dir],
				 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n < 0)
				return errno == EAGAIN ? 0 : -errno;
			c->off[dir] += n;
			c->m->user_bytes += n;
		}
		c->off[dir] = c->len[dir] = 0;
		if (*eof)
			return 0;
		want = KPD_RELAY_BUF;
		if (!dir && c->denied) {
			/* Up to the denied request: nothing of it or after it reaches the backend. */
			if (c->rx >= c->deny_limit) {
				*eof = true;
				return discard(c);
			}
			if (want > c->deny_limit - c->rx)
				want = c->deny_limit - c->rx;
		}
		if (!c->buf[dir] && !(c->buf[dir] = malloc(KPD_RELAY_BUF)))
			return -ENOMEM;
		n = dir ? recv(c->be.fd, c->buf[1], want, MSG_DONTWAIT) : carried_recv(c, c->buf[0], want);
		if (n > 0 && !dir && c->m->kcfg.l7_on && (c->denied || deny_start(c))) {
			/*
			 * The verdict flags a denial before it passes the denied
			 * request: if the flag is up now, these bytes may hold it.
			 */
			__u64 left = c->deny_limit > c->rx ? c->deny_limit - c->rx : 0;

			if ((__u64)n > left)
				n = left;
			if (!n) {
				*eof = true;
				return discard(c);
			}
		}
		if (n > 0) {
			c->len[dir] = n;
			if (!dir)
				c->rx += n;
			continue;
		}
		if (n == 0) {
			*eof = true;
			return 0;
		}
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	}
}

static const char deny_403[] = "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
	"Content-Length: 10\r\nConnection: close\r\n\r\nForbidden\n";
static const char deny_400[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
	"Content-Length: 12\r\nConnection: close\r\n\r\nBad Request\n";

/* A denied client's bytes: read from its sink and dropped. 0, or -errno; ceof at its FIN. */
static int discard(struct mux_client *c)
{
	char buf[4096];
	ssize_t n;
	int fin;

	while ((n = recv(c->sk.fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		;
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return -errno;
	fin = client_fin(c);
	return fin < 0 ? fin : 0;
}

/* The 403 (or 400: a request the policy could not judge), unless deny_action is close. */
static void deny_answer(struct mux_client *c, bool bad)
{
	const char *r = bad ? deny_400 : deny_403;

	if (!c->m->deny_close &&
	    send(c->e.fd, r, strlen(r), MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)strlen(r))
		c->m->deny_answers++;
	shutdown(c->e.fd, SHUT_WR);
	c->answered = true;
	c->deny_by_ms = now_ms() + MUX_LINGER_MS;
}

/* Has @c's socket taken every response byte the kernel redirected to it? */
static bool delivered(struct mux_client *c)
{
	struct kp_mux_sk ms;

	__u64 sent;

	return !kp_mux_sk_get(mdp, c->cookie, &ms) && !kpd_out_total(c->e.fd, &sent) &&
	       sent >= ms.resp_bytes;
}

/*
 * A client the L7 policy denied, its requests all in the kernel so far: the
 * denied request and whatever follows came to us and are dropped. Once the
 * answers to its earlier requests have left (none in flight, and the socket
 * has taken every byte the kernel redirected to it), the 403 or 400 and a
 * FIN; then its bytes are read and dropped until its FIN, so that the close
 * does not reset what it has not read yet.
 */
static void deny_step(struct mux_client *c)
{
	__u64 now = now_ms();
	struct kp_mux_sk ms;

	if (discard(c)) {
		client_free(c, true);
		return;
	}
	if (!c->answered) {
		if (kp_mux_sk_get(mdp, c->cookie, &ms)) {
			client_free(c, true);
			return;
		}
		if (in_flight(c) || !delivered(c)) {
			if (now >= c->deny_by_ms) {
				c->m->deny_resets++;
				client_free(c, true);
				return;
			}
			ev_set(&c->e, c->ceof ? 0 : EPOLLRDHUP);
			wake_at(now + 1);
			return;
		}
		deny_answer(c, ms.flags & KP_MUX_BADREQ);
	}
	if (c->ceof || now >= c->deny_by_ms) {
		client_free(c, false);
		return;
	}
	ev_set(&c->e, EPOLLRDHUP);
	wake_at(c->deny_by_ms);
}

/* Did the policy deny one of @c's requests? Then deny_step() carries it. */
static bool deny_start(struct mux_client *c)
{
	struct kp_mux_sk ms;

	if (c->denied)
		return true;
	if (kp_mux_sk_get(mdp, c->cookie, &ms) || !(ms.flags & KP_MUX_DENIED))
		return false;
	c->denied = true;
	c->deny_by_ms = now_ms() + MUX_DRAIN_MS;
	/* overflow: relay what came before the denied request */
	c->deny_limit = ms.deny_at > ms.pass_at ? ms.deny_at - ms.pass_at : 0;
	return true;
}

static void overflow_step(struct mux_client *c)
{
	int dir;

	deny_start(c);
	if (c->be.fd < 0 || c->connecting) {
		if (c->be.fd < 0)
			overflow_connect(c);
		return;
	}
	for (dir = 0; dir < 2; dir++) {
		if (relay_dir(c, dir)) {
			client_free(c, true);
			return;
		}
	}
	if (c->eof && !c->len[0] && !c->fin_sent) {
		shutdown(c->be.fd, SHUT_WR);
		c->fin_sent = true;
	}
	if (c->beof && !c->len[1] && !c->bfin_sent) {
		if (c->denied && c->eof)
			deny_answer(c, false);	/* after the backend answered what came before */
		else
			shutdown(c->e.fd, SHUT_WR);
		c->bfin_sent = true;
	}
	if (c->fin_sent && c->bfin_sent) {
		if (c->denied && !discard(c) && !c->ceof && now_ms() < c->deny_by_ms) {
			ev_set(&c->be, 0);
			ev_set(&c->e, EPOLLRDHUP);
			wake_at(c->deny_by_ms);
			return;
		}
		client_free(c, false);
		return;
	}
	ev_set(&c->e, (c->ceof ? 0 : EPOLLRDHUP) | (c->len[1] ? EPOLLOUT : 0));
	ev_set(&c->sk, c->eof || c->len[0] ? 0 : EPOLLIN);
	ev_set(&c->be, (c->beof || c->len[1] ? 0 : EPOLLIN | EPOLLRDHUP) | (c->len[0] ? EPOLLOUT : 0));
}

/*
 * Has the verdict handed @c to kproxyd: overflow (no free slot), or a
 * request the policy denied? Then carry it on that way. One reading of the
 * flags decides: the verdict sets OVERFLOW (if ever) before DENIED, and
 * either before the bytes it passes, so DENIED without OVERFLOW means all
 * of the client's earlier requests went to its slot. An end seen before
 * (eof) is the relay's or the discard's to find again, after the passed bytes.
 */
static bool client_handed(struct mux_client *c)
{
	struct kp_mux_sk ms;

	if (kp_mux_sk_get(mdp, c->cookie, &ms))
		return false;
	if (ms.flags & KP_MUX_SINKLESS) {
		kp_warn("mux %s: a message of client %llu found no sink: resetting it", c->m->name,
			(unsigned long long)c->id);
		client_free(c, true);
		return true;
	}
	if (ms.flags & KP_MUX_OVERFLOW) {
		c->overflow = true;
		c->eof = false;
		c->close_by_ms = 0;
		c->handed_by_ms = now_ms() + MUX_DRAIN_MS;
		c->m->overflowed++;
		ev_set(&c->e, 0);
		overflow_step(c);
		return true;
	}
	if (ms.flags & KP_MUX_DENIED) {
		deny_start(c);
		deny_step(c);
		return true;
	}
	return false;
}

/* Its sink is readable: the verdict sent us a message of it (overflow, denied). */
static void sink_event(struct mux_client *c)
{
	if (c->overflow)
		overflow_step(c);
	else if (c->denied)
		deny_step(c);
	else if (!client_handed(c)) {
		kp_warn("mux %s: client %llu: bytes on its sink without a reason: resetting it",
			c->m->name, (unsigned long long)c->id);
		client_free(c, true);
	}
}

static void client_event(struct mux_client *c, __u32 events)
{
	if (c->overflow) {
		overflow_step(c);
		return;
	}
	if (events & EPOLLERR) {
		int err = 0;
		socklen_t l = sizeof(err);

		getsockopt(c->e.fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err == ETIMEDOUT)
			c->m->msg_timeouts++;
		client_free(c, true);
		return;
	}
	if (c->denied) {
		deny_step(c);
		return;
	}
	if (client_handed(c))
		return;
	if (events & (EPOLLRDHUP | EPOLLHUP)) {
		/* The client is done sending: close once it has its responses. */
		c->eof = true;
		c->close_by_ms = now_ms() + MUX_DRAIN_MS;
		c->settle_ms = now_ms() + MUX_SETTLE_MS;
		ev_set(&c->e, 0);
		wake_at(now_ms() + 1);
	}
}

void mux_event(struct ev_src *src, __u32 events)
{
	struct mux_ev *e = container_of(src, struct mux_ev, ev);

	if ((e->kind == MK_CLIENT || e->kind == MK_OVERFLOW || e->kind == MK_SINK) &&
	    ((struct mux_client *)e->obj)->dead)
		return;
	switch (e->kind) {
	case MK_LISTEN:
		mux_accept(e->obj);
		break;
	case MK_SLOT: {
		struct mux_slot *s = e->obj;

		if (!s->up)
			slot_up(s);
		else
			slot_down(s);
		break;
	}
	case MK_CLIENT:
		client_event(e->obj, events);
		break;
	case MK_SINK:
		sink_event(e->obj);
		break;
	case MK_OVERFLOW: {
		struct mux_client *c = e->obj;

		if (c->connecting) {
			int err = 0;
			socklen_t l = sizeof(err);

			getsockopt(c->be.fd, SOL_SOCKET, SO_ERROR, &err, &l);
			if (err) {
				c->m->backend_fail++;
				client_free(c, true);
				break;
			}
			c->connecting = false;
		}
		overflow_step(c);
		break;
	}
	}
}

/*
 * Slots whose backend has sent nothing for response_timeout while a request
 * waits there (nothing received, and nothing sent since either): the slot's
 * connection goes, and with it the client that waits (slot_down() resets
 * it). Checked a few times per timeout, at least every second.
 */
static void response_timeouts(struct mux *m, __u64 now)
{
	unsigned int period;
	int i;

	if (!m->response_timeout_ms)
		return;
	if (now < m->next_rt_check) {
		wake_at(m->next_rt_check);
		return;
	}
	period = m->response_timeout_ms / 4 < 1000 ? m->response_timeout_ms / 4 : 1000;
	m->next_rt_check = now + period;
	wake_at(m->next_rt_check);
	for (i = 0; i < (int)m->conns; i++) {
		struct mux_slot *s = &m->slots[i];
		socklen_t l = sizeof(struct tcp_info);
		struct kp_mux_slot ks;
		struct tcp_info ti;

		if (!s->up || kp_mux_slot_get(mdp, m->id, i, &ks) ||
		    (ks.state != KP_SLOT_OWNED && !m->kcfg.id_len) || !ks.outstanding || getsockopt(s->e.fd, IPPROTO_TCP, TCP_INFO, &ti, &l) ||
		    ti.tcpi_last_data_recv < m->response_timeout_ms ||
		    ti.tcpi_last_data_sent < m->response_timeout_ms)
			continue;
		kp_info("mux %s: backend connection %d silent for %u ms with %u request(s) waiting: "
			"closing it", m->name, s->idx, m->response_timeout_ms, ks.outstanding);
		m->response_timeouts++;
		slot_down(s);
	}
}

void mux_tick(void)
{
	struct list_head *p, *q, *nq;
	__u64 now = now_ms();
	int i;

	while (!list_empty(&dead_clients)) {
		struct list_head *d = dead_clients.next;

		list_del_init(d);
		free(container_of(d, struct mux_client, node));
	}
	if (!mux_wake_ms || now < mux_wake_ms)
		return;
	mux_wake_ms = 0;
	if (list_empty(&muxes))
		return;
	for (p = muxes.next; p != &muxes; p = p->next) {
		struct mux *m = container_of(p, struct mux, node);

		response_timeouts(m, now);
		for (i = 0; i < (int)m->conns; i++) {
			struct mux_slot *s = &m->slots[i];

			if (s->e.fd < 0 && s->retry_ms) {
				if (s->retry_ms <= now)
					slot_connect(s);
				else
					wake_at(s->retry_ms);
			}
		}
		for (q = m->clients.next; q != &m->clients; q = nq) {
			struct mux_client *c = container_of(q, struct mux_client, node);

			nq = q->next;
			if (c->overflow) {
				if (c->be.fd < 0)
					overflow_connect(c);
				else if (c->denied || (c->ceof && !c->eof && !c->connecting))
					overflow_step(c);	/* its end: the last bytes, or settle_ms */
				continue;
			}
			if (c->denied) {
				deny_step(c);
				continue;
			}
			if (!c->close_by_ms)
				continue;
			/* Its last requests overflowed, or one was denied: those first. */
			if (client_handed(c))
				continue;
			if ((!in_flight(c) && !unparsed(c, now)) || now >= c->close_by_ms)
				client_free(c, false);
			else
				wake_at(now + 1);
		}
	}
}

/* ------------------------------------------------------------ objects */

static void mux_free(struct mux *m)
{
	struct kp_mux_slot empty = { .state = KP_SLOT_EMPTY };
	int i;

	while (!list_empty(&m->clients))
		client_free(container_of(m->clients.next, struct mux_client, node), false);
	for (i = 0; i < KP_MUX_MAX_SLOTS; i++) {
		struct mux_slot *s = &m->slots[i];

		if (s->cookie)
			kp_mux_sock_del(mdp, s->cookie);
		ev_close(&s->e);
		if (i < (int)m->conns)
			kp_mux_slot_set(mdp, m->id, i, &empty);
	}
	ev_close(&m->e);
	for (i = 0; i < 2; i++)
		if (m->parser_obj[i])
			kp_mux_parser_clear(mdp, m->id, i, m->parser_obj[i]);
	list_del_init(&m->node);
	for (i = 0; i < m->argc; i++)
		free(m->argv[i]);
	free(m);
}

/* The words of a mux statement into @m (zeroed). */
static int mux_parse(struct mux *m, int argc, char **argv, char *err, size_t errlen)
{
	struct mux_parse mp = { .m = m };
	char perr[256];
	int ret, i;

	m->conns = MUX_CONNS_DEFAULT;
	m->max_clients = KPD_MAX_CONNS_DEFAULT;
	m->msg_timeout_ms = MUX_MSG_TIMEOUT_MS;
	m->response_timeout_ms = MUX_RESPONSE_TIMEOUT_MS;
	LIST_INIT(&m->clients);
	LIST_INIT(&m->node);
	ret = kpd_parse_words("mux", argc, argv, m->name, mux_word, &mp, err, errlen);
	if (!ret && (!mp.have_listen || !m->nbackends || !mp.have_parser)) {
		snprintf(err, errlen, "mux '%s' needs 'listen URI', 'parser SPEC' and at least one "
			 "'backend URI'", m->name);
		ret = -EINVAL;
	}
	if (!ret && m->kcfg.balance == KP_MUX_BAL_HASH && !m->kcfg.hash_len) {
		snprintf(err, errlen, "mux '%s': balance hash needs 'hash_key OFFSET:LENGTH'",
			 m->name);
		ret = -EINVAL;
	}
	if (!ret && m->kcfg.balance == KP_MUX_BAL_HASH && m->conns < (unsigned int)m->nbackends) {
		snprintf(err, errlen, "mux '%s': balance hash needs at least one connection per "
			 "backend (conns %u, %d backends)", m->name, m->conns, m->nbackends);
		ret = -EINVAL;
	}
	if (!ret && (m->nrules || mp.have_default) &&
	    (m->kcfg.req.kind != KP_PARSER_HTTP || m->kcfg.req.http_responses)) {
		snprintf(err, errlen, "mux '%s': allow, deny, default and deny_action judge HTTP "
			 "requests: they need 'parser http' (or 'request_parser http')", m->name);
		ret = -EINVAL;
	}
	if (!ret && m->kcfg.hash_http &&
	    (m->kcfg.req.kind != KP_PARSER_HTTP || m->kcfg.req.http_responses)) {
		snprintf(err, errlen, "mux '%s': hash_key host and hash_key path need 'parser http'",
			 m->name);
		ret = -EINVAL;
	}
	if (!ret && m->kcfg.id_len &&
	    (m->kcfg.req.kind == KP_PARSER_HTTP || m->kcfg.resp.kind == KP_PARSER_HTTP)) {
		snprintf(err, errlen, "mux '%s': HTTP/1.1 has no ID field (its responses come in "
			 "order): drop 'id', or use it with len, line or bpf parsers", m->name);
		ret = -EINVAL;
	}
	if (!ret && m->kcfg.id_len && m->kcfg.req.kind != KP_PARSER_BPF &&
	    m->kcfg.req.max_msg < (unsigned int)m->kcfg.id_off + m->kcfg.id_len) {
		snprintf(err, errlen, "mux '%s': id %u:%u lies beyond the parser's largest message "
			 "(%u bytes)", m->name, m->kcfg.id_off, m->kcfg.id_len, m->kcfg.req.max_msg);
		ret = -EINVAL;
	}
	for (i = 0; !ret && m->kcfg.id_len && i < 2; i++) {
		const struct kp_parser_cfg *pc = i ? &m->kcfg.resp : &m->kcfg.req;

		if (pc->kind == KP_PARSER_LEN && m->kcfg.id_off < pc->len_off + pc->len_size &&
		    pc->len_off < (unsigned int)m->kcfg.id_off + m->kcfg.id_len) {
			snprintf(err, errlen, "mux '%s': id %u:%u overlaps the length field (bytes "
				 "%u to %u): the tag would change the framing", m->name,
				 m->kcfg.id_off, m->kcfg.id_len, pc->len_off,
				 pc->len_off + pc->len_size - 1);
			ret = -EINVAL;
		}
	}
	m->kcfg.l7_nrules = m->nrules;
	m->kcfg.l7_on = m->nrules || m->kcfg.l7_default == KP_L7_DENY;
	if (!ret && (kp_parser_cfg_check(&m->kcfg.req, perr, sizeof(perr)) ||
		     kp_parser_cfg_check(&m->kcfg.resp, perr, sizeof(perr)))) {
		snprintf(err, errlen, "mux '%s': %s", m->name, perr);
		ret = -EINVAL;
	}
	return ret;
}

int mux_check(int argc, char **argv, char *err, size_t errlen)
{
	struct mux *m = calloc(1, sizeof(*m));
	int ret;

	if (!m)
		return -ENOMEM;
	ret = mux_parse(m, argc, argv, err, errlen);
	free(m);
	return ret;
}

static void mux_adopt_sockets(struct mux *m, json_object *ho);

/*
 * A mux from its words. @want_id: the id it had before a restart (-1: any
 * free one); @ho: what the previous kproxyd handed over (its sockets and
 * counters), or NULL for a new one.
 */
static int mux_create(int argc, char **argv, int want_id, json_object *ho, char *err,
		      size_t errlen)
{
	struct mux *m = calloc(1, sizeof(*m));
	int i, ret;

	if (!m)
		return -ENOMEM;
	m->e.fd = -1;
	for (i = 0; i < KP_MUX_MAX_SLOTS; i++) {
		struct mux_slot *s = &m->slots[i];

		s->e.ev.type = EV_MUX;
		s->e.kind = MK_SLOT;
		s->e.obj = s;
		s->e.fd = -1;
		s->m = m;
		s->idx = i;
	}
	ret = mux_parse(m, argc, argv, err, errlen);
	if (!ret && mux_find(m->name)) {
		snprintf(err, errlen, "mux '%s' exists already: delete it first", m->name);
		ret = -EEXIST;
	}
	if (!ret && (m->id = alloc_id(want_id)) >= KP_MAX_MUXES) {
		snprintf(err, errlen, "too many muxes (at most %d)", KP_MAX_MUXES);
		ret = -ENOSPC;
	}
	if (!ret && !mdp && !(mdp = kp_mux_open(kpd.pin_dir))) {
		snprintf(err, errlen, "kmux could not be loaded on this kernel (the log says why)");
		ret = -EOPNOTSUPP;
	}
	if (ret) {
		free(m);
		return ret;
	}
	m->kcfg.nslots = m->conns;
	m->kcfg.nbackends = m->nbackends;
	for (i = 0; i < argc && i < KPD_SVC_MAX_ARGS; i++)
		m->argv[m->argc++] = strdup(argv[i]);
	for (i = 0; i < 2; i++) {
		const struct kp_parser_cfg *pc = i ? &m->kcfg.resp : &m->kcfg.req;

		if (pc->kind != KP_PARSER_BPF)
			continue;
		m->parser_obj[i] = kp_mux_parser_load(mdp, m->id, i, m->parser_file[i], err, errlen);
		if (!m->parser_obj[i]) {
			mux_free(m);
			return -EINVAL;
		}
	}
	m->e.ev.type = EV_MUX;
	m->e.kind = MK_LISTEN;
	m->e.obj = m;
	if (ho) {
		m->e.fd = (int)ju64(ho, "lfd");
		handover_adopt_fd(m->e.fd);
	} else {
		m->e.fd = kpd_listen_on(&m->listen, err, errlen);
	}
	if (m->e.fd < 0) {
		ret = m->e.fd;
		m->e.fd = -1;
		mux_free(m);
		return ret;
	}
	/* A restart keeps the kernel's state: counters, slots, sockets' entries. */
	if (!ho)
		kp_mux_stats_reset(mdp, m->id);
	kp_mux_rules_set(mdp, m->id, m->rules, m->nrules);
	kp_mux_cfg_set(mdp, m->id, &m->kcfg);
	list_add_tail(&m->node, &muxes);
	if (ho)
		mux_adopt_sockets(m, ho);
	for (i = 0; i < (int)m->conns; i++)
		if (m->slots[i].e.fd < 0)
			slot_connect(&m->slots[i]);
	wake_at(now_ms() + 1);	/* response_timeouts() from now on */
	ev_set(&m->e, EPOLLIN);
	if (ho)
		kp_info("mux %s: taken over, %u backend connections, %u clients", m->name, m->conns,
			m->nclients);
	else
		kp_info("mux %s: listening, %u backend connections", m->name, m->conns);
	return 0;
}

int mux_add(int argc, char **argv, char *err, size_t errlen)
{
	return mux_create(argc, argv, -1, NULL, err, errlen);
}

int mux_del(const char *name, char *err, size_t errlen)
{
	struct mux *m = mux_find(name);

	if (!m) {
		snprintf(err, errlen, "no mux named '%s' ('kproxyctl mux show' lists them)", name);
		return -ENOENT;
	}
	kp_info("mux %s: deleted (%u clients closed)", m->name, m->nclients);
	mux_free(m);
	return 0;
}

/* Reload: keep what is unchanged, replace what changed, remove what is gone. */
void muxes_apply(const struct conf_obj *objs, int n, bool reload)
{
	struct list_head *p, *nx;
	char err[512];
	int i;

	if (reload) {
		for (p = muxes.next; p != &muxes; p = nx) {
			struct mux *m = container_of(p, struct mux, node);
			const struct conf_obj *o = conf_find(objs, n, CONF_MUX, m->name);

			nx = p->next;
			if (!o || !same_words(o->argv, o->argc, m->argv, m->argc))
				mux_del(m->name, err, sizeof(err));
		}
	}
	for (i = 0; i < n; i++) {
		if (objs[i].kind != CONF_MUX || mux_find(objs[i].argv[0]))
			continue;
		if (mux_add(objs[i].argc, (char **)objs[i].argv, err, sizeof(err)))
			kp_warn("mux %s: %s", objs[i].argv[0], err);
	}
}

/*
 * For a restarted kproxyd (handover.c): each mux as the words that made it,
 * with its sockets, which stay open across the execve() and stay in the
 * pinned kp_mux_socks, so the kernel goes on moving their messages while
 * the new process starts; and what kproxyd itself holds of them (counters,
 * each client's state, the bytes an overflow relay has not sent yet).
 * Connects in flight are not handed over: they start again.
 */
#define MUX_COUNTERS(X) X(accepted) X(rejected) X(closed) X(overflowed) X(slot_deaths) \
	X(inflight_resets) X(backend_fail) X(msg_timeouts) X(slot_recycles) \
	X(response_timeouts) X(user_bytes) X(deny_answers) X(deny_resets) X(overflow_stalls) X(rr)
#define CLIENT_FLAGS(X) X(overflow) X(eof) X(beof) X(fin_sent) X(bfin_sent) X(denied) X(ceof) \
	X(answered)
#define CLIENT_NUMS(X) X(id) X(cookie) X(close_by_ms) X(settle_ms) X(rx) X(deny_limit) \
	X(deny_by_ms) X(handed_by_ms)

static void put_u64(json_object *o, const char *k, __u64 v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

static json_object *slot_handover_json(struct mux_slot *s)
{
	json_object *o = json_object_new_object();

	if (s->e.fd >= 0 && !s->up) {
		ev_close(&s->e);	/* a connect in flight: made again */
		s->retry_ms = 0;
	}
	put_u64(o, "fd", s->e.fd >= 0 ? (__u64)s->e.fd : ~0ULL);
	put_u64(o, "cookie", s->cookie);
	put_u64(o, "conn_id", s->conn_id);
	if (s->e.fd >= 0)
		handover_keep_fd(s->e.fd);
	return o;
}

static json_object *client_handover_json(struct mux_client *c)
{
	json_object *o = json_object_new_object();
	int dir;

	if (c->connecting) {
		ev_close(&c->be);	/* its own backend connection, not made yet: again */
		c->connecting = false;
	}
#define F(f) json_object_object_add(o, #f, json_object_new_boolean(c->f));
	CLIENT_FLAGS(F)
#undef F
#define N(f) put_u64(o, #f, c->f);
	CLIENT_NUMS(N)
#undef N
	put_u64(o, "fd", c->e.fd);
	put_u64(o, "bfd", c->be.fd >= 0 ? (__u64)c->be.fd : ~0ULL);
	put_u64(o, "sfd", c->sk.fd);
	put_u64(o, "afd", c->sink_fd);
	handover_keep_fd(c->e.fd);
	handover_keep_fd(c->sk.fd);
	handover_keep_fd(c->sink_fd);
	if (c->be.fd >= 0)
		handover_keep_fd(c->be.fd);
	for (dir = 0; dir < 2; dir++) {
		size_t n = c->len[dir] - c->off[dir];
		char *hex;

		if (!n || !(hex = malloc(2 * n + 1)))
			continue;
		hex_encode(c->buf[dir] + c->off[dir], n, hex);
		json_object_object_add(o, dir ? "buf1" : "buf0", json_object_new_string(hex));
		free(hex);
	}
	return o;
}

json_object *muxes_handover_json(void)
{
	json_object *arr = json_object_new_array();
	struct list_head *p, *q;
	int i;

	for (p = muxes.next; p != &muxes; p = p->next) {
		struct mux *m = container_of(p, struct mux, node);
		json_object *o = json_object_new_object(), *a = json_object_new_array();
		json_object *slots = json_object_new_array(), *clients = json_object_new_array();

		for (i = 0; i < m->argc; i++)
			json_object_array_add(a, json_object_new_string(m->argv[i]));
		json_object_object_add(o, "argv", a);
		json_object_object_add(o, "id", json_object_new_int(m->id));
		put_u64(o, "lfd", m->e.fd);
		handover_keep_fd(m->e.fd);
#define N(f) put_u64(o, #f, m->f);
		MUX_COUNTERS(N)
#undef N
		for (i = 0; i < (int)m->conns; i++)
			json_object_array_add(slots, slot_handover_json(&m->slots[i]));
		for (q = m->clients.next; q != &m->clients; q = q->next)
			json_object_array_add(clients, client_handover_json(
				container_of(q, struct mux_client, node)));
		json_object_object_add(o, "slots", slots);
		json_object_object_add(o, "clients", clients);
		json_object_array_add(arr, o);
	}
	return arr;
}

static int fd_of(json_object *o, const char *k)
{
	__u64 v = ju64(o, k);

	if (v > 0x7fffffff || !json_object_object_get_ex(o, k, NULL))
		return -1;
	handover_adopt_fd((int)v);
	return (int)v;
}

/* The new process: @m's sockets and state as the old one left them. */
static void mux_adopt_sockets(struct mux *m, json_object *ho)
{
	json_object *slots = json_object_object_get(ho, "slots");
	json_object *clients = json_object_object_get(ho, "clients");
	size_t i;
	int dir;

#define N(f) m->f = ju64(ho, #f);
	MUX_COUNTERS(N)
#undef N
	for (i = 0; i < json_object_array_length(slots) && i < m->conns; i++) {
		json_object *so = json_object_array_get_idx(slots, i);
		struct mux_slot *s = &m->slots[i];

		s->e.fd = fd_of(so, "fd");
		if (s->e.fd < 0)
			continue;
		s->backend = s->idx % m->nbackends;
		s->cookie = ju64(so, "cookie");
		s->conn_id = ju64(so, "conn_id");
		s->up = true;
		ev_set(&s->e, EPOLLRDHUP);
	}
	for (i = 0; i < json_object_array_length(clients); i++) {
		json_object *co = json_object_array_get_idx(clients, i), *v;
		struct mux_client *c = calloc(1, sizeof(*c));
		int fd = fd_of(co, "fd"), bfd = fd_of(co, "bfd");
		int sfd = fd_of(co, "sfd"), afd = fd_of(co, "afd");

		if (!c) {
			close(fd);
			if (bfd >= 0)
				close(bfd);
			if (sfd >= 0)
				close(sfd);
			if (afd >= 0)
				close(afd);
			continue;
		}
		client_init(c, m, fd, bfd, sfd, afd);
#define F(f) c->f = jbool(co, #f);
		CLIENT_FLAGS(F)
#undef F
#define N(f) c->f = ju64(co, #f);
		CLIENT_NUMS(N)
#undef N
		for (dir = 0; dir < 2; dir++) {
			size_t n;

			if (!json_object_object_get_ex(co, dir ? "buf1" : "buf0", &v))
				continue;
			n = json_object_get_string_len(v) / 2;
			c->buf[dir] = malloc(n > KPD_RELAY_BUF ? n : KPD_RELAY_BUF);
			if (!c->buf[dir])
				continue;
			hex_decode(json_object_get_string(v), c->buf[dir], n);
			c->len[dir] = n;
		}
		list_add_tail(&c->node, &m->clients);
		m->nclients++;
		/* A client of a kproxyd without sinks gets one (else its overflow is reset). */
		if (c->sk.fd < 0 && client_sink(c))
			kp_warn("mux %s: no sink for client %llu after the restart", m->name,
				(unsigned long long)c->id);
		/* Its events as they were; mux_tick() carries on what waits. */
		ev_set(&c->sk, EPOLLIN);
		if (c->overflow)
			overflow_step(c);
		else if (c->denied)
			deny_step(c);
		else
			ev_set(&c->e, c->eof ? 0 : EPOLLRDHUP);
	}
}

/* A mux that could not be made again: the sockets it had close. */
static void close_handed(json_object *o)
{
	static const char *const keys[] = { "fd", "bfd", "sfd", "afd" };
	json_object *arr;
	size_t i, k;
	int fd;

	fd = fd_of(o, "lfd");
	if (fd >= 0)
		close(fd);
	if (json_object_object_get_ex(o, "slots", &arr))
		for (i = 0; i < json_object_array_length(arr); i++)
			if ((fd = fd_of(json_object_array_get_idx(arr, i), "fd")) >= 0)
				close(fd);
	if (json_object_object_get_ex(o, "clients", &arr))
		for (i = 0; i < json_object_array_length(arr); i++)
			for (k = 0; k < 4; k++)
				if ((fd = fd_of(json_object_array_get_idx(arr, i), keys[k])) >= 0)
					close(fd);
}

/* handover.c: each mux the previous kproxyd ran, with its sockets. */
void muxes_adopt(json_object *root)
{
	json_object *arr;
	char err[512];
	size_t i;

	if (!json_object_object_get_ex(root, "muxes", &arr))
		return;
	for (i = 0; i < json_object_array_length(arr); i++) {
		json_object *o = json_object_array_get_idx(arr, i);
		char *argv[KPD_SVC_MAX_ARGS];
		int argc = handover_argv(o, argv, KPD_SVC_MAX_ARGS);

		if (mux_create(argc, argv, (int)ju64(o, "id"), o, err, sizeof(err))) {
			kp_warn("restart: mux: %s; its connections close", err);
			close_handed(o);
		}
	}
}

void muxes_shutdown(void)
{
	while (!list_empty(&muxes))
		mux_free(container_of(muxes.next, struct mux, node));
	mux_wake_ms = 0;
	mux_tick();	/* frees the dead clients */
	kp_mux_close(mdp);
	mdp = NULL;
}

/* The rules in their order, each with its hits, and the default. */
static json_object *policy_json(struct mux *m, const struct kp_mux_stats *st)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array();
	unsigned int i;

	for (i = 0; i < m->nrules; i++) {
		const struct kp_l7_rule *r = &m->rules[i];
		json_object *ro = json_object_new_object();

		json_object_object_add(ro, "rule", json_object_new_int(i + 1));
		json_object_object_add(ro, "action", json_object_new_string(
			r->action == KP_L7_DENY ? "deny" : "allow"));
		if (r->method_len)
			json_object_object_add(ro, "method", json_object_new_string_len(
				(const char *)r->method, r->method_len));
		if (r->host_len)
			json_object_object_add(ro, "host", json_object_new_string_len(
				(const char *)r->host, r->host_len));
		if (r->path_len)
			json_object_object_add(ro, "path", json_object_new_string_len(
				(const char *)r->path, r->path_len));
		json_object_object_add(ro, "hits", json_object_new_int64(
			kp_mux_rule_hits(mdp, m->id, i)));
		json_object_array_add(arr, ro);
	}
	json_object_object_add(o, "rules", arr);
	json_object_object_add(o, "default", json_object_new_string(
		m->kcfg.l7_default == KP_L7_DENY ? "deny" : "allow"));
	json_object_object_add(o, "default_hits", json_object_new_int64(st->l7_default_hits));
	json_object_object_add(o, "deny_action", json_object_new_string(
		m->deny_close ? "close" : "403"));
	return o;
}

json_object *muxes_json(const char *name, char *err, size_t errlen)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array();
	struct list_head *p;
	char buf[128];
	int i;

	if (name && !mux_find(name)) {
		snprintf(err, errlen, "no mux named '%s'", name);
		json_object_put(o);
		json_object_put(arr);
		return NULL;
	}
	for (p = muxes.next; p != &muxes; p = p->next) {
		struct mux *m = container_of(p, struct mux, node);
		json_object *mo = json_object_new_object(), *words = json_object_new_array();
		json_object *k = json_object_new_object(), *u = json_object_new_object();
		struct kp_mux_stats st = { 0 };
		int up = 0, owned = 0, busy = 0;

		if (name && strcmp(name, m->name))
			continue;
		for (i = 0; i < m->argc; i++)
			json_object_array_add(words, json_object_new_string(m->argv[i]));
		for (i = 0; i < (int)m->conns; i++) {
			struct kp_mux_slot ks;

			up += m->slots[i].up;
			if (!kp_mux_slot_get(mdp, m->id, i, &ks)) {
				owned += ks.state == KP_SLOT_OWNED;
				busy += ks.outstanding > 0;
			}
		}
		json_object_object_add(mo, "name", json_object_new_string(m->name));
		json_object_object_add(mo, "id", json_object_new_int(m->id));
		json_object_object_add(mo, "listen", json_object_new_string(kp_uri_format(
			m->listen.scheme, (struct sockaddr *)&m->listen.addr, buf, sizeof(buf))));
		json_object_object_add(mo, "words", words);
		for (i = 0; i < 2; i++) {
			const struct kp_parser_cfg *pc = i ? &m->kcfg.resp : &m->kcfg.req;
			char spec[KPD_PATH_MAX + 32];

			if (pc->kind == KP_PARSER_BPF)
				snprintf(spec, sizeof(spec), "bpf:%s,max=%u", m->parser_file[i],
					 pc->max_msg);
			else
				kp_parser_spec_format(pc, spec, sizeof(spec));
			json_object_object_add(mo, i ? "response_parser" : "request_parser",
					       json_object_new_string(spec));
		}
		json_object_object_add(mo, "conns", json_object_new_int(m->conns));
		json_object_object_add(mo, "conns_up", json_object_new_int(up));
		json_object_object_add(mo, "conns_owned", json_object_new_int(owned));
		json_object_object_add(mo, "conns_busy", json_object_new_int(busy));
		json_object_object_add(mo, "balance", json_object_new_string(
			m->kcfg.balance == KP_MUX_BAL_HASH ? "hash" :
			m->kcfg.balance == KP_MUX_BAL_LEAST ? "least" : "rr"));
		if (m->kcfg.id_len)
			snprintf(buf, sizeof(buf), "id %u:%u", m->kcfg.id_off, m->kcfg.id_len);
		json_object_object_add(mo, "correlate", json_object_new_string(
			m->kcfg.id_len ? buf : "order"));
		json_object_object_add(mo, "clients", json_object_new_int(m->nclients));
		kp_mux_stats_get(mdp, m->id, &st);
#define ST(f) json_object_object_add(k, #f, json_object_new_int64(st.f))
		ST(req_msgs); ST(req_bytes); ST(resp_msgs); ST(resp_bytes); ST(overflow_msgs);
		ST(parse_errors); ST(orphans); ST(redir_fail); ST(hash_busy);
		ST(l7_allowed); ST(l7_denied); ST(l7_bad); ST(id_unknown); ST(id_short);
#undef ST
#define US(f) json_object_object_add(u, #f, json_object_new_int64(m->f))
		US(accepted); US(rejected); US(closed); US(overflowed); US(slot_deaths);
		US(inflight_resets); US(backend_fail); US(user_bytes); US(msg_timeouts);
		US(slot_recycles); US(deny_answers); US(deny_resets); US(response_timeouts);
		US(overflow_stalls);
#undef US
		if (m->kcfg.l7_on)
			json_object_object_add(mo, "policy", policy_json(m, &st));
		json_object_object_add(mo, "kernel", k);
		json_object_object_add(mo, "daemon", u);
		json_object_array_add(arr, mo);
	}
	json_object_object_add(o, "muxes", arr);
	return o;
}
