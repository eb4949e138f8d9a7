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
#define IO_BUDGET	(1024 * 1024)
#define MAX_REPORTED	10

struct sconn {
	int fd;
	int idx;
	uint64_t off;		/* stream offset written or checked so far */
	uint8_t *tx;		/* up: generated, not yet written */
	size_t tx_len, tx_off;
	bool checking;		/* down: the header has been recognised */
	uint8_t head[16];
	unsigned int head_len;
	struct kp_pattern pat;
};

struct sworker {
	struct kp_opts *o;
	pthread_t tid;
	int ep;
	struct sconn *c;
	int n, live;
	uint64_t deadline, end;
	uint64_t bytes, errors;
	uint8_t rbuf[RBUF_SIZE];
};

static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static int reported;

static void conn_error(struct sworker *w, struct sconn *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void conn_error(struct sworker *w, struct sconn *c, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&report_lock);
	if (reported++ < MAX_REPORTED)
		kp_warn("conn %d: %s", c->idx, msg);
	pthread_mutex_unlock(&report_lock);
	w->errors++;
	close(c->fd);
	c->fd = -1;
	w->live--;
}

static void sock_error(struct sworker *w, struct sconn *c, int err)
{
	if (err == ECONNRESET || err == EPIPE)
		conn_error(w, c, "connection reset after %" PRIu64 " bytes%s", c->off,
			   w->o->down ? "" : " (a kpperf sink resets a stream whose data differs)");
	else
		conn_error(w, c, "%s after %" PRIu64 " bytes", strerror(err), c->off);
}

static void do_send(struct sworker *w, struct sconn *c)
{
	size_t chunk = w->o->chunk, budget = IO_BUDGET;

	while (budget) {
		ssize_t n;

		if (c->tx_off == c->tx_len) {
			kp_pattern_fill(&c->pat, c->off, c->tx, chunk);
			c->tx_len = chunk;
			c->tx_off = 0;
		}
		n = send(c->fd, c->tx + c->tx_off, c->tx_len - c->tx_off, MSG_NOSIGNAL);
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
		ssize_t n = recv(c->fd, w->rbuf, RBUF_SIZE, 0);
		const uint8_t *b = w->rbuf;
		size_t k, len;

		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				sock_error(w, c, errno);
			return;
		}
		if (n == 0) {
			conn_error(w, c, "the server closed the connection after %" PRIu64 " bytes",
				   c->off);
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
				conn_error(w, c, "the server does not send a kpperf stream "
					   "(run it with --mode source)");
				return;
			}
			c->checking = true;
		}
		k = kp_pattern_check(&c->pat, c->off, b, len);
		if (k < len) {
			conn_error(w, c, "data differs at offset %" PRIu64
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
	ssize_t n = recv(c->fd, w->rbuf, RBUF_SIZE, 0);

	if (n > 0)
		conn_error(w, c, "the server sends data back: stream --dir up needs a server "
			   "in --mode sink");
	else if (n == 0)
		conn_error(w, c, "the server closed the connection after %" PRIu64 " bytes",
			   c->off);
	else if (errno != EAGAIN && errno != EINTR)
		sock_error(w, c, errno);
}

static void *worker(void *arg)
{
	struct sworker *w = arg;
	struct epoll_event evs[256];
	int i, ret;

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
			struct sconn *c = evs[i].data.ptr;

			if (w->o->down) {
				do_recv(w, c);
				continue;
			}
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				up_recv(w, c);
			if (c->fd >= 0 && evs[i].events & EPOLLOUT)
				do_send(w, c);
		}
	}
	/* a run that checked nothing must not pass */
	for (i = 0; w->o->down && i < w->n; i++)
		if (w->c[i].fd >= 0 && !w->c[i].checking)
			conn_error(w, &w->c[i], "only %u bytes arrived: is the server running "
				   "--mode source?", w->c[i].head_len);
	w->end = kp_now_ns();
	return NULL;
}

static void report(struct kp_opts *o, uint64_t bytes, uint64_t errors, double secs)
{
	double gbit = secs > 0 ? bytes * 8.0 / secs / 1e9 : 0;
	char s[32];

	if (o->json) {
		struct json_object *j = json_object_new_object();

		json_object_object_add(j, "mode", json_object_new_string("stream"));
		json_object_object_add(j, "uri", json_object_new_string(o->uri_str));
		json_object_object_add(j, "dir", json_object_new_string(o->down ? "down" : "up"));
		json_object_object_add(j, "conns", json_object_new_int(o->conns));
		json_object_object_add(j, "threads", json_object_new_int(o->threads));
		snprintf(s, sizeof(s), "%.3f", secs);
		json_object_object_add(j, "seconds", json_object_new_double_s(secs, s));
		json_object_object_add(j, "bytes", json_object_new_uint64(bytes));
		snprintf(s, sizeof(s), "%.3f", gbit);
		json_object_object_add(j, "gbit_s", json_object_new_double_s(gbit, s));
		json_object_object_add(j, "errors", json_object_new_uint64(errors));
		kp_json_print(j);
	} else {
		printf("stream %s %s: %d conns, %.2f s: %" PRIu64 " bytes, %.2f Gbit/s, %" PRIu64
		       " errors\n", o->down ? "down from" : "up to", o->uri_str, o->conns, secs,
		       bytes, gbit, errors);
	}
	fflush(stdout);
}

int kp_cmd_stream(struct kp_opts *o)
{
	uint64_t start, end = 0, bytes = 0, errors = 0;
	struct sworker **w = NULL;
	struct sconn *conns = NULL;
	int *fds = NULL, *errs = NULL;
	int i, t, started = 0, rc = KP_EXIT_FAIL;

	kp_raise_nofile(o->conns + 64);
	w = calloc(o->threads, sizeof(*w));
	conns = calloc(o->conns, sizeof(*conns));
	fds = calloc(o->conns, sizeof(*fds));
	errs = calloc(o->conns, sizeof(*errs));
	if (!w || !conns || !fds || !errs) {
		kp_err(o, "out of memory for %d connections", o->conns);
		goto out;
	}
	for (i = 0; i < o->conns; i++) {
		conns[i].fd = -1;
		conns[i].idx = i;
		if (o->down)
			continue;
		conns[i].tx = malloc(o->chunk);
		if (!conns[i].tx) {
			kp_err(o, "out of memory for %d buffers of %" PRIu64 " bytes", o->conns,
			       o->chunk);
			goto out;
		}
		kp_pattern_init(&conns[i].pat, kp_pattern_key(o->seed, i));
	}
	if (kp_connect_all(o, o->conns, fds, errs, false))
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
			struct epoll_event ev = {
				.events = o->down ? EPOLLIN : EPOLLIN | EPOLLOUT,
				.data.ptr = &conns[i],
			};

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
		bytes += w[t]->bytes;
		errors += w[t]->errors;
		if (w[t]->end > end)
			end = w[t]->end;
	}
	if (started < o->threads)
		goto out;
	report(o, bytes, errors, (end - start) / 1e9);
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
		free(conns[i].tx);
	}
	for (i = 0; fds && i < o->conns; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(w);
	free(conns);
	free(fds);
	free(errs);
	return rc;
}
