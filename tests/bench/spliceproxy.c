// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * spliceproxy: the user-space TCP proxy that never copies: splice() moves the
 * bytes from the source socket into a pipe and from the pipe into the
 * destination socket, one pipe (64 KiB) per direction. User space still
 * schedules every transfer, two system calls per chunk, but the payload stays
 * in kernel pages. Same event loop as rwproxy (relay.h).
 *
 *   spliceproxy LISTEN_HOST:PORT BACKEND_HOST:PORT
 */
#include "relay.h"

struct spipe {
	int r, w;	/* the pipe's two ends */
	size_t len;	/* bytes in the pipe */
};

static int sp_init(struct dir *d)
{
	struct spipe *p = malloc(sizeof(*p));
	int fds[2];

	if (!p)
		return -ENOMEM;
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC)) {
		free(p);
		return -errno;
	}
	/* 64 KiB is the default already; say so, in case a sysctl changed it. */
	fcntl(fds[1], F_SETPIPE_SZ, RELAY_BUF);
	p->r = fds[0];
	p->w = fds[1];
	p->len = 0;
	d->state = p;
	return 0;
}

static void sp_fini(struct dir *d)
{
	struct spipe *p = d->state;

	if (!p)
		return;
	close(p->r);
	close(p->w);
	free(p);
	d->state = NULL;
}

/*
 * As in rwproxy, fill the pipe only when it is empty: an EAGAIN from the
 * socket-to-pipe splice then always means the socket is empty, never that
 * the pipe is full.
 */
static int sp_pump(struct dir *d)
{
	struct spipe *p = d->state;
	ssize_t n;

	for (;;) {
		if (p->len) {
			n = splice(p->r, NULL, d->dst, NULL, p->len,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return errno == EAGAIN ? 0 : -errno;
			}
			p->len -= n;
			continue;
		}
		n = splice(d->src, NULL, p->w, NULL, RELAY_BUF,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -errno;
		}
		if (n == 0) {
			d->eof = true;
			return 0;
		}
		p->len = n;
	}
}

static const struct pipe_ops sp_ops = {
	.name = "spliceproxy",
	.init = sp_init,
	.fini = sp_fini,
	.pump = sp_pump,
};

int main(int argc, char **argv)
{
	return relay_main(argc, argv, &sp_ops);
}
