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

int kpd_parse_num(const char *kw, const char *s, unsigned long min, unsigned long max,
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

bool kpd_name_ok(const char *n)
{
	size_t i, l = strlen(n);

	if (!l || l >= KP_NAME_LEN)
		return false;
	for (i = 0; i < l; i++)
		if (!isalnum((unsigned char)n[i]) && n[i] != '-' && n[i] != '_' && n[i] != '.')
			return false;
	return true;
}

/*
 * The shape both grammars share: NAME, then KEYWORD VALUE pairs, each handed
 * to @kw. @what names the object in messages ("proxy", "service").
 */
int kpd_parse_words(const char *what, int argc, char **argv, char *name,
		    int (*kw)(void *obj, const char *kw, const char *arg, char *err, size_t errlen),
		    void *obj, char *err, size_t errlen)
{
	int i, ret;

	if (argc < 1 || !kpd_name_ok(argv[0])) {
		snprintf(err, errlen, "a %s needs a name of 1 to %d letters, digits, '-', '_' or '.'",
			 what, KP_NAME_LEN - 1);
		return -EINVAL;
	}
	snprintf(name, KP_NAME_LEN, "%s", argv[0]);
	for (i = 1; i < argc; i += 2) {
		if (i + 1 >= argc) {
			snprintf(err, errlen, "'%s' needs a value", argv[i]);
			return -EINVAL;
		}
		ret = kw(obj, argv[i], argv[i + 1], err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

/* One more 'backend URI' into @arr (of KPD_MAX_BACKENDS). */
int kpd_add_backend(const char *what, struct kp_uri *arr, int *n, const char *arg, char *err,
		    size_t errlen)
{
	int ret;

	if (*n == KPD_MAX_BACKENDS) {
		snprintf(err, errlen, "at most %d backends per %s", KPD_MAX_BACKENDS, what);
		return -E2BIG;
	}
	ret = kp_uri_parse(arg, &arr[*n], err, errlen);
	if (!ret)
		(*n)++;
	return ret;
}

struct proxy_parse {
	struct proxy_cfg *cfg;
	bool have_listen;
};

static int copy_word(char *dst, size_t len, const char *kw, const char *arg, char *err,
		     size_t errlen)
{
	if (strlen(arg) >= len) {
		snprintf(err, errlen, "'%s' value is too long (at most %zu characters)", kw, len - 1);
		return -ENAMETOOLONG;
	}
	snprintf(dst, len, "%s", arg);
	return 0;
}

/* The TLS keywords of a proxy; -ENOENT if @kw is none of them. */
static int tls_word(struct tls_cfg *t, const char *kw, const char *arg, char *err, size_t errlen)
{
	unsigned long v;

	if (!strcmp(kw, "cert") || !strcmp(kw, "key")) {
		bool cert = kw[0] == 'c';
		int *n = cert ? &t->ncerts : &t->nkeys;

		if (*n == KP_TLS_MAX_CERTS) {
			snprintf(err, errlen, "at most %d certificates per proxy", KP_TLS_MAX_CERTS);
			return -E2BIG;
		}
		if (copy_word(cert ? t->cert[*n] : t->key[*n], KPD_PATH_MAX, kw, arg, err, errlen))
			return -EINVAL;
		(*n)++;
	} else if (!strcmp(kw, "alpn")) {
		return copy_word(t->alpn, sizeof(t->alpn), kw, arg, err, errlen);
	} else if (!strcmp(kw, "backend_alpn")) {
		return copy_word(t->backend_alpn, sizeof(t->backend_alpn), kw, arg, err, errlen);
	} else if (!strcmp(kw, "ciphers")) {
		return copy_word(t->ciphers, sizeof(t->ciphers), kw, arg, err, errlen);
	} else if (!strcmp(kw, "tls_versions")) {
		if (strcmp(arg, "1.2") && strcmp(arg, "1.3") && strcmp(arg, "1.2,1.3")) {
			snprintf(err, errlen, "tls_versions '%s': use 1.2, 1.3 or 1.2,1.3", arg);
			return -EINVAL;
		}
		snprintf(t->versions, sizeof(t->versions), "%s", arg);
	} else if (!strcmp(kw, "unknown_sni")) {
		if (strcmp(arg, "refuse") && strcmp(arg, "default")) {
			snprintf(err, errlen, "unknown_sni '%s': use default (the first certificate) "
				 "or refuse", arg);
			return -EINVAL;
		}
		t->sni_strict = !strcmp(arg, "refuse");
	} else if (!strcmp(kw, "handshake_timeout")) {
		if (kpd_parse_num(kw, arg, 10, 600000, &v, err, errlen))
			return -EINVAL;
		t->timeout_ms = v;
	} else if (!strcmp(kw, "ca")) {
		return copy_word(t->ca, sizeof(t->ca), kw, arg, err, errlen);
	} else if (!strcmp(kw, "sni")) {
		return copy_word(t->sni, sizeof(t->sni), kw, arg, err, errlen);
	} else if (!strcmp(kw, "verify")) {
		if (strcmp(arg, "on") && strcmp(arg, "off")) {
			snprintf(err, errlen, "verify '%s': use on or off (off is for tests only)", arg);
			return -EINVAL;
		}
		t->insecure = !strcmp(arg, "off");
	} else {
		return -ENOENT;
	}
	return 0;
}

/* Does the proxy say anything about TLS on the listener's or the backends' side? */
static bool tls_listen_words(const struct tls_cfg *t)
{
	return t->ncerts || t->nkeys || t->alpn[0] || t->sni_strict;
}

static bool tls_backend_words(const struct tls_cfg *t)
{
	return t->ca[0] || t->sni[0] || t->backend_alpn[0] || t->insecure;
}

static int proxy_word(void *obj, const char *kw, const char *arg, char *err, size_t errlen)
{
	struct proxy_parse *pp = obj;
	struct proxy_cfg *cfg = pp->cfg;
	unsigned long v;
	int ret;

	if (!strcmp(kw, "listen")) {
		ret = kp_uri_parse(arg, &cfg->listen, err, errlen);
		if (ret)
			return ret;
		pp->have_listen = true;
	} else if (!strcmp(kw, "backend")) {
		return kpd_add_backend("proxy", cfg->backends, &cfg->nbackends, arg, err, errlen);
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
		if (kpd_parse_num(kw, arg, 1, KP_MAX_SOCKS / 2, &v, err, errlen))
			return -EINVAL;
		cfg->max_conns = v;
	} else if (!strcmp(kw, "connect_timeout")) {
		if (kpd_parse_num(kw, arg, 1, 600000, &v, err, errlen))
			return -EINVAL;
		cfg->connect_timeout_ms = v;
	} else if (!strcmp(kw, "backlog")) {
		if (kpd_parse_num(kw, arg, 4096, 1UL << 30, &v, err, errlen))
			return -EINVAL;
		cfg->backlog = v;
	} else if (!strcmp(kw, "sndbuf")) {
		if (kpd_parse_num(kw, arg, 4096, 1UL << 30, &v, err, errlen))
			return -EINVAL;
		cfg->sndbuf = v;
	} else if (!strcmp(kw, "rcvbuf")) {
		if (kpd_parse_num(kw, arg, 4096, 1UL << 30, &v, err, errlen))
			return -EINVAL;
		cfg->rcvbuf = v;
	} else {
		ret = tls_word(&cfg->tls, kw, arg, err, errlen);
		if (ret == -ENOENT) {
			snprintf(err, errlen, "unknown keyword '%s': expected listen, backend, balance, "
				 "max_conns, connect_timeout, backlog, sndbuf, rcvbuf, or for TLS "
				 "cert, key, alpn, ciphers, tls_versions, unknown_sni, "
				 "handshake_timeout, ca, sni, backend_alpn, verify", kw);
			return -EINVAL;
		}
		return ret;
	}
	return 0;
}

/* argv starts after "proxy add" / "proxy": NAME listen URI ... */
int proxy_cfg_parse(int argc, char **argv, struct proxy_cfg *cfg, char *err, size_t errlen)
{
	struct proxy_parse pp = { .cfg = cfg };
	bool tls_backend = false;
	int i, ret;

	memset(cfg, 0, sizeof(*cfg));
	cfg->max_conns = KPD_MAX_CONNS_DEFAULT;
	cfg->connect_timeout_ms = KPD_CONNECT_TIMEOUT_MS;
	cfg->backlog = KP_BACKLOG_DEFAULT;
	ret = kpd_parse_words("proxy", argc, argv, cfg->name, proxy_word, &pp, err, errlen);
	if (ret)
		return ret;
	if (!pp.have_listen || !cfg->nbackends) {
		snprintf(err, errlen, "proxy '%s' needs 'listen URI' and at least one 'backend URI'",
			 cfg->name);
		return -EINVAL;
	}
	if (cfg->listen.scheme != KP_URI_TCP && cfg->listen.scheme != KP_URI_TLS) {
		snprintf(err, errlen, "listen URI of '%s': a proxy listens on tcp://, tcp6://, "
			 "tls:// or tls6://", cfg->name);
		return -EPROTONOSUPPORT;
	}
	for (i = 0; i < cfg->nbackends; i++) {
		if (cfg->backends[i].scheme != KP_URI_TCP && cfg->backends[i].scheme != KP_URI_TLS) {
			snprintf(err, errlen, "backend URI of '%s': a proxy's backends are tcp://, "
				 "tcp6://, tls:// or tls6://", cfg->name);
			return -EPROTONOSUPPORT;
		}
		if (cfg->backends[i].scheme == KP_URI_TLS)
			tls_backend = true;
	}
	if (cfg->listen.scheme == KP_URI_TLS) {
		if (!cfg->tls.ncerts || cfg->tls.ncerts != cfg->tls.nkeys) {
			snprintf(err, errlen, "proxy '%s' listens on tls:// and needs 'cert FILE key "
				 "FILE' (one key for each certificate, in the same order)", cfg->name);
			return -EINVAL;
		}
	} else if (tls_listen_words(&cfg->tls)) {
		snprintf(err, errlen, "proxy '%s': cert, key, alpn and unknown_sni are for a tls:// "
			 "listener", cfg->name);
		return -EINVAL;
	}
	if (!tls_backend && tls_backend_words(&cfg->tls)) {
		snprintf(err, errlen, "proxy '%s': ca, sni, backend_alpn and verify are for tls:// "
			 "backends", cfg->name);
		return -EINVAL;
	}
	return 0;
}

/* json_object_array_add() of one word, as tls_cfg_words() wants it. */
void kpd_json_word(void *arr, const char *word)
{
	json_object_array_add(arr, json_object_new_string(word));
}

/* The TLS words of @cfg, as a proxy statement has them, each through @w. */
void tls_cfg_words(const struct tls_cfg *t, void (*w)(void *arg, const char *word), void *arg)
{
	char buf[32];
	int i;

	for (i = 0; i < t->ncerts && i < t->nkeys; i++) {
		w(arg, "cert"); w(arg, t->cert[i]);
		w(arg, "key"); w(arg, t->key[i]);
	}
#define PAIR(kw, v) do { if ((v)[0]) { w(arg, kw); w(arg, v); } } while (0)
	PAIR("alpn", t->alpn);
	PAIR("ciphers", t->ciphers);
	PAIR("tls_versions", t->versions);
	PAIR("ca", t->ca);
	PAIR("sni", t->sni);
	PAIR("backend_alpn", t->backend_alpn);
#undef PAIR
	if (t->sni_strict) {
		w(arg, "unknown_sni"); w(arg, "refuse");
	}
	if (t->insecure) {
		w(arg, "verify"); w(arg, "off");
	}
	if (t->timeout_ms) {
		snprintf(buf, sizeof(buf), "%u", t->timeout_ms);
		w(arg, "handshake_timeout"); w(arg, buf);
	}
}

#define MAX_WORDS 64

/* A 'service' or 'accel' statement, kept as its words (both are added from words). */
static int conf_obj_add(struct conf_obj **objs, int *n, int kind, int nw, char **words)
{
	struct conf_obj *tmp = realloc(*objs, (*n + 1) * sizeof(**objs)), *o;
	size_t off = 0;
	int i;

	if (!tmp)
		return -ENOMEM;
	*objs = tmp;
	o = &tmp[(*n)++];
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	for (i = 0; i < nw && i < KPD_SVC_MAX_ARGS; i++) {
		size_t l = strlen(words[i]) + 1;

		if (off + l > sizeof(o->buf))
			return -E2BIG;
		memcpy(o->buf + off, words[i], l);
		o->argv[o->argc++] = o->buf + off;
		off += l;
	}
	return 0;
}

int config_load(const char *path, struct proxy_cfg **cfgs, int *n, struct conf_obj **objs,
		int *nobj, char *err, size_t errlen)
{
	char line[4096], *words[MAX_WORDS], *p, *save;
	char perr[256];
	struct proxy_cfg *arr = NULL, *tmp;
	int nw, lineno = 0, cnt = 0, ret = 0;
	FILE *f;

	*cfgs = NULL;
	*n = 0;
	*objs = NULL;
	*nobj = 0;
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
		if (!strcmp(words[0], "service") || !strcmp(words[0], "accel") ||
		    !strcmp(words[0], "mux")) {
			bool svc = words[0][0] == 's', mux = words[0][0] == 'm';

			/* Checked now, so that a bad line keeps the running configuration. */
			if (svc) {
				struct svc_cfg sc;

				ret = svc_cfg_parse(nw - 1, words + 1, &sc, perr, sizeof(perr));
			} else if (mux) {
				ret = mux_check(nw - 1, words + 1, perr, sizeof(perr));
			} else {
				ret = accel_check(nw - 1, words + 1, perr, sizeof(perr));
			}
			if (ret) {
				snprintf(err, errlen, "%s:%d: %s", path, lineno, perr);
				break;
			}
			ret = conf_obj_add(objs, nobj, svc ? CONF_SERVICE : mux ? CONF_MUX : CONF_ACCEL,
					   nw - 1, words + 1);
			if (ret) {
				snprintf(err, errlen, "%s:%d: statement too long", path, lineno);
				break;
			}
			continue;
		}
		if (strcmp(words[0], "proxy")) {
			snprintf(err, errlen, "%s:%d: unknown statement '%s' (expected 'proxy', "
				 "'service', 'accel' or 'mux')", path, lineno, words[0]);
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
		free(*objs);
		*objs = NULL;
		*nobj = 0;
		return ret;
	}
	*cfgs = arr;
	*n = cnt;
	return 0;
}
