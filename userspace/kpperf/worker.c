// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * What every timed client command (rr, stream, stream --frame) does the same
 * way: connect --conns connections, split them over --threads workers, each
 * with its own epoll loop, run the workers until a deadline, and say what
 * went wrong on a connection, at most MAX_REPORTED times per run.
 *
 * A command's connection struct starts with a struct kp_conn and its worker
 * struct with a struct kp_worker, so this file handles them by stride
 * without knowing the rest.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <json-c/json.h>

#include "kpperf.h"

#define MAX_REPORTED	10

static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static int reported;

static struct kp_conn *conn_at(void *conns, size_t csize, int i)
{
	return (struct kp_conn *)((char *)conns + (size_t)i * csize);
}

void kp_conn_fail(struct kp_worker *w, struct kp_conn *c, const char *fmt, ...)
{
	char msg[320];
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

ssize_t kp_io(int fd, void *buf, size_t len, bool out, int *err)
{
	ssize_t n;

	do
		n = out ? send(fd, buf, len, MSG_NOSIGNAL) : recv(fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	*err = n < 0 && errno != EAGAIN ? errno : 0;
	return n;
}

int kp_conn_watch(struct kp_worker *w, struct kp_conn *c, uint32_t events)
{
	return kp_epoll_watch(w->ep, c->fd, c, &c->events, events);
}

static int workers_setup(struct kp_opts *o, const struct kp_client *cl, struct kp_worker **w,
			 void *conns)
{
	int *fds = calloc(o->conns, sizeof(*fds)), *errs = calloc(o->conns, sizeof(*errs));
	int i, t, err = -ENOMEM;

	if (!fds || !errs) {
		kp_err(o, "out of memory for %d connections", o->conns);
		goto out;
	}
	err = kp_connect_all(o, o->conns, fds, errs, cl->nodelay);
	if (!err)
		err = kp_connect_report(o, o->conns, errs);
	if (err)
		goto out;
	for (i = 0; i < o->conns; i++)
		conn_at(conns, cl->csize, i)->fd = fds[i];

	for (t = 0; t < o->threads; t++) {
		int lo = (int)((int64_t)o->conns * t / o->threads);
		int hi = (int)((int64_t)o->conns * (t + 1) / o->threads);

		w[t] = calloc(1, cl->wsize);
		if (!w[t]) {
			err = -ENOMEM;
			kp_err(o, "out of memory for %d threads", o->threads);
			goto out;
		}
		w[t]->o = o;
		w[t]->c = conn_at(conns, cl->csize, lo);
		w[t]->n = w[t]->live = hi - lo;
		w[t]->ep = epoll_create1(EPOLL_CLOEXEC);
		if (w[t]->ep < 0) {
			err = -errno;
			kp_err(o, "epoll: %s", strerror(errno));
			goto out;
		}
		for (i = lo; i < hi; i++) {
			struct kp_conn *c = conn_at(conns, cl->csize, i);
			struct epoll_event ev = { .events = c->events, .data.ptr = c };

			if (epoll_ctl(w[t]->ep, EPOLL_CTL_ADD, c->fd, &ev)) {
				err = -errno;
				kp_err(o, "epoll: %s", strerror(errno));
				goto out;
			}
		}
	}
	err = 0;
out:
	free(fds);
	free(errs);
	return err;
}

/* Run the workers from now for o->seconds; *secs is how long until the last stopped. */
static int workers_run(struct kp_opts *o, const struct kp_client *cl, struct kp_worker **w,
		       double *secs)
{
	uint64_t start = kp_now_ns(), end = start;
	int t, started = 0;

	for (t = 0; t < o->threads; t++) {
		w[t]->deadline = start + (uint64_t)(o->seconds * 1e9);
		if (pthread_create(&w[t]->tid, NULL, cl->worker, w[t])) {
			kp_err(o, "cannot start thread %d of %d", t + 1, o->threads);
			break;
		}
		started++;
	}
	for (t = 0; t < started; t++) {
		pthread_join(w[t]->tid, NULL);
		if (w[t]->end > end)
			end = w[t]->end;
	}
	*secs = (end - start) / 1e9;
	return started < o->threads ? -EAGAIN : 0;
}

/* The workers' errors, done, stalls and hist summed into one (free it); NULL if out of memory. */
static struct kp_worker *workers_total(const struct kp_opts *o, struct kp_worker *const *w)
{
	struct kp_worker *sum = calloc(1, sizeof(*sum));
	int t;

	if (!sum) {
		kp_err(o, "out of memory for the latency histogram");
		return NULL;
	}
	for (t = 0; t < o->threads; t++) {
		kp_hist_merge(&sum->hist, &w[t]->hist);
		sum->done += w[t]->done;
		sum->stalls += w[t]->stalls;
		sum->errors += w[t]->errors;
	}
	return sum;
}

int kp_client_run(struct kp_opts *o, const struct kp_client *cl)
{
	struct kp_worker **w = calloc(o->threads, sizeof(*w)), *sum;
	char *conns = calloc(o->conns, cl->csize);
	int i, t, inited = 0, rc = KP_EXIT_FAIL;
	double secs;

	kp_raise_nofile(o->conns + 64);
	if (!w || !conns) {
		kp_err(o, "out of memory for %d connections", o->conns);
		goto out;
	}
	for (i = 0; i < o->conns; i++) {
		struct kp_conn *c = conn_at(conns, cl->csize, i);

		c->fd = -1;
		c->idx = i;
		c->events = cl->events;
		inited++;
		if (cl->buf_len && !(c->buf = malloc(cl->buf_len))) {
			kp_err(o, "out of memory for %d buffers of %" PRIu64 " bytes", o->conns,
			       cl->buf_len);
			goto out;
		}
		cl->conn_init(o, c);
	}
	if (workers_setup(o, cl, w, conns) || workers_run(o, cl, w, &secs))
		goto out;
	sum = workers_total(o, w);
	if (!sum)
		goto out;
	cl->report(o, w, sum, secs);
	fflush(stdout);
	rc = sum->errors ? KP_EXIT_FAIL : KP_EXIT_OK;
	if (!sum->errors && cl->counts && !sum->done) {
		kp_err(o, "no answer came back in %.2f s: the server does not echo", secs);
		rc = KP_EXIT_FAIL;
	}
	free(sum);
out:
	for (t = 0; w && t < o->threads; t++) {
		if (w[t] && w[t]->ep >= 0)
			close(w[t]->ep);
		free(w[t]);
	}
	for (i = 0; i < inited; i++) {
		struct kp_conn *c = conn_at(conns, cl->csize, i);

		if (c->fd >= 0)
			close(c->fd);
		free(c->buf);
	}
	free(w);
	free(conns);
	return rc;
}

int kp_worker_wait(struct kp_worker *w, struct epoll_event *evs, int max, uint64_t until)
{
	for (;;) {
		uint64_t now = kp_now_ns();
		int ret;

		if (!w->live || now >= until)
			return -1;
		ret = epoll_wait(w->ep, evs, max, (int)((until - now + 999999) / 1000000));
		if (ret >= 0)
			return ret;
		if (errno != EINTR) {
			kp_warn("epoll: %s", strerror(errno));
			w->errors++;
			return -1;
		}
	}
}

void kp_worker_done(struct kp_worker *w, uint64_t lat_ns)
{
	kp_hist_add(&w->hist, lat_ns);
	if (lat_ns > KP_STALL_NS)
		w->stalls++;
	w->done++;
}


void kp_worker_json(struct json_object *j, const struct kp_worker *sum)
{
	const struct kp_hist *h = &sum->hist;
	struct json_object *lat = json_object_new_object();

	json_object_object_add(lat, "p50", kp_json_fixed(kp_hist_percentile(h, 50) / 1e3, 1));
	json_object_object_add(lat, "p99", kp_json_fixed(kp_hist_percentile(h, 99) / 1e3, 1));
	json_object_object_add(lat, "p999", kp_json_fixed(kp_hist_percentile(h, 99.9) / 1e3, 1));
	json_object_object_add(lat, "max", kp_json_fixed(h->max / 1e3, 1));
	json_object_object_add(j, "lat_us", lat);
	json_object_object_add(j, "stalls_10ms", json_object_new_uint64(sum->stalls));
	json_object_object_add(j, "errors", json_object_new_uint64(sum->errors));
}

const char *kp_worker_text(const struct kp_worker *sum, char *buf, size_t len)
{
	const struct kp_hist *h = &sum->hist;

	snprintf(buf, len, "latency us p50 %.1f p99 %.1f p99.9 %.1f max %.1f, %" PRIu64
		 " stalls > 10 ms, %" PRIu64 " errors", kp_hist_percentile(h, 50) / 1e3,
		 kp_hist_percentile(h, 99) / 1e3, kp_hist_percentile(h, 99.9) / 1e3, h->max / 1e3,
		 sum->stalls, sum->errors);
	return buf;
}
