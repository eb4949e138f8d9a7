// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* What the running kernel can do, probed the way libbpf and the kernel's own tools do it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/tls.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "libkproxy.h"

#ifndef AF_KCM
#define AF_KCM 41
#endif
#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef IPPROTO_QUIC
#define IPPROTO_QUIC 261
#endif

static const struct {
	const char *name;
	const char *enables;
} feat_desc[KP_FEAT_MAX] = {
	[KP_FEAT_SOCKMAP] = { "sockmap", "socket maps (all sockmap features)" },
	[KP_FEAT_SOCKHASH] = { "sockhash", "the in-kernel proxy (kp_socks)" },
	[KP_FEAT_SK_SKB] = { "sk_skb", "in-kernel proxying and message parsing (stream verdict/parser)" },
	[KP_FEAT_SK_MSG] = { "sk_msg", "local acceleration of sendmsg between local sockets" },
	[KP_FEAT_SOCKOPS] = { "sockops", "finding local connections to accelerate" },
	[KP_FEAT_CGROUP_SOCK_ADDR] = { "cgroup_sock_addr", "steering unmodified applications (services)" },
	[KP_FEAT_XDP] = { "xdp", "packet-level fast paths (QUIC without kernel QUIC)" },
	[KP_FEAT_RINGBUF] = { "ringbuf", "events and 'kproxyctl monitor'" },
	[KP_FEAT_SYSCALL_PROG] = { "syscall_prog", "kproxyd's own events in the ring buffer" },
	[KP_FEAT_KTLS] = { "ktls", "TLS termination and origination (tls:// URIs)" },
	[KP_FEAT_KTLS_SOCKMAP] = { "ktls_sockmap", "TLS plaintext through sockmap and BPF (else kproxyd splices it)" },
	[KP_FEAT_KCM] = { "af_kcm", "the AF_KCM comparison in the mux benchmark" },
	[KP_FEAT_QUIC] = { "ipproto_quic", "kernel QUIC sockets" },
	[KP_FEAT_BPF_CRYPTO] = { "bpf_crypto", "crypto in BPF (QUIC header protection on XDP/TC)" },
};

static void set(struct kp_feature_info *fi, bool ok, const char *why)
{
	fi->present = ok;
	if (!ok && why)
		snprintf(fi->detail, sizeof(fi->detail), "%s", why);
}

static void probe_prog(struct kp_feature_info *fi, enum bpf_prog_type t)
{
	int r = libbpf_probe_bpf_prog_type(t, NULL);

	set(fi, r == 1, r == -EPERM ? "probing needs root or CAP_BPF" :
		       "this kernel does not have this BPF program type");
}

static void probe_map(struct kp_feature_info *fi, enum bpf_map_type t)
{
	int r = libbpf_probe_bpf_map_type(t, NULL);

	set(fi, r == 1, r == -EPERM ? "probing needs root or CAP_BPF" :
		       "this kernel does not have this BPF map type");
}

/* An established loopback pair in @fd[0] (client) and @fd[1] (accepted); 0 or -errno. */
static int loopback_pair(int fd[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int l, err = 0;

	fd[0] = fd[1] = -1;
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	fd[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || fd[0] < 0 || bind(l, (void *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (void *)&a, &alen) || connect(fd[0], (void *)&a, sizeof(a)) ||
	    (fd[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0) {
		err = -errno;
		if (fd[0] >= 0)
			close(fd[0]);
		fd[0] = -1;
	}
	if (l >= 0)
		close(l);
	return err;
}

static void close_pair(int fd[2])
{
	if (fd[0] >= 0)
		close(fd[0]);
	if (fd[1] >= 0)
		close(fd[1]);
}

/* kTLS: set the "tls" ULP on a real established loopback connection (autoloads the module). */
static void probe_ktls(struct kp_feature_info *fi)
{
	int fd[2], err = 0;

	if (loopback_pair(fd)) {
		set(fi, false, "could not make a loopback connection to probe with");
		return;
	}
	if (setsockopt(fd[0], IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")))
		err = errno;
	set(fi, !err, err == ENOENT ? "this kernel has no kTLS (CONFIG_TLS is not built in and "
		      "the tls module is not loaded)" : "setting the 'tls' TCP ULP failed");
	close_pair(fd);
}

/*
 * kTLS on a socket that is in a sockmap. Stable kernels since mid 2026 refuse
 * it ("tls: reject the combination of TLS and sockmap", CVE-2026-93824): the
 * TLS_TX/TLS_RX setsockopt fails with EINVAL when the socket has a psock, and
 * sockmap refuses sockets with a ULP. Probed with a throwaway key.
 */
static void probe_ktls_sockmap(struct kp_feature_info *fi, bool ktls)
{
	struct tls12_crypto_info_aes_gcm_128 ci = {
		.info = { .version = TLS_1_3_VERSION, .cipher_type = TLS_CIPHER_AES_GCM_128 },
	};
	int fd[2] = { -1, -1 }, map, err = 0;
	__u32 key = 0;
	__u64 val;

	if (!ktls) {
		set(fi, false, "needs kTLS");
		return;
	}
	map = bpf_map_create(BPF_MAP_TYPE_SOCKMAP, "kp_probe", sizeof(__u32), sizeof(__u64), 1, NULL);
	if (map < 0) {
		set(fi, false, errno == EPERM ? "probing needs root or CAP_BPF" :
			       "could not create a sockmap to probe with");
		return;
	}
	if (loopback_pair(fd)) {
		set(fi, false, "could not make a loopback connection to probe with");
		goto out;
	}
	val = fd[0];
	if (bpf_map_update_elem(map, &key, &val, BPF_ANY) ||
	    setsockopt(fd[0], IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) ||
	    setsockopt(fd[0], SOL_TLS, TLS_TX, &ci, sizeof(ci)))
		err = errno;
	set(fi, !err, "this kernel refuses kTLS on a socket in a sockmap (CVE-2026-93824 fix): "
		      "kproxyd moves TLS plaintext with splice instead");
out:
	close_pair(fd);
	close(map);
}

static void probe_socket(struct kp_feature_info *fi, int domain, int type, int proto,
			 const char *why)
{
	int fd = socket(domain, type | SOCK_CLOEXEC, proto);

	set(fi, fd >= 0, why);
	if (fd >= 0)
		close(fd);
}

static void probe_kfunc(struct kp_feature_info *fi, const char *name, const char *why)
{
	struct btf *btf = btf__load_vmlinux_btf();

	set(fi, btf && btf__find_by_name_kind(btf, name, BTF_KIND_FUNC) > 0, why);
	btf__free(btf);
}

int kp_probe_features(struct kp_feature_info info[KP_FEAT_MAX])
{
	int i;

	for (i = 0; i < KP_FEAT_MAX; i++) {
		memset(&info[i], 0, sizeof(info[i]));
		info[i].name = feat_desc[i].name;
		info[i].enables = feat_desc[i].enables;
	}
	probe_map(&info[KP_FEAT_SOCKMAP], BPF_MAP_TYPE_SOCKMAP);
	probe_map(&info[KP_FEAT_SOCKHASH], BPF_MAP_TYPE_SOCKHASH);
	probe_prog(&info[KP_FEAT_SK_SKB], BPF_PROG_TYPE_SK_SKB);
	probe_prog(&info[KP_FEAT_SK_MSG], BPF_PROG_TYPE_SK_MSG);
	probe_prog(&info[KP_FEAT_SOCKOPS], BPF_PROG_TYPE_SOCK_OPS);
	probe_prog(&info[KP_FEAT_CGROUP_SOCK_ADDR], BPF_PROG_TYPE_CGROUP_SOCK_ADDR);
	probe_prog(&info[KP_FEAT_XDP], BPF_PROG_TYPE_XDP);
	probe_map(&info[KP_FEAT_RINGBUF], BPF_MAP_TYPE_RINGBUF);
	probe_prog(&info[KP_FEAT_SYSCALL_PROG], BPF_PROG_TYPE_SYSCALL);
	probe_ktls(&info[KP_FEAT_KTLS]);
	probe_ktls_sockmap(&info[KP_FEAT_KTLS_SOCKMAP], info[KP_FEAT_KTLS].present);
	probe_socket(&info[KP_FEAT_KCM], AF_KCM, SOCK_DGRAM, 0,
		     "this kernel has no AF_KCM (CONFIG_AF_KCM)");
	probe_socket(&info[KP_FEAT_QUIC], AF_INET, SOCK_STREAM, IPPROTO_QUIC,
		     "this kernel has no IPPROTO_QUIC sockets");
	probe_kfunc(&info[KP_FEAT_BPF_CRYPTO], "bpf_crypto_ctx_create",
		    "this kernel has no bpf_crypto kfuncs (added in 6.10)");
	return 0;
}
