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
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <json-c/json.h>

#include "kpperf.h"

#define RBUF_SIZE	(256 * 1024)
#define STALL_NS	(10 * 1000000ull)
#define MAX_REPORTED	10

struct rconn {
	int fd;
	int idx;
	uint32_t events;
	uint8_t *req;		/* this transaction's request; the echo must equal it */
	size_t tx_off, rx_off;
	uint64_t t0, txn;
};

struct rworker {
	struct kp_opts *o;
	pthread_t tid;
	int ep;
	struct rconn *c;
	int n, live;
	uint64_t deadline;
	uint64_t txns, stalls, errors;
	uint64_t end;		/* when this worker stopped */
	struct kp_hist hist;
	uint8_t rbuf[RBUF_SIZE];
};

static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static int reported;

static void conn_error(struct rworker *w, struct rconn *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void conn_error(struct rworker *w, struct rconn *c, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&report_lock);
	if (reported++ < MAX_REPORTED)
		kp_warn("conn %d: %s (transaction %" PRIu64 ")", c->idx, msg, c->txn);
	pthread_mutex_unlock(&report_lock);
	w->errors++;
	close(c->fd);
	c->fd = -1;
	w->live--;
}

static void sock_error(struct rworker *w, struct rconn *c, int err)
{
	conn_error(w, c, "%s", err == EPIPE ? "connection reset" : strerror(err));
}

static int watch(struct rworker *w, struct rconn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (c->events == events)
		return 0;
	if (epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev))
		return -errno;
	c->events = events;
	return 0;
}

static void do_send(struct rworker *w, struct rconn *c)
{
	size_t size = w->o->size;

	while (c->tx_off < size) {
		ssize_t n = send(c->fd, c->req + c->tx_off, size - c->tx_off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) {
				sock_error(w, c, errno);
				return;
			}
			/* large requests: write the rest as the echo frees room */
			if (watch(w, c, EPOLLIN | EPOLLOUT))
				sock_error(w, c, errno);
			return;
		}
		c->tx_off += n;
	}
	if (watch(w, c, EPOLLIN))
		sock_error(w, c, errno);
}

static void begin(struct rworker *w, struct rconn *c)
{
	size_t k, size = w->o->size, f = w->o->frame;
	uint64_t t = ++c->txn;

	/* a new request each time, so an echo of an old one cannot pass */
	for (k = 0; k < 8 && f + k < size; k++)
		c->req[f + k] ^= (uint8_t)(t >> (8 * k)) ^ (uint8_t)((t - 1) >> (8 * k));
	c->tx_off = c->rx_off = 0;
	c->t0 = kp_now_ns();
	do_send(w, c);
}

static void do_recv(struct rworker *w, struct rconn *c)
{
	size_t size = w->o->size;

	for (;;) {
		ssize_t n = recv(c->fd, w->rbuf, RBUF_SIZE, 0);
		uint64_t now, lat;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				sock_error(w, c, errno);
			return;
		}
		if (n == 0) {
			conn_error(w, c, "the server closed the connection");
			return;
		}
		if ((size_t)n > size - c->rx_off) {
			conn_error(w, c, "received more bytes than the %zu sent", size);
			return;
		}
		if (memcmp(w->rbuf, c->req + c->rx_off, n)) {
			size_t k = 0;

			while (w->rbuf[k] == c->req[c->rx_off + k])
				k++;
			conn_error(w, c, "echo differs at offset %zu (expected 0x%02x, got 0x%02x)",
				   c->rx_off + k, c->req[c->rx_off + k], w->rbuf[k]);
			return;
		}
		c->rx_off += n;
		if (c->rx_off < size)
			continue;

		now = kp_now_ns();
		lat = now - c->t0;
		kp_hist_add(&w->hist, lat);
		if (lat > STALL_NS)
			w->stalls++;
		w->txns++;
		if (now < w->deadline)
			begin(w, c);
		return;
	}
}

static void *worker(void *arg)
{
	struct rworker *w = arg;
	struct epoll_event evs[256];
	int i, ret;

	for (i = 0; i < w->n; i++)
		begin(w, &w->c[i]);
	while (w->live) {
		uint64_t now = kp_now_ns();

		if (now >= w->deadline)
			break;
		ret = epoll_wait(w->ep, evs, 256, (int)((w->deadline - now + 999999) / 1000000));
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			kp_warn("epoll: %s", strerror(errno));
			w->errors++;
			break;
		}
		for (i = 0; i < ret; i++) {
			struct rconn *c = evs[i].data.ptr;

			if (c->fd >= 0 && evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				do_recv(w, c);
			if (c->fd >= 0 && c->tx_off < w->o->size && evs[i].events & EPOLLOUT)
				do_send(w, c);
		}
	}
	w->end = kp_now_ns();
	return NULL;
}

static struct json_object *json_us(uint64_t ns)
{
	char s[32];

	snprintf(s, sizeof(s), "%.1f", ns / 1e3);
	return json_object_new_double_s(ns / 1e3, s);
}

static void report(struct kp_opts *o, const struct kp_hist *h, uint64_t txns, uint64_t stalls,
		   uint64_t errors, double secs)
{
	uint64_t p50 = kp_hist_percentile(h, 50), p99 = kp_hist_percentile(h, 99);
	uint64_t p999 = kp_hist_percentile(h, 99.9);
	double tps = secs > 0 ? txns / secs : 0;
	char sz[32], s[32];

	if (o->json) {
		struct json_object *j = json_object_new_object(), *lat = json_object_new_object();

		json_object_object_add(j, "mode", json_object_new_string("rr"));
		json_object_object_add(j, "uri", json_object_new_string(o->uri_str));
		json_object_object_add(j, "conns", json_object_new_int(o->conns));
		json_object_object_add(j, "threads", json_object_new_int(o->threads));
		json_object_object_add(j, "size", json_object_new_uint64(o->size));
		snprintf(s, sizeof(s), "%.3f", secs);
		json_object_object_add(j, "seconds", json_object_new_double_s(secs, s));
		json_object_object_add(j, "transactions", json_object_new_uint64(txns));
		snprintf(s, sizeof(s), "%.1f", tps);
		json_object_object_add(j, "tps", json_object_new_double_s(tps, s));
		json_object_object_add(lat, "p50", json_us(p50));
		json_object_object_add(lat, "p99", json_us(p99));
		json_object_object_add(lat, "p999", json_us(p999));
		json_object_object_add(lat, "max", json_us(h->max));
		json_object_object_add(j, "lat_us", lat);
		json_object_object_add(j, "stalls_10ms", json_object_new_uint64(stalls));
		json_object_object_add(j, "errors", json_object_new_uint64(errors));
		kp_json_print(j);
	} else {
		printf("rr %s: %d conns x %s, %.2f s: %" PRIu64 " transactions, %.0f tps, "
		       "latency us p50 %.1f p99 %.1f p99.9 %.1f max %.1f, %" PRIu64
		       " stalls > 10 ms, %" PRIu64 " errors\n",
		       o->uri_str, o->conns, kp_bytes_str(o->size, sz, sizeof(sz)), secs, txns, tps,
		       p50 / 1e3, p99 / 1e3, p999 / 1e3, h->max / 1e3, stalls, errors);
	}
	fflush(stdout);
}

int kp_cmd_rr(struct kp_opts *o)
{
	struct rworker **w = NULL;
	struct rconn *conns = NULL;
	int *fds = NULL, *errs = NULL;
	uint64_t start, end = 0, txns = 0, stalls = 0, errors = 0;
	struct kp_hist *total = NULL;
	struct kp_pattern *pat = NULL;
	int i, t, started = 0, rc = KP_EXIT_FAIL;

	kp_raise_nofile(o->conns + 64);
	w = calloc(o->threads, sizeof(*w));
	conns = calloc(o->conns, sizeof(*conns));
	fds = calloc(o->conns, sizeof(*fds));
	errs = calloc(o->conns, sizeof(*errs));
	total = calloc(1, sizeof(*total));
	pat = malloc(sizeof(*pat));
	if (!w || !conns || !fds || !errs || !total || !pat) {
		kp_err(o, "out of memory for %d connections", o->conns);
		goto out;
	}
	for (i = 0; i < o->conns; i++) {
		conns[i].fd = -1;
		conns[i].idx = i;
		conns[i].req = malloc(o->size);
		if (!conns[i].req) {
			kp_err(o, "out of memory for %d requests of %" PRIu64 " bytes", o->conns,
			       o->size);
			goto out;
		}
		kp_pattern_init(pat, kp_pattern_key(o->seed, i));
		kp_pattern_fill(pat, 0, conns[i].req, o->size);
		if (o->frame) {
			/* kcmperf's framing: the message's whole length, big endian, first. */
			conns[i].req[0] = o->size >> 24;
			conns[i].req[1] = o->size >> 16;
			conns[i].req[2] = o->size >> 8;
			conns[i].req[3] = o->size;
		}
	}
	if (kp_connect_all(o, o->conns, fds, errs, true))
		goto out;
	if (kp_connect_report(o, o->conns, errs))
		goto out;
	for (i = 0; i < o->conns; i++) {
		conns[i].fd = fds[i];
		fds[i] = -1;
	}

	for (t = 0; t < o->threads; t++) {
		int lo = (int)((int64_t)o->conns * t / o->threads);
		int hi = (int)((int64_t)o->conns * (t + 1) / o->threads);

		w[t] = calloc(1, sizeof(**w));
		if (!w[t]) {
			kp_err(o, "out of memory for %d threads", o->threads);
			goto out;
		}
		w[t]->o = o;
		w[t]->c = conns + lo;
		w[t]->n = w[t]->live = hi - lo;
		w[t]->ep = epoll_create1(EPOLL_CLOEXEC);
		if (w[t]->ep < 0) {
			kp_err(o, "epoll: %s", strerror(errno));
			goto out;
		}
		for (i = lo; i < hi; i++) {
			struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &conns[i] };

			conns[i].events = EPOLLIN;
			if (epoll_ctl(w[t]->ep, EPOLL_CTL_ADD, conns[i].fd, &ev)) {
				kp_err(o, "epoll: %s", strerror(errno));
				goto out;
			}
		}
	}

	start = kp_now_ns();
	for (t = 0; t < o->threads; t++) {
		w[t]->deadline = start + (uint64_t)(o->seconds * 1e9);
		if (pthread_create(&w[t]->tid, NULL, worker, w[t])) {
			kp_err(o, "cannot start thread %d of %d", t + 1, o->threads);
			break;
		}
		started++;
	}
	for (t = 0; t < started; t++) {
		pthread_join(w[t]->tid, NULL);
		kp_hist_merge(total, &w[t]->hist);
		txns += w[t]->txns;
		stalls += w[t]->stalls;
		errors += w[t]->errors;
		if (w[t]->end > end)
			end = w[t]->end;
	}
	if (started < o->threads)
		goto out;
	report(o, total, txns, stalls, errors, (end - start) / 1e9);
	rc = errors ? KP_EXIT_FAIL : KP_EXIT_OK;
out:
	for (t = 0; w && t < o->threads; t++) {
		if (w[t] && w[t]->ep >= 0)
			close(w[t]->ep);
		free(w[t]);
	}
	for (i = 0; conns && i < o->conns; i++) {
		if (conns[i].fd >= 0)
			close(conns[i].fd);
		free(conns[i].req);
	}
	for (i = 0; fds && i < o->conns; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(w);
	free(conns);
	free(fds);
	free(errs);
	free(total);
	free(pat);
	return rc;
}
