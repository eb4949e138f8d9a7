// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Sockets: the listener, many connects in parallel, the open-file limit. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "kpperf.h"

/*
 * Connects in flight at once. Past the listener's backlog, SYNs are dropped
 * and retried a second later, which would show up as a fake latency tail.
 */
#define CONNECT_WINDOW	256

/*
 * Raise the soft open-file limit to the hard one (and the hard one too when
 * we may), so 500+ connections on each side of a loopback test fit.
 */
void kp_raise_nofile(int want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)want) {
		struct rlimit up = { want, want };

		if (!setrlimit(RLIMIT_NOFILE, &up))
			return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int kp_sock_error(int fd)
{
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
		return errno;
	return err;
}

static void say_in_use(const struct kp_opts *o, const struct sockaddr *sa)
{
	kp_err(o, "port %d is already in use (%s): stop the other listener or pick another port",
	       kp_sockaddr_port(sa), o->uri_str);
}

int kp_listen(const struct kp_opts *o, int *fdp)
{
	const struct sockaddr *sa = (const struct sockaddr *)&o->uri.addr;
	int fd, one = 1, err;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		kp_err(o, "cannot create a socket for %s: %s", o->uri_str, strerror(-err));
		return err;
	}
	/* lets a restarted server reuse a port in TIME_WAIT; never a port with a listener */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, sa, o->uri.addrlen)) {
		err = -errno;
		if (err == -EADDRINUSE)
			say_in_use(o, sa);
		else if (err == -EACCES)
			kp_err(o, "no permission to bind %s: ports below 1024 need CAP_NET_BIND_SERVICE",
			       o->uri_str);
		else if (err == -EADDRNOTAVAIL)
			kp_err(o, "cannot bind %s: the address does not belong to this machine",
			       o->uri_str);
		else
			kp_err(o, "cannot bind %s: %s", o->uri_str, strerror(-err));
		goto err_close;
	}
	if (listen(fd, SOMAXCONN)) {
		err = -errno;
		if (err == -EADDRINUSE)
			say_in_use(o, sa);
		else
			kp_err(o, "cannot listen on %s: %s", o->uri_str, strerror(-err));
		goto err_close;
	}
	*fdp = fd;
	return 0;

err_close:
	close(fd);
	return err;
}

static int start_connect(const struct kp_opts *o, int *fdp, bool nodelay)
{
	const struct sockaddr *sa = (const struct sockaddr *)&o->uri.addr;
	int fd, one = 1;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (nodelay)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*fdp = fd;
	if (connect(fd, sa, o->uri.addrlen) && errno != EINPROGRESS)
		return errno;	/* the connection failed, not the socket: positive */
	return 0;
}

/*
 * Open @n non-blocking connections to o->uri, at most CONNECT_WINDOW at a
 * time, each allowed o->connect_timeout_ms. On return fds[i] is a connected
 * socket and errs[i] 0, or fds[i] is -1 and errs[i] the errno that ended the
 * attempt (ETIMEDOUT after the timeout). Returns 0, or -errno when kpperf
 * itself could not make sockets (then it has said why).
 */
int kp_connect_all(const struct kp_opts *o, int n, int *fds, int *errs, bool nodelay)
{
	struct epoll_event evs[64];
	uint64_t *started = NULL;
	int ep, i, lo = 0, next = 0, pending = 0, done = 0, err = 0;

	ep = epoll_create1(EPOLL_CLOEXEC);
	started = calloc(n, sizeof(*started));
	if (ep < 0 || !started) {
		err = -errno;
		kp_err(o, "cannot set up %d connections: %s", n, strerror(-err));
		goto out;
	}
	for (i = 0; i < n; i++) {
		fds[i] = -1;
		errs[i] = 0;
	}
	while (done < n) {
		uint64_t now = kp_now_ns(), wait_ns = UINT64_MAX;
		int k, ret;

		while (next < n && pending < CONNECT_WINDOW) {
			struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = next };

			ret = start_connect(o, &fds[next], nodelay);
			if (ret < 0) {
				err = ret;
				if (err == -EMFILE || err == -ENFILE)
					kp_err(o, "cannot open %d connections: too many open files (raise ulimit -n)",
					       n);
				else
					kp_err(o, "cannot create a socket for %s: %s", o->uri_str,
					       strerror(-err));
				goto out;
			}
			if (ret > 0) {
				errs[next] = ret;
				close(fds[next]);
				fds[next] = -1;
				done++;
			} else if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[next], &ev)) {
				err = -errno;
				kp_err(o, "epoll: %s", strerror(-err));
				goto out;
			} else {
				started[next] = now;
				pending++;
			}
			next++;
		}
		if (!pending)
			continue;
		/*
		 * The oldest pending connect sets the wait; expire every one that
		 * is due. Connects start in index order, so begin at the oldest.
		 */
		while (lo < next && !started[lo])
			lo++;
		for (i = lo; i < next; i++) {
			uint64_t deadline;

			if (!started[i])
				continue;
			deadline = started[i] + (uint64_t)o->connect_timeout_ms * 1000000;
			if (deadline <= now) {
				errs[i] = ETIMEDOUT;
				close(fds[i]);
				fds[i] = -1;
				started[i] = 0;
				pending--;
				done++;
			} else if (deadline - now < wait_ns) {
				wait_ns = deadline - now;
			}
		}
		if (!pending)
			continue;
		ret = epoll_wait(ep, evs, 64, (int)((wait_ns + 999999) / 1000000));
		if (ret < 0 && errno != EINTR) {
			err = -errno;
			kp_err(o, "epoll: %s", strerror(-err));
			goto out;
		}
		for (k = 0; k < ret; k++) {
			i = evs[k].data.u32;
			epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
			errs[i] = kp_sock_error(fds[i]);
			if (errs[i]) {
				close(fds[i]);
				fds[i] = -1;
			}
			started[i] = 0;
			pending--;
			done++;
		}
	}
out:
	if (err) {
		for (i = 0; i < n; i++)
			if (fds[i] >= 0) {
				close(fds[i]);
				fds[i] = -1;
			}
	}
	free(started);
	if (ep >= 0)
		close(ep);
	return err;
}

/*
 * For commands that need every connection: say why the first one failed.
 * Returns 0 when all connected, else -errno of the first failure.
 */
int kp_connect_report(const struct kp_opts *o, int n, const int *errs)
{
	int i, failed = 0, first = -1;

	for (i = 0; i < n; i++) {
		if (!errs[i])
			continue;
		if (first < 0)
			first = i;
		failed++;
	}
	if (first < 0)
		return 0;
	if (errs[first] == ETIMEDOUT)
		kp_err(o, "cannot connect to %s: no answer within %d ms%s", o->uri_str,
		       o->connect_timeout_ms,
		       failed > 1 ? " (and other connections failed too)" : "");
	else if (failed > 1)
		kp_err(o, "cannot connect to %s: %s (%d of %d connections failed)", o->uri_str,
		       strerror(errs[first]), failed, n);
	else
		kp_err(o, "cannot connect to %s: %s", o->uri_str, strerror(errs[first]));
	return -errs[first];
}

/*
 * Make epoll watch @events on @fd (data @ptr) if it does not already: *@cur
 * is what it watches now. Returns 0 or -errno.
 */
int kp_epoll_watch(int ep, int fd, void *ptr, uint32_t *cur, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };

	if (*cur == events)
		return 0;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev))
		return -errno;
	*cur = events;
	return 0;
}
