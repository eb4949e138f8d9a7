// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Load, pin and attach the proxy dataplane (bpf/proxy.bpf.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "libkproxy.h"
#include "log.h"
#include "internal.h"
#include "proxy.skel.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

struct kp_dataplane {
	struct proxy_bpf *skel;
	char pin_dir[256];
	int ncpus;
	int lock_fd;	/* flock on the pin directory: one kproxyd per dataplane */
};

/* Every map kproxy pins, the proxy's and the service hooks' (kp_dp_unpin). */
static const char *const pinned_maps[] = {
	KP_MAP_SOCKS, KP_MAP_CONNS, KP_MAP_FWD, KP_MAP_STATS, KP_MAP_EVENTS, KP_MAP_EVLOST,
	KP_MAP_SVC, KP_MAP_SVC_BE, KP_MAP_SVC_REV, KP_MAP_SVC_SOCKS, KP_MAP_SVC_STATS,
	KP_MAP_SVC_CFG, KP_MAP_ACC_SOCKS, KP_MAP_ACC_PORTS, KP_MAP_ACC_INFO, KP_MAP_ACC_STATS,
	KP_MAP_MUX_SOCKS, KP_MAP_MUX_SK, KP_MAP_MUX_SLOTS, KP_MAP_MUX_CFG, KP_MAP_MUX_STATS,
	KP_MAP_MUX_PARSERS, KP_MAP_MUX_SINKS,
};

static int ensure_pin_dir(const char *dir)
{
	char parent[256], *slash;
	struct statfs fs;

	snprintf(parent, sizeof(parent), "%s", dir);
	slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	if (statfs(parent, &fs) || fs.f_type != BPF_FS_MAGIC) {
		kp_warn("'%s' is not on a BPF filesystem: mount one with 'mount -t bpf bpf %s'",
			dir, parent);
		return -ENOTDIR;
	}
	/* Pins hold the dataplane's state: only root may reach them. */
	if (mkdir(dir, 0700) && errno != EEXIST) {
		int err = -errno;

		kp_warn("cannot create pin directory '%s': %s", dir, strerror(-err));
		return err;
	}
	chmod(dir, 0700);
	return 0;
}

struct kp_dataplane *kp_dp_open(const struct kp_dp_opts *opts)
{
	LIBBPF_OPTS(bpf_object_open_opts, oopts);
	struct kp_dataplane *dp;
	const char *pin_dir = opts && opts->pin_dir ? opts->pin_dir : KP_PIN_DIR_DEFAULT;
	int err, verdict_fd, socks_fd;

	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return NULL;
	snprintf(dp->pin_dir, sizeof(dp->pin_dir), "%s", pin_dir);
	dp->ncpus = libbpf_num_possible_cpus();
	if (dp->ncpus <= 0) {
		err = -EINVAL;
		goto err_free;
	}
	err = ensure_pin_dir(dp->pin_dir);
	if (err)
		goto err_free;
	/* Before anything is loaded: a second daemon must not re-attach the verdict. */
	dp->lock_fd = open(dp->pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dp->lock_fd < 0 || flock(dp->lock_fd, LOCK_EX | LOCK_NB)) {
		err = errno == EWOULDBLOCK ? -EBUSY : -errno;
		if (err == -EBUSY)
			kp_warn("another kproxyd uses the pin directory '%s': stop it first, or give "
				"this one its own with -P", dp->pin_dir);
		else
			kp_warn("cannot lock the pin directory '%s': %s", dp->pin_dir, strerror(-err));
		goto err_free;
	}

	oopts.pin_root_path = dp->pin_dir;
	dp->skel = proxy_bpf__open_opts(&oopts);
	if (!dp->skel) {
		err = -errno;
		kp_warn("failed to open the proxy BPF object: %s", strerror(-err));
		goto err_free;
	}
	err = proxy_bpf__load(dp->skel);
	if (err) {
		if (err == -EPERM)
			kp_warn("loading BPF programs needs root or CAP_BPF and CAP_NET_ADMIN");
		else
			kp_warn("failed to load the proxy BPF programs: %s (see the messages above; "
				"maps pinned in '%s' by another kproxy version do not fit: remove them "
				"with 'rm -r %s' when no proxy runs; 'kproxyctl feature' tells what this "
				"kernel lacks)", strerror(-err), dp->pin_dir, dp->pin_dir);
		goto err_destroy;
	}

	/* libbpf 1.1 has no attach API for sockmap programs: attach to the map, no link. */
	verdict_fd = bpf_program__fd(dp->skel->progs.kp_verdict);
	socks_fd = bpf_map__fd(dp->skel->maps.kp_socks);
	if (bpf_prog_attach(verdict_fd, socks_fd, BPF_SK_SKB_STREAM_VERDICT, 0)) {
		err = -errno;
		kp_warn("failed to attach sk_skb/stream_verdict to map '%s': %s", KP_MAP_SOCKS,
			strerror(-err));
		goto err_destroy;
	}
	return dp;

err_destroy:
	proxy_bpf__destroy(dp->skel);
err_free:
	if (dp->lock_fd > 0)
		close(dp->lock_fd);
	free(dp);
	errno = -err;
	return NULL;
}

void kp_dp_close(struct kp_dataplane *dp)
{
	if (!dp)
		return;
	proxy_bpf__destroy(dp->skel);
	if (dp->lock_fd > 0)
		close(dp->lock_fd);
	free(dp);
}

int kp_dp_unpin(const char *pin_dir)
{
	char path[512];
	size_t i;

	if (!pin_dir)
		pin_dir = KP_PIN_DIR_DEFAULT;
	for (i = 0; i < sizeof(pinned_maps) / sizeof(pinned_maps[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, pinned_maps[i]);
		if (unlink(path) && errno != ENOENT)
			kp_warn("cannot remove pin '%s': %s", path, strerror(errno));
	}
	if (rmdir(pin_dir) && errno != ENOENT)
		return -errno;
	return 0;
}

int kp_dp_map_fd(struct kp_dataplane *dp, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(dp->skel->obj, name);

	return m ? bpf_map__fd(m) : -ENOENT;
}

int kp_sock_cookie(int fd, __u64 *cookie)
{
	socklen_t len = sizeof(*cookie);

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, cookie, &len))
		return -errno;
	return 0;
}

int kp_dp_sock_add(struct kp_dataplane *dp, int fd, __u64 cookie, const struct kp_conn *c)
{
	struct kp_fwd fwd = {};
	__u64 val = fd;
	int err;

	if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.kp_conns), &cookie, c, BPF_ANY) ||
	    bpf_map_update_elem(bpf_map__fd(dp->skel->maps.kp_fwd), &cookie, &fwd, BPF_ANY)) {
		err = -errno;
		goto err;
	}
	if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.kp_socks), &cookie, &val, BPF_NOEXIST)) {
		err = -errno;
		goto err;
	}
	return 0;
err:
	bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.kp_conns), &cookie);
	bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.kp_fwd), &cookie);
	return err;
}

void kp_dp_sock_del(struct kp_dataplane *dp, __u64 cookie)
{
	bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.kp_socks), &cookie);
	bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.kp_conns), &cookie);
	bpf_map_delete_elem(bpf_map__fd(dp->skel->maps.kp_fwd), &cookie);
}

int kp_dp_conn_get(struct kp_dataplane *dp, __u64 cookie, struct kp_conn *c)
{
	if (bpf_map_lookup_elem(bpf_map__fd(dp->skel->maps.kp_conns), &cookie, c))
		return -errno;
	return 0;
}

int kp_dp_fwd_set(struct kp_dataplane *dp, __u64 cookie, __u64 user_fwd_bytes)
{
	struct kp_fwd fwd = { .user_fwd_bytes = user_fwd_bytes };

	if (bpf_map_update_elem(bpf_map__fd(dp->skel->maps.kp_fwd), &cookie, &fwd, BPF_EXIST))
		return -errno;
	return 0;
}

int kp_percpu_sum(int map_fd, __u32 key, void *out, size_t size, int ncpus)
{
	__u64 *percpu = calloc(ncpus, size), *dst = out;
	size_t j;
	int i;

	if (!percpu)
		return -ENOMEM;
	memset(out, 0, size);
	if (bpf_map_lookup_elem(map_fd, &key, percpu)) {
		int err = -errno;

		free(percpu);
		return err;
	}
	for (i = 0; i < ncpus; i++)
		for (j = 0; j < size / sizeof(__u64); j++)
			dst[j] += percpu[i * (size / sizeof(__u64)) + j];
	free(percpu);
	return 0;
}

int kp_percpu_zero(int map_fd, __u32 key, size_t size, int ncpus)
{
	void *percpu = calloc(ncpus, size);
	int err = 0;

	if (!percpu)
		return -ENOMEM;
	if (bpf_map_update_elem(map_fd, &key, percpu, BPF_ANY))
		err = -errno;
	free(percpu);
	return err;
}

int kp_dp_stats(struct kp_dataplane *dp, __u32 proxy_id, struct kp_proxy_stats *out)
{
	return kp_percpu_sum(bpf_map__fd(dp->skel->maps.kp_stats), proxy_id, out, sizeof(*out),
			     dp->ncpus);
}

int kp_dp_stats_reset(struct kp_dataplane *dp, __u32 proxy_id)
{
	return kp_percpu_zero(bpf_map__fd(dp->skel->maps.kp_stats), proxy_id,
			      sizeof(struct kp_proxy_stats), dp->ncpus);
}

int kp_dp_emit(struct kp_dataplane *dp, struct kp_event *ev)
{
	LIBBPF_OPTS(bpf_test_run_opts, topts, .ctx_in = ev, .ctx_size_in = sizeof(*ev));

	if (bpf_prog_test_run_opts(bpf_program__fd(dp->skel->progs.kp_emit), &topts))
		return -errno;
	return 0;
}

__u64 kp_dp_events_lost(struct kp_dataplane *dp)
{
	__u32 zero = 0;
	__u64 v = 0;

	bpf_map_lookup_elem(bpf_map__fd(dp->skel->maps.kp_evlost), &zero, &v);
	return v;
}
