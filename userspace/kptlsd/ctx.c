// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Contexts: what a group of handshakes shares. Credentials (a server's
 * certificates, a client's trust anchors), gnutls priorities narrowed to what
 * kTLS can carry, the session ticket key of a server, ALPN, the timeout.
 * Sessions hold a reference: a deleted context lives until its last one ends.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "kptlsd.h"

#define DEFAULT_CA_FILE		"/etc/ssl/certs/ca-certificates.crt"
#define MAX_TIMEOUT_MS		3600000

/* The AEAD ciphers both gnutls and kTLS have, strongest-first is not implied. */
static const char *const ktls_ciphers[] = { "AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305" };
#define NCIPHERS (sizeof(ktls_ciphers) / sizeof(ktls_ciphers[0]))

/* A CTX_ADD, decoded; strings point into one allocation per field. */
struct conf {
	__u32 role;
	char *cert[KP_TLS_MAX_CERTS], *key[KP_TLS_MAX_CERTS];
	int ncert, nkey;
	char *ca, *server_name, *ciphers;
	char *alpn[KP_TLS_MAX_ALPN];
	int nalpn;
	__u32 versions, timeout_ms, flags;
};

static __u32 next_id = 1;

static void conf_free(struct conf *c)
{
	int i;

	for (i = 0; i < c->ncert; i++)
		free(c->cert[i]);
	for (i = 0; i < c->nkey; i++)
		free(c->key[i]);
	for (i = 0; i < c->nalpn; i++)
		free(c->alpn[i]);
	free(c->ca);
	free(c->server_name);
	free(c->ciphers);
}

static int tlv_string(const unsigned char *v, size_t len, char **out, const char *what, char *err,
		      size_t errlen)
{
	if (memchr(v, '\0', len)) {
		snprintf(err, errlen, "%s contains a NUL byte", what);
		return -EINVAL;
	}
	free(*out);
	*out = strndup((const char *)v, len);
	if (!*out) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int conf_decode(const unsigned char *p, size_t len, struct conf *c, char *err, size_t errlen)
{
	struct kp_tls_tlv_hdr t;
	const unsigned char *v;
	char **slot;
	int ret;

	while (len) {
		if (len < sizeof(t)) {
			snprintf(err, errlen, "truncated context message");
			return -EINVAL;
		}
		memcpy(&t, p, sizeof(t));
		if (t.len > len - sizeof(t)) {
			snprintf(err, errlen, "truncated context message");
			return -EINVAL;
		}
		v = p + sizeof(t);
		p += sizeof(t) + t.len;
		len -= sizeof(t) + t.len;
		slot = NULL;
		switch (t.tag) {
		case KP_TLS_TLV_ROLE:
		case KP_TLS_TLV_VERSIONS:
		case KP_TLS_TLV_TIMEOUT_MS:
		case KP_TLS_TLV_FLAGS:
			if (t.len != sizeof(__u32)) {
				snprintf(err, errlen, "bad number in context message (tag %u)", t.tag);
				return -EINVAL;
			}
			memcpy(t.tag == KP_TLS_TLV_ROLE ? &c->role :
			       t.tag == KP_TLS_TLV_VERSIONS ? &c->versions :
			       t.tag == KP_TLS_TLV_TIMEOUT_MS ? &c->timeout_ms : &c->flags,
			       v, sizeof(__u32));
			continue;
		case KP_TLS_TLV_CERT:
			if (c->ncert == KP_TLS_MAX_CERTS)
				goto too_many;
			slot = &c->cert[c->ncert++];
			break;
		case KP_TLS_TLV_KEY:
			if (c->nkey == KP_TLS_MAX_CERTS)
				goto too_many;
			slot = &c->key[c->nkey++];
			break;
		case KP_TLS_TLV_ALPN:
			if (c->nalpn == KP_TLS_MAX_ALPN)
				goto too_many;
			slot = &c->alpn[c->nalpn++];
			break;
		case KP_TLS_TLV_CA:
			slot = &c->ca;
			break;
		case KP_TLS_TLV_SERVER_NAME:
			slot = &c->server_name;
			break;
		case KP_TLS_TLV_CIPHERS:
			slot = &c->ciphers;
			break;
		default:
			/* A newer kproxyd's option: refuse rather than ignore it. */
			snprintf(err, errlen, "unknown context option (tag %u): kptlsd is older "
				 "than kproxyd", t.tag);
			return -EINVAL;
		}
		*slot = NULL;
		ret = tlv_string(v, t.len, slot, "an option", err, errlen);
		if (ret)
			return ret;
	}
	return 0;
too_many:
	snprintf(err, errlen, "a context has at most %d certificates and %d ALPN protocols",
		 KP_TLS_MAX_CERTS, KP_TLS_MAX_ALPN);
	return -EINVAL;
}

/* The priority string: TLS 1.2/1.3 and only the AEAD ciphers kTLS supports. */
static int build_priorities(struct kpt_ctx *ctx, const struct conf *c, char *err, size_t errlen)
{
	char prio[512], list[256] = "", *s, *tok, *save = NULL;
	const char *errpos = NULL;
	size_t i, n = 0;
	unsigned int versions = c->versions ? c->versions : KP_TLS_V12 | KP_TLS_V13;
	bool seen[NCIPHERS] = {};
	int ret;

	if (versions & ~(KP_TLS_V12 | KP_TLS_V13)) {
		snprintf(err, errlen, "unknown TLS version bits 0x%x: kproxy takes TLS 1.2 and 1.3",
			 versions);
		return -EINVAL;
	}
	n = snprintf(prio, sizeof(prio), "NORMAL:-VERS-ALL%s%s:-CIPHER-ALL",
		     versions & KP_TLS_V13 ? ":+VERS-TLS1.3" : "",
		     versions & KP_TLS_V12 ? ":+VERS-TLS1.2" : "");
	if (c->ciphers && *c->ciphers) {
		s = strdup(c->ciphers);
		if (!s) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		for (tok = strtok_r(s, ":, ", &save); tok; tok = strtok_r(NULL, ":, ", &save)) {
			for (i = 0; i < NCIPHERS; i++)
				if (!strcasecmp(tok, ktls_ciphers[i]))
					break;
			if (i == NCIPHERS) {
				snprintf(err, errlen, "unknown cipher '%s' in '%s': kTLS takes "
					 "AES-128-GCM, AES-256-GCM and CHACHA20-POLY1305", tok,
					 c->ciphers);
				free(s);
				return -EINVAL;
			}
			if (seen[i])
				continue;
			seen[i] = true;
			n += snprintf(prio + n, sizeof(prio) - n, ":+%s", ktls_ciphers[i]);
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 *list ? ", " : "", ktls_ciphers[i]);
		}
		free(s);
		if (!*list) {
			snprintf(err, errlen, "'ciphers' names no cipher");
			return -EINVAL;
		}
	} else {
		for (i = 0; i < NCIPHERS; i++) {
			n += snprintf(prio + n, sizeof(prio) - n, ":+%s", ktls_ciphers[i]);
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 *list ? ", " : "", ktls_ciphers[i]);
		}
	}
	/*
	 * Key exchange groups, X25519 first: with the server's precedence
	 * gnutls's own order (P-256 first) made a server answer a client that
	 * sent only an X25519 key share (OpenSSL's default) with a
	 * HelloRetryRequest, a round trip and a key exchange more.
	 */
	n += snprintf(prio + n, sizeof(prio) - n, ":-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1"
		      ":+GROUP-SECP384R1:+GROUP-SECP521R1:+GROUP-X448:+GROUP-FFDHE2048"
		      ":+GROUP-FFDHE3072:+GROUP-FFDHE4096");
	/* A server follows its own order (the one given in 'ciphers'). */
	if (c->role == KP_TLS_SERVER)
		n += snprintf(prio + n, sizeof(prio) - n, ":%%SERVER_PRECEDENCE");
	snprintf(ctx->ciphers, sizeof(ctx->ciphers), "%s", list);
	snprintf(ctx->versions, sizeof(ctx->versions), "%s", versions == KP_TLS_V12 ? "TLS1.2" :
		 versions == KP_TLS_V13 ? "TLS1.3" : "TLS1.2 or TLS1.3");
	ret = gnutls_priority_init(&ctx->prio, prio, &errpos);
	if (ret < 0) {
		snprintf(err, errlen, "gnutls refused the priorities '%s' at '%s': %s", prio,
			 errpos ? errpos : "?", gnutls_strerror(ret));
		ctx->prio = NULL;
		return -EINVAL;
	}
	pr_debug("context %u: priorities %s", ctx->id, prio);
	return 0;
}

static int readable(const char *path, const char *what, char *err, size_t errlen)
{
	if (!*path) {
		snprintf(err, errlen, "empty %s file name", what);
		return -EINVAL;
	}
	if (access(path, R_OK)) {
		int e = errno;

		snprintf(err, errlen, "cannot read %s file '%s': %s%s", what, path, strerror(e),
			 e == EACCES ? " (kptlsd runs without capabilities: the file must be "
				       "readable by its owner, root)" : "");
		return -e;
	}
	return 0;
}

static int load_server(struct kpt_ctx *ctx, const struct conf *c, char *err, size_t errlen)
{
	gnutls_datum_t der;
	int i, ret;

	if (c->ncert == 0) {
		snprintf(err, errlen, "a server context needs at least one 'cert' and 'key'");
		return -EINVAL;
	}
	if (c->ncert != c->nkey) {
		snprintf(err, errlen, "each 'cert' needs its 'key' (%d certificates, %d keys)",
			 c->ncert, c->nkey);
		return -EINVAL;
	}
	if (c->ca) {
		snprintf(err, errlen, "'ca' is for client contexts: kproxy does not ask clients "
			 "for certificates");
		return -EINVAL;
	}
	if (c->server_name) {
		snprintf(err, errlen, "'server_name' is for client contexts: a server picks its "
			 "certificate by the names in it");
		return -EINVAL;
	}
	/* API_V2: the load functions return the index of the new credential. */
	gnutls_certificate_set_flags(ctx->cred, GNUTLS_CERTIFICATE_API_V2);
	for (i = 0; i < c->ncert; i++) {
		ret = readable(c->cert[i], "certificate", err, errlen);
		if (!ret)
			ret = readable(c->key[i], "key", err, errlen);
		if (ret)
			return ret;
		ret = gnutls_certificate_set_x509_key_file2(ctx->cred, c->cert[i], c->key[i],
							    GNUTLS_X509_FMT_PEM, NULL, 0);
		if (ret == GNUTLS_E_CERTIFICATE_KEY_MISMATCH) {
			snprintf(err, errlen, "the key in '%s' does not belong to the certificate "
				 "in '%s'", c->key[i], c->cert[i]);
			return -EINVAL;
		}
		if (ret < 0) {
			snprintf(err, errlen, "cannot load the certificate '%s' with the key '%s': "
				 "%s (both must be PEM)", c->cert[i], c->key[i],
				 gnutls_strerror(ret));
			return -EINVAL;
		}
		/* Keep the leaf to match server names ('sni strict'). */
		ret = gnutls_certificate_get_crt_raw(ctx->cred, ret, 0, &der);
		if (ret >= 0)
			ret = gnutls_x509_crt_init(&ctx->crt[i]);
		if (ret >= 0)
			ret = gnutls_x509_crt_import(ctx->crt[i], &der, GNUTLS_X509_FMT_DER);
		if (ret < 0) {
			snprintf(err, errlen, "cannot read the certificate '%s': %s", c->cert[i],
				 gnutls_strerror(ret));
			return -EINVAL;
		}
		ctx->ncrt = i + 1;
	}
	ret = gnutls_session_ticket_key_generate(&ctx->ticket_key);
	if (ret < 0) {
		snprintf(err, errlen, "cannot generate a session ticket key: %s",
			 gnutls_strerror(ret));
		return -EIO;
	}
	return 0;
}

static int load_client(struct kpt_ctx *ctx, const struct conf *c, char *err, size_t errlen)
{
	const char *ca = c->ca ? c->ca : DEFAULT_CA_FILE;
	int ret;

	if (c->ncert || c->nkey) {
		snprintf(err, errlen, "client certificates are not supported: a client context "
			 "takes 'ca', 'server_name' and 'insecure'");
		return -EINVAL;
	}
	if (c->flags & KP_TLS_SNI_STRICT) {
		snprintf(err, errlen, "'sni strict' is for server contexts");
		return -EINVAL;
	}
	if (c->server_name) {
		if (strlen(c->server_name) >= sizeof(ctx->server_name) || !*c->server_name) {
			snprintf(err, errlen, "server name '%.40s...' is empty or too long",
				 c->server_name);
			return -EINVAL;
		}
		strcpy(ctx->server_name, c->server_name);
	}
	if (c->flags & KP_TLS_INSECURE)
		return 0;
	ret = readable(ca, "CA", err, errlen);
	if (ret)
		return ret;
	ret = gnutls_certificate_set_x509_trust_file(ctx->cred, ca, GNUTLS_X509_FMT_PEM);
	if (ret < 0) {
		snprintf(err, errlen, "cannot load the CA file '%s': %s", ca, gnutls_strerror(ret));
		return -EINVAL;
	}
	if (ret == 0) {
		snprintf(err, errlen, "the CA file '%s' has no PEM certificate", ca);
		return -EINVAL;
	}
	return 0;
}

static void ctx_free(struct kpt_ctx *ctx)
{
	int i;

	for (i = 0; i < ctx->ncrt; i++)
		gnutls_x509_crt_deinit(ctx->crt[i]);
	for (i = 0; i < ctx->nalpn; i++)
		free(ctx->alpn[i].data);
	if (ctx->ticket_key.data) {
		gnutls_memset(ctx->ticket_key.data, 0, ctx->ticket_key.size);
		gnutls_free(ctx->ticket_key.data);
	}
	if (ctx->prio)
		gnutls_priority_deinit(ctx->prio);
	if (ctx->cred)
		gnutls_certificate_free_credentials(ctx->cred);
	free(ctx);
}

struct kpt_ctx *ctx_add(const void *tlv, size_t len, char *err, size_t errlen)
{
	struct conf c = {};
	struct kpt_ctx *ctx;
	int i, ret;

	ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	LIST_INIT(&ctx->node);
	LIST_INIT(&ctx->sessions);
	ctx->id = next_id;
	ret = conf_decode(tlv, len, &c, err, errlen);
	if (ret)
		goto fail;
	if (c.role != KP_TLS_SERVER && c.role != KP_TLS_CLIENT) {
		snprintf(err, errlen, "a context is either a server or a client");
		goto fail;
	}
	if (c.flags & ~(KP_TLS_SNI_STRICT | KP_TLS_INSECURE)) {
		snprintf(err, errlen, "unknown context flags 0x%x", c.flags);
		goto fail;
	}
	if (c.timeout_ms > MAX_TIMEOUT_MS) {
		snprintf(err, errlen, "handshake timeout %u ms is longer than an hour", c.timeout_ms);
		goto fail;
	}
	ctx->role = c.role;
	ctx->flags = c.flags;
	ctx->timeout_ms = c.timeout_ms ? c.timeout_ms : KP_TLS_TIMEOUT_DEFAULT_MS;
	for (i = 0; i < c.nalpn; i++) {
		size_t n = strlen(c.alpn[i]);

		if (n == 0 || n > 255) {
			snprintf(err, errlen, "ALPN protocol '%.40s' must have 1 to 255 bytes",
				 c.alpn[i]);
			goto fail;
		}
		ctx->alpn[i].data = (unsigned char *)c.alpn[i];
		ctx->alpn[i].size = n;
		c.alpn[i] = NULL;	/* the context owns it now */
		ctx->nalpn++;
	}
	ret = gnutls_certificate_allocate_credentials(&ctx->cred);
	if (ret < 0) {
		snprintf(err, errlen, "cannot allocate credentials: %s", gnutls_strerror(ret));
		goto fail;
	}
	if (build_priorities(ctx, &c, err, errlen))
		goto fail;
	ret = c.role == KP_TLS_SERVER ? load_server(ctx, &c, err, errlen)
				      : load_client(ctx, &c, err, errlen);
	if (ret)
		goto fail;
	conf_free(&c);
	next_id++;
	ctx->refs = 1;
	list_add_tail(&ctx->node, &kpt.ctxs);
	pr_info("context %u: %s, %d certificate(s), %s with %s, timeout %u ms%s%s", ctx->id,
		ctx->role == KP_TLS_SERVER ? "server" : "client", ctx->ncrt, ctx->versions,
		ctx->ciphers,
		ctx->timeout_ms, ctx->flags & KP_TLS_SNI_STRICT ? ", sni strict" : "",
		ctx->flags & KP_TLS_INSECURE ? ", INSECURE (no verification)" : "");
	return ctx;
fail:
	conf_free(&c);
	ctx_free(ctx);
	return NULL;
}

struct kpt_ctx *ctx_find(__u32 id)
{
	struct list_head *p;

	for (p = kpt.ctxs.next; p != &kpt.ctxs; p = p->next) {
		struct kpt_ctx *c = container_of(p, struct kpt_ctx, node);

		if (c->id == id && !c->deleted)
			return c;
	}
	return NULL;
}

void ctx_put(struct kpt_ctx *c)
{
	if (--c->refs > 0)
		return;
	list_del_init(&c->node);
	ctx_free(c);
}

void ctx_del(struct kpt_ctx *c)
{
	if (c->deleted)
		return;
	c->deleted = true;
	pr_info("context %u deleted", c->id);
	ctx_put(c);
}

int ctx_cert_for(const struct kpt_ctx *c, const char *name)
{
	int i;

	for (i = 0; i < c->ncrt; i++)
		if (gnutls_x509_crt_check_hostname(c->crt[i], name))
			return i;
	return -1;
}
