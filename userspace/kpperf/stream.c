// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * kpperf stream: bulk throughput, with every byte checked.
 *
 *	--dir up	each connection writes its kpperf stream to a sink
 *			server, which checks it and resets the connection on
 *			the first wrong byte; the reset is counted here.
 *	--dir down	each connection reads a source server's stream and
 *			checks it here. The stream names its key in its first
 *			bytes, so the client needs no agreement with the server.
 *
 * Checking costs one XOR and compare per eight bytes (see pattern.c), so the
 * figure measures the path, not the checker.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <json-c/json.h>

#include "kpperf.h"

#define RBUF_SIZE	(256 * 1024)
#define IO_BUDGET	(1024 * 1024)

struct sconn {
	struct kp_conn k;	/* first: worker.c's part */
	uint64_t off;		/* stream offset written or checked so far */
	size_t tx_len, tx_off;
	bool checking;		/* down: the header has been recognised */
	uint8_t head[16];
	unsigned int head_len;
	struct kp_pattern pat;
};

struct sworker {
	struct kp_worker k;	/* first: worker.c's part */
	uint64_t bytes;
	uint8_t rbuf[RBUF_SIZE];
};

static void sock_error(struct sworker *w, struct sconn *c, int err)
{
	if (err == ECONNRESET || err == EPIPE)
		kp_conn_fail(&w->k, &c->k, "connection reset after %" PRIu64 " bytes%s", c->off,
			     w->k.o->down ? "" :
			     " (a kpperf sink resets a stream whose data differs)");
	else
		kp_conn_fail(&w->k, &c->k, "%s after %" PRIu64 " bytes", strerror(err), c->off);
}

static void do_send(struct sworker *w, struct sconn *c)
{
	size_t chunk = w->k.o->chunk, budget = IO_BUDGET;

	while (budget) {
		ssize_t n;

		if (c->tx_off == c->tx_len) {
			kp_pattern_fill(&c->pat, c->off, c->k.buf, chunk);
			c->tx_len = chunk;
			c->tx_off = 0;
		}
		n = send(c->k.fd, c->k.buf + c->tx_off, c->tx_len - c->tx_off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				sock_error(w, c, errno);
			return;
		}
		c->tx_off += n;
		c->off += n;
		w->bytes += n;
		budget = (size_t)n < budget ? budget - n : 0;
	}
}

static void do_recv(struct sworker *w, struct sconn *c)
{
	size_t budget = IO_BUDGET;

	while (budget) {
		ssize_t n = recv(c->k.fd, w->rbuf, RBUF_SIZE, 0);
		const uint8_t *b = w->rbuf;
		size_t k, len;

		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				sock_error(w, c, errno);
			return;
		}
		if (n == 0) {
			kp_conn_fail(&w->k, &c->k, "the server closed the connection after %"
				     PRIu64 " bytes", c->off);
			return;
		}
		w->bytes += n;
		budget = (size_t)n < budget ? budget - n : 0;
		len = n;
		if (!c->checking) {
			size_t take = 16 - c->head_len < len ? 16 - c->head_len : len;

			memcpy(c->head + c->head_len, b, take);
			c->head_len += take;
			c->off += take;
			b += take;
			len -= take;
			if (c->head_len < 16)
				continue;
			if (!kp_pattern_recognise(&c->pat, c->head)) {
				kp_conn_fail(&w->k, &c->k, "the server does not send a kpperf "
					     "stream (run it with --mode source)");
				return;
			}
			c->checking = true;
		}
		k = kp_pattern_check(&c->pat, c->off, b, len);
		if (k < len) {
			kp_conn_fail(&w->k, &c->k, "data differs at offset %" PRIu64
				   " (expected 0x%02x, got 0x%02x)", c->off + k,
				   kp_pattern_byte(&c->pat, c->off + k), b[k]);
			return;
		}
		c->off += len;
	}
}

/* up: a sink sends nothing, so anything readable is an error, a close or a reset */
static void up_recv(struct sworker *w, struct sconn *c)
{
	ssize_t n = recv(c->k.fd, w->rbuf, RBUF_SIZE, 0);

	if (n > 0)
		kp_conn_fail(&w->k, &c->k, "the server sends data back: stream --dir up needs "
			     "a server in --mode sink");
	else if (n == 0)
		kp_conn_fail(&w->k, &c->k, "the server closed the connection after %" PRIu64
			     " bytes", c->off);
	else if (errno != EAGAIN && errno != EINTR)
		sock_error(w, c, errno);
}

static void *worker(void *arg)
{
	struct sworker *w = arg;
	struct sconn *conns = w->k.c;
	struct epoll_event evs[256];
	int i, ret;

	while ((ret = kp_worker_wait(&w->k, evs, 256, w->k.deadline)) >= 0) {
		for (i = 0; i < ret; i++) {
			struct sconn *c = evs[i].data.ptr;

			if (w->k.o->down) {
				do_recv(w, c);
				continue;
			}
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				up_recv(w, c);
			if (c->k.fd >= 0 && evs[i].events & EPOLLOUT)
				do_send(w, c);
		}
	}
	/* a run that checked nothing must not pass */
	for (i = 0; w->k.o->down && i < w->k.n; i++)
		if (conns[i].k.fd >= 0 && !conns[i].checking)
			kp_conn_fail(&w->k, &conns[i].k, "only %u bytes arrived: is the server "
				     "running --mode source?", conns[i].head_len);
	w->k.end = kp_now_ns();
	return NULL;
}

static void report(struct kp_opts *o, struct kp_worker *const *w, const struct kp_worker *sum,
		   double secs)
{
	uint64_t bytes = 0;
	double gbit;
	int t;

	for (t = 0; t < o->threads; t++)
		bytes += ((const struct sworker *)w[t])->bytes;
	gbit = secs > 0 ? bytes * 8.0 / secs / 1e9 : 0;
	if (o->json) {
		struct json_object *j = kp_json_result(o, "stream", secs);

		json_object_object_add(j, "dir", json_object_new_string(o->down ? "down" : "up"));
		json_object_object_add(j, "bytes", json_object_new_uint64(bytes));
		json_object_object_add(j, "gbit_s", kp_json_fixed(gbit, 3));
		json_object_object_add(j, "errors", json_object_new_uint64(sum->errors));
		kp_json_print(j);
	} else {
		printf("stream %s %s: %d conns, %.2f s: %" PRIu64 " bytes, %.2f Gbit/s, %" PRIu64
		       " errors\n", o->down ? "down from" : "up to", o->uri_str, o->conns, secs,
		       bytes, gbit, sum->errors);
	}
}

/* up: the connection's stream to send; down learns its key from the data */
static void conn_init(struct kp_opts *o, struct kp_conn *k)
{
	if (!o->down)
		kp_pattern_init(&((struct sconn *)k)->pat, kp_pattern_key(o->seed, k->idx));
}

int kp_cmd_stream(struct kp_opts *o)
{
	struct kp_client stream = {
		KP_CLIENT(struct sworker, struct sconn),
		.events = o->down ? EPOLLIN : EPOLLIN | EPOLLOUT, .buf_len = o->down ? 0 : o->chunk,
	};

	if (o->frame)
		return kp_cmd_msg_stream(o);
	return kp_client_run(o, &stream);
}
