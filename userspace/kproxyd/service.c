// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Services: a VIP that unmodified applications in a cgroup connect to, steered
 * by the kernel's cgroup hooks (bpf/service.bpf.c) straight to a backend.
 *
 *   service NAME vip URI (backend URI [backend URI ...] | via PROXY)
 *           [cgroup PATH] [check_interval MS]
 *
 * kproxyd writes the maps, attaches the hooks to the cgroup (once per
 * cgroup, removed with its last service) and checks TCP backends with a
 * connect every check_interval: a backend that refuses or does not answer
 * leaves the selection, one that answers again comes back. With none left a
 * connect goes to a reserved local port that answers with a reset, so the
 * application gets ECONNREFUSED at once instead of a hang.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <bpf/bpf.h>

#include "kproxyd.h"

#define SVC_CHECK_MS_DEFAULT	1000

static struct list_head services = { &services, &services };
static __u8 ids_used[KP_MAX_SERVICES];
static int refuse_fd[2] = { -1, -1 };

static const char *cgroup2_root(void)
{
	static const char *const cands[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
	struct statfs fs;
	size_t i;

	for (i = 0; i < sizeof(cands) / sizeof(cands[0]); i++)
		if (!statfs(cands[i], &fs) && fs.f_type == CGROUP2_SUPER_MAGIC)
			return cands[i];
	return NULL;
}

struct service *service_find(const char *name)
{
	struct list_head *p;

	for (p = services.next; p != &services; p = p->next) {
		struct service *sv = container_of(p, struct service, node);

		if (!strcmp(sv->cfg.name, name))
			return sv;
	}
	return NULL;
}

struct svc_parse {
	struct svc_cfg *cfg;
	bool have_vip;
};

static int svc_word(void *obj, const char *kw, const char *arg, char *err, size_t errlen)
{
	struct svc_parse *sp = obj;
	struct svc_cfg *cfg = sp->cfg;
	unsigned long v;
	int ret;

	if (!strcmp(kw, "vip")) {
		ret = kp_uri_parse(arg, &cfg->vip, err, errlen);
		if (ret)
			return ret;
		if (cfg->vip.scheme == KP_URI_TLS) {
			snprintf(err, errlen, "a VIP is tcp:// or udp:// (TLS is a proxy's job: use "
				 "'via PROXY')");
			return -EINVAL;
		}
		sp->have_vip = true;
	} else if (!strcmp(kw, "backend")) {
		return kpd_add_backend("service", cfg->backends, &cfg->nbackends, arg, err, errlen);
	} else if (!strcmp(kw, "via")) {
		snprintf(cfg->via, sizeof(cfg->via), "%s", arg);
	} else if (!strcmp(kw, "cgroup")) {
		if (arg[0] != '/' || strlen(arg) >= sizeof(cfg->cgroup)) {
			snprintf(err, errlen, "'cgroup' needs an absolute path of a cgroup2 directory, "
				 "such as /sys/fs/cgroup/app.slice");
			return -EINVAL;
		}
		snprintf(cfg->cgroup, sizeof(cfg->cgroup), "%s", arg);
	} else if (!strcmp(kw, "check_interval")) {
		if (kpd_parse_num(kw, arg, 0, 3600000, &v, err, errlen))
			return -EINVAL;
		cfg->check_ms = v;
	} else {
		snprintf(err, errlen, "unknown keyword '%s' (service NAME vip URI backend URI ... "
			 "[via PROXY] [cgroup PATH] [check_interval MS])", kw);
		return -EINVAL;
	}
	return 0;
}

int svc_cfg_parse(int argc, char **argv, struct svc_cfg *cfg, char *err, size_t errlen)
{
	struct svc_parse sp = { .cfg = cfg };
	int i, ret;

	memset(cfg, 0, sizeof(*cfg));
	cfg->check_ms = SVC_CHECK_MS_DEFAULT;
	ret = kpd_parse_words("service", argc, argv, cfg->name, svc_word, &sp, err, errlen);
	if (ret)
		return ret;
	if (!sp.have_vip) {
		snprintf(err, errlen, "a service needs 'vip URI' (for example vip tcp://10.96.0.10:80)");
		return -EINVAL;
	}
	if (!cfg->nbackends && !cfg->via[0]) {
		snprintf(err, errlen, "a service needs at least one 'backend URI', or 'via PROXY'");
		return -EINVAL;
	}
	if (cfg->nbackends && cfg->via[0]) {
		snprintf(err, errlen, "give either backends or 'via PROXY', not both");
		return -EINVAL;
	}
	for (i = 0; i < cfg->nbackends; i++) {
		if (cfg->backends[i].addr.ss_family != cfg->vip.addr.ss_family ||
		    cfg->backends[i].scheme != cfg->vip.scheme) {
			snprintf(err, errlen, "backend %d is not of the VIP's kind: a %s VIP needs %s "
				 "backends", i + 1, cfg->vip.scheme == KP_URI_UDP ? "UDP" : "TCP",
				 cfg->vip.addr.ss_family == AF_INET6 ? "IPv6" : "IPv4");
			return -EINVAL;
		}
	}
	return 0;
}

/* The address of @u as the 16 bytes and network-order port the hooks use. */
static void uri_raw(const struct kp_uri *u, __u8 addr[16], __u16 *port)
{
	kp_sockaddr_raw((const struct sockaddr *)&u->addr, addr);
	*port = htons(kp_sockaddr_port((const struct sockaddr *)&u->addr));
}

static void svc_key(const struct service *sv, struct kp_svc_key *k)
{
	memset(k, 0, sizeof(*k));
	uri_raw(&sv->cfg.vip, k->addr, &k->port);
	k->proto = sv->cfg.vip.scheme == KP_URI_UDP ? IPPROTO_UDP : IPPROTO_TCP;
	k->family = sv->cfg.vip.addr.ss_family;
}

/* Write the healthy backends, densely, then the service entry that counts them. */
static int svc_sync(struct service *sv)
{
	int be_fd = kp_svc_map_fd(kpd.svc, KP_MAP_SVC_BE), svc_fd = kp_svc_map_fd(kpd.svc, KP_MAP_SVC);
	struct kp_svc_key k;
	struct kp_svc v = {};
	int i, n = 0;

	for (i = 0; i < sv->cfg.nbackends; i++) {
		struct kp_svc_be_key bk = { .svc_id = sv->id, .idx = n };
		struct kp_svc_be be = { .family = sv->cfg.backends[i].addr.ss_family };

		if (!sv->healthy[i])
			continue;
		uri_raw(&sv->cfg.backends[i], be.addr, &be.port);
		if (bpf_map_update_elem(be_fd, &bk, &be, BPF_ANY))
			return -errno;
		n++;
	}
	svc_key(sv, &k);
	v.cgroup_id = sv->cgid;
	v.id = sv->id;
	v.level = sv->level;
	v.nbackends = n;
	v.flags = sv->cfg.via[0] ? KP_SVC_VIA_PROXY : 0;
	if (bpf_map_update_elem(svc_fd, &k, &v, BPF_ANY))
		return -errno;
	return 0;
}

/* Does a service in the list use cgroup @cgid (its hooks are attached then)? */
static bool cgroup_in_use(__u64 cgid)
{
	struct list_head *p;

	for (p = services.next; p != &services; p = p->next)
		if (container_of(p, struct service, node)->cgid == cgid)
			return true;
	return false;
}

/* A bound socket that never listens: a SYN to it is answered with a reset. */
static int refuse_port(int family, struct kp_svc_cfg *c)
{
	struct sockaddr_storage ss = {};
	socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int fd, i = family == AF_INET6;

	if (refuse_fd[i] < 0) {
		fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		ss.ss_family = family;
		if (family == AF_INET6)
			((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
		else
			((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(fd, (struct sockaddr *)&ss, len) || getsockname(fd, (struct sockaddr *)&ss, &len)) {
			close(fd);
			return -errno;
		}
		refuse_fd[i] = fd;
	} else if (getsockname(refuse_fd[i], (struct sockaddr *)&ss, &len)) {
		return -errno;
	}
	if (family == AF_INET6) {
		memcpy(c->refuse6, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
		c->refuse6_port = ((struct sockaddr_in6 *)&ss)->sin6_port;
	} else {
		memcpy(c->refuse4, &((struct sockaddr_in *)&ss)->sin_addr, 4);
		c->refuse4_port = ((struct sockaddr_in *)&ss)->sin_port;
	}
	return 0;
}

static void refuse_setup(void)
{
	struct kp_svc_cfg c = {};
	__u32 zero = 0;

	refuse_port(AF_INET, &c);
	refuse_port(AF_INET6, &c);	/* fails without IPv6: v6 VIPs then get EPERM */
	bpf_map_update_elem(kp_svc_map_fd(kpd.svc, KP_MAP_SVC_CFG), &zero, &c, BPF_ANY);
}

int service_add(int argc, char **argv, int want_id, char *err, size_t errlen)
{
	struct kp_svc_key k;
	struct service *sv;
	const char *cg;
	int i, ret;

	if (!kpd.svc) {
		snprintf(err, errlen, "services are not available: the cgroup hooks did not load "
			 "(see kproxyd's log; 'kproxyctl feature' shows cgroup_sock_addr)");
		return -EOPNOTSUPP;
	}
	sv = calloc(1, sizeof(*sv));
	if (!sv) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret = svc_cfg_parse(argc, argv, &sv->cfg, err, errlen);
	if (ret)
		goto err_free;
	if (service_find(sv->cfg.name)) {
		snprintf(err, errlen, "a service named '%s' exists: delete it first", sv->cfg.name);
		ret = -EEXIST;
		goto err_free;
	}
	if (sv->cfg.via[0]) {
		struct proxy *px = proxy_find(sv->cfg.via);

		if (!px) {
			snprintf(err, errlen, "no proxy named '%s' to go via ('kproxyctl proxy show' "
				 "lists them)", sv->cfg.via);
			ret = -ENOENT;
			goto err_free;
		}
		if (px->cfg.listen.addr.ss_family != sv->cfg.vip.addr.ss_family ||
		    sv->cfg.vip.scheme != KP_URI_TCP) {
			snprintf(err, errlen, "proxy '%s' listens on another address family, or the "
				 "VIP is not TCP", sv->cfg.via);
			ret = -EINVAL;
			goto err_free;
		}
		sv->cfg.backends[0] = px->cfg.listen;
		sv->cfg.backends[0].scheme = KP_URI_TCP;
		sv->cfg.nbackends = 1;
	}
	svc_key(sv, &k);
	{
		struct kp_svc old;

		if (!bpf_map_lookup_elem(kp_svc_map_fd(kpd.svc, KP_MAP_SVC), &k, &old) &&
		    want_id < 0) {
			char b[KP_URI_MAX];

			kp_uri_format(sv->cfg.vip.scheme, (const struct sockaddr *)&sv->cfg.vip.addr,
				      b, sizeof(b));
			snprintf(err, errlen, "VIP %s belongs to another service already", b);
			ret = -EEXIST;
			goto err_free;
		}
	}
	cg = sv->cfg.cgroup[0] ? sv->cfg.cgroup : cgroup2_root();
	if (!cg) {
		snprintf(err, errlen, "no cgroup2 hierarchy at /sys/fs/cgroup: mount one with "
			 "'mount -t cgroup2 none /sys/fs/cgroup'");
		ret = -ENOENT;
		goto err_free;
	}
	snprintf(sv->cgroup_path, sizeof(sv->cgroup_path), "%s", cg);
	ret = kp_cgroup_id(cg, &sv->cgid, &sv->level);
	if (ret) {
		snprintf(err, errlen, "'%s' is not a cgroup2 directory: %s", cg, strerror(-ret));
		goto err_free;
	}
	if (want_id > 0 && want_id < KP_MAX_SERVICES && !ids_used[want_id]) {
		sv->id = want_id;
	} else {
		for (sv->id = 1; sv->id < KP_MAX_SERVICES && ids_used[sv->id]; sv->id++)
			;
		if (sv->id == KP_MAX_SERVICES) {
			snprintf(err, errlen, "at most %d services", KP_MAX_SERVICES - 1);
			ret = -ENOSPC;
			goto err_free;
		}
		kp_svc_stats_reset(kpd.svc, sv->id);
	}
	for (i = 0; i < KPD_MAX_BACKENDS; i++) {
		sv->healthy[i] = true;
		sv->probe[i] = -1;
	}
	ret = svc_sync(sv);
	if (ret) {
		snprintf(err, errlen, "cannot write the service maps: %s", strerror(-ret));
		goto err_free;
	}
	if (!cgroup_in_use(sv->cgid)) {
		ret = kp_svc_attach(kpd.svc, cg, sv->cgid);
		if (ret) {
			snprintf(err, errlen, "cannot attach the hooks to cgroup '%s': %s", cg,
				 strerror(-ret));
			bpf_map_delete_elem(kp_svc_map_fd(kpd.svc, KP_MAP_SVC), &k);
			goto err_free;
		}
	}
	for (i = 0; i < argc && i < KPD_SVC_MAX_ARGS; i++)
		sv->argv[i] = strdup(argv[i]);
	sv->argc = i;
	ids_used[sv->id] = 1;
	list_add_tail(&sv->node, &services);
	{
		char b[KP_URI_MAX];

		kp_uri_format(sv->cfg.vip.scheme, (const struct sockaddr *)&sv->cfg.vip.addr, b,
			      sizeof(b));
		kp_info("service %s: %s steered to %d backend(s) for cgroup %s", sv->cfg.name, b,
			sv->cfg.nbackends, cg);
	}
	return 0;
err_free:
	free(sv);
	return ret;
}

static void service_free(struct service *sv)
{
	struct kp_svc_key k;
	int i;

	list_del_init(&sv->node);
	svc_key(sv, &k);
	bpf_map_delete_elem(kp_svc_map_fd(kpd.svc, KP_MAP_SVC), &k);
	for (i = 0; i < KPD_MAX_BACKENDS; i++) {
		struct kp_svc_be_key bk = { .svc_id = sv->id, .idx = i };

		bpf_map_delete_elem(kp_svc_map_fd(kpd.svc, KP_MAP_SVC_BE), &bk);
		if (sv->probe[i] >= 0)
			close(sv->probe[i]);
		sv->probe[i] = -1;
	}
	if (!cgroup_in_use(sv->cgid))
		kp_svc_detach(kpd.svc, sv->cgid);
	ids_used[sv->id] = 0;
	for (i = 0; i < sv->argc; i++)
		free(sv->argv[i]);
	free(sv);
}

int service_del(const char *name, char *err, size_t errlen)
{
	struct service *sv = service_find(name);

	if (!sv) {
		snprintf(err, errlen, "no service named '%s' ('kproxyctl service show' lists them)",
			 name);
		return -ENOENT;
	}
	kp_info("service %s: deleted", name);
	service_free(sv);
	return 0;
}

/*
 * kproxyd stops: no steering without it (no health checks). A restart never
 * comes here (it execs first), so its services and hooks stay.
 */
void services_shutdown(void)
{
	while (!list_empty(&services))
		service_free(container_of(services.next, struct service, node));
}

/*
 * Health: look at the probes started last time (a connect that completed is
 * a live backend), then start the next ones. UDP backends are not checked.
 */
void services_check(void)
{
	struct list_head *p;
	__u64 now = now_ms();

	for (p = services.next; p != &services; p = p->next) {
		struct service *sv = container_of(p, struct service, node);
		bool changed = false;
		int i;

		if (!sv->cfg.check_ms || sv->cfg.vip.scheme != KP_URI_TCP || now < sv->next_check_ms)
			continue;
		sv->next_check_ms = now + sv->cfg.check_ms;
		for (i = 0; i < sv->cfg.nbackends; i++) {
			const struct kp_uri *u = &sv->cfg.backends[i];
			bool up = false;

			if (sv->probe[i] >= 0) {
				struct pollfd pf = { .fd = sv->probe[i], .events = POLLOUT };
				int e = 0;
				socklen_t l = sizeof(e);

				if (poll(&pf, 1, 0) == 1 && !getsockopt(sv->probe[i], SOL_SOCKET, SO_ERROR,
									&e, &l) && !e &&
				    !(pf.revents & (POLLERR | POLLHUP)))
					up = true;
				close(sv->probe[i]);
				sv->probe[i] = -1;
				if (up != sv->healthy[i]) {
					char b[KP_URI_MAX];

					kp_uri_format(u->scheme, (const struct sockaddr *)&u->addr, b,
						      sizeof(b));
					kp_info("service %s: backend %s is %s", sv->cfg.name, b,
						up ? "back" : "down: out of the selection");
					sv->healthy[i] = up;
					changed = true;
				}
			}
			sv->probe[i] = socket(u->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
					      SOCK_CLOEXEC, 0);
			if (sv->probe[i] >= 0 && connect(sv->probe[i], (const struct sockaddr *)&u->addr,
							 u->addrlen) && errno != EINPROGRESS) {
				/* Refused at once: keep the socket, its error says so next time. */
			}
		}
		if (changed)
			svc_sync(sv);
	}
}

__u64 services_next_check(void)
{
	struct list_head *p;
	__u64 next = 0;

	for (p = services.next; p != &services; p = p->next) {
		struct service *sv = container_of(p, struct service, node);

		if (sv->cfg.check_ms && sv->cfg.vip.scheme == KP_URI_TCP &&
		    (!next || sv->next_check_ms < next))
			next = sv->next_check_ms;
	}
	return next;
}

static json_object *uri_json(const struct kp_uri *u)
{
	char b[KP_URI_MAX];

	return json_object_new_string(kp_uri_format(u->scheme, (const struct sockaddr *)&u->addr,
						    b, sizeof(b)));
}

json_object *service_json(struct service *sv)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array(), *st;
	struct kp_svc_stats s;
	int i;

	json_object_object_add(o, "name", json_object_new_string(sv->cfg.name));
	json_object_object_add(o, "id", json_object_new_int(sv->id));
	json_object_object_add(o, "vip", uri_json(&sv->cfg.vip));
	for (i = 0; i < sv->cfg.nbackends; i++) {
		json_object *b = json_object_new_object();

		json_object_object_add(b, "uri", uri_json(&sv->cfg.backends[i]));
		json_object_object_add(b, "healthy", json_object_new_boolean(sv->healthy[i]));
		json_object_array_add(arr, b);
	}
	json_object_object_add(o, "backends", arr);
	if (sv->cfg.via[0])
		json_object_object_add(o, "via", json_object_new_string(sv->cfg.via));
	json_object_object_add(o, "cgroup", json_object_new_string(sv->cgroup_path));
	json_object_object_add(o, "cgroup_id", json_object_new_int64(sv->cgid));
	json_object_object_add(o, "check_interval", json_object_new_int(sv->cfg.check_ms));
	if (!kp_svc_stats(kpd.svc, sv->id, &s)) {
		st = json_object_new_object();
#define ST(f) json_object_object_add(st, #f, json_object_new_int64(s.f))
		ST(connects); ST(sendmsgs); ST(refused); ST(rev_peername); ST(rev_recvmsg);
		ST(outside);
#undef ST
		json_object_object_add(o, "stats", st);
	}
	return o;
}

json_object *services_json(const char *name, char *err, size_t errlen)
{
	json_object *o, *arr;
	struct list_head *p;

	if (name && !service_find(name)) {
		snprintf(err, errlen, "no service named '%s' ('kproxyctl service show' lists them)",
			 name);
		return NULL;
	}
	o = json_object_new_object();
	arr = json_object_new_array();
	for (p = services.next; p != &services; p = p->next) {
		struct service *sv = container_of(p, struct service, node);

		if (!name || !strcmp(name, sv->cfg.name))
			json_object_array_add(arr, service_json(sv));
	}
	json_object_object_add(o, "services", arr);
	return o;
}

/* For the handover to a restarted kproxyd: each service as the words that made it. */
json_object *services_handover_json(void)
{
	json_object *arr = json_object_new_array();
	struct list_head *p;
	int i;

	for (p = services.next; p != &services; p = p->next) {
		struct service *sv = container_of(p, struct service, node);
		json_object *o = json_object_new_object(), *a = json_object_new_array();

		for (i = 0; i < sv->argc; i++)
			json_object_array_add(a, json_object_new_string(sv->argv[i]));
		json_object_object_add(o, "argv", a);
		json_object_object_add(o, "id", json_object_new_int(sv->id));
		json_object_array_add(arr, o);
	}
	return arr;
}

/*
 * Load the hooks. Unless a restarted kproxyd takes over (@handover), what a
 * previous kproxyd left (it died without cleaning up) goes: its services and
 * the hooks it attached.
 */
int services_init(bool handover)
{
	struct kp_svc_key k, next;
	int fd;

	kpd.svc = kp_svc_open(kpd.pin_dir);
	if (!kpd.svc)
		return -errno;
	refuse_setup();
	if (handover)
		return 0;
	fd = kp_svc_map_fd(kpd.svc, KP_MAP_SVC);
	while (!bpf_map_get_next_key(fd, NULL, &next)) {
		k = next;
		if (bpf_map_delete_elem(fd, &k))
			break;
	}
	fd = kp_svc_map_fd(kpd.svc, KP_MAP_ACC_PORTS);
	{
		__u32 port;

		while (!bpf_map_get_next_key(fd, NULL, &port))
			if (bpf_map_delete_elem(fd, &port))
				break;
	}
	kp_svc_detach_all(kpd.svc);
	return 0;
}

void services_fini(void)
{
	kp_svc_close(kpd.svc);
	kpd.svc = NULL;
	if (refuse_fd[0] >= 0)
		close(refuse_fd[0]);
	if (refuse_fd[1] >= 0)
		close(refuse_fd[1]);
}

struct list_head *kpd_services(void)
{
	return &services;
}

/*
 * Local acceleration scopes:
 *   accel NAME [cgroup PATH] port N [port N ...]
 * TCP connections between two sockets of this host, both in the cgroup, with
 * either end on one of the ports, move their bytes with sk_msg instead of TCP.
 */
static struct list_head accels = { &accels, &accels };

struct accel {
	char name[KP_NAME_LEN];
	__u32 id;
	__u64 cgid;
	__u32 level;
	char cgroup_path[256];
	__u32 ports[KPD_MAX_BACKENDS];
	int nports;
	char *argv[KPD_SVC_MAX_ARGS];
	int argc;
	struct list_head node;
};

struct accel_parse {
	struct accel *a;
	char cgroup[256];
};

static struct accel *accel_find(const char *name)
{
	struct list_head *p;

	for (p = accels.next; p != &accels; p = p->next) {
		struct accel *a = container_of(p, struct accel, node);

		if (!strcmp(a->name, name))
			return a;
	}
	return NULL;
}

static int accel_word(void *obj, const char *kw, const char *arg, char *err, size_t errlen)
{
	struct accel_parse *ap = obj;
	unsigned long v;

	if (!strcmp(kw, "port")) {
		if (ap->a->nports == KPD_MAX_BACKENDS) {
			snprintf(err, errlen, "at most %d ports per accel", KPD_MAX_BACKENDS);
			return -E2BIG;
		}
		if (kpd_parse_num(kw, arg, 1, 65535, &v, err, errlen))
			return -EINVAL;
		ap->a->ports[ap->a->nports++] = v;
	} else if (!strcmp(kw, "cgroup")) {
		if (arg[0] != '/' || strlen(arg) >= sizeof(ap->cgroup)) {
			snprintf(err, errlen, "'cgroup' needs an absolute path of a cgroup2 directory");
			return -EINVAL;
		}
		snprintf(ap->cgroup, sizeof(ap->cgroup), "%s", arg);
	} else {
		snprintf(err, errlen, "unknown keyword '%s' (accel NAME [cgroup PATH] port N "
			 "[port N ...])", kw);
		return -EINVAL;
	}
	return 0;
}

static bool accel_cgroup_in_use(__u64 cgid)
{
	struct list_head *p;

	for (p = accels.next; p != &accels; p = p->next)
		if (container_of(p, struct accel, node)->cgid == cgid)
			return true;
	return false;
}

static void accel_free(struct accel *a)
{
	int fd = kp_svc_map_fd(kpd.svc, KP_MAP_ACC_PORTS), i;

	list_del_init(&a->node);
	for (i = 0; i < a->nports; i++)
		bpf_map_delete_elem(fd, &a->ports[i]);
	if (!accel_cgroup_in_use(a->cgid))
		kp_acc_detach(kpd.svc, a->cgid);
	for (i = 0; i < a->argc; i++)
		free(a->argv[i]);
	free(a);
}

int accel_add(int argc, char **argv, int want_id, char *err, size_t errlen)
{
	struct accel *a = calloc(1, sizeof(*a));
	struct accel_parse ap = { .a = a };
	int fd, i, ret;
	const char *cg;
	bool used[KP_MAX_ACCEL] = {};
	struct list_head *p;

	if (!a)
		return -ENOMEM;
	if (!kpd.svc) {
		snprintf(err, errlen, "local acceleration is not available: the BPF hooks did not load");
		ret = -EOPNOTSUPP;
		goto err;
	}
	ret = kpd_parse_words("accel", argc, argv, a->name, accel_word, &ap, err, errlen);
	if (ret)
		goto err;
	if (!a->nports) {
		snprintf(err, errlen, "an accel needs at least one 'port N' (the sidecar's or the "
			 "local backend's port)");
		ret = -EINVAL;
		goto err;
	}
	if (accel_find(a->name)) {
		snprintf(err, errlen, "an accel named '%s' exists: delete it first", a->name);
		ret = -EEXIST;
		goto err;
	}
	fd = kp_svc_map_fd(kpd.svc, KP_MAP_ACC_PORTS);
	for (i = 0; i < a->nports; i++) {
		__u32 id;

		if (!bpf_map_lookup_elem(fd, &a->ports[i], &id) && want_id < 0) {
			snprintf(err, errlen, "port %u is accelerated already (accel id %u)",
				 a->ports[i], id);
			ret = -EEXIST;
			goto err;
		}
	}
	cg = ap.cgroup[0] ? ap.cgroup : cgroup2_root();
	if (!cg) {
		snprintf(err, errlen, "no cgroup2 hierarchy at /sys/fs/cgroup");
		ret = -ENOENT;
		goto err;
	}
	snprintf(a->cgroup_path, sizeof(a->cgroup_path), "%s", cg);
	ret = kp_cgroup_id(cg, &a->cgid, &a->level);
	if (ret) {
		snprintf(err, errlen, "'%s' is not a cgroup2 directory: %s", cg, strerror(-ret));
		goto err;
	}
	for (p = accels.next; p != &accels; p = p->next)
		used[container_of(p, struct accel, node)->id] = true;
	if (want_id > 0 && want_id < KP_MAX_ACCEL && !used[want_id])
		a->id = want_id;
	else
		for (a->id = 1; a->id < KP_MAX_ACCEL && used[a->id]; a->id++)
			;
	if (a->id >= KP_MAX_ACCEL) {
		snprintf(err, errlen, "at most %d accels", KP_MAX_ACCEL - 1);
		ret = -ENOSPC;
		goto err;
	}
	if (want_id < 0)
		kp_acc_stats_reset(kpd.svc, a->id);
	if (!accel_cgroup_in_use(a->cgid)) {
		ret = kp_acc_attach(kpd.svc, cg, a->cgid);
		if (ret) {
			snprintf(err, errlen, "cannot attach sockops to cgroup '%s': %s", cg,
				 strerror(-ret));
			goto err;
		}
	}
	for (i = 0; i < a->nports; i++)
		bpf_map_update_elem(fd, &a->ports[i], &a->id, BPF_ANY);
	for (i = 0; i < argc && i < KPD_SVC_MAX_ARGS; i++)
		a->argv[i] = strdup(argv[i]);
	a->argc = i;
	list_add_tail(&a->node, &accels);
	kp_info("accel %s: local TCP connections on %d port(s) in cgroup %s go through sk_msg",
		a->name, a->nports, cg);
	return 0;
err:
	free(a);
	return ret;
}

int accel_del(const char *name, char *err, size_t errlen)
{
	struct accel *a = accel_find(name);

	if (!a) {
		snprintf(err, errlen, "no accel named '%s' ('kproxyctl accel show' lists them)", name);
		return -ENOENT;
	}
	kp_info("accel %s: deleted (connections accelerated already stay so)", name);
	accel_free(a);
	return 0;
}

void accels_shutdown(void)
{
	while (!list_empty(&accels))
		accel_free(container_of(accels.next, struct accel, node));
}

json_object *accels_json(const char *name, char *err, size_t errlen)
{
	json_object *o, *arr;
	struct list_head *p;
	int i;

	if (name && !accel_find(name)) {
		snprintf(err, errlen, "no accel named '%s' ('kproxyctl accel show' lists them)", name);
		return NULL;
	}
	o = json_object_new_object();
	arr = json_object_new_array();
	for (p = accels.next; p != &accels; p = p->next) {
		struct accel *a = container_of(p, struct accel, node);
		json_object *ao, *ports, *st;
		struct kp_acc_stats s;

		if (name && strcmp(name, a->name))
			continue;
		ao = json_object_new_object();
		ports = json_object_new_array();
		json_object_object_add(ao, "name", json_object_new_string(a->name));
		json_object_object_add(ao, "id", json_object_new_int(a->id));
		json_object_object_add(ao, "cgroup", json_object_new_string(a->cgroup_path));
		for (i = 0; i < a->nports; i++)
			json_object_array_add(ports, json_object_new_int(a->ports[i]));
		json_object_object_add(ao, "ports", ports);
		if (!kp_acc_stats(kpd.svc, a->id, &s)) {
			st = json_object_new_object();
#define ST(f) json_object_object_add(st, #f, json_object_new_int64(s.f))
			ST(socks); ST(bytes); ST(msgs); ST(no_peer); ST(tcp_first);
#undef ST
			json_object_object_add(ao, "stats", st);
		}
		json_object_array_add(arr, ao);
	}
	json_object_object_add(o, "accels", arr);
	return o;
}

json_object *accels_handover_json(void)
{
	json_object *arr = json_object_new_array();
	struct list_head *p;
	int i;

	for (p = accels.next; p != &accels; p = p->next) {
		struct accel *a = container_of(p, struct accel, node);
		json_object *o = json_object_new_object(), *w = json_object_new_array();

		for (i = 0; i < a->argc; i++)
			json_object_array_add(w, json_object_new_string(a->argv[i]));
		json_object_object_add(o, "argv", w);
		json_object_object_add(o, "id", json_object_new_int(a->id));
		json_object_array_add(arr, o);
	}
	return arr;
}

const char *accel_cgroup(__u32 id)
{
	struct list_head *p;

	for (p = accels.next; p != &accels; p = p->next) {
		struct accel *a = container_of(p, struct accel, node);

		if (a->id == id)
			return a->cgroup_path;
	}
	return NULL;
}

const char *accel_name(__u32 id)
{
	struct list_head *p;

	for (p = accels.next; p != &accels; p = p->next) {
		struct accel *a = container_of(p, struct accel, node);

		if (a->id == id)
			return a->name;
	}
	return NULL;
}

/* The words of an accel statement, checked without adding it (config files). */
int accel_check(int argc, char **argv, char *err, size_t errlen)
{
	struct accel a = {};
	struct accel_parse ap = { .a = &a };
	int ret = kpd_parse_words("accel", argc, argv, a.name, accel_word, &ap, err, errlen);

	if (!ret && !a.nports) {
		snprintf(err, errlen, "an accel needs at least one 'port N'");
		ret = -EINVAL;
	}
	return ret;
}

bool same_words(char *const *a, int na, char *const *b, int nb)
{
	int i;

	if (na != nb)
		return false;
	for (i = 0; i < na; i++)
		if (strcmp(a[i], b[i]))
			return false;
	return true;
}

const struct conf_obj *conf_find(const struct conf_obj *objs, int n, int kind, const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (objs[i].kind == kind && objs[i].argc && !strcmp(objs[i].argv[0], name))
			return &objs[i];
	return NULL;
}

void services_apply(const struct conf_obj *objs, int n, bool reload)
{
	struct list_head *p, *nx;
	char err[512];
	int i;

	if (reload) {
		for (p = services.next; p != &services; p = nx) {
			struct service *sv = container_of(p, struct service, node);
			const struct conf_obj *o = conf_find(objs, n, CONF_SERVICE, sv->cfg.name);

			nx = p->next;
			if (!o || !same_words(o->argv, o->argc, sv->argv, sv->argc))
				service_del(sv->cfg.name, err, sizeof(err));
		}
		for (p = accels.next; p != &accels; p = nx) {
			struct accel *a = container_of(p, struct accel, node);
			const struct conf_obj *o = conf_find(objs, n, CONF_ACCEL, a->name);

			nx = p->next;
			if (!o || !same_words(o->argv, o->argc, a->argv, a->argc))
				accel_del(a->name, err, sizeof(err));
		}
	}
	for (i = 0; i < n; i++) {
		const struct conf_obj *o = &objs[i];
		int ret;

		if (o->kind == CONF_MUX)
			continue;	/* muxes_apply() */
		if (o->kind == CONF_SERVICE) {
			if (service_find(o->argv[0]))
				continue;
			ret = service_add(o->argc, (char **)o->argv, -1, err, sizeof(err));
		} else {
			if (accel_find(o->argv[0]))
				continue;
			ret = accel_add(o->argc, (char **)o->argv, -1, err, sizeof(err));
		}
		if (ret)
			kp_warn("%s %s: %s", o->kind == CONF_SERVICE ? "service" : "accel", o->argv[0],
				err);
	}
}
