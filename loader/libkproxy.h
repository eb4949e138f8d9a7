/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libkproxy: the loader library. Opens the BPF skeletons, loads and pins the
 * maps under a pin directory (reusing maps a previous kproxyd left there),
 * attaches the programs, and probes what the running kernel can do.
 *
 * Functions return 0 or -errno; functions returning a pointer return NULL and
 * set errno. Messages go through libkproxy's print callback.
 */
#ifndef LIBKPROXY_H
#define LIBKPROXY_H

#include <stdbool.h>
#include <stdarg.h>
#include <linux/types.h>
#include "kproxy.h"

struct kp_dataplane;

struct kp_dp_opts {
	const char *pin_dir;	/* NULL: KP_PIN_DIR_DEFAULT */
};

enum kp_log_level { KP_LOG_WARN, KP_LOG_INFO, KP_LOG_DEBUG };
typedef void (*kp_print_fn)(enum kp_log_level level, const char *fmt, va_list ap);

/** kp_set_print() - route libkproxy's and libbpf's messages (libbpf's one level quieter). */
void kp_set_print(kp_print_fn fn);

/**
 * kp_dp_open() - load the proxy dataplane, pin its maps, attach the verdict.
 * Returns NULL with errno set; the cause has been printed in one sentence.
 */
struct kp_dataplane *kp_dp_open(const struct kp_dp_opts *opts);
/** kp_dp_close() - drop our references; pinned maps stay for the next kproxyd. */
void kp_dp_close(struct kp_dataplane *dp);
/** kp_dp_unpin() - remove the maps' pins, the proxy's and the services' (after the last user is gone). */
int kp_dp_unpin(const char *pin_dir);

int kp_dp_map_fd(struct kp_dataplane *dp, const char *name);

/** kp_sock_cookie() - the socket cookie of @fd, the key of every per-socket map. */
int kp_sock_cookie(int fd, __u64 *cookie);

/**
 * kp_dp_conn_add() - describe a socket (kp_conns, kp_fwd), then put it in
 * kp_socks. From then on its data goes through the verdict.
 */
int kp_dp_sock_add(struct kp_dataplane *dp, int fd, __u64 cookie, const struct kp_conn *c);
/** kp_dp_sock_del() - forget a socket: sockhash entry (if any) and its descriptions. */
void kp_dp_sock_del(struct kp_dataplane *dp, __u64 cookie);
int kp_dp_conn_get(struct kp_dataplane *dp, __u64 cookie, struct kp_conn *c);
int kp_dp_fwd_set(struct kp_dataplane *dp, __u64 cookie, __u64 user_fwd_bytes);
/** kp_dp_stats() - the per-CPU counters of @proxy_id, summed. */
int kp_dp_stats(struct kp_dataplane *dp, __u32 proxy_id, struct kp_proxy_stats *out);
int kp_dp_stats_reset(struct kp_dataplane *dp, __u32 proxy_id);
/** kp_dp_emit() - put a user-space event into the kp_events ring. */
int kp_dp_emit(struct kp_dataplane *dp, struct kp_event *ev);
__u64 kp_dp_events_lost(struct kp_dataplane *dp);

/*
 * Services (bpf/service.bpf.c): cgroup connect/sendmsg/recvmsg/getpeername
 * hooks that steer connections to a VIP to a backend.
 */
struct kp_svc_dp;

/** kp_svc_open() - load the service hooks; maps pinned in @pin_dir (shared with the proxy). */
struct kp_svc_dp *kp_svc_open(const char *pin_dir);
void kp_svc_close(struct kp_svc_dp *d);
int kp_svc_map_fd(struct kp_svc_dp *d, const char *name);
/** kp_svc_attach() - attach every hook to the cgroup @cgroup_path (id @cgid); links pinned. */
int kp_svc_attach(struct kp_svc_dp *d, const char *cgroup_path, __u64 cgid);
/** kp_svc_detach() - remove the hooks kp_svc_attach() put on cgroup @cgid. */
int kp_svc_detach(struct kp_svc_dp *d, __u64 cgid);
/** kp_acc_attach() - local acceleration: the sockops program on a cgroup (pinned link). */
int kp_acc_attach(struct kp_svc_dp *d, const char *cgroup_path, __u64 cgid);
int kp_acc_detach(struct kp_svc_dp *d, __u64 cgid);
int kp_acc_stats(struct kp_svc_dp *d, __u32 id, struct kp_acc_stats *out);
int kp_acc_stats_reset(struct kp_svc_dp *d, __u32 id);
/** kp_svc_detach_all() - remove every hook pinned in the pin directory. */
int kp_svc_detach_all(struct kp_svc_dp *d);
int kp_svc_stats(struct kp_svc_dp *d, __u32 id, struct kp_svc_stats *out);
int kp_svc_stats_reset(struct kp_svc_dp *d, __u32 id);
/** kp_cgroup_id() - id (inode) of the cgroup2 directory @path and its depth below the root. */
int kp_cgroup_id(const char *path, __u64 *id, __u32 *level);

/*
 * kmux (bpf/mux.bpf.c): the message multiplexor's maps and programs. NULL
 * from kp_mux_open() when the kernel refuses them (said in the log).
 */
struct kp_mux_dp;
struct kp_mux_dp *kp_mux_open(const char *pin_dir);
void kp_mux_close(struct kp_mux_dp *d);
int kp_mux_cfg_set(struct kp_mux_dp *d, __u32 id, const struct kp_mux_cfg *cfg);
int kp_mux_slot_set(struct kp_mux_dp *d, __u32 id, __u32 slot, const struct kp_mux_slot *s);
int kp_mux_slot_get(struct kp_mux_dp *d, __u32 id, __u32 slot, struct kp_mux_slot *s);
int kp_mux_reqs_get(struct kp_mux_dp *d, __u32 id, __u32 slot, struct kp_mux_reqs *r);
int kp_mux_reqs_clear(struct kp_mux_dp *d, __u32 id, __u32 slot);
int kp_mux_sock_add(struct kp_mux_dp *d, int fd, __u64 cookie, const struct kp_mux_sk *ms);
void kp_mux_sock_del(struct kp_mux_dp *d, __u64 cookie);
int kp_mux_sink_add(struct kp_mux_dp *d, int fd, __u64 cookie);
int kp_mux_sk_get(struct kp_mux_dp *d, __u64 cookie, struct kp_mux_sk *ms);
int kp_mux_stats_get(struct kp_mux_dp *d, __u32 id, struct kp_mux_stats *out);
int kp_mux_stats_reset(struct kp_mux_dp *d, __u32 id);
int kp_mux_rules_set(struct kp_mux_dp *d, __u32 id, const struct kp_l7_rule *rules, unsigned int n);
__u64 kp_mux_rule_hits(struct kp_mux_dp *d, __u32 id, unsigned int rule);
struct bpf_object;
struct bpf_object *kp_mux_parser_load(struct kp_mux_dp *d, __u32 id, int dir, const char *file,
				      char *err, size_t errlen);
void kp_mux_parser_clear(struct kp_mux_dp *d, __u32 id, int dir, struct bpf_object *obj);

/* Kernel features and what each enables in kproxy. */
enum kp_feature {
	KP_FEAT_SOCKMAP,
	KP_FEAT_SOCKHASH,
	KP_FEAT_SK_SKB,
	KP_FEAT_SK_MSG,
	KP_FEAT_SOCKOPS,
	KP_FEAT_CGROUP_SOCK_ADDR,
	KP_FEAT_XDP,
	KP_FEAT_RINGBUF,
	KP_FEAT_SYSCALL_PROG,
	KP_FEAT_KTLS,
	KP_FEAT_KTLS_SOCKMAP,
	KP_FEAT_KCM,
	KP_FEAT_QUIC,
	KP_FEAT_BPF_CRYPTO,
	KP_FEAT_MAX,
};

struct kp_feature_info {
	const char *name;	/* short key, e.g. "sockhash" */
	const char *enables;	/* what it enables in kproxy */
	bool present;
	char detail[192];	/* why not, when absent */
};

/** kp_probe_features() - probe the running kernel; needs CAP_BPF for the BPF probes. */
int kp_probe_features(struct kp_feature_info info[KP_FEAT_MAX]);

#endif
