// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Whole-message sockets on a kmux (msg.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "kproxy.h"
#include "ctlc.h"
#include "msg.h"
#include "parse.h"
#include "uri.h"

struct kp_msg_sock {
	int fd;
	struct kp_parser_cfg req, resp;
	__u8 *buf;			/* received, not yet handed out */
	size_t len, cap;
};

static const char *jstr(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

struct kp_msg_sock *kp_msg_attach(const char *ctl_path, const char *mux, char *err,
				  size_t errlen)
{
	char *argv[] = { "mux", "show", (char *)mux }, perr[256];
	struct kp_msg_sock *s = NULL;
	json_object *ans = NULL, *arr, *m;
	struct kp_uri u;
	int one = 1;

	if (kp_ctl_call(ctl_path ? ctl_path : KP_CTL_SOCK_DEFAULT, 3, argv, &ans, err, errlen))
		return NULL;
	if (!json_object_object_get_ex(ans, "muxes", &arr) || !json_object_array_length(arr)) {
		snprintf(err, errlen, "kproxyd has no mux '%s'", mux);
		goto fail;
	}
	m = json_object_array_get_idx(arr, 0);
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	s->fd = -1;
	if (!strncmp(jstr(m, "request_parser"), "bpf:", 4) ||
	    !strncmp(jstr(m, "response_parser"), "bpf:", 4)) {
		snprintf(err, errlen, "mux '%s' frames its messages with a BPF parser object; this "
			 "library frames with the built-in parsers (len, line) only", mux);
		goto fail;
	}
	if (kp_parser_spec_parse(jstr(m, "request_parser"), &s->req, perr, sizeof(perr)) ||
	    kp_parser_spec_parse(jstr(m, "response_parser"), &s->resp, perr, sizeof(perr))) {
		snprintf(err, errlen, "mux '%s': its parser: %s", mux, perr);
		goto fail;
	}
	if (kp_uri_parse(jstr(m, "listen"), &u, perr, sizeof(perr))) {
		snprintf(err, errlen, "mux '%s': its address: %s", mux, perr);
		goto fail;
	}
	s->fd = socket(u.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&u.addr, u.addrlen)) {
		snprintf(err, errlen, "cannot connect to mux '%s' at %s: %s", mux, jstr(m, "listen"),
			 strerror(errno));
		goto fail;
	}
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	json_object_put(ans);
	return s;
fail:
	json_object_put(ans);
	kp_msg_close(s);
	return NULL;
}

int kp_msg_fd(const struct kp_msg_sock *s)
{
	return s->fd;
}

ssize_t kp_msg_send(struct kp_msg_sock *s, const void *msg, size_t len)
{
	long r = kp_parse(&s->req, msg, len);
	size_t off = 0;
	ssize_t n;

	if (r < 0)
		return r;
	if (r == 0 || (size_t)r != len)
		return -EBADMSG;	/* not exactly one message */
	while (off < len) {
		n = send(s->fd, (const char *)msg + off, len - off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += n;
	}
	return len;
}

ssize_t kp_msg_recv(struct kp_msg_sock *s, void *buf, size_t cap)
{
	long r;
	ssize_t n;

	for (;;) {
		r = kp_parse(&s->resp, s->buf, s->len);
		if (r < 0)
			return r;
		if (r > 0 && (size_t)r <= s->len) {
			if ((size_t)r > cap)
				return -EMSGSIZE;
			memcpy(buf, s->buf, r);
			memmove(s->buf, s->buf + r, s->len - r);
			s->len -= r;
			return r;
		}
		if (s->len == s->cap) {
			size_t ncap = s->cap ? s->cap * 2 : 65536;
			__u8 *nb = realloc(s->buf, ncap);

			if (!nb)
				return -ENOMEM;
			s->buf = nb;
			s->cap = ncap;
		}
		n = recv(s->fd, s->buf + s->len, s->cap - s->len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return s->len ? -EBADMSG : 0;	/* closed in the middle of a message */
		s->len += n;
	}
}

void kp_msg_close(struct kp_msg_sock *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	free(s->buf);
	free(s);
}
