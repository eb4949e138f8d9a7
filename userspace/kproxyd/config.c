// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * One grammar for the config file and for 'kproxyctl proxy add':
 *   proxy NAME listen URI backend URI [backend URI ...] [balance rr|hash]
 *         [max_conns N] [connect_timeout MS] [backlog BYTES] [sndbuf BYTES] [rcvbuf BYTES]
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kproxyd.h"

static int parse_num(const char *kw, const char *s, unsigned long min, unsigned long max,
		     unsigned long *out, char *err, size_t errlen)
{
	char *end;

	errno = 0;
	*out = s ? strtoul(s, &end, 10) : 0;
	if (!s || !*s || *end || errno || *out < min || *out > max) {
		snprintf(err, errlen, "'%s' needs a number from %lu to %lu, not '%s'", kw, min, max,
			 s ? s : "");
		return -EINVAL;
	}
	return 0;
}

static bool name_ok(const char *n)
{
	size_t i, l = strlen(n);

	if (!l || l >= KP_NAME_LEN)
		return false;
	for (i = 0; i < l; i++)
		if (!isalnum((unsigned char)n[i]) && n[i] != '-' && n[i] != '_' && n[i] != '.')
			return false;
	return true;
}

/* argv starts after "proxy add" / "proxy": NAME listen URI ... */
int proxy_cfg_parse(int argc, char **argv, struct proxy_cfg *cfg, char *err, size_t errlen)
{
	unsigned long v;
	bool have_listen = false;
	int i, ret;

	memset(cfg, 0, sizeof(*cfg));
	cfg->max_conns = KPD_MAX_CONNS_DEFAULT;
	cfg->connect_timeout_ms = KPD_CONNECT_TIMEOUT_MS;
	cfg->backlog = KP_BACKLOG_DEFAULT;
	if (argc < 1 || !name_ok(argv[0])) {
		snprintf(err, errlen, "a proxy needs a name of 1 to %d letters, digits, '-', '_' or '.'",
			 KP_NAME_LEN - 1);
		return -EINVAL;
	}
	snprintf(cfg->name, sizeof(cfg->name), "%s", argv[0]);
	for (i = 1; i < argc; i++) {
		const char *kw = argv[i], *arg = i + 1 < argc ? argv[i + 1] : NULL;

		if (!arg) {
			snprintf(err, errlen, "'%s' needs a value", kw);
			return -EINVAL;
		}
		i++;
		if (!strcmp(kw, "listen")) {
			ret = kp_uri_parse(arg, &cfg->listen, err, errlen);
			if (ret)
				return ret;
			have_listen = true;
		} else if (!strcmp(kw, "backend")) {
			if (cfg->nbackends == KPD_MAX_BACKENDS) {
				snprintf(err, errlen, "at most %d backends per proxy", KPD_MAX_BACKENDS);
				return -E2BIG;
			}
			ret = kp_uri_parse(arg, &cfg->backends[cfg->nbackends], err, errlen);
			if (ret)
				return ret;
			cfg->nbackends++;
		} else if (!strcmp(kw, "balance")) {
			if (!strcmp(arg, "rr")) {
				cfg->balance = BAL_RR;
			} else if (!strcmp(arg, "hash")) {
				cfg->balance = BAL_HASH;
			} else {
				snprintf(err, errlen, "unknown balance '%s': use rr or hash", arg);
				return -EINVAL;
			}
		} else if (!strcmp(kw, "max_conns")) {
			if (parse_num(kw, arg, 1, KP_MAX_SOCKS / 2, &v, err, errlen))
				return -EINVAL;
			cfg->max_conns = v;
		} else if (!strcmp(kw, "connect_timeout")) {
			if (parse_num(kw, arg, 1, 600000, &v, err, errlen))
				return -EINVAL;
			cfg->connect_timeout_ms = v;
		} else if (!strcmp(kw, "backlog")) {
			if (parse_num(kw, arg, 4096, 1UL << 30, &v, err, errlen))
				return -EINVAL;
			cfg->backlog = v;
		} else if (!strcmp(kw, "sndbuf")) {
			if (parse_num(kw, arg, 4096, 1UL << 30, &v, err, errlen))
				return -EINVAL;
			cfg->sndbuf = v;
		} else if (!strcmp(kw, "rcvbuf")) {
			if (parse_num(kw, arg, 4096, 1UL << 30, &v, err, errlen))
				return -EINVAL;
			cfg->rcvbuf = v;
		} else {
			snprintf(err, errlen, "unknown keyword '%s': expected listen, backend, balance, "
				 "max_conns, connect_timeout, backlog, sndbuf or rcvbuf", kw);
			return -EINVAL;
		}
	}
	if (!have_listen || !cfg->nbackends) {
		snprintf(err, errlen, "proxy '%s' needs 'listen URI' and at least one 'backend URI'",
			 cfg->name);
		return -EINVAL;
	}
	if (cfg->listen.scheme != KP_URI_TCP) {
		snprintf(err, errlen, "listen URI of '%s': only tcp:// and tcp6:// listeners are "
			 "supported by this kproxy (tls:// needs the TLS handshake agent)", cfg->name);
		return -EPROTONOSUPPORT;
	}
	for (i = 0; i < cfg->nbackends; i++) {
		if (cfg->backends[i].scheme != KP_URI_TCP) {
			snprintf(err, errlen, "backend URI of '%s': only tcp:// and tcp6:// backends "
				 "are supported by this kproxy", cfg->name);
			return -EPROTONOSUPPORT;
		}
	}
	return 0;
}

#define MAX_WORDS 64

int config_load(const char *path, struct proxy_cfg **cfgs, int *n, char *err, size_t errlen)
{
	char line[4096], *words[MAX_WORDS], *p, *save;
	char perr[256];
	struct proxy_cfg *arr = NULL, *tmp;
	int nw, lineno = 0, cnt = 0, ret = 0;
	FILE *f;

	*cfgs = NULL;
	*n = 0;
	f = fopen(path, "r");
	if (!f) {
		ret = -errno;
		snprintf(err, errlen, "cannot read config '%s': %s", path, strerror(errno));
		return ret;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		p = strchr(line, '#');
		if (p)
			*p = '\0';
		nw = 0;
		for (p = strtok_r(line, " \t\r\n", &save); p && nw < MAX_WORDS;
		     p = strtok_r(NULL, " \t\r\n", &save))
			words[nw++] = p;
		if (!nw)
			continue;
		if (strcmp(words[0], "proxy")) {
			snprintf(err, errlen, "%s:%d: unknown statement '%s' (expected 'proxy')", path,
				 lineno, words[0]);
			ret = -EINVAL;
			break;
		}
		tmp = realloc(arr, (cnt + 1) * sizeof(*arr));
		if (!tmp) {
			ret = -ENOMEM;
			break;
		}
		arr = tmp;
		ret = proxy_cfg_parse(nw - 1, words + 1, &arr[cnt], perr, sizeof(perr));
		if (ret) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, perr);
			break;
		}
		cnt++;
	}
	fclose(f);
	if (ret) {
		free(arr);
		return ret;
	}
	*cfgs = arr;
	*n = cnt;
	return 0;
}
