/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * kpperf: benchmark and data-verification tool over TCP (kcmperf's and
 * super_kcmperf's job in the KCM seed). One private header for all of
 * kpperf's files.
 *
 * Threading model: every command runs one epoll loop per thread; a thread
 * owns its connections outright, so nothing is shared but read-only options
 * and a stop flag. Results are merged after the threads are joined.
 */
#ifndef KPPERF_H
#define KPPERF_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "uri.h"

/* Exit codes that scripts can rely on (documented in kpperf(1)). */
#define KP_EXIT_OK		0
#define KP_EXIT_FAIL		1	/* a run failed: data mismatch, short read, error */
#define KP_EXIT_ADDRINUSE	2	/* the server's port is taken */
#define KP_EXIT_USAGE		64	/* bad command line (EX_USAGE) */

#define KP_DEF_CONNECT_TIMEOUT_MS	5000
#define KP_DEF_IDLE_TIMEOUT_MS		10000
#define KP_MAX_THREADS			64
/*
 * A transaction or message slower than this counts as a stall: sockmap's
 * known failure is a lost wakeup that holds data for tens of milliseconds,
 * which a mean hides.
 */
#define KP_STALL_NS			(10 * 1000000ull)
#define KP_DEF_WINDOW			16
/*
 * stream --frame: messages in flight per connection. kmux lets a client have
 * 64 requests outstanding on its backend connection and moves one with more
 * to kproxyd's user-space relay, so a window of at most 64 stays in the kernel.
 */
#define KP_MAX_WINDOW			64

enum kp_server_mode {
	KP_SERVER_ECHO,
	KP_SERVER_SINK,
	KP_SERVER_SOURCE,
};

enum kp_expect {
	KP_EXPECT_SUCCESS,
	KP_EXPECT_RESET,	/* every connection refused or reset */
	KP_EXPECT_FAIL,		/* every connection fails, however */
};

struct kp_opts {
	const char *uri_str;
	struct kp_uri uri;
	bool json;
	int connect_timeout_ms;
	int timeout_ms;		/* xfer: give up after this long without progress;
				 * stream --frame: wait this long for the last echoes */
	int conns;
	int threads;
	uint64_t size;		/* rr: request size; stream --frame: message size */
	int frame;		/* rr, stream: bytes of the length header of each message (0, 4) */
	int window;		/* stream --frame: messages in flight per connection */
	double seconds;		/* rr, stream: run time */
	bool down;		/* stream: read from a source server */
	uint64_t bytes;		/* xfer: bytes per connection */
	uint64_t seed;
	uint64_t chunk;		/* bytes per write call */
	enum kp_expect expect;
	enum kp_server_mode mode;
	bool once;
	bool verify;		/* server sink: check kpperf streams */
};

struct json_object;

/* main.c */
void kp_json_print(struct json_object *j);
void kp_err(const struct kp_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kp_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *kp_bytes_str(uint64_t v, char *buf, size_t len);
struct json_object *kp_json_result(const struct kp_opts *o, const char *mode, double secs);
struct json_object *kp_json_fixed(double v, int decimals);

/* time helpers */
static inline uint64_t kp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* net.c */
void kp_raise_nofile(int want);
int kp_listen(const struct kp_opts *o, int *fdp);
int kp_connect_all(const struct kp_opts *o, int n, int *fds, int *errs, bool nodelay);
int kp_connect_report(const struct kp_opts *o, int n, const int *errs);
int kp_sock_error(int fd);
int kp_epoll_watch(int ep, int fd, void *ptr, uint32_t *cur, uint32_t events);

/* pattern.c: the deterministic data every kpperf stream carries */
#define KP_PAT_WORDS	512	/* words in one block: 4 KiB */
#define KP_PAT_BLOCK	(KP_PAT_WORDS * 8)

struct kp_pattern {
	uint64_t key;
	uint64_t table[KP_PAT_WORDS];
};

uint64_t kp_pattern_key(uint64_t seed, uint64_t conn);
void kp_pattern_init(struct kp_pattern *p, uint64_t key);
void kp_pattern_fill(const struct kp_pattern *p, uint64_t off, void *buf, size_t len);
size_t kp_pattern_check(const struct kp_pattern *p, uint64_t off, const void *buf, size_t len);
uint8_t kp_pattern_byte(const struct kp_pattern *p, uint64_t off);
bool kp_pattern_recognise(struct kp_pattern *p, const void *head16);

/* hash.c: XXH64, streaming */
struct kp_xxh64 {
	uint64_t v[4];
	uint64_t total;
	uint8_t mem[32];
	uint32_t memsize;
	uint64_t seed;
};

void kp_xxh64_init(struct kp_xxh64 *s, uint64_t seed);
void kp_xxh64_update(struct kp_xxh64 *s, const void *data, size_t len);
uint64_t kp_xxh64_digest(const struct kp_xxh64 *s);
uint64_t kp_xxh64(const void *data, size_t len, uint64_t seed);

/* hist.c: log-bucket latency histogram (HDR-like), values within 0.4% */
#define KP_HIST_SUB_BITS	8
#define KP_HIST_SUB		(1u << KP_HIST_SUB_BITS)
#define KP_HIST_BUCKETS		((64 - KP_HIST_SUB_BITS + 1) * KP_HIST_SUB)

struct kp_hist {
	uint64_t count;
	uint64_t max;
	uint64_t buckets[KP_HIST_BUCKETS];
};

void kp_hist_add(struct kp_hist *h, uint64_t v);
void kp_hist_merge(struct kp_hist *dst, const struct kp_hist *src);
uint64_t kp_hist_percentile(const struct kp_hist *h, double pct);

/* frame.c: len4-framed messages of one size laid over a kpperf stream */
#define KP_FRAME_HDR	4

uint8_t kp_frame_byte(const struct kp_pattern *p, uint64_t size, uint64_t off);
void kp_frame_fill(const struct kp_pattern *p, uint64_t size, uint64_t off, void *buf, size_t len);
size_t kp_frame_check(const struct kp_pattern *p, uint64_t size, uint64_t off, const void *buf,
		      size_t len);

/*
 * worker.c: connections split over threads, one epoll loop each. A command's
 * connection struct starts with a struct kp_conn, its worker struct with a
 * struct kp_worker.
 */
struct kp_conn {
	int fd;			/* -1 once closed */
	int idx;		/* connection number in the run, for messages */
	uint32_t events;	/* what epoll watches now */
	uint8_t *buf;		/* kp_client.buf_len bytes: rr's request, stream's data to send */
};

struct kp_worker {
	struct kp_opts *o;
	pthread_t tid;
	int ep;
	void *c;		/* this thread's first connection */
	int n, live;		/* its connections, and those still open */
	uint64_t deadline;	/* when the run ends */
	uint64_t end;		/* when this worker stopped */
	uint64_t errors;
	uint64_t done;		/* rr: transactions, stream --frame: messages */
	uint64_t stalls;	/* of those, the ones slower than KP_STALL_NS */
	struct kp_hist hist;	/* their latency */
};

struct epoll_event;

/* A timed client command, as kp_client_run() runs it. */
struct kp_client {
	size_t wsize, csize;	/* the command's worker and connection structs */
	uint32_t events;	/* what epoll watches on a connection at first */
	bool nodelay;
	bool counts;		/* a run that completes no transaction or message fails */
	uint64_t buf_len;	/* each connection's buffer (k.buf), or 0 */
	/* the command's part of a connection (k.idx and k.buf are set) */
	void (*conn_init)(struct kp_opts *o, struct kp_conn *c);
	void *(*worker)(void *);		/* a struct kp_worker's loop */
	/* print the result of the run that took @secs; @sum has the workers' common counts */
	void (*report)(struct kp_opts *o, struct kp_worker *const *w, const struct kp_worker *sum,
		       double secs);
};

/*
 * Connect o->conns connections, split them over o->threads workers, run
 * them for o->seconds and report. Returns an exit code (KP_EXIT_*).
 */
int kp_client_run(struct kp_opts *o, const struct kp_client *cl);

/* The parts of a kp_client that follow from the command's types and its functions' names. */
#define KP_CLIENT(wtype, ctype) \
	.wsize = sizeof(wtype), .csize = sizeof(ctype), .conn_init = conn_init, \
	.worker = worker, .report = report
/* Events for the worker's loop; -1 when it is to stop (@until, no connection left, error). */
int kp_worker_wait(struct kp_worker *w, struct epoll_event *evs, int max, uint64_t until);
int kp_conn_watch(struct kp_worker *w, struct kp_conn *c, uint32_t events);
/*
 * send() (@out) or recv() on a non-blocking @fd, again on EINTR. Returns the
 * bytes moved (0 from recv: the peer closed), or -1 with *@err 0 when the
 * socket is not ready (EAGAIN) or the errno that ended the connection.
 */
ssize_t kp_io(int fd, void *buf, size_t len, bool out, int *err);
/* One transaction or message done in @lat_ns. */
void kp_worker_done(struct kp_worker *w, uint64_t lat_ns);
/* The end of a result with latency: lat_us {p50, p99, p999, max}, stalls_10ms, errors. */
void kp_worker_json(struct json_object *j, const struct kp_worker *sum);
const char *kp_worker_text(const struct kp_worker *sum, char *buf, size_t len);
/* Report a failed connection (the first few per run), count it and close it. */
void kp_conn_fail(struct kp_worker *w, struct kp_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* the commands */
int kp_cmd_server(struct kp_opts *o);
int kp_cmd_rr(struct kp_opts *o);
int kp_cmd_stream(struct kp_opts *o);
int kp_cmd_xfer(struct kp_opts *o);
int kp_cmd_msg_stream(struct kp_opts *o);

#endif
