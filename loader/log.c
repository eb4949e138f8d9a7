// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdio.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "log.h"

static void default_print(enum kp_log_level level, const char *fmt, va_list ap)
{
	if (level > KP_LOG_INFO)
		return;
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static kp_print_fn print_fn = default_print;

void kp_log(enum kp_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	print_fn(level, fmt, ap);
	va_end(ap);
}

/*
 * libbpf's messages go one level quieter than ours: its warnings are our info.
 * They start with "libbpf: " already, and a verifier log comes as one long
 * message: print it line by line, whole.
 */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum kp_log_level l = level == LIBBPF_WARN ? KP_LOG_INFO : KP_LOG_DEBUG;
	static char buf[1 << 16];
	char *line, *save = NULL;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		kp_log(l, "%s%s", strncmp(line, "libbpf: ", 8) ? "libbpf: " : "", line);
	return 0;
}

void kp_set_print(kp_print_fn fn)
{
	print_fn = fn ? fn : default_print;
	libbpf_set_print(libbpf_print);
}
