// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * 'kproxyctl sockets': every socket the service hooks steered (the socket
 * offload seed's /proc view), from kp_svc_socks, with the bytes of TCP
 * sockets from sock_diag (matched by socket cookie). UDP sockets have no
 * byte counts in sock_diag; they show none rather than a guess.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/inet_diag.h>
#include <linux/tcp.h>
#include <bpf/bpf.h>

#include "kproxyd.h"

struct tcp_bytes {
	__u64 cookie;
	__u64 acked, received;
	char local[KP_URI_MAX];
};

struct diag {
	struct tcp_bytes *v;
	size_t n, cap;
};

static void diag_add(struct diag *d, const struct inet_diag_msg *m, int len)
{
	struct rtattr *a = (struct rtattr *)(m + 1);
	int rem = len - NLMSG_ALIGN(sizeof(*m));
	struct tcp_bytes *t;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 256;
		struct tcp_bytes *v = realloc(d->v, cap * sizeof(*v));

		if (!v)
			return;
		d->v = v;
		d->cap = cap;
	}
	t = &d->v[d->n++];
	memset(t, 0, sizeof(*t));
	t->cookie = (__u64)m->id.idiag_cookie[0] | (__u64)m->id.idiag_cookie[1] << 32;
	kp_uri_format_raw(KP_URI_TCP, m->idiag_family, m->id.idiag_src, ntohs(m->id.idiag_sport),
			  t->local, sizeof(t->local));
	for (; RTA_OK(a, rem); a = RTA_NEXT(a, rem)) {
		if (a->rta_type == INET_DIAG_INFO) {
			struct tcp_info ti = {};

			memcpy(&ti, RTA_DATA(a), (size_t)RTA_PAYLOAD(a) < sizeof(ti) ? (size_t)RTA_PAYLOAD(a) : sizeof(ti));
			t->acked = ti.tcpi_bytes_acked;
			t->received = ti.tcpi_bytes_received;
		}
	}
}

/* Every TCP socket of this network namespace, with tcp_info. */
static int diag_dump(int family, struct diag *d)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.r = { .sdiag_family = family, .sdiag_protocol = IPPROTO_TCP,
		       .idiag_ext = 1 << (INET_DIAG_INFO - 1), .idiag_states = ~0U },
	};
	static char buf[65536];
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG), ret = 0;

	if (fd < 0)
		return -errno;
	if (send(fd, &req, sizeof(req), 0) < 0) {
		ret = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h = (struct nlmsghdr *)buf;

		if (n <= 0) {
			ret = n < 0 ? -errno : 0;
			goto out;
		}
		for (; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				goto out;
			if (h->nlmsg_type == NLMSG_ERROR) {
				ret = -EIO;
				goto out;
			}
			diag_add(d, NLMSG_DATA(h), h->nlmsg_len - NLMSG_HDRLEN);
		}
	}
out:
	close(fd);
	return ret;
}

/* A URI for a raw address and a port in host order, as a JSON string. */
static json_object *raw_uri(int scheme, int family, const void *addr, unsigned int port)
{
	char b[KP_URI_MAX];

	return json_object_new_string(kp_uri_format_raw(scheme, family, addr, port, b, sizeof(b)));
}

static const char *svc_name(__u32 id, const char **cgroup, __u64 cgid)
{
	struct list_head *p;

	*cgroup = NULL;
	for (p = kpd_services()->next; p != kpd_services(); p = p->next) {
		struct service *sv = container_of(p, struct service, node);

		if (sv->cgid == cgid)
			*cgroup = sv->cgroup_path;
		if (sv->id == id)
			return sv->cfg.name;
	}
	return NULL;
}

/* Accelerated sockets: bytes are what sk_msg moved (TCP's counters do not see them). */
static void accel_sockets(json_object *arr)
{
	int fd = kp_svc_map_fd(kpd.svc, KP_MAP_ACC_INFO);
	struct kp_acc_key key, next, *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		struct kp_acc_sock a;
		json_object *s;
		const char *n, *cg;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &a))
			continue;
		s = json_object_new_object();
		json_object_object_add(s, "cookie", json_object_new_int64(a.cookie));
		n = accel_name(a.accel_id);
		json_object_object_add(s, "accel", json_object_new_string(n ? n : "?"));
		json_object_object_add(s, "mode", json_object_new_string("accelerated"));
		json_object_object_add(s, "local", raw_uri(KP_URI_TCP, key.family, key.local,
							    key.lport));
		json_object_object_add(s, "peer", raw_uri(KP_URI_TCP, key.family, key.remote,
							   key.rport));
		json_object_object_add(s, "bytes_sent", json_object_new_int64(a.bytes));
		json_object_object_add(s, "msgs", json_object_new_int64(a.msgs));
		json_object_object_add(s, "tcp_msgs", json_object_new_int64(a.tcp_msgs));
		cg = accel_cgroup(a.accel_id);
		if (cg)
			json_object_object_add(s, "cgroup", json_object_new_string(cg));
		json_object_array_add(arr, s);
	}
}

json_object *sockets_json(char *err, size_t errlen)
{
	json_object *o, *arr;
	struct diag d = {};
	__u64 key, next, *prev = NULL;
	int fd;

	if (!kpd.svc) {
		snprintf(err, errlen, "services are not available: the cgroup hooks did not load");
		return NULL;
	}
	fd = kp_svc_map_fd(kpd.svc, KP_MAP_SVC_SOCKS);
	diag_dump(AF_INET, &d);
	diag_dump(AF_INET6, &d);
	o = json_object_new_object();
	arr = json_object_new_array();
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		struct kp_svc_sock ss;
		json_object *s;
		const char *name, *cg;
		int scheme;
		size_t i;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &ss))
			continue;
		scheme = ss.proto == IPPROTO_UDP ? KP_URI_UDP : KP_URI_TCP;
		s = json_object_new_object();
		json_object_object_add(s, "cookie", json_object_new_int64(key));
		name = svc_name(ss.svc_id, &cg, ss.cgroup_id);
		json_object_object_add(s, "service", json_object_new_string(name ? name : "?"));
		json_object_object_add(s, "mode", json_object_new_string(
			ss.mode == KP_SOCK_STEERED ? "steered" : "unknown"));
		json_object_object_add(s, "vip", raw_uri(scheme, ss.family, ss.vip.addr,
							  ntohs(ss.vip.port)));
		json_object_object_add(s, "backend", raw_uri(scheme, ss.be.family, ss.be.addr,
							      ntohs(ss.be.port)));
		json_object_object_add(s, "cgroup_id", json_object_new_int64(ss.cgroup_id));
		if (cg)
			json_object_object_add(s, "cgroup", json_object_new_string(cg));
		for (i = 0; scheme == KP_URI_TCP && i < d.n; i++) {
			if (d.v[i].cookie != key)
				continue;
			json_object_object_add(s, "local", json_object_new_string(d.v[i].local));
			json_object_object_add(s, "bytes_sent", json_object_new_int64(d.v[i].acked));
			json_object_object_add(s, "bytes_received",
					       json_object_new_int64(d.v[i].received));
			break;
		}
		json_object_array_add(arr, s);
	}
	free(d.v);
	accel_sockets(arr);
	json_object_object_add(o, "sockets", arr);
	return o;
}
