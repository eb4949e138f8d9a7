// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * kpperf rr: request/response against an echo server, netperf TCP_RR's and
 * kcmperf's measure. Each connection sends --size bytes, waits for the same
 * bytes back, checks them, and goes again; one request is in flight per
 * connection. Every transaction's latency goes into a histogram, and any
 * over 10 ms is counted on its own: sockmap's known failure is a lost
 * wakeup that stalls data for tens of milliseconds, which a mean hides.
 *
 * Connections are split over --threads, each with its own epoll loop and
 * histogram; the main thread merges them at the end.
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

struct rconn {
	struct kp_conn k;	/* first: worker.c's part */
	size_t tx_off, rx_off;
	uint64_t t0, txn;
};

struct rworker {
	struct kp_worker k;	/* first: worker.c's part */
	uint8_t rbuf[RBUF_SIZE];
};

static void sock_error(struct rworker *w, struct rconn *c, int err)
{
	kp_conn_fail(&w->k, &c->k, "%s (transaction %" PRIu64 ")",
		     err == EPIPE ? "connection reset" : strerror(err), c->txn);
}

static void do_send(struct rworker *w, struct rconn *c)
{
	size_t size = w->k.o->size;

	while (c->tx_off < size) {
		int err;
		ssize_t n = kp_io(c->k.fd, c->k.buf + c->tx_off, size - c->tx_off, true, &err);

		if (n < 0) {
			if (err) {
				sock_error(w, c, err);
				return;
			}
			/* large requests: write the rest as the echo frees room */
			if (kp_conn_watch(&w->k, &c->k, EPOLLIN | EPOLLOUT))
				sock_error(w, c, errno);
			return;
		}
		c->tx_off += n;
	}
	if (kp_conn_watch(&w->k, &c->k, EPOLLIN))
		sock_error(w, c, errno);
}

static void begin(struct rworker *w, struct rconn *c)
{
	size_t k, size = w->k.o->size, f = w->k.o->frame;
	uint64_t t = ++c->txn;

	/* a new request each time, so an echo of an old one cannot pass */
	for (k = 0; k < 8 && f + k < size; k++)
		c->k.buf[f + k] ^= (uint8_t)(t >> (8 * k)) ^ (uint8_t)((t - 1) >> (8 * k));
	c->tx_off = c->rx_off = 0;
	c->t0 = kp_now_ns();
	do_send(w, c);
}

static void do_recv(struct rworker *w, struct rconn *c)
{
	size_t size = w->k.o->size;

	for (;;) {
		int err;
		ssize_t n = kp_io(c->k.fd, w->rbuf, RBUF_SIZE, false, &err);
		uint64_t now;

		if (n < 0) {
			if (err)
				sock_error(w, c, err);
			return;
		}
		if (n == 0) {
			kp_conn_fail(&w->k, &c->k, "the server closed the connection (transaction %"
				     PRIu64 ")", c->txn);
			return;
		}
		if ((size_t)n > size - c->rx_off) {
			kp_conn_fail(&w->k, &c->k, "received more bytes than the %zu sent "
				     "(transaction %" PRIu64 ")", size, c->txn);
			return;
		}
		if (memcmp(w->rbuf, c->k.buf + c->rx_off, n)) {
			size_t k = 0;

			while (w->rbuf[k] == c->k.buf[c->rx_off + k])
				k++;
			kp_conn_fail(&w->k, &c->k, "echo differs at offset %zu (expected 0x%02x, "
				     "got 0x%02x) (transaction %" PRIu64 ")", c->rx_off + k,
				     c->k.buf[c->rx_off + k], w->rbuf[k], c->txn);
			return;
		}
		c->rx_off += n;
		if (c->rx_off < size)
			continue;

		now = kp_now_ns();
		kp_worker_done(&w->k, now - c->t0);
		if (now < w->k.deadline)
			begin(w, c);
		return;
	}
}

static void *worker(void *arg)
{
	struct rworker *w = arg;
	struct rconn *conns = w->k.c;
	struct epoll_event evs[256];
	int i, ret;

	for (i = 0; i < w->k.n; i++)
		begin(w, &conns[i]);
	while ((ret = kp_worker_wait(&w->k, evs, 256, w->k.deadline)) >= 0) {
		for (i = 0; i < ret; i++) {
			struct rconn *c = evs[i].data.ptr;

			if (c->k.fd >= 0 && evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				do_recv(w, c);
			if (c->k.fd >= 0 && c->tx_off < w->k.o->size && evs[i].events & EPOLLOUT)
				do_send(w, c);
		}
	}
	w->k.end = kp_now_ns();
	return NULL;
}

static void report(struct kp_opts *o, struct kp_worker *const *w, const struct kp_worker *sum,
		   double secs)
{
	double tps = secs > 0 ? sum->done / secs : 0;
	char sz[32], lat[192];

	if (o->json) {
		struct json_object *j = kp_json_result(o, "rr", secs);

		json_object_object_add(j, "size", json_object_new_uint64(o->size));
		json_object_object_add(j, "transactions", json_object_new_uint64(sum->done));
		json_object_object_add(j, "tps", kp_json_fixed(tps, 1));
		kp_worker_json(j, sum);
		kp_json_print(j);
	} else {
		printf("rr %s: %d conns x %s, %.2f s: %" PRIu64 " transactions, %.0f tps, %s\n",
		       o->uri_str, o->conns, kp_bytes_str(o->size, sz, sizeof(sz)), secs, sum->done,
		       tps, kp_worker_text(sum, lat, sizeof(lat)));
	}
}

/* Each connection's request: its kpperf stream, framed if asked (kcmperf's framing). */
static void conn_init(struct kp_opts *o, struct kp_conn *k)
{
	struct kp_pattern pat;

	kp_pattern_init(&pat, kp_pattern_key(o->seed, k->idx));
	if (o->frame)
		kp_frame_fill(&pat, o->size, 0, k->buf, o->size);
	else
		kp_pattern_fill(&pat, 0, k->buf, o->size);
}

int kp_cmd_rr(struct kp_opts *o)
{
	struct kp_client rr = {
		KP_CLIENT(struct rworker, struct rconn),
		.events = EPOLLIN, .nodelay = true, .counts = true, .buf_len = o->size,
	};

	return kp_client_run(o, &rr);
}
