// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * kptlsd's log: standard error (kproxyd's, so its log has both), and syslog
 * with LOG_PID when asked. gnutls' own messages come here too at -vv, at
 * gnutls level 2 at most: higher levels can print secrets.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "kptlsd.h"

static int log_verbose;
static bool log_syslog;

static void gnutls_log(int level, const char *msg)
{
	size_t n = strlen(msg);

	/* gnutls ends its messages with a newline; ours get one added. */
	kpt_log(KPT_DEBUG, "gnutls[%d]: %.*s", level, (int)(n && msg[n - 1] == '\n' ? n - 1 : n),
		msg);
}

void kpt_log_init(int verbose, bool use_syslog)
{
	log_verbose = verbose;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog("kptlsd", LOG_PID, LOG_DAEMON);
	if (verbose > 1) {
		gnutls_global_set_log_function(gnutls_log);
		gnutls_global_set_log_level(2);
	}
}

void kpt_log(enum kpt_log_level level, const char *fmt, ...)
{
	static const int prio[] = { LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char buf[1024];
	va_list ap;

	if ((int)level > KPT_INFO + log_verbose)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (log_syslog)
		syslog(prio[level], "%s", buf);
	fprintf(stderr, "kptlsd[%d]: %s\n", (int)getpid(), buf);
}
