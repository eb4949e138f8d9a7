// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * kpperf stream --frame len4: streaming of framed messages against an echo
 * server, directly or through a kmux mux, super_kcmperf's measure. Each
 * connection writes --size byte messages (frame.c: the 4-byte big-endian
 * length, then the connection's kpperf stream) back to back, without
 * waiting for each echo but with at most --window messages unanswered, and
 * reads the echoes as they come: every byte is checked, so a message that
 * comes back short, changed, or in another message's place fails the run,
 * naming the connection and the message. Latency is per message, from its
 * first byte sent to its last byte echoed.
 *
 * The window is what kmux needs: a client with more than 64 requests in
 * flight on its backend connection is moved to kproxyd's user-space relay.
 *
 * When --time is up no new message starts; the run waits up to --timeout
 * ms for the echoes of those already started, so the last messages are
 * checked too and a server that does not answer cannot pass.
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
#define IO_BUDGET	(1024 * 1024)	/* per wakeup, so one connection cannot starve the rest */

struct mconn {
	struct kp_conn k;	/* first: worker.c's part */
	uint64_t tx_off;	/* message stream bytes sent */
	uint64_t rx_off;	/* echoed and checked */
	uint64_t tx_end;	/* where sending stops: the end of the last message started */
	size_t tx_len, tx_pos;	/* k.buf: generated from message stream offset tx_off - tx_pos */
	uint64_t sent_at[KP_MAX_WINDOW];	/* message m's first byte sent, at [m % 64] */
	struct kp_pattern pat;
};

struct mworker {
	struct kp_worker k;	/* first: worker.c's part */
	uint64_t up, down;	/* bytes sent and echoed */
	uint8_t rbuf[RBUF_SIZE];
};

static void sock_error(struct mworker *w, struct mconn *c, int err)
{
	uint64_t size = w->k.o->size;

	kp_conn_fail(&w->k, &c->k, "%s in message %" PRIu64 " (%" PRIu64 " of %" PRIu64
		     " bytes echoed)", err == EPIPE ? "connection reset" : strerror(err),
		     c->rx_off / size, c->rx_off % size, size);
}

/* Bytes [from, to) of the message stream were sent now: note when each message began. */
static void sent(struct mconn *c, uint64_t size, uint64_t from, uint64_t to, uint64_t now)
{
	uint64_t m;

	for (m = (from + size - 1) / size; m * size < to; m++)
		c->sent_at[m % KP_MAX_WINDOW] = now;
}

static void msg_send(struct mworker *w, struct mconn *c)
{
	uint64_t size = w->k.o->size, limit;
	size_t budget = IO_BUDGET;

	/* at most --window messages unanswered, and none after the run's end */
	limit = (c->rx_off / size + w->k.o->window) * size;
	if (limit > c->tx_end)
		limit = c->tx_end;
	while (c->tx_off < limit) {
		size_t want;
		ssize_t n;
		int err;

		if (!budget) {
			/* more to send: epoll calls again once the others had their turn */
			if (kp_conn_watch(&w->k, &c->k, EPOLLIN | EPOLLOUT))
				sock_error(w, c, errno);
			return;
		}
		if (c->tx_pos == c->tx_len) {
			kp_frame_fill(&c->pat, size, c->tx_off, c->k.buf, w->k.o->chunk);
			c->tx_len = w->k.o->chunk;
			c->tx_pos = 0;
		}
		want = c->tx_len - c->tx_pos;
		if (want > limit - c->tx_off)
			want = limit - c->tx_off;
		n = kp_io(c->k.fd, c->k.buf + c->tx_pos, want, true, &err);
		if (n < 0) {
			/* the socket is full: go on when the echoes have made room */
			if (err)
				sock_error(w, c, err);
			else if (kp_conn_watch(&w->k, &c->k, EPOLLIN | EPOLLOUT))
				sock_error(w, c, errno);
			return;
		}
		sent(c, size, c->tx_off, c->tx_off + n, kp_now_ns());
		c->tx_off += n;
		c->tx_pos += n;
		w->up += n;
		budget = (size_t)n < budget ? budget - n : 0;
	}
	/* the window is full, or all is sent: wait for echoes */
	if (kp_conn_watch(&w->k, &c->k, EPOLLIN))
		sock_error(w, c, errno);
}

/* Bytes [from, to) of the message stream came back right: count the messages they end. */
static void echoed(struct mworker *w, struct mconn *c, uint64_t from, uint64_t to, uint64_t now)
{
	uint64_t size = w->k.o->size, m;

	for (m = from / size; (m + 1) * size <= to; m++)
		kp_worker_done(&w->k, now - c->sent_at[m % KP_MAX_WINDOW]);
}

/*
 * An echo differs at rbuf[@k] of @n: if a whole message starts in the buffer
 * there, say whether it is another message of the window (reordered) or none.
 */
static const char *which(struct mworker *w, struct mconn *c, size_t k, size_t n)
{
	static __thread char why[96];
	uint64_t size = w->k.o->size, m = (c->rx_off + k) / size, from, to, x;
	size_t start = m * size - c->rx_off, len;

	/* too little of it here, or too short to tell one message from another */
	if (m * size < c->rx_off || n - start < size || size < KP_FRAME_HDR + 8)
		return ": changed or lost on the way";
	len = size;
	from = m > KP_MAX_WINDOW ? m - KP_MAX_WINDOW : 0;
	to = c->tx_off / size;
	for (x = from; x < to; x++) {
		if (x == m || kp_frame_check(&c->pat, size, x * size, w->rbuf + start, len) < len)
			continue;
		snprintf(why, sizeof(why), ": it is message %" PRIu64
			 " instead, so the messages were reordered, repeated or lost", x);
		return why;
	}
	return ": changed on the way (it is no message of this connection's window)";
}

static void msg_recv(struct mworker *w, struct mconn *c)
{
	uint64_t size = w->k.o->size;
	size_t budget = IO_BUDGET;

	while (budget) {
		int err;
		ssize_t n = kp_io(c->k.fd, w->rbuf, RBUF_SIZE, false, &err);
		uint64_t pos;
		size_t k;

		if (n < 0 && err) {
			sock_error(w, c, err);
			return;
		}
		if (n < 0)
			break;
		if (n == 0) {
			kp_conn_fail(&w->k, &c->k, "the server closed the connection in message %"
				     PRIu64 " (%" PRIu64 " of %" PRIu64 " bytes echoed)",
				     c->rx_off / size, c->rx_off % size, size);
			return;
		}
		if ((uint64_t)n > c->tx_off - c->rx_off) {
			kp_conn_fail(&w->k, &c->k, "received %zd bytes, more than the %" PRIu64
				     " sent and not yet echoed, at message %" PRIu64, n,
				     c->tx_off - c->rx_off, c->rx_off / size);
			return;
		}
		k = kp_frame_check(&c->pat, size, c->rx_off, w->rbuf, n);
		if (k < (size_t)n) {
			pos = c->rx_off + k;
			kp_conn_fail(&w->k, &c->k, "message %" PRIu64 " differs at byte %" PRIu64
				     " of %" PRIu64 " (expected 0x%02x, got 0x%02x)%s", pos / size,
				     pos % size, size, kp_frame_byte(&c->pat, size, pos),
				     w->rbuf[k], which(w, c, k, n));
			return;
		}
		echoed(w, c, c->rx_off, c->rx_off + n, kp_now_ns());
		c->rx_off += n;
		w->down += n;
		budget = (size_t)n < budget ? budget - n : 0;
	}
	/* echoes open the window */
	msg_send(w, c);
}

/* The run's time is up: finish the messages begun, start no more. */
static void stop_sending(struct mworker *w)
{
	struct mconn *conns = w->k.c;
	uint64_t size = w->k.o->size;
	int i;

	for (i = 0; i < w->k.n; i++) {
		struct mconn *c = &conns[i];

		c->tx_end = (c->tx_off + size - 1) / size * size;
		if (c->k.fd >= 0)
			msg_send(w, c);
	}
}

static bool all_echoed(struct mworker *w)
{
	struct mconn *conns = w->k.c;
	int i;

	for (i = 0; i < w->k.n; i++)
		if (conns[i].k.fd >= 0 && conns[i].rx_off < conns[i].tx_end)
			return false;
	return true;
}

static void *worker(void *arg)
{
	struct mworker *w = arg;
	struct mconn *conns = w->k.c;
	uint64_t until = w->k.deadline;
	bool draining = false;
	struct epoll_event evs[256];
	int i, ret;

	for (i = 0; i < w->k.n; i++)
		msg_send(w, &conns[i]);
	for (;;) {
		ret = kp_worker_wait(&w->k, evs, 256, until);
		if (ret < 0 && !draining && w->k.live && kp_now_ns() >= until) {
			draining = true;
			until = kp_now_ns() + (uint64_t)w->k.o->timeout_ms * 1000000;
			stop_sending(w);
			continue;
		}
		if (ret < 0 || (draining && all_echoed(w)))
			break;
		for (i = 0; i < ret; i++) {
			struct mconn *c = evs[i].data.ptr;

			if (c->k.fd >= 0 && evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				msg_recv(w, c);
			if (c->k.fd >= 0 && evs[i].events & EPOLLOUT)
				msg_send(w, c);
		}
		if (draining && all_echoed(w))
			break;
	}
	/* a message sent and not echoed in full is an error, as is one echoed short */
	for (i = 0; draining && i < w->k.n; i++) {
		struct mconn *c = &conns[i];
		uint64_t size = w->k.o->size;

		if (c->k.fd >= 0 && c->rx_off < c->tx_end)
			kp_conn_fail(&w->k, &c->k, "message %" PRIu64 ": %" PRIu64 " of %" PRIu64
				     " bytes echoed %d ms after the run (%" PRIu64
				     " messages unanswered); is the server in --mode echo?",
				     c->rx_off / size, c->rx_off % size, size,
				     w->k.o->timeout_ms, (c->tx_end - c->rx_off + size - 1) / size);
	}
	w->k.end = kp_now_ns();
	return NULL;
}

static void report(struct kp_opts *o, struct kp_worker *const *w, const struct kp_worker *sum,
		   double secs)
{
	double rate = secs > 0 ? sum->done / secs : 0, up_mb, down_mb;
	uint64_t up = 0, down = 0;
	char sz[32], lat[192];
	int t;

	for (t = 0; t < o->threads; t++) {
		up += ((const struct mworker *)w[t])->up;
		down += ((const struct mworker *)w[t])->down;
	}
	up_mb = secs > 0 ? up / secs / 1e6 : 0;
	down_mb = secs > 0 ? down / secs / 1e6 : 0;
	if (o->json) {
		struct json_object *j = kp_json_result(o, "stream", secs);

		json_object_object_add(j, "frame", json_object_new_string("len4"));
		json_object_object_add(j, "size", json_object_new_uint64(o->size));
		json_object_object_add(j, "window", json_object_new_int(o->window));
		json_object_object_add(j, "messages", json_object_new_uint64(sum->done));
		json_object_object_add(j, "msgs_s", kp_json_fixed(rate, 1));
		json_object_object_add(j, "bytes_up", json_object_new_uint64(up));
		json_object_object_add(j, "bytes_down", json_object_new_uint64(down));
		json_object_object_add(j, "mb_s_up", kp_json_fixed(up_mb, 2));
		json_object_object_add(j, "mb_s_down", kp_json_fixed(down_mb, 2));
		kp_worker_json(j, sum);
		kp_json_print(j);
	} else {
		printf("stream len4 %s: %d conns x %s, window %d, %.2f s: %" PRIu64 " messages, "
		       "%.0f msg/s, MB/s up %.2f down %.2f, %s\n", o->uri_str, o->conns,
		       kp_bytes_str(o->size, sz, sizeof(sz)), o->window, secs, sum->done, rate,
		       up_mb, down_mb, kp_worker_text(sum, lat, sizeof(lat)));
	}
}

static void conn_init(struct kp_opts *o, struct kp_conn *k)
{
	struct mconn *c = (struct mconn *)k;

	c->tx_end = UINT64_MAX;
	kp_pattern_init(&c->pat, kp_pattern_key(o->seed, k->idx));
}

int kp_cmd_msg_stream(struct kp_opts *o)
{
	struct kp_client msg_stream = {
		KP_CLIENT(struct mworker, struct mconn),
		.events = EPOLLIN, .nodelay = true, .counts = true, .buf_len = o->chunk,
	};

	return kp_client_run(o, &msg_stream);
}
