// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Load the service hooks (bpf/service.bpf.c) and attach them to cgroups
 * through BPF links, pinned as <pin dir>/svc-<cgroup id>-<hook>, so that a
 * restarted kproxyd finds them (and points them at its own programs) and a
 * detach removes exactly what was attached.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "libkproxy.h"
#include "log.h"
#include "internal.h"
#include "service.skel.h"

struct kp_svc_dp {
	struct service_bpf *skel;
	char pin_dir[256];
	int ncpus;
};

static struct bpf_program **hook_progs(struct kp_svc_dp *d, int *n)
{
	static struct bpf_program *p[9];

	p[0] = d->skel->progs.kp_connect4;
	p[1] = d->skel->progs.kp_connect6;
	p[2] = d->skel->progs.kp_sendmsg4;
	p[3] = d->skel->progs.kp_sendmsg6;
	p[4] = d->skel->progs.kp_recvmsg4;
	p[5] = d->skel->progs.kp_recvmsg6;
	p[6] = d->skel->progs.kp_getpeername4;
	p[7] = d->skel->progs.kp_getpeername6;
	p[8] = d->skel->progs.kp_sock_release;
	*n = 9;
	return p;
}

struct kp_svc_dp *kp_svc_open(const char *pin_dir)
{
	LIBBPF_OPTS(bpf_object_open_opts, oopts);
	struct kp_svc_dp *d = calloc(1, sizeof(*d));
	int err;

	if (!d)
		return NULL;
	snprintf(d->pin_dir, sizeof(d->pin_dir), "%s", pin_dir ? pin_dir : KP_PIN_DIR_DEFAULT);
	d->ncpus = libbpf_num_possible_cpus();
	oopts.pin_root_path = d->pin_dir;
	d->skel = service_bpf__open_opts(&oopts);
	if (!d->skel) {
		err = -errno;
		kp_warn("failed to open the service BPF object: %s", strerror(-err));
		goto err_free;
	}
	err = service_bpf__load(d->skel);
	if (!err && bpf_prog_attach(bpf_program__fd(d->skel->progs.kp_acc_msg),
				    bpf_map__fd(d->skel->maps.kp_acc_socks), BPF_SK_MSG_VERDICT, 0)) {
		err = -errno;
		kp_warn("cannot attach sk_msg to '%s': %s", KP_MAP_ACC_SOCKS, strerror(-err));
	}
	if (err) {
		kp_warn("failed to load the service hooks (cgroup connect/sendmsg/recvmsg/"
			"getpeername): %s; 'kproxyctl feature' tells whether this kernel has cgroup "
			"sock_addr hooks", strerror(-err));
		service_bpf__destroy(d->skel);
		goto err_free;
	}
	return d;
err_free:
	free(d);
	errno = -err;
	return NULL;
}

void kp_svc_close(struct kp_svc_dp *d)
{
	if (!d)
		return;
	service_bpf__destroy(d->skel);
	free(d);
}

int kp_svc_map_fd(struct kp_svc_dp *d, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(d->skel->obj, name);

	return m ? bpf_map__fd(m) : -ENOENT;
}

int kp_svc_stats(struct kp_svc_dp *d, __u32 id, struct kp_svc_stats *out)
{
	return kp_percpu_sum(bpf_map__fd(d->skel->maps.kp_svc_stats), id, out, sizeof(*out),
			     d->ncpus);
}

int kp_svc_stats_reset(struct kp_svc_dp *d, __u32 id)
{
	return kp_percpu_zero(bpf_map__fd(d->skel->maps.kp_svc_stats), id,
			      sizeof(struct kp_svc_stats), d->ncpus);
}

int kp_acc_stats(struct kp_svc_dp *d, __u32 id, struct kp_acc_stats *out)
{
	return kp_percpu_sum(bpf_map__fd(d->skel->maps.kp_acc_stats), id, out, sizeof(*out),
			     d->ncpus);
}

int kp_acc_stats_reset(struct kp_svc_dp *d, __u32 id)
{
	return kp_percpu_zero(bpf_map__fd(d->skel->maps.kp_acc_stats), id,
			      sizeof(struct kp_acc_stats), d->ncpus);
}

/* Hooks are pinned as <pin dir>/<prefix>-<cgroup id>-<program>: svc- or acc-. */
static void link_path(struct kp_svc_dp *d, const char *prefix, __u64 cgid, struct bpf_program *p,
		      char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s-%llu-%s", d->pin_dir, prefix, (unsigned long long)cgid,
		 bpf_program__name(p));
}

/*
 * Attach @p to the cgroup @cgfd as a link pinned at @path; a link pinned
 * there by the kproxyd before us is kept and pointed at @p instead.
 */
static int attach_pinned(struct bpf_program *p, int cgfd, const char *cgroup_path,
			 const char *path)
{
	struct bpf_link *l;
	int err;

	if (!access(path, F_OK)) {
		l = bpf_link__open(path);
		if (!l)
			return -errno;
		if (bpf_link__update_program(l, p))
			kp_warn("cannot update hook '%s': %s", path, strerror(errno));
		/* Closes our fd only: the pin keeps the link. */
		bpf_link__destroy(l);
		return 0;
	}
	l = bpf_program__attach_cgroup(p, cgfd);
	if (!l) {
		err = -errno;
		kp_warn("cannot attach %s to cgroup '%s': %s", bpf_program__name(p), cgroup_path,
			strerror(-err));
		return err;
	}
	err = bpf_link__pin(l, path);
	if (err)
		kp_warn("cannot pin the hook at '%s': %s", path, strerror(-err));
	/* The pin holds the attachment now; this closes our fd only. */
	bpf_link__destroy(l);
	return err;
}

/* The last reference to a cgroup link is its pin: unlinking it detaches. */
static int detach_pinned(const char *path)
{
	return unlink(path) && errno != ENOENT ? -errno : 0;
}

static int open_cgroup(const char *cgroup_path)
{
	int cgfd = open(cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (cgfd < 0)
		kp_warn("cannot open cgroup '%s': %s", cgroup_path, strerror(errno));
	return cgfd < 0 ? -errno : cgfd;
}

int kp_cgroup_id(const char *path, __u64 *id, __u32 *level)
{
	char buf[4096], *slash;
	struct statfs fs;
	struct stat st, up;

	if (statfs(path, &fs) || stat(path, &st))
		return -errno;
	if (fs.f_type != CGROUP2_SUPER_MAGIC || !S_ISDIR(st.st_mode))
		return -ENOTDIR;
	/* On cgroup2 the inode number is the cgroup id. */
	*id = st.st_ino;
	/* The level: directories between here and the top of the cgroup2 mount. */
	*level = 0;
	snprintf(buf, sizeof(buf), "%s", path);
	for (;;) {
		while ((slash = strrchr(buf, '/')) && slash[1] == '\0' && slash != buf)
			*slash = '\0';
		slash = strrchr(buf, '/');
		if (!slash)
			break;
		if (slash == buf)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (statfs(buf, &fs) || fs.f_type != CGROUP2_SUPER_MAGIC || stat(buf, &up) ||
		    up.st_dev != st.st_dev)
			break;
		(*level)++;
		if (!strcmp(buf, "/"))
			break;
	}
	return 0;
}

int kp_svc_attach(struct kp_svc_dp *d, const char *cgroup_path, __u64 cgid)
{
	struct bpf_program **progs;
	char path[512];
	int i, n, cgfd, err = 0;

	progs = hook_progs(d, &n);
	cgfd = open_cgroup(cgroup_path);
	if (cgfd < 0)
		return cgfd;
	for (i = 0; i < n && !err; i++) {
		link_path(d, "svc", cgid, progs[i], path, sizeof(path));
		err = attach_pinned(progs[i], cgfd, cgroup_path, path);
	}
	close(cgfd);
	if (err)
		kp_svc_detach(d, cgid);
	return err;
}

int kp_svc_detach(struct kp_svc_dp *d, __u64 cgid)
{
	struct bpf_program **progs;
	char path[512];
	int i, n, err = 0, ret;

	progs = hook_progs(d, &n);
	for (i = 0; i < n; i++) {
		link_path(d, "svc", cgid, progs[i], path, sizeof(path));
		ret = detach_pinned(path);
		if (ret)
			err = ret;
	}
	return err;
}

/* Local acceleration: the sockops program on @cgroup_path, as a pinned link. */
int kp_acc_attach(struct kp_svc_dp *d, const char *cgroup_path, __u64 cgid)
{
	char path[512];
	int cgfd, err;

	link_path(d, "acc", cgid, d->skel->progs.kp_acc_sockops, path, sizeof(path));
	cgfd = open_cgroup(cgroup_path);
	if (cgfd < 0)
		return cgfd;
	err = attach_pinned(d->skel->progs.kp_acc_sockops, cgfd, cgroup_path, path);
	close(cgfd);
	return err;
}

int kp_acc_detach(struct kp_svc_dp *d, __u64 cgid)
{
	char path[512];

	link_path(d, "acc", cgid, d->skel->progs.kp_acc_sockops, path, sizeof(path));
	return detach_pinned(path);
}

int kp_svc_detach_all(struct kp_svc_dp *d)
{
	char path[512];
	struct dirent *e;
	DIR *dir = opendir(d->pin_dir);
	int err = 0;

	if (!dir)
		return -errno;
	while ((e = readdir(dir))) {
		if (strncmp(e->d_name, "svc-", 4) && strncmp(e->d_name, "acc-", 4))
			continue;
		snprintf(path, sizeof(path), "%s/%s", d->pin_dir, e->d_name);
		if (unlink(path))
			err = -errno;
	}
	closedir(dir);
	return err;
}
