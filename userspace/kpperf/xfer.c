// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * kpperf xfer: the end-to-end check the tests use. Each connection sends
 * --bytes of its own kpperf stream (keyed by --seed and its index) to an echo
 * server, then shuts down writing, while reading the echo until EOF. A
 * connection passes when exactly --bytes came back, every byte equal to the
 * stream at its offset, and the XXH64 of what came back equals the XXH64 of
 * what was sent. One thread, one epoll loop, all connections at once.
 *
 * --expect-reset and --expect-fail turn it into a negative test: the run
 * passes when every connection is refused or reset (or fails in any way).
 */
#include <endian.h>
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
#define IO_BUDGET	(1024 * 1024)	/* per wakeup and direction, for fairness */
#define MAX_REPORTED	10		/* failures described one by one */

enum fail_kind {
	F_NONE,
	F_CONNECT,	/* connect failed; err says how */
	F_RESET,	/* ECONNRESET or EPIPE after connecting */
	F_ERROR,	/* any other socket error */
	F_SHORT,	/* EOF before all bytes came back */
	F_MISMATCH,	/* a byte differs */
	F_EXTRA,	/* more bytes came back than were sent */
	F_HASH,		/* the hashes differ (the byte check should have caught it) */
	F_TIMEOUT,	/* no progress for --timeout ms */
};

static const char *const fail_names[] = {
	[F_NONE] = "ok", [F_CONNECT] = "connect", [F_RESET] = "reset", [F_ERROR] = "error",
	[F_SHORT] = "short", [F_MISMATCH] = "mismatch", [F_EXTRA] = "extra",
	[F_HASH] = "hash", [F_TIMEOUT] = "timeout",
};

struct xconn {
	int fd;
	int idx;
	uint32_t events;
	bool done;
	bool shut;		/* SHUT_WR sent */
	uint64_t sent, recvd;
	struct kp_xxh64 hs, hr;
	uint8_t *tx;		/* generated, not yet written */
	size_t tx_len, tx_off;
	enum fail_kind kind;
	int err;
	uint64_t fail_off;
	uint8_t exp, got;
	int other;		/* the connection whose stream arrived instead, or -1 */
	int64_t from;		/* stream offset the wrong bytes belong to, or -1 */
	struct kp_pattern pat;
};

struct xfer {
	struct kp_opts *o;
	struct xconn **c;
	int ep;
	int active;
	uint8_t rbuf[RBUF_SIZE];
};

static void finish(struct xfer *x, struct xconn *c, enum fail_kind kind, int err)
{
	if (c->done)
		return;
	c->done = true;
	c->kind = kind;
	c->err = err;
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	free(c->tx);
	c->tx = NULL;
	x->active--;
}

static void sock_fail(struct xfer *x, struct xconn *c, int err)
{
	/* ENOTCONN: shutdown() on a connection the peer already reset. */
	finish(x, c, err == ECONNRESET || err == EPIPE || err == ENOTCONN ? F_RESET : F_ERROR, err);
}

static int watch(struct xfer *x, struct xconn *c, uint32_t events)
{
	return kp_epoll_watch(x->ep, c->fd, c, &c->events, events);
}

static void send_done(struct xfer *x, struct xconn *c)
{
	c->shut = true;
	free(c->tx);
	c->tx = NULL;
	if (shutdown(c->fd, SHUT_WR)) {
		sock_fail(x, c, errno);
		return;
	}
	if (watch(x, c, EPOLLIN))
		sock_fail(x, c, errno);
}

/* Returns true if the connection made progress. */
static bool do_send(struct xfer *x, struct xconn *c)
{
	struct kp_opts *o = x->o;
	size_t budget = IO_BUDGET;
	bool progress = false;

	while (budget && c->sent < o->bytes) {
		ssize_t w;

		if (c->tx_off == c->tx_len) {
			uint64_t left = o->bytes - c->sent;
			size_t n = left < o->chunk ? left : o->chunk;

			if (!c->tx) {
				c->tx = malloc(o->chunk);
				if (!c->tx) {
					finish(x, c, F_ERROR, ENOMEM);
					return progress;
				}
			}
			kp_pattern_fill(&c->pat, c->sent, c->tx, n);
			c->tx_len = n;
			c->tx_off = 0;
		}
		w = send(c->fd, c->tx + c->tx_off, c->tx_len - c->tx_off, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return progress;
			sock_fail(x, c, errno);
			return progress;
		}
		kp_xxh64_update(&c->hs, c->tx + c->tx_off, w);
		c->tx_off += w;
		c->sent += w;
		budget = (size_t)w < budget ? budget - w : 0;
		progress = true;
	}
	if (c->sent == o->bytes)
		send_done(x, c);
	return progress;
}

/*
 * Whose stream starts with these 8 bytes? A stream's first word is its key,
 * so a proxy that crossed two connections is named as such, not as a bad byte.
 */
static int whose_stream(struct xfer *x, const uint8_t *b)
{
	uint64_t w;
	int j;

	memcpy(&w, b, 8);
	w = le64toh(w);
	for (j = 0; j < x->o->conns; j++)
		if (w == kp_pattern_key(x->o->seed, j))
			return j;
	return -1;
}

/*
 * Where in the stream do the @n bytes at @b come from? Searched within
 * KP_LOCATE_WIN of @near: tells lost bytes (later offset) from repeated or
 * reordered ones (earlier offset). Returns -1 when not found.
 */
#define KP_LOCATE_WIN (16u << 20)
static int64_t locate(const struct kp_pattern *p, uint64_t near, const uint8_t *b, size_t n)
{
	uint64_t lo = near > KP_LOCATE_WIN ? near - KP_LOCATE_WIN : 0;
	size_t len = 2 * KP_LOCATE_WIN;
	uint8_t *w = malloc(len);
	const uint8_t *hit;
	int64_t r = -1;

	if (!w)
		return -1;
	kp_pattern_fill(p, lo, w, len);
	hit = memmem(w, len, b, n);
	if (hit)
		r = (int64_t)(lo + (uint64_t)(hit - w));
	free(w);
	return r;
}

static bool check_data(struct xfer *x, struct xconn *c, const uint8_t *b, size_t n)
{
	size_t k = kp_pattern_check(&c->pat, c->recvd, b, n);

	if (k == n)
		return true;
	c->fail_off = c->recvd + k;
	c->exp = kp_pattern_byte(&c->pat, c->fail_off);
	c->got = b[k];
	c->other = c->recvd == 0 && n >= 8 ? whose_stream(x, b) : -1;
	c->from = n - k >= 32 ? locate(&c->pat, c->fail_off, b + k, 32) : -1;
	finish(x, c, F_MISMATCH, 0);
	return false;
}

static bool do_recv(struct xfer *x, struct xconn *c)
{
	uint64_t want = x->o->bytes;
	size_t budget = IO_BUDGET;
	bool progress = false;

	while (budget && !c->done) {
		ssize_t n = recv(c->fd, x->rbuf, RBUF_SIZE, 0);

		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				sock_fail(x, c, errno);
			return progress;
		}
		progress = true;
		if (n == 0) {
			if (c->recvd < want)
				finish(x, c, F_SHORT, 0);
			else if (kp_xxh64_digest(&c->hr) != kp_xxh64_digest(&c->hs))
				finish(x, c, F_HASH, 0);
			else
				finish(x, c, F_NONE, 0);
			return progress;
		}
		if (c->recvd + n > want) {
			/* check what was due first: a wrong byte says more than a count */
			if (!check_data(x, c, x->rbuf, want - c->recvd))
				return progress;
			c->fail_off = want;
			finish(x, c, F_EXTRA, 0);
			return progress;
		}
		if (!check_data(x, c, x->rbuf, n))
			return progress;
		kp_xxh64_update(&c->hr, x->rbuf, n);
		c->recvd += n;
		budget = (size_t)n < budget ? budget - n : 0;
	}
	return progress;
}

static void describe(struct xfer *x, const struct xconn *c, char *buf, size_t len)
{
	struct kp_opts *o = x->o;

	switch (c->kind) {
	case F_NONE:
		snprintf(buf, len, "ok");
		break;
	case F_CONNECT:
		if (c->err == ETIMEDOUT)
			snprintf(buf, len, "cannot connect to %s: no answer within %d ms",
				 o->uri_str, o->connect_timeout_ms);
		else
			snprintf(buf, len, "cannot connect to %s: %s", o->uri_str,
				 strerror(c->err));
		break;
	case F_RESET:
	case F_ERROR:
		snprintf(buf, len, "%s after sending %" PRIu64 " and receiving %" PRIu64 " of %"
			 PRIu64 " bytes", c->err == EPIPE ? "connection reset" : strerror(c->err),
			 c->sent, c->recvd, o->bytes);
		break;
	case F_SHORT:
		snprintf(buf, len, "short read: the echo ended after %" PRIu64 " of %" PRIu64
			 " bytes (%" PRIu64 " sent)", c->recvd, o->bytes, c->sent);
		break;
	case F_MISMATCH:
		if (c->other >= 0)
			snprintf(buf, len, "data differs at offset %" PRIu64
				 ": it is connection %d's stream, not this one's", c->fail_off,
				 c->other);
		else if (c->from >= 0)
			snprintf(buf, len, "data differs at offset %" PRIu64
				 " (expected 0x%02x, got 0x%02x): the bytes there are the stream's"
				 " bytes from offset %" PRId64 " (%+" PRId64 ")", c->fail_off, c->exp,
				 c->got, c->from, c->from - (int64_t)c->fail_off);
		else
			snprintf(buf, len, "data differs at offset %" PRIu64
				 " (expected 0x%02x, got 0x%02x)", c->fail_off, c->exp, c->got);
		break;
	case F_EXTRA:
		snprintf(buf, len, "more bytes came back than the %" PRIu64 " sent", o->bytes);
		break;
	case F_HASH:
		snprintf(buf, len, "hash of the echo %016" PRIx64 " differs from hash sent %016"
			 PRIx64, kp_xxh64_digest(&c->hr), kp_xxh64_digest(&c->hs));
		break;
	case F_TIMEOUT:
		snprintf(buf, len, "no progress for %d ms (sent %" PRIu64 ", received %" PRIu64
			 " of %" PRIu64 " bytes)", o->timeout_ms, c->sent, c->recvd, o->bytes);
		break;
	}
}

/* Refused at connect, or reset later: what --expect-reset wants. */
static bool is_reset(const struct xconn *c)
{
	if (c->kind == F_CONNECT)
		return c->err == ECONNREFUSED || c->err == ECONNRESET;
	return c->kind == F_RESET;
}

static bool expected(const struct kp_opts *o, const struct xconn *c)
{
	switch (o->expect) {
	case KP_EXPECT_RESET:
		return is_reset(c);
	case KP_EXPECT_FAIL:
		return c->kind != F_NONE;
	default:
		return c->kind == F_NONE;
	}
}

static void report(struct xfer *x, double secs, int ok, int failed, bool pass)
{
	static const char *const expect_names[] = { "success", "reset", "fail" };
	struct kp_opts *o = x->o;
	struct json_object *j = NULL, *fails = NULL;
	char what[256], sz[32];
	int i, shown = 0, unexpected = 0;

	if (o->json) {
		j = json_object_new_object();
		fails = json_object_new_array();
	}
	for (i = 0; i < o->conns; i++) {
		struct xconn *c = x->c[i];

		if (expected(o, c))
			continue;
		unexpected++;
		if (shown++ >= MAX_REPORTED)
			continue;
		describe(x, c, what, sizeof(what));
		if (o->expect != KP_EXPECT_SUCCESS && c->kind == F_NONE)
			snprintf(what, sizeof(what), "succeeded, but a %s was expected",
				 o->expect == KP_EXPECT_RESET ? "refusal or reset" : "failure");
		else if (o->expect == KP_EXPECT_RESET)
			strncat(what, ", not a refusal or reset", sizeof(what) - strlen(what) - 1);
		if (fails) {
			struct json_object *f = json_object_new_object();

			json_object_object_add(f, "conn", json_object_new_int(i));
			json_object_object_add(f, "reason", json_object_new_string(
						       fail_names[c->kind]));
			if (c->kind == F_MISMATCH || c->kind == F_EXTRA)
				json_object_object_add(f, "offset",
						       json_object_new_uint64(c->fail_off));
			json_object_object_add(f, "message", json_object_new_string(what));
			json_object_array_add(fails, f);
		} else {
			kp_warn("conn %d: %s", i, what);
		}
	}
	if (!j && unexpected > MAX_REPORTED)
		kp_warn("... and %d more connections like that", unexpected - MAX_REPORTED);

	if (j) {
		json_object_object_add(j, "mode", json_object_new_string("xfer"));
		json_object_object_add(j, "uri", json_object_new_string(o->uri_str));
		json_object_object_add(j, "conns", json_object_new_int(o->conns));
		json_object_object_add(j, "bytes", json_object_new_uint64(o->bytes));
		json_object_object_add(j, "ok", json_object_new_int(ok));
		json_object_object_add(j, "failed", json_object_new_int(failed));
		snprintf(what, sizeof(what), "%.6f", secs);
		json_object_object_add(j, "seconds", json_object_new_double_s(secs, what));
		json_object_object_add(j, "expect",
				       json_object_new_string(expect_names[o->expect]));
		json_object_object_add(j, "pass", json_object_new_boolean(pass));
		json_object_object_add(j, "failures", fails);
		kp_json_print(j);
	} else if (o->expect == KP_EXPECT_SUCCESS) {
		printf("xfer %s: %d conns x %s: %d ok, %d failed, %.3f s, %.2f Gbit/s each way: %s\n",
		       o->uri_str, o->conns, kp_bytes_str(o->bytes, sz, sizeof(sz)), ok, failed,
		       secs, secs > 0 ? 8.0 * o->bytes * ok / secs / 1e9 : 0.0,
		       pass ? "PASS" : "FAIL");
	} else {
		printf("xfer %s: %d conns x %s, expecting %s: %d ok, %d failed (%d as expected), "
		       "%.3f s: %s\n", o->uri_str, o->conns, kp_bytes_str(o->bytes, sz, sizeof(sz)),
		       o->expect == KP_EXPECT_RESET ? "refusal or reset" : "failure", ok, failed,
		       o->conns - unexpected, secs, pass ? "PASS" : "FAIL");
	}
	fflush(stdout);
}

int kp_cmd_xfer(struct kp_opts *o)
{
	struct epoll_event evs[256];
	int *fds = NULL, *errs = NULL;
	int i, ret, ok = 0, failed = 0, unexpected = 0, rc = KP_EXIT_FAIL;
	uint64_t t0, last_progress;
	struct xfer *x;

	kp_raise_nofile(o->conns + 64);
	x = calloc(1, sizeof(*x));
	if (x) {
		x->o = o;
		x->ep = -1;
		x->c = calloc(o->conns, sizeof(*x->c));
		fds = calloc(o->conns, sizeof(*fds));
		errs = calloc(o->conns, sizeof(*errs));
	}
	if (!x || !x->c || !fds || !errs) {
		kp_err(o, "out of memory for %d connections", o->conns);
		goto out;
	}
	for (i = 0; i < o->conns; i++) {
		struct xconn *c = calloc(1, sizeof(*c));

		if (!c) {
			kp_err(o, "out of memory for %d connections", o->conns);
			goto out;
		}
		c->fd = -1;
		c->idx = i;
		c->other = -1;
		kp_pattern_init(&c->pat, kp_pattern_key(o->seed, i));
		kp_xxh64_init(&c->hs, 0);
		kp_xxh64_init(&c->hr, 0);
		x->c[i] = c;
	}
	x->ep = epoll_create1(EPOLL_CLOEXEC);
	if (x->ep < 0) {
		kp_err(o, "epoll: %s", strerror(errno));
		goto out;
	}

	t0 = kp_now_ns();
	if (kp_connect_all(o, o->conns, fds, errs, false))
		goto out;
	x->active = o->conns;
	for (i = 0; i < o->conns; i++) {
		struct xconn *c = x->c[i];
		struct epoll_event ev = { .data.ptr = c };

		if (errs[i]) {
			finish(x, c, F_CONNECT, errs[i]);
			continue;
		}
		c->fd = fds[i];
		fds[i] = -1;
		c->events = ev.events = EPOLLIN | (o->bytes ? EPOLLOUT : 0);
		if (epoll_ctl(x->ep, EPOLL_CTL_ADD, c->fd, &ev)) {
			kp_err(o, "epoll: %s", strerror(errno));
			goto out;
		}
		if (!o->bytes)
			send_done(x, c);
	}

	last_progress = kp_now_ns();
	while (x->active) {
		uint64_t now = kp_now_ns(), idle = now - last_progress;
		uint64_t limit = (uint64_t)o->timeout_ms * 1000000;
		bool progress = false;

		if (idle >= limit) {
			for (i = 0; i < o->conns; i++)
				if (!x->c[i]->done)
					finish(x, x->c[i], F_TIMEOUT, 0);
			break;
		}
		ret = epoll_wait(x->ep, evs, 256, (int)((limit - idle + 999999) / 1000000));
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			kp_err(o, "epoll: %s", strerror(errno));
			goto out;
		}
		for (i = 0; i < ret; i++) {
			struct xconn *c = evs[i].data.ptr;

			/* read first: an error or EOF there explains a failed write */
			if (!c->done && evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				progress |= do_recv(x, c);
			if (!c->done && !c->shut && evs[i].events & (EPOLLOUT | EPOLLERR))
				progress |= do_send(x, c);
		}
		if (progress)
			last_progress = kp_now_ns();
	}

	for (i = 0; i < o->conns; i++) {
		if (x->c[i]->kind == F_NONE)
			ok++;
		else
			failed++;
		if (!expected(o, x->c[i]))
			unexpected++;
	}
	report(x, (kp_now_ns() - t0) / 1e9, ok, failed, !unexpected);
	rc = unexpected ? KP_EXIT_FAIL : KP_EXIT_OK;
out:
	if (x) {
		for (i = 0; x->c && i < o->conns; i++) {
			if (!x->c[i])
				continue;
			if (x->c[i]->fd >= 0)
				close(x->c[i]->fd);
			free(x->c[i]->tx);
			free(x->c[i]);
		}
		if (x->ep >= 0)
			close(x->ep);
		free(x->c);
		free(x);
	}
	free(fds);
	free(errs);
	return rc;
}
