// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Load kmux (bpf/mux.bpf.c): its maps pinned by name in the pin directory
 * (kp_events shared with the proxy), its stream parser and verdict attached
 * to kp_mux_socks, so every socket inserted there runs in strparser mode.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "libkproxy.h"
#include "log.h"
#include "internal.h"
#include "mux.skel.h"

struct kp_mux_dp {
	struct mux_bpf *skel;
	int ncpus;
};

struct kp_mux_dp *kp_mux_open(const char *pin_dir)
{
	LIBBPF_OPTS(bpf_object_open_opts, oopts);
	struct kp_mux_dp *d = calloc(1, sizeof(*d));
	int err, socks;

	if (!d)
		return NULL;
	d->ncpus = libbpf_num_possible_cpus();
	oopts.pin_root_path = pin_dir ? pin_dir : KP_PIN_DIR_DEFAULT;
	d->skel = mux_bpf__open_opts(&oopts);
	if (!d->skel) {
		kp_warn("failed to open the mux BPF object: %s", strerror(errno));
		free(d);
		return NULL;
	}
	err = mux_bpf__load(d->skel);
	socks = err ? -1 : bpf_map__fd(d->skel->maps.kp_mux_socks);
	if (!err && (bpf_prog_attach(bpf_program__fd(d->skel->progs.kp_mux_parse), socks,
				     BPF_SK_SKB_STREAM_PARSER, 0) ||
		     bpf_prog_attach(bpf_program__fd(d->skel->progs.kp_mux_verdict), socks,
				     BPF_SK_SKB_STREAM_VERDICT, 0)))
		err = -errno;
	if (err) {
		kp_warn("failed to load kmux (sk_skb stream parser and verdict on '%s'): %s",
			KP_MAP_MUX_SOCKS, strerror(-err));
		mux_bpf__destroy(d->skel);
		free(d);
		return NULL;
	}
	return d;
}

void kp_mux_close(struct kp_mux_dp *d)
{
	if (!d)
		return;
	mux_bpf__destroy(d->skel);
	free(d);
}

int kp_mux_cfg_set(struct kp_mux_dp *d, __u32 id, const struct kp_mux_cfg *cfg)
{
	return bpf_map_update_elem(bpf_map__fd(d->skel->maps.kp_mux_cfg), &id, cfg, BPF_ANY)
		? -errno : 0;
}

static __u32 slot_key(__u32 id, __u32 slot)
{
	return id * KP_MUX_MAX_SLOTS + slot;
}

/* Replace a slot whole, under its lock (the verdicts take the same lock). */
int kp_mux_slot_set(struct kp_mux_dp *d, __u32 id, __u32 slot, const struct kp_mux_slot *s)
{
	__u32 k = slot_key(id, slot);

	return bpf_map_update_elem(bpf_map__fd(d->skel->maps.kp_mux_slots), &k, s, BPF_F_LOCK)
		? -errno : 0;
}

int kp_mux_slot_get(struct kp_mux_dp *d, __u32 id, __u32 slot, struct kp_mux_slot *s)
{
	__u32 k = slot_key(id, slot);

	return bpf_map_lookup_elem_flags(bpf_map__fd(d->skel->maps.kp_mux_slots), &k, s,
					 BPF_F_LOCK) ? -errno : 0;
}

/* ID correlation: the requests in flight on slot @slot (who asked, with what ID). */
int kp_mux_reqs_get(struct kp_mux_dp *d, __u32 id, __u32 slot, struct kp_mux_reqs *r)
{
	__u32 k = slot_key(id, slot);

	return bpf_map_lookup_elem(bpf_map__fd(d->skel->maps.kp_mux_ids), &k, r) ? -errno : 0;
}

/* ... all free, for a slot (re)connected: before it enters the pool. */
int kp_mux_reqs_clear(struct kp_mux_dp *d, __u32 id, __u32 slot)
{
	static const struct kp_mux_reqs none;
	__u32 k = slot_key(id, slot);

	return bpf_map_update_elem(bpf_map__fd(d->skel->maps.kp_mux_ids), &k, &none, BPF_ANY)
		? -errno : 0;
}

/* The socket's entry first, then the socket: the parser finds its mux at once. */
int kp_mux_sock_add(struct kp_mux_dp *d, int fd, __u64 cookie, const struct kp_mux_sk *ms)
{
	__u64 v = fd;
	int err;

	if (bpf_map_update_elem(bpf_map__fd(d->skel->maps.kp_mux_sk), &cookie, ms, BPF_ANY))
		return -errno;
	if (bpf_map_update_elem(bpf_map__fd(d->skel->maps.kp_mux_socks), &cookie, &v, BPF_NOEXIST)) {
		err = -errno;
		bpf_map_delete_elem(bpf_map__fd(d->skel->maps.kp_mux_sk), &cookie);
		return err;
	}
	return 0;
}

void kp_mux_sock_del(struct kp_mux_dp *d, __u64 cookie)
{
	bpf_map_delete_elem(bpf_map__fd(d->skel->maps.kp_mux_socks), &cookie);
	bpf_map_delete_elem(bpf_map__fd(d->skel->maps.kp_mux_sinks), &cookie);
	bpf_map_delete_elem(bpf_map__fd(d->skel->maps.kp_mux_sk), &cookie);
}

/*
 * A client's sink (@fd, one end of a socketpair): what kproxyd carries of
 * client @cookie comes out of it (bpf/mux.bpf.c). Before the client's own
 * socket enters kp_mux_socks.
 */
int kp_mux_sink_add(struct kp_mux_dp *d, int fd, __u64 cookie)
{
	__u64 v = fd;

	return bpf_map_update_elem(bpf_map__fd(d->skel->maps.kp_mux_sinks), &cookie, &v, BPF_ANY)
		? -errno : 0;
}

int kp_mux_sk_get(struct kp_mux_dp *d, __u64 cookie, struct kp_mux_sk *ms)
{
	return bpf_map_lookup_elem(bpf_map__fd(d->skel->maps.kp_mux_sk), &cookie, ms) ? -errno : 0;
}

int kp_mux_stats_get(struct kp_mux_dp *d, __u32 id, struct kp_mux_stats *out)
{
	return kp_percpu_sum(bpf_map__fd(d->skel->maps.kp_mux_stats), id, out, sizeof(*out),
			     d->ncpus);
}

int kp_mux_stats_reset(struct kp_mux_dp *d, __u32 id)
{
	return kp_percpu_zero(bpf_map__fd(d->skel->maps.kp_mux_stats), id, sizeof(struct kp_mux_stats),
			      d->ncpus);
}

/*
 * The L7 policy of mux @id: @n rules (at most KP_L7_MAX_RULES) in their
 * order, the rest emptied; every rule's hit counter starts at 0. Set them
 * before kp_mux_cfg_set() turns the policy on.
 */
int kp_mux_rules_set(struct kp_mux_dp *d, __u32 id, const struct kp_l7_rule *rules, unsigned int n)
{
	int rfd = bpf_map__fd(d->skel->maps.kp_mux_rules);
	int hfd = bpf_map__fd(d->skel->maps.kp_mux_rule_hits);
	struct kp_l7_rule none = { 0 };
	unsigned int i;
	__u32 k;

	for (i = 0; i < KP_L7_MAX_RULES; i++) {
		k = id * KP_L7_MAX_RULES + i;
		if (bpf_map_update_elem(rfd, &k, i < n ? &rules[i] : &none, BPF_ANY) ||
		    kp_percpu_zero(hfd, k, sizeof(__u64), d->ncpus))
			return -errno;
	}
	return 0;
}

/* Requests rule @rule of mux @id matched, over all CPUs. */
__u64 kp_mux_rule_hits(struct kp_mux_dp *d, __u32 id, unsigned int rule)
{
	__u32 k = id * KP_L7_MAX_RULES + rule;
	__u64 v = 0;

	kp_percpu_sum(bpf_map__fd(d->skel->maps.kp_mux_rule_hits), k, &v, sizeof(v), d->ncpus);
	return v;
}

/*
 * A user's parser (parser bpf:FILE): load @file, take its one
 * sk_skb/stream_parser program and put it where kp_mux_parse tail-calls for
 * mux @id, direction @dir (0 requests, 1 responses). The object stays loaded
 * until kp_mux_parser_clear(). NULL with a sentence in @err.
 */
struct bpf_object *kp_mux_parser_load(struct kp_mux_dp *d, __u32 id, int dir, const char *file,
				      char *err, size_t errlen)
{
	struct bpf_object *obj = bpf_object__open_file(file, NULL);
	struct bpf_program *prog, *found = NULL;
	__u32 key = id * 2 + !!dir;
	int fd, ret;

	if (!obj) {
		snprintf(err, errlen, "cannot open the parser object '%s': %s", file, strerror(errno));
		return NULL;
	}
	bpf_object__for_each_program(prog, obj) {
		if (bpf_program__type(prog) == BPF_PROG_TYPE_SK_SKB) {
			if (found) {
				snprintf(err, errlen, "'%s' has more than one sk_skb program: a parser "
					 "object has exactly one, in SEC(\"sk_skb/stream_parser\")", file);
				goto fail;
			}
			found = prog;
		}
	}
	if (!found) {
		snprintf(err, errlen, "'%s' has no sk_skb program: a parser is a "
			 "SEC(\"sk_skb/stream_parser\") program (include/kproxy_bpf.h)", file);
		goto fail;
	}
	ret = bpf_object__load(obj);
	if (ret) {
		snprintf(err, errlen, "the kernel refused the parser in '%s': %s (kproxyd's log has "
			 "the verifier's reasons)", file, strerror(-ret));
		goto fail;
	}
	fd = bpf_program__fd(found);
	if (bpf_map_update_elem(bpf_map__fd(d->skel->maps.kp_mux_parsers), &key, &fd, BPF_ANY)) {
		snprintf(err, errlen, "cannot install the parser of '%s': %s", file, strerror(errno));
		goto fail;
	}
	return obj;
fail:
	bpf_object__close(obj);
	return NULL;
}

void kp_mux_parser_clear(struct kp_mux_dp *d, __u32 id, int dir, struct bpf_object *obj)
{
	__u32 key = id * 2 + !!dir;

	bpf_map_delete_elem(bpf_map__fd(d->skel->maps.kp_mux_parsers), &key);
	bpf_object__close(obj);
}
