// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The control socket: a UNIX stream socket, mode 0600 in a 0700 directory,
 * and every peer is checked with SO_PEERCRED (root only). One request per
 * connection: a JSON object {"argv": [...]} and a newline; the answer is one
 * JSON object and a newline, {"error": "..."} when the request failed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>

#include "kproxyd.h"

#define CTL_MAX_REQ	65536
#define CTL_MAX_ARGS	128

int ctl_open(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[sizeof(sa.sun_path)], *slash;
	__u32 dummy = 0;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		kp_warn("control socket path '%s' is too long", path);
		return -ENAMETOOLONG;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) && errno != EEXIST) {
			kp_warn("cannot create '%s' for the control socket: %s", dir, strerror(errno));
			return -errno;
		}
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A socket file left by a kproxyd that died; a live one would answer connect(). */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		kp_warn("another kproxyd answers on %s: stop it first, or use -s and -P to run a "
			"second one", path);
		close(fd);
		return -EADDRINUSE;
	}
	/*
	 * Bound under a temporary name and renamed into place by ctl_publish()
	 * once the configuration is up: whoever waits for the socket to appear
	 * finds a kproxyd whose proxies already listen.
	 */
	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.new", path) >= (int)sizeof(sa.sun_path)) {
		kp_warn("control socket path '%s' is too long", path);
		close(fd);
		return -ENAMETOOLONG;
	}
	unlink(sa.sun_path);
	umask(0077);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || chmod(sa.sun_path, 0600) ||
	    listen(fd, 64)) {
		int err = -errno;

		kp_warn("cannot listen on control socket %s: %s", path, strerror(-err));
		close(fd);
		return err;
	}
	kpd.ctl_fd = fd;
	kpd.ctl_ev.type = EV_CTL_LISTEN;
	return ep_set(fd, &kpd.ctl_ev, &dummy, EPOLLIN);
}

int ctl_publish(const char *path)
{
	char tmp[sizeof(((struct sockaddr_un *)0)->sun_path)];

	snprintf(tmp, sizeof(tmp), "%s.new", path);
	if (rename(tmp, path)) {
		kp_warn("cannot put the control socket in place at %s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

void ctl_close(void)
{
	char tmp[sizeof(((struct sockaddr_un *)0)->sun_path)];

	if (kpd.ctl_fd > 0) {
		close(kpd.ctl_fd);
		kpd.ctl_fd = -1;
		snprintf(tmp, sizeof(tmp), "%s.new", kpd.ctl_path);
		unlink(tmp);
		unlink(kpd.ctl_path);
	}
}

static json_object *error_obj(const char *msg)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(msg));
	return o;
}

static json_object *list_proxies(const char *name, bool stats, char *err, size_t errlen)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array();
	struct list_head *p;
	bool found = false;

	for (p = kpd.proxies.next; p != &kpd.proxies; p = p->next) {
		struct proxy *px = container_of(p, struct proxy, node);

		if (name && (px->deleted || strcmp(px->cfg.name, name)))
			continue;
		found = true;
		json_object_array_add(arr, proxy_json(px, stats));
	}
	if (name && !found) {
		json_object_put(arr);
		json_object_put(o);
		snprintf(err, errlen, "no proxy named '%s' ('kproxyctl proxy show' lists them)",
			 name);
		return NULL;
	}
	json_object_object_add(o, "proxies", arr);
	if (stats)
		json_object_object_add(o, "events_lost",
				       json_object_new_int64(kp_dp_events_lost(kpd.dp)));
	return o;
}

static json_object *list_conns(const char *name, char *err, size_t errlen)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array();
	struct list_head *p, *q;

	if (name && !proxy_find(name)) {
		json_object_put(arr);
		json_object_put(o);
		snprintf(err, errlen, "no proxy named '%s' ('kproxyctl proxy show' lists them)",
			 name);
		return NULL;
	}
	for (p = kpd.proxies.next; p != &kpd.proxies; p = p->next) {
		struct proxy *px = container_of(p, struct proxy, node);

		if (name && strcmp(px->cfg.name, name))
			continue;
		for (q = px->conns.next; q != &px->conns; q = q->next)
			json_object_array_add(arr, conn_json(container_of(q, struct conn, node)));
	}
	json_object_object_add(o, "conns", arr);
	return o;
}

static json_object *ok_obj(void)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(1));
	return o;
}

static json_object *dispatch(int argc, char **argv)
{
	char err[512] = "";
	json_object *o = NULL;
	int ret;

	if (argc >= 2 && !strcmp(argv[0], "proxy") && !strcmp(argv[1], "add")) {
		struct proxy_cfg cfg;

		ret = proxy_cfg_parse(argc - 2, argv + 2, &cfg, err, sizeof(err));
		if (!ret)
			ret = proxy_add(&cfg, err, sizeof(err));
		if (!ret)
			o = list_proxies(cfg.name, false, err, sizeof(err));
	} else if (argc == 3 && !strcmp(argv[0], "proxy") && !strcmp(argv[1], "del")) {
		if (!proxy_del(argv[2], err, sizeof(err)))
			o = ok_obj();
	} else if (argc <= 3 && argc >= 2 && !strcmp(argv[0], "proxy") && !strcmp(argv[1], "show")) {
		o = list_proxies(argc == 3 ? argv[2] : NULL, false, err, sizeof(err));
	} else if (argc <= 2 && argc >= 1 && !strcmp(argv[0], "stats")) {
		o = list_proxies(argc == 2 ? argv[1] : NULL, true, err, sizeof(err));
	} else if (argc <= 3 && argc >= 2 && !strcmp(argv[0], "conn") && !strcmp(argv[1], "show")) {
		o = list_conns(argc == 3 ? argv[2] : NULL, err, sizeof(err));
	} else if (argc >= 2 && !strcmp(argv[0], "service") && !strcmp(argv[1], "add")) {
		ret = service_add(argc - 2, argv + 2, -1, err, sizeof(err));
		if (!ret)
			o = services_json(argv[2], err, sizeof(err));
	} else if (argc == 3 && !strcmp(argv[0], "service") && !strcmp(argv[1], "del")) {
		if (!service_del(argv[2], err, sizeof(err)))
			o = ok_obj();
	} else if (argc <= 3 && argc >= 2 && !strcmp(argv[0], "service") &&
		   !strcmp(argv[1], "show")) {
		o = services_json(argc == 3 ? argv[2] : NULL, err, sizeof(err));
	} else if (argc >= 2 && !strcmp(argv[0], "accel") && !strcmp(argv[1], "add")) {
		ret = accel_add(argc - 2, argv + 2, -1, err, sizeof(err));
		if (!ret)
			o = accels_json(argv[2], err, sizeof(err));
	} else if (argc == 3 && !strcmp(argv[0], "accel") && !strcmp(argv[1], "del")) {
		if (!accel_del(argv[2], err, sizeof(err)))
			o = ok_obj();
	} else if (argc <= 3 && argc >= 2 && !strcmp(argv[0], "accel") && !strcmp(argv[1], "show")) {
		o = accels_json(argc == 3 ? argv[2] : NULL, err, sizeof(err));
	} else if (argc >= 2 && !strcmp(argv[0], "mux") && !strcmp(argv[1], "add")) {
		ret = mux_add(argc - 2, argv + 2, err, sizeof(err));
		if (!ret)
			o = muxes_json(argv[2], err, sizeof(err));
	} else if (argc == 3 && !strcmp(argv[0], "mux") && !strcmp(argv[1], "del")) {
		if (!mux_del(argv[2], err, sizeof(err)))
			o = ok_obj();
	} else if (argc <= 3 && argc >= 2 && !strcmp(argv[0], "mux") && !strcmp(argv[1], "show")) {
		o = muxes_json(argc == 3 ? argv[2] : NULL, err, sizeof(err));
	} else if (argc == 1 && !strcmp(argv[0], "sockets")) {
		o = sockets_json(err, sizeof(err));
	} else {
		snprintf(err, sizeof(err), "unknown request");
	}
	return o ? o : error_obj(err);
}

static void ctl_serve(int fd)
{
	char *req = malloc(CTL_MAX_REQ + 1), *argv[CTL_MAX_ARGS];
	json_object *in = NULL, *out = NULL, *jargv;
	struct timeval tv = { .tv_sec = 2 };
	const char *txt;
	size_t got = 0;
	ssize_t n;
	int argc = 0, i;

	if (!req)
		return;
	/* A slow client may hold the loop for at most two seconds each way. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (got < CTL_MAX_REQ) {
		n = recv(fd, req + got, CTL_MAX_REQ - got, 0);
		if (n <= 0)
			break;
		got += n;
		if (memchr(req + got - n, '\n', n))
			break;
	}
	req[got] = '\0';
	in = json_tokener_parse(req);
	if (!in || !json_object_object_get_ex(in, "argv", &jargv) ||
	    !json_object_is_type(jargv, json_type_array) ||
	    json_object_array_length(jargv) > CTL_MAX_ARGS) {
		out = error_obj("malformed request: expected {\"argv\": [...]}");
	} else {
		argc = json_object_array_length(jargv);
		for (i = 0; i < argc; i++)
			argv[i] = (char *)json_object_get_string(json_object_array_get_idx(jargv, i));
		out = dispatch(argc, argv);
	}
	txt = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN);
	for (got = 0; got < strlen(txt);) {
		n = send(fd, txt + got, strlen(txt) - got, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		got += n;
	}
	send(fd, "\n", 1, MSG_NOSIGNAL);
	json_object_put(out);
	json_object_put(in);
	free(req);
}

void ctl_accept(void)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd;

	while ((fd = accept4(kpd.ctl_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) || cred.uid != 0) {
			const char *msg = "{\"error\":\"the kproxyd control socket is for root only\"}\n";

			send(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
			kp_info("refused a control request from uid %u", cred.uid);
		} else {
			ctl_serve(fd);
		}
		close(fd);
	}
}
