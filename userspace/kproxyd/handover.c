// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Restart without dropping connections (SIGUSR2): kproxyd re-executes its own
 * binary (a new build, after an upgrade) and hands over every listener and
 * connection socket. The sockets stay open across execve(), so they stay in
 * the pinned kp_socks, and the attached verdict keeps moving their bytes
 * while the new process starts: only FIN handling and the user-space relay
 * pause for the few milliseconds of the exec. The state travels as JSON in a
 * memfd named by KPROXYD_HANDOVER; the config as the text grammar, so that a
 * newer kproxyd can read it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/mman.h>

#include "kproxyd.h"


void handover_keep_fd(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl >= 0)
		fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
}

void handover_adopt_fd(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl >= 0)
		fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

static json_object *cfg_words(const struct proxy_cfg *cfg)
{
	json_object *a = json_object_new_array();
	char buf[KP_URI_MAX];
	int i;

#define W(s) json_object_array_add(a, json_object_new_string(s))
	W(cfg->name);
	W("listen");
	W(kp_uri_format(cfg->listen.scheme, (const struct sockaddr *)&cfg->listen.addr, buf,
			sizeof(buf)));
	for (i = 0; i < cfg->nbackends; i++) {
		W("backend");
		W(kp_uri_format(cfg->backends[i].scheme,
				(const struct sockaddr *)&cfg->backends[i].addr, buf, sizeof(buf)));
	}
	W("balance");
	W(cfg->balance == BAL_HASH ? "hash" : "rr");
	snprintf(buf, sizeof(buf), "%u", cfg->max_conns);
	W("max_conns"); W(buf);
	snprintf(buf, sizeof(buf), "%u", cfg->connect_timeout_ms);
	W("connect_timeout"); W(buf);
	snprintf(buf, sizeof(buf), "%u", cfg->backlog);
	W("backlog"); W(buf);
	if (cfg->sndbuf) {
		snprintf(buf, sizeof(buf), "%d", cfg->sndbuf);
		W("sndbuf"); W(buf);
	}
	if (cfg->rcvbuf) {
		snprintf(buf, sizeof(buf), "%d", cfg->rcvbuf);
		W("rcvbuf"); W(buf);
	}
#undef W
	tls_cfg_words(&cfg->tls, kpd_json_word, a);
	return a;
}

void hex_encode(const char *p, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hx[(unsigned char)p[i] >> 4];
		out[2 * i + 1] = hx[(unsigned char)p[i] & 15];
	}
	out[2 * n] = '\0';
}

static json_object *side_json(struct side *s)
{
	json_object *o = json_object_new_object();
	char *hex;

	json_object_object_add(o, "fd", json_object_new_int(s->fd));
	json_object_object_add(o, "cookie", json_object_new_uint64(s->cookie));
	json_object_object_add(o, "in_map", json_object_new_boolean(s->in_map));
	json_object_object_add(o, "eof", json_object_new_boolean(s->eof));
	json_object_object_add(o, "fin_fwd", json_object_new_boolean(s->fin_fwd));
	json_object_object_add(o, "fwd", json_object_new_uint64(s->fwd));
	json_object_object_add(o, "out_base", json_object_new_uint64(s->out_base));
	if (s->ktls) {
		json_object_object_add(o, "ktls", json_object_new_boolean(true));
		json_object_object_add(o, "tls_version", json_object_new_string(s->tls.version_name));
		json_object_object_add(o, "tls_cipher", json_object_new_string(s->tls.cipher_name));
		json_object_object_add(o, "tls_alpn", json_object_new_string(s->tls.alpn));
		json_object_object_add(o, "tls_sni", json_object_new_string(s->tls.sni));
	}
	if (s->pipe[0] >= 0) {
		/* Spliced bytes wait in the pipe: it goes over with the socket. */
		json_object_object_add(o, "pipe_r", json_object_new_int(s->pipe[0]));
		json_object_object_add(o, "pipe_w", json_object_new_int(s->pipe[1]));
		json_object_object_add(o, "piped", json_object_new_uint64(s->piped));
		handover_keep_fd(s->pipe[0]);
		handover_keep_fd(s->pipe[1]);
	}
	if (s->len > s->off) {
		hex = malloc(2 * (s->len - s->off) + 1);
		if (hex) {
			hex_encode(s->buf + s->off, s->len - s->off, hex);
			json_object_object_add(o, "buf", json_object_new_string(hex));
			free(hex);
		}
	}
	if (s->fd >= 0)
		handover_keep_fd(s->fd);
	return o;
}

/* Serialize everything and execve() ourselves. Returns only on failure. */
int handover_exec(char **argv)
{
	json_object *root = json_object_new_object(), *pxs = json_object_new_array();
	struct list_head *p, *q;
	const char *txt;
	char env[32];
	int mfd;

	/*
	 * Handshakes in progress do not survive: the agent holds them, and it
	 * stops here (the new kproxyd starts its own); their clients see a close.
	 */
	tls_shutdown();
	for (p = kpd.proxies.next; p != &kpd.proxies; p = p->next) {
		struct proxy *px = container_of(p, struct proxy, node);
		json_object *o = json_object_new_object(), *conns = json_object_new_array();

		json_object_object_add(o, "words", cfg_words(&px->cfg));
		json_object_object_add(o, "id", json_object_new_int(px->id));
		json_object_object_add(o, "lfd", json_object_new_int(px->lfd));
		json_object_object_add(o, "deleted", json_object_new_boolean(px->deleted));
		json_object_object_add(o, "rr_next", json_object_new_int(px->rr_next));
#define C(f) json_object_object_add(o, #f, json_object_new_uint64(px->f))
		C(accepted); C(rejected); C(backend_fail); C(closed); C(resets); C(fallbacks);
		C(user_bytes); C(tls_handshakes); C(tls_failed); C(tls_resumed); C(tls_key_updates);
		C(tls_alerts); C(tls_peer_gone); C(spliced_bytes);
#undef C
		if (px->lfd >= 0)
			handover_keep_fd(px->lfd);
		for (q = px->conns.next; q != &px->conns; q = q->next) {
			struct conn *c = container_of(q, struct conn, node);
			json_object *co;

			if (c->state == CONN_TLS_ACCEPT || c->state == CONN_TLS_CONNECT)
				continue;
			co = json_object_new_object();
			json_object_object_add(co, "id", json_object_new_uint64(c->id));
			json_object_object_add(co, "spliced", json_object_new_boolean(c->spliced));
			json_object_object_add(co, "active",
					       json_object_new_boolean(c->state == CONN_ACTIVE));
			json_object_object_add(co, "backend", json_object_new_int(c->backend));
			{
				char hex[2 * sizeof(c->caddr) + 1];

				hex_encode((const char *)&c->caddr, sizeof(c->caddr), hex);
				json_object_object_add(co, "caddr", json_object_new_string(hex));
			}
			if (c->state != CONN_ACTIVE && c->s[1].fd >= 0) {
				/* A backend connect in flight is simply started again. */
				close(c->s[1].fd);
				c->s[1].fd = -1;
			}
			json_object_object_add(co, "client", side_json(&c->s[0]));
			json_object_object_add(co, "backend_side", side_json(&c->s[1]));
			json_object_array_add(conns, co);
		}
		json_object_object_add(o, "conns", conns);
		json_object_array_add(pxs, o);
	}
	json_object_object_add(root, "proxies", pxs);
	json_object_object_add(root, "services", services_handover_json());
	json_object_object_add(root, "muxes", muxes_handover_json());
	json_object_object_add(root, "accels", accels_handover_json());
	json_object_object_add(root, "next_conn_id", json_object_new_uint64(kpd.next_conn_id));
	txt = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);

	mfd = memfd_create("kproxyd-handover", 0);
	if (mfd < 0 || write(mfd, txt, strlen(txt)) != (ssize_t)strlen(txt) ||
	    lseek(mfd, 0, SEEK_SET)) {
		kp_warn("restart: cannot write the handover state: %s", strerror(errno));
		json_object_put(root);
		return -errno;
	}
	json_object_put(root);
	snprintf(env, sizeof(env), "%d", mfd);
	setenv(HANDOVER_ENV, env, 1);
	ctl_close();
	kp_info("restart: handing over to a new kproxyd (%s)", "execve");
	execv("/proc/self/exe", argv);
	kp_warn("restart: execve failed: %s; connections are lost", strerror(errno));
	return -errno;
}

void hex_decode(const char *h, char *out, size_t n)
{
	size_t i;
	unsigned int v;

	for (i = 0; i < n; i++) {
		sscanf(h + 2 * i, "%2x", &v);
		out[i] = v;
	}
}

__u64 ju64(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_uint64(v) : 0;
}

bool jbool(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_get_boolean(v);
}

static const char *jstr(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

static void side_restore(struct side *s, json_object *o)
{
	json_object *v;

	s->fd = (int)(__s64)json_object_get_int(json_object_object_get(o, "fd"));
	s->cookie = ju64(o, "cookie");
	s->in_map = jbool(o, "in_map");
	s->eof = jbool(o, "eof");
	s->fin_fwd = jbool(o, "fin_fwd");
	s->fwd = ju64(o, "fwd");
	s->out_base = ju64(o, "out_base");
	if (s->fd >= 0)
		handover_adopt_fd(s->fd);
	s->ktls = jbool(o, "ktls");
	if (s->ktls) {
#define S(f, k) snprintf(s->tls.f, sizeof(s->tls.f), "%s", jstr(o, k))
		S(version_name, "tls_version"); S(cipher_name, "tls_cipher");
		S(alpn, "tls_alpn"); S(sni, "tls_sni");
#undef S
	}
	if (json_object_object_get_ex(o, "pipe_r", &v)) {
		s->pipe[0] = json_object_get_int(v);
		s->pipe[1] = json_object_get_int(json_object_object_get(o, "pipe_w"));
		s->piped = ju64(o, "piped");
		handover_adopt_fd(s->pipe[0]);
		handover_adopt_fd(s->pipe[1]);
	}
	if (json_object_object_get_ex(o, "buf", &v)) {
		size_t n = json_object_get_string_len(v) / 2;

		s->buf = malloc(KPD_RELAY_BUF > n ? KPD_RELAY_BUF : n);
		if (s->buf) {
			hex_decode(json_object_get_string(v), s->buf, n);
			s->len = n;
		}
	}
}

/* The words an object of the handover was made with (its "argv"), in @argv. */
int handover_argv(json_object *o, char **argv, int max)
{
	json_object *words = json_object_object_get(o, "argv");
	int argc = 0;
	size_t j;

	for (j = 0; j < json_object_array_length(words) && argc < max; j++)
		argv[argc++] = (char *)json_object_get_string(json_object_array_get_idx(words, j));
	return argc;
}

/* Re-add what @key lists, each as the words that made it, with its old id. */
static void restore_words(json_object *root, const char *key,
			  int (*add)(int argc, char **argv, int want_id, char *err, size_t errlen))
{
	json_object *arr;
	char err[512];
	size_t i;

	if (!json_object_object_get_ex(root, key, &arr))
		return;
	for (i = 0; i < json_object_array_length(arr); i++) {
		json_object *so = json_object_array_get_idx(arr, i);
		char *argv[KPD_SVC_MAX_ARGS];
		int argc = handover_argv(so, argv, KPD_SVC_MAX_ARGS);

		if (add(argc, argv, (int)ju64(so, "id"), err, sizeof(err)))
			kp_warn("restart: %s: %s", key, err);
	}
}

/* In the new process: take over what the old one handed us. Returns 1 if there was a handover. */
int handover_restore(void)
{
	const char *env = getenv(HANDOVER_ENV);
	json_object *root, *pxs;
	char *txt, err[512];
	size_t i, j;
	off_t len;
	int mfd;

	if (!env)
		return 0;
	mfd = atoi(env);
	unsetenv(HANDOVER_ENV);
	len = lseek(mfd, 0, SEEK_END);
	txt = len > 0 ? calloc(1, len + 1) : NULL;
	if (!txt || pread(mfd, txt, len, 0) != len) {
		kp_warn("restart: cannot read the handover state");
		close(mfd);
		free(txt);
		return -EINVAL;
	}
	close(mfd);
	root = json_tokener_parse(txt);
	free(txt);
	if (!root || !json_object_object_get_ex(root, "proxies", &pxs)) {
		kp_warn("restart: the handover state is malformed");
		json_object_put(root);
		return -EINVAL;
	}
	kpd.next_conn_id = ju64(root, "next_conn_id");
	for (i = 0; i < json_object_array_length(pxs); i++) {
		json_object *po = json_object_array_get_idx(pxs, i), *words, *conns;
		char *argv[64];
		struct proxy_cfg cfg;
		struct proxy *px;
		int argc = 0;

		words = json_object_object_get(po, "words");
		for (j = 0; j < json_object_array_length(words) && argc < 64; j++)
			argv[argc++] = (char *)json_object_get_string(json_object_array_get_idx(words, j));
		if (proxy_cfg_parse(argc, argv, &cfg, err, sizeof(err))) {
			kp_warn("restart: %s", err);
			continue;
		}
		px = proxy_adopt(&cfg, (int)ju64(po, "id"), json_object_get_int(
					json_object_object_get(po, "lfd")), jbool(po, "deleted"));
		if (!px)
			continue;
		px->rr_next = ju64(po, "rr_next");
#define C(f) px->f = ju64(po, #f)
		C(accepted); C(rejected); C(backend_fail); C(closed); C(resets); C(fallbacks);
		C(user_bytes); C(tls_handshakes); C(tls_failed); C(tls_resumed); C(tls_key_updates);
		C(tls_alerts); C(tls_peer_gone); C(spliced_bytes);
#undef C
		if (tls_proxy_init(px, err, sizeof(err)))
			kp_warn("restart: %s", err);
		conns = json_object_object_get(po, "conns");
		for (j = 0; j < json_object_array_length(conns); j++) {
			json_object *co = json_object_array_get_idx(conns, j);
			struct conn *c = conn_new(px, -1, NULL);

			if (!c)
				continue;
			c->id = ju64(co, "id");
			c->backend = ju64(co, "backend");
			c->spliced = jbool(co, "spliced");
			hex_decode(json_object_get_string(json_object_object_get(co, "caddr")),
				   (char *)&c->caddr, sizeof(c->caddr));
			side_restore(&c->s[0], json_object_object_get(co, "client"));
			side_restore(&c->s[1], json_object_object_get(co, "backend_side"));
			conn_resume(c, jbool(co, "active"));
		}
	}
	/* Services after proxies: 'via PROXY' needs its proxy. Their hooks stayed attached. */
	restore_words(root, "services", service_add);
	restore_words(root, "accels", accel_add);
	muxes_adopt(root);
	json_object_put(root);
	kp_info("restart: took over from the previous kproxyd");
	return 1;
}
