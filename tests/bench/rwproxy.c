// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * rwproxy: the plain user-space TCP proxy of the benchmark. Every byte goes
 * through user space twice: read() into a 64 KiB buffer, write() out of it.
 * This is the "boomerang" the kproxy seed wants to avoid, built the way a
 * careful proxy would be (see relay.h): epoll, one thread, non-blocking,
 * half-close passed on.
 *
 *   rwproxy LISTEN_HOST:PORT BACKEND_HOST:PORT
 */
#include "relay.h"

struct rwbuf {
	size_t off, len;	/* bytes [off, off+len) wait to be written */
	char data[RELAY_BUF];
};

static int rw_init(struct dir *d)
{
	d->state = malloc(sizeof(struct rwbuf));
	if (!d->state)
		return -ENOMEM;
	((struct rwbuf *)d->state)->off = ((struct rwbuf *)d->state)->len = 0;
	return 0;
}

static void rw_fini(struct dir *d)
{
	free(d->state);
	d->state = NULL;
}

/*
 * Read only into an empty buffer, then write it all out: a read that returns
 * EAGAIN always means the source is empty (never that the buffer is full),
 * which keeps the edge-triggered bookkeeping simple.
 */
static int rw_pump(struct dir *d)
{
	struct rwbuf *b = d->state;
	ssize_t n;

	for (;;) {
		if (b->len) {
			n = send(d->dst, b->data + b->off, b->len, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return errno == EAGAIN ? 0 : -errno;
			}
			b->off += n;
			b->len -= n;
			continue;
		}
		n = recv(d->src, b->data, RELAY_BUF, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -errno;
		}
		if (n == 0) {
			d->eof = true;
			return 0;
		}
		b->off = 0;
		b->len = n;
	}
}

static const struct pipe_ops rw_ops = {
	.name = "rwproxy",
	.init = rw_init,
	.fini = rw_fini,
	.pump = rw_pump,
};

int main(int argc, char **argv)
{
	return relay_main(argc, argv, &rw_ops);
}
