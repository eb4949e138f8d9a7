/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * kpperf: benchmark and data-verification tool over TCP (kcmperf's job in the
 * KCM seed). One private header for all of kpperf's files.
 *
 * Threading model: every command runs one epoll loop per thread; a thread
 * owns its connections outright, so nothing is shared but read-only options
 * and a stop flag. Results are merged after the threads are joined.
 */
#ifndef KPPERF_H
#define KPPERF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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
	int timeout_ms;		/* xfer: give up after this long without progress */
	int conns;
	int threads;
	uint64_t size;		/* rr: request size */
	int frame;		/* rr: bytes of the length header written into each request (0, 4) */
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

/* the commands */
int kp_cmd_server(struct kp_opts *o);
int kp_cmd_rr(struct kp_opts *o);
int kp_cmd_stream(struct kp_opts *o);
int kp_cmd_xfer(struct kp_opts *o);

#endif
