// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Proxies: listeners, admission, and their counters. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>

#include "kproxyd.h"

struct proxy *proxy_find(const char *name)
{
	struct list_head *p;

	for (p = kpd.proxies.next; p != &kpd.proxies; p = p->next) {
		struct proxy *px = container_of(p, struct proxy, node);

		if (!px->deleted && !strcmp(px->cfg.name, name))
			return px;
	}
	return NULL;
}

static __u32 alloc_id(void)
{
	__u32 i;

	/* Slot 0 counts skbs of sockets that belong to no proxy. */
	for (i = 1; i < KP_MAX_PROXIES; i++)
		if (!kpd.ids_used[i])
			return i;
	return 0;
}

int kpd_listen_on(const struct kp_uri *u, char *err, size_t errlen)
{
	char ubuf[KP_URI_MAX];
	int fd, one = 1, ret;

	kp_uri_format(u->scheme, (const struct sockaddr *)&u->addr, ubuf, sizeof(ubuf));
	fd = socket(u->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot make a socket for %s: %s", ubuf, strerror(errno));
		return ret;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (u->addr.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&u->addr, u->addrlen) || listen(fd, 1024)) {
		ret = -errno;
		if (ret == -EADDRINUSE)
			snprintf(err, errlen, "cannot listen on %s: the port is in use; choose another "
				 "port or stop what listens there", ubuf);
		else if (ret == -EADDRNOTAVAIL)
			snprintf(err, errlen, "cannot listen on %s: no such local address", ubuf);
		else if (ret == -EACCES)
			snprintf(err, errlen, "cannot listen on %s: permission denied", ubuf);
		else
			snprintf(err, errlen, "cannot listen on %s: %s", ubuf, strerror(-ret));
		close(fd);
		return ret;
	}
	return fd;
}

int proxy_add(const struct proxy_cfg *cfg, char *err, size_t errlen)
{
	struct proxy *px;
	__u32 dummy = 0;
	int ret;

	if (proxy_find(cfg->name)) {
		snprintf(err, errlen, "proxy '%s' exists already: delete it first or pick another "
			 "name", cfg->name);
		return -EEXIST;
	}
	px = calloc(1, sizeof(*px));
	if (!px)
		return -ENOMEM;
	px->id = alloc_id();
	if (!px->id) {
		snprintf(err, errlen, "too many proxies (at most %d)", KP_MAX_PROXIES - 1);
		free(px);
		return -ENOSPC;
	}
	px->cfg = *cfg;
	px->ev.type = EV_LISTENER;
	LIST_INIT(&px->conns);
	/* TLS first: a kernel without kTLS or a bad certificate refuses before we listen. */
	ret = tls_proxy_init(px, err, errlen);
	if (ret) {
		free(px);
		return ret;
	}
	px->lfd = kpd_listen_on(&cfg->listen, err, errlen);
	if (px->lfd < 0) {
		ret = px->lfd;
		tls_proxy_fini(px);
		free(px);
		return ret;
	}
	if (ep_set(px->lfd, &px->ev, &dummy, EPOLLIN)) {
		ret = -errno;
		snprintf(err, errlen, "epoll: %s", strerror(errno));
		close(px->lfd);
		free(px);
		return ret;
	}
	kpd.ids_used[px->id] = 1;
	kp_dp_stats_reset(kpd.dp, px->id);
	list_add_tail(&px->node, &kpd.proxies);
	kp_info("proxy %s: listening", cfg->name);
	emit_event(KP_EV_PROXY_ADD, px, NULL, 0);
	return 0;
}

/* A proxy handed over by the previous kproxyd, with its listening socket. */
struct proxy *proxy_adopt(const struct proxy_cfg *cfg, int id, int lfd, bool deleted)
{
	struct proxy *px = calloc(1, sizeof(*px));
	__u32 dummy = 0;

	if (!px || id <= 0 || id >= KP_MAX_PROXIES) {
		free(px);
		return NULL;
	}
	px->cfg = *cfg;
	px->id = id;
	px->ev.type = EV_LISTENER;
	px->deleted = deleted;
	px->lfd = lfd;
	LIST_INIT(&px->conns);
	if (lfd >= 0) {
		fcntl(lfd, F_SETFD, FD_CLOEXEC);
		ep_set(lfd, &px->ev, &dummy, EPOLLIN);
	}
	kpd.ids_used[id] = 1;
	list_add_tail(&px->node, &kpd.proxies);
	return px;
}

/* A deleted proxy lives on, without listener, until its last connection ends. */
void proxy_maybe_free(struct proxy *px)
{
	if (!px->deleted || !list_empty(&px->conns))
		return;
	list_del_init(&px->node);
	tls_proxy_fini(px);
	kpd.ids_used[px->id] = 0;
	px->ev.type = 0;
	list_add_tail(&px->node, &kpd.dead_proxies);
}

int proxy_del(const char *name, char *err, size_t errlen)
{
	struct proxy *px = proxy_find(name);

	if (!px) {
		snprintf(err, errlen, "no proxy named '%s' ('kproxyctl proxy show' lists them)", name);
		return -ENOENT;
	}
	/* Stop accepting at once; connections already proxied run to their end. */
	close(px->lfd);
	px->lfd = -1;
	px->deleted = true;
	kp_info("proxy %s: deleted, %u connections drain", name, px->nconns);
	emit_event(KP_EV_PROXY_DEL, px, NULL, px->nconns);
	proxy_maybe_free(px);
	return 0;
}

void proxy_accept(struct proxy *px)
{
	struct sockaddr_storage ca;
	socklen_t calen;
	int fd, n;

	for (n = 0; n < 64; n++) {
		calen = sizeof(ca);
		fd = accept4(px->lfd, (struct sockaddr *)&ca, &calen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				kp_warn("proxy %s: accept: %s", px->cfg.name, strerror(errno));
			return;
		}
		px->accepted++;
		if (px->nconns >= px->cfg.max_conns) {
			struct linger lg = { .l_onoff = 1, .l_linger = 0 };

			/* Refuse with a reset: the client learns at once, nothing half-open stays. */
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(fd);
			px->rejected++;
			emit_client_event(KP_EV_REJECT, px, &ca, 0);
			continue;
		}
		conn_start(px, fd, &ca);
	}
}

json_object *proxy_json(struct proxy *px, bool stats)
{
	json_object *o = json_object_new_object(), *arr;
	char buf[KP_URI_MAX];
	int i;

	json_object_object_add(o, "name", json_object_new_string(px->cfg.name));
	json_object_object_add(o, "id", json_object_new_int(px->id));
	kp_uri_format(px->cfg.listen.scheme, (struct sockaddr *)&px->cfg.listen.addr, buf,
		      sizeof(buf));
	json_object_object_add(o, "listen", json_object_new_string(buf));
	arr = json_object_new_array();
	for (i = 0; i < px->cfg.nbackends; i++) {
		kp_uri_format(px->cfg.backends[i].scheme,
			      (struct sockaddr *)&px->cfg.backends[i].addr, buf, sizeof(buf));
		json_object_array_add(arr, json_object_new_string(buf));
	}
	json_object_object_add(o, "backends", arr);
	json_object_object_add(o, "balance",
			       json_object_new_string(px->cfg.balance == BAL_HASH ? "hash" : "rr"));
	json_object_object_add(o, "max_conns", json_object_new_int64(px->cfg.max_conns));
	json_object_object_add(o, "connect_timeout_ms",
			       json_object_new_int64(px->cfg.connect_timeout_ms));
	json_object_object_add(o, "backlog", json_object_new_int64(px->cfg.backlog));
	json_object_object_add(o, "sndbuf", json_object_new_int64(px->cfg.sndbuf));
	json_object_object_add(o, "rcvbuf", json_object_new_int64(px->cfg.rcvbuf));
	json_object_object_add(o, "state",
			       json_object_new_string(px->deleted ? "draining" : "listening"));
	if (px->tls_srv_ctx || px->tls_cli_ctx) {
		json_object *t = json_object_new_array();

		tls_cfg_words(&px->cfg.tls, kpd_json_word, t);
		json_object_object_add(o, "tls", t);
	}
	json_object_object_add(o, "conns", json_object_new_int64(px->nconns));
	if (stats) {
		struct kp_proxy_stats st;
		json_object *k = json_object_new_object(), *u = json_object_new_object();

		if (!kp_dp_stats(kpd.dp, px->id, &st)) {
#define ST(f) json_object_object_add(k, #f, json_object_new_int64(st.f))
			ST(rx_bytes); ST(rx_skbs); ST(redir_bytes); ST(redir_skbs);
			ST(passed_bytes); ST(passed_skbs); ST(redir_fail); ST(no_peer);
			ST(backlog_hits); ST(fin_dropped); ST(no_conn);
			ST(overlap_bytes); ST(overlap_fail);
#undef ST
		}
		json_object_object_add(o, "kernel", k);
#define US(f) json_object_object_add(u, #f, json_object_new_int64(px->f))
		US(accepted); US(rejected); US(backend_fail); US(closed); US(resets);
		US(fallbacks); US(user_bytes);
		if (px->tls_srv_ctx || px->tls_cli_ctx) {
			US(tls_handshakes); US(tls_failed); US(tls_resumed); US(tls_key_updates);
			US(tls_alerts); US(tls_peer_gone); US(spliced_bytes);
		}
#undef US
		json_object_object_add(o, "daemon", u);
	}
	return o;
}
