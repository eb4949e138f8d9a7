// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* kproxyd: options, logging, signals and the event loop. See kproxyd.h for the threading model. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <linux/capability.h>

#include "kproxyd.h"

struct kpd kpd;
static int verbose;
static bool use_syslog = true;

__u64 now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

int ep_set(int fd, struct ev_src *ev, __u32 *cur, __u32 want)
{
	struct epoll_event e = { .events = want, .data.ptr = ev };

	if (*cur & EP_REGISTERED) {
		if ((*cur & ~EP_REGISTERED) == want)
			return 0;
		if (epoll_ctl(kpd.epfd, EPOLL_CTL_MOD, fd, &e))
			return -errno;
	} else if (epoll_ctl(kpd.epfd, EPOLL_CTL_ADD, fd, &e)) {
		return -errno;
	}
	*cur = want | EP_REGISTERED;
	return 0;
}

static void fill_addr(struct kp_event *ev, const struct sockaddr_storage *ss, bool peer)
{
	__u16 port = kp_sockaddr_port((const struct sockaddr *)ss);

	kp_sockaddr_raw((const struct sockaddr *)ss, peer ? ev->peer_addr : ev->addr);
	if (peer) {
		ev->peer_family = ss->ss_family;
		ev->peer_port = port;
	} else {
		ev->family = ss->ss_family;
		ev->port = port;
	}
}

/* An event about a client that never became a connection (refused at accept). */
void emit_client_event(int type, struct proxy *px, const struct sockaddr_storage *ca, int err)
{
	struct kp_event ev = { .type = type, .err = err, .proxy_id = px->id };

	fill_addr(&ev, ca, false);
	fill_addr(&ev, &px->cfg.listen.addr, true);
	kp_dp_emit(kpd.dp, &ev);
}

void emit_event(int type, struct proxy *px, struct conn *c, int err)
{
	struct kp_event ev = { .type = type, .err = err };

	if (px)
		ev.proxy_id = px->id;
	if (c) {
		__u64 bytes[2];

		ev.conn_id = c->id;
		ev.cookie = c->s[0].cookie;
		fill_addr(&ev, &c->caddr, false);
		if (c->baddr.ss_family)
			fill_addr(&ev, &c->baddr, true);
		if (type == KP_EV_CONN_CLOSE) {
			conn_bytes(c, bytes);
			ev.a = bytes[0];
			ev.b = bytes[1];
		}
	} else if (px) {
		fill_addr(&ev, &px->cfg.listen.addr, false);
		if (type == KP_EV_PROXY_DEL) {
			/* Connections left to drain, not an error. */
			ev.a = (__u64)err;
			ev.err = 0;
		}
	}
	kp_dp_emit(kpd.dp, &ev);
}

static void print_fn(enum kp_log_level level, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_WARNING, LOG_INFO, LOG_DEBUG };
	va_list aq;

	if ((int)level > KP_LOG_INFO + verbose)
		return;
	va_copy(aq, ap);
	if (use_syslog)
		vsyslog(prio[level], fmt, aq);
	va_end(aq);
	fprintf(stderr, "kproxyd: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

/* Apply a config file: add what is new, replace what changed, delete what is gone. */
static int load_config(bool reload)
{
	struct proxy_cfg *cfgs;
	struct conf_obj *objs;
	char err[512];
	int n, nobj, i, ret;
	struct list_head *p, *nx;

	ret = config_load(kpd.conf_path, &cfgs, &n, &objs, &nobj, err, sizeof(err));
	if (ret) {
		kp_warn("%s%s", err, reload ? " (keeping the running configuration)" : "");
		return ret;
	}
	if (reload) {
		for (p = kpd.proxies.next; p != &kpd.proxies; p = nx) {
			struct proxy *px = container_of(p, struct proxy, node);
			bool keep = false;

			nx = p->next;
			if (px->deleted)
				continue;
			for (i = 0; i < n; i++)
				if (!strcmp(cfgs[i].name, px->cfg.name) &&
				    !memcmp(&cfgs[i], &px->cfg, sizeof(cfgs[i])))
					keep = true;
			if (!keep)
				proxy_del(px->cfg.name, err, sizeof(err));
		}
	}
	for (i = 0; i < n; i++) {
		if (reload && proxy_find(cfgs[i].name))
			continue;
		if (proxy_add(&cfgs[i], err, sizeof(err))) {
			kp_warn("%s", err);
			ret = -EINVAL;
		}
	}
	/* After the proxies: a service may go 'via' one of them. */
	services_apply(objs, nobj, reload);
	muxes_apply(objs, nobj, reload);
	free(cfgs);
	free(objs);
	return ret;
}

/*
 * What kproxyd needs: CAP_BPF and CAP_PERFMON (programs that read kernel
 * memory), CAP_NET_ADMIN (sockmap, cgroup hooks, SO_SNDBUFFORCE) and
 * CAP_SYS_ADMIN (BPF_PROG_TEST_RUN of its event program, bpffs). Names the
 * missing ones in @buf; returns how many.
 */
static int missing_caps(char *buf, size_t len)
{
	static const struct { int cap; const char *name; } need[] = {
		{ 39, "CAP_BPF" }, { 38, "CAP_PERFMON" }, { 12, "CAP_NET_ADMIN" },
		{ 21, "CAP_SYS_ADMIN" },
	};
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = {};
	size_t i, off = 0;
	int n = 0;

	buf[0] = '\0';
	if (syscall(SYS_capget, &h, d))
		return geteuid() != 0;
	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		int c = need[i].cap;

		if (d[c / 32].effective & (1U << (c % 32)))
			continue;
		off += snprintf(buf + off, off < len ? len - off : 0, " %s", need[i].name);
		n++;
	}
	return n;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: kproxyd [OPTIONS]\n"
		"  -c, --config FILE   proxies to run (default " KP_CONF_DEFAULT ")\n"
		"  -s, --socket PATH   control socket (default " KP_CTL_SOCK_DEFAULT ")\n"
		"  -P, --pin-dir DIR   BPF pin directory (default " KP_PIN_DIR_DEFAULT ")\n"
		"  -f, --foreground    log to stderr only, not to syslog\n"
		"  -v, --verbose       more messages (twice: libbpf's too)\n"
		"  -h, --help\n");
}

static void handle_signal(void)
{
	struct signalfd_siginfo si;

	while (read(kpd.sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			kp_info("SIGHUP: reloading %s", kpd.conf_path);
			load_config(true);
		} else if (si.ssi_signo == SIGUSR2) {
			kpd.restart = kpd.stop = true;
		} else {
			kpd.stop = true;
		}
	}
}

/* Connects wait for their deadline; relays and FINs that wait are looked at every millisecond. */
static int next_timeout(void)
{
	struct list_head *p;
	__u64 now = now_ms();
	int t = -1;

	for (p = kpd.ticks.next; p != &kpd.ticks; p = p->next) {
		struct conn *c = container_of(p, struct conn, tick);
		int d = 1;

		if (c->state == CONN_CONNECTING)
			d = c->deadline_ms > now ? (int)(c->deadline_ms - now) : 0;
		if (t < 0 || d < t)
			t = d;
		if (t <= 1)
			break;
	}
	if (t != 0 && t != 1) {
		__u64 next[2] = { services_next_check(), mux_next_wake() };
		int i;

		for (i = 0; i < 2; i++) {
			int d;

			if (!next[i])
				continue;
			d = next[i] > now ? (int)(next[i] - now) : 0;
			if (t < 0 || d < t)
				t = d;
		}
	}
	return t;
}

static void reap(void)
{
	while (!list_empty(&kpd.dead)) {
		struct list_head *p = kpd.dead.next;

		list_del_init(p);
		free(container_of(p, struct conn, node));
	}
	while (!list_empty(&kpd.dead_proxies)) {
		struct list_head *p = kpd.dead_proxies.next;

		list_del_init(p);
		free(container_of(p, struct proxy, node));
	}
}

static void shutdown_all(void)
{
	struct list_head *p, *q, *nx, *nq;

	for (p = kpd.proxies.next; p != &kpd.proxies; p = nx) {
		struct proxy *px = container_of(p, struct proxy, node);

		nx = p->next;
		if (px->lfd >= 0)
			close(px->lfd);
		px->lfd = -1;
		px->deleted = true;
		for (q = px->conns.next; q != &px->conns; q = nq) {
			nq = q->next;
			conn_abort(container_of(q, struct conn, node), false);
		}
		proxy_maybe_free(px);
	}
	reap();
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "pin-dir", required_argument, NULL, 'P' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct kp_dp_opts dopts = {};
	struct epoll_event evs[256];
	struct rlimit rl = { 1 << 20, 1 << 20 };
	sigset_t mask;
	char capbuf[128];
	__u32 dummy = 0;
	int o, n, i, ret = 3;	/* 3: could not set up (BPF, control socket, config) */

	kpd.conf_path = KP_CONF_DEFAULT;
	kpd.ctl_path = KP_CTL_SOCK_DEFAULT;
	kpd.pin_dir = KP_PIN_DIR_DEFAULT;
	while ((o = getopt_long(argc, argv, "c:s:P:fvh", opts, NULL)) != -1) {
		switch (o) {
		case 'c': kpd.conf_path = optarg; break;
		case 's': kpd.ctl_path = optarg; break;
		case 'P': kpd.pin_dir = optarg; break;
		case 'f': use_syslog = false; break;
		case 'v': verbose++; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (use_syslog)
		openlog("kproxyd", LOG_PID, LOG_DAEMON);
	kp_set_print(print_fn);
	if (missing_caps(capbuf, sizeof(capbuf))) {
		kp_warn("kproxyd changes the kernel's dataplane: run it as root, or give it CAP_BPF, "
			"CAP_PERFMON, CAP_NET_ADMIN and CAP_SYS_ADMIN (missing:%s)", capbuf);
		return 4;
	}
	if (setrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max = 65536;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	LIST_INIT(&kpd.proxies);
	LIST_INIT(&kpd.ticks);
	LIST_INIT(&kpd.dead);
	LIST_INIT(&kpd.dead_proxies);
	kpd.epfd = epoll_create1(EPOLL_CLOEXEC);

	dopts.pin_dir = kpd.pin_dir;
	kpd.dp = kp_dp_open(&dopts);
	if (!kpd.dp)
		return 3;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	kpd.sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	kpd.sig_ev.type = EV_SIGNAL;
	ep_set(kpd.sig_fd, &kpd.sig_ev, &dummy, EPOLLIN);

	if (ctl_open(kpd.ctl_path))
		goto out;
	if (services_init(getenv(HANDOVER_ENV) != NULL))
		kp_warn("services are not available on this kernel; proxies work without them");
	n = handover_restore();
	if (n < 0)
		goto out_ctl;
	if (!n && (access(kpd.conf_path, F_OK) == 0 || strcmp(kpd.conf_path, KP_CONF_DEFAULT))) {
		if (load_config(false))
			goto out_ctl;
	}
	if (ctl_publish(kpd.ctl_path))
		goto out_ctl;
	kp_info("ready: control socket %s, maps pinned in %s", kpd.ctl_path, kpd.pin_dir);

	while (!kpd.stop) {
		int timeout = next_timeout();

		n = epoll_wait(kpd.epfd, evs, 256, timeout);
		if (n < 0 && errno != EINTR) {
			kp_warn("epoll_wait: %s", strerror(errno));
			break;
		}
		for (i = 0; i < n; i++) {
			struct ev_src *src = evs[i].data.ptr;

			switch (src->type) {
			case 0:
				break;	/* a deleted proxy's listener */
			case EV_LISTENER:
				proxy_accept(container_of(src, struct proxy, ev));
				break;
			case EV_SIDE:
				conn_event(container_of(src, struct side, ev), evs[i].events);
				/* The connection may be gone: later events in this batch for it are stale. */
				break;
			case EV_CTL_LISTEN:
				ctl_accept();
				break;
			case EV_SIGNAL:
				handle_signal();
				break;
			case EV_TLS_AGENT:
				tls_agent_event();
				break;
			case EV_MUX:
				mux_event(src, evs[i].events);
				break;
			}
		}
		if (!list_empty(&kpd.ticks)) {
			struct list_head *p, *nx;
			struct list_head done;

			/* conn_tick() may free the connection or re-add it: walk a detached list. */
			LIST_INIT(&done);
			if (!list_empty(&kpd.ticks)) {
				done.next = kpd.ticks.next;
				done.prev = kpd.ticks.prev;
				done.next->prev = &done;
				done.prev->next = &done;
				LIST_INIT(&kpd.ticks);
			}
			for (p = done.next; p != &done; p = nx) {
				struct conn *c = container_of(p, struct conn, tick);

				nx = p->next;
				list_del_init(p);
				c->ticking = false;
				conn_tick(c);
			}
		}
		services_check();
		mux_tick();
		reap();
	}
	ret = 0;
	if (kpd.restart) {
		/* The signal mask survives execve(): the new process expects it blocked. */
		handover_exec(argv);
		ret = 1;
	}
	kp_info("stopping: closing %s", "connections and listeners, removing services' hooks");
	shutdown_all();
	muxes_shutdown();
	tls_shutdown();
	services_shutdown();
	accels_shutdown();
out_ctl:
	ctl_close();
out:
	services_fini();
	kp_dp_close(kpd.dp);
	return ret;
}
