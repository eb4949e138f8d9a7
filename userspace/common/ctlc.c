// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The client side of kproxyd's control socket: one request, one JSON answer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "ctlc.h"

int kp_ctl_call(const char *path, int argc, char **argv, json_object **ans, char *err,
		size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	json_object *req = json_object_new_object(), *arr = json_object_new_array(), *e;
	const char *txt;
	char *buf = NULL, *nb;
	size_t got = 0, cap = 0;
	ssize_t n;
	int fd, i, ret;

	*ans = NULL;
	for (i = 0; i < argc; i++)
		json_object_array_add(arr, json_object_new_string(argv[i]));
	json_object_object_add(req, "argv", arr);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		ret = -errno;
		if (ret == -EACCES)
			snprintf(err, errlen, "cannot reach kproxyd at %s: permission denied; the "
				 "control socket is for root", path);
		else
			snprintf(err, errlen, "cannot reach kproxyd at %s: %s; is kproxyd running? "
				 "(start it with 'kproxyd', or give its socket with -s)", path,
				 strerror(-ret));
		goto out;
	}
	txt = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	if (send(fd, txt, strlen(txt), MSG_NOSIGNAL) < 0 || send(fd, "\n", 1, MSG_NOSIGNAL) < 0) {
		ret = -EPIPE;
		snprintf(err, errlen, "kproxyd closed the control socket: %s", strerror(errno));
		goto out;
	}
	for (;;) {
		if (got + 4096 > cap) {
			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap + 1);
			if (!nb) {
				ret = -ENOMEM;
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			buf = nb;
		}
		n = recv(fd, buf + got, cap - got, 0);
		if (n <= 0)
			break;
		got += n;
	}
	buf[got] = '\0';
	*ans = json_tokener_parse(buf);
	if (!*ans) {
		ret = -EPROTO;
		snprintf(err, errlen, "kproxyd sent no answer (it may have stopped)");
		goto out;
	}
	if (json_object_object_get_ex(*ans, "error", &e)) {
		ret = strstr(json_object_get_string(e), "root only") ? -EACCES : -EINVAL;
		snprintf(err, errlen, "%s", json_object_get_string(e));
		json_object_put(*ans);
		*ans = NULL;
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	json_object_put(req);
	return ret;
}
