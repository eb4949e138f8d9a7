// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The keys into the kernel: the TLS-over-TCP consumer of a handshake's
 * secrets (struct kpt_keys). Everything that touches key material is here,
 * in ktls_install(); it never logs it and zeroes each copy it makes.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <linux/tls.h>

#include "kptlsd.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef ENOTSUPP
#define ENOTSUPP 524	/* the kernel's, seen by user space from some setsockopt paths */
#endif

int ktls_cipher(gnutls_cipher_algorithm_t c)
{
	switch (c) {
	case GNUTLS_CIPHER_AES_128_GCM: return TLS_CIPHER_AES_GCM_128;
	case GNUTLS_CIPHER_AES_256_GCM: return TLS_CIPHER_AES_GCM_256;
	case GNUTLS_CIPHER_CHACHA20_POLY1305: return TLS_CIPHER_CHACHA20_POLY1305;
	default: return 0;
	}
}

union crypto_info {
	struct tls_crypto_info base;
	struct tls12_crypto_info_aes_gcm_128 gcm128;
	struct tls12_crypto_info_aes_gcm_256 gcm256;
	struct tls12_crypto_info_chacha20_poly1305 chacha;
};

/*
 * One direction's crypto_info from gnutls' record state. gnutls hands out
 * pointers into the session (freed and wiped by gnutls_deinit()); the only
 * copies made are in @ci and @seq, which the caller wipes. Returns the size
 * of @ci to pass to setsockopt, or a gnutls error.
 */
static int fill_crypto_info(gnutls_session_t tls, bool read, union crypto_info *ci,
			    unsigned char seq[8])
{
	gnutls_datum_t mac, iv, key;
	bool tls12 = gnutls_protocol_get_version(tls) == GNUTLS_TLS1_2;
	int ret;

	ret = gnutls_record_get_state(tls, read, &mac, &iv, &key, seq);
	if (ret < 0)
		return ret;
	memset(ci, 0, sizeof(*ci));
	ci->base.version = tls12 ? TLS_1_2_VERSION : TLS_1_3_VERSION;
	ci->base.cipher_type = ktls_cipher(gnutls_cipher_get(tls));

#define FILL_GCM(f, N)								\
	do {									\
		if (key.size != TLS_CIPHER_AES_GCM_##N##_KEY_SIZE ||		\
		    iv.size < TLS_CIPHER_AES_GCM_##N##_SALT_SIZE +		\
			      (tls12 ? 0 : TLS_CIPHER_AES_GCM_##N##_IV_SIZE))	\
			return GNUTLS_E_INTERNAL_ERROR;				\
		memcpy(f.key, key.data, sizeof(f.key));				\
		memcpy(f.salt, iv.data, sizeof(f.salt));			\
		/* TLS 1.2: the explicit nonce is the record sequence number. */ \
		memcpy(f.iv, tls12 ? seq : iv.data + sizeof(f.salt), sizeof(f.iv)); \
		memcpy(f.rec_seq, seq, sizeof(f.rec_seq));			\
		ret = sizeof(f);						\
	} while (0)

	switch (ci->base.cipher_type) {
	case TLS_CIPHER_AES_GCM_128:
		FILL_GCM(ci->gcm128, 128);
		break;
	case TLS_CIPHER_AES_GCM_256:
		FILL_GCM(ci->gcm256, 256);
		break;
	case TLS_CIPHER_CHACHA20_POLY1305:
		/* A 12-byte nonce, no salt, in both versions. */
		if (key.size != sizeof(ci->chacha.key) || iv.size != sizeof(ci->chacha.iv))
			return GNUTLS_E_INTERNAL_ERROR;
		memcpy(ci->chacha.key, key.data, sizeof(ci->chacha.key));
		memcpy(ci->chacha.iv, iv.data, sizeof(ci->chacha.iv));
		memcpy(ci->chacha.rec_seq, seq, sizeof(ci->chacha.rec_seq));
		ret = sizeof(ci->chacha);
		break;
	default:
		return GNUTLS_E_UNIMPLEMENTED_FEATURE;
	}
#undef FILL_GCM
	return ret;
}

static int set_direction(int fd, gnutls_session_t tls, bool read, char *why, size_t len)
{
	const char *cipher = gnutls_cipher_get_name(gnutls_cipher_get(tls));
	const char *opt = read ? "TLS_RX" : "TLS_TX";
	union crypto_info ci;
	unsigned char seq[8];
	int size, ret, e;

	size = fill_crypto_info(tls, read, &ci, seq);
	if (size < 0) {
		gnutls_memset(&ci, 0, sizeof(ci));
		gnutls_memset(seq, 0, sizeof(seq));
		snprintf(why, len, "cannot read the %s keys of cipher %s from gnutls: %s",
			 read ? "receive" : "send", cipher, gnutls_strerror(size));
		return size == GNUTLS_E_UNIMPLEMENTED_FEATURE ? -ENOPROTOOPT : -EIO;
	}
	ret = setsockopt(fd, SOL_TLS, read ? TLS_RX : TLS_TX, &ci, size);
	e = errno;
	gnutls_memset(&ci, 0, sizeof(ci));
	gnutls_memset(seq, 0, sizeof(seq));
	if (!ret)
		return 0;
	switch (e) {
	case ENOENT:
	case EINVAL:
	case ENOPROTOOPT:
	case EOPNOTSUPP:
	case ENOTSUPP:
		snprintf(why, len, "cipher %s of %s has no kTLS %s support in this kernel "
			 "(setsockopt(SOL_TLS, %s): %s); narrow the context's ciphers",
			 cipher, gnutls_protocol_get_name(gnutls_protocol_get_version(tls)),
			 read ? "receive" : "send", opt, strerror(e));
		return -ENOPROTOOPT;
	case ENOTCONN:
	case EPIPE:
	case ECONNRESET:
		snprintf(why, len, "the connection closed before kTLS was set (setsockopt(SOL_TLS, "
			 "%s): %s)", opt, strerror(e));
		return -ECONNRESET;
	}
	snprintf(why, len, "setsockopt(SOL_TLS, %s) failed: %s", opt, strerror(e));
	return -e;
}

int ktls_install(int fd, gnutls_session_t tls, struct kp_tls_info *info, char *why, size_t len)
{
	int one = 1, ret;

	if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls"))) {
		int e = errno;

		switch (e) {
		case ENOENT:
			snprintf(why, len, "this kernel has no kTLS (CONFIG_TLS): setsockopt(TCP_ULP, "
				 "\"tls\") failed: %s; load the tls module or use tcp:// instead",
				 strerror(e));
			return -ENOPROTOOPT;
		case EEXIST:
			snprintf(why, len, "the socket already has an upper layer protocol "
				 "(setsockopt(TCP_ULP, \"tls\"): %s)", strerror(e));
			return -EEXIST;
		case ENOTCONN:
			snprintf(why, len, "the connection closed before kTLS was set "
				 "(setsockopt(TCP_ULP, \"tls\"): %s)", strerror(e));
			return -ECONNRESET;
		}
		snprintf(why, len, "kTLS cannot be set on this socket: setsockopt(TCP_ULP, "
			 "\"tls\") failed: %s", strerror(e));
		return -e;
	}
	ret = set_direction(fd, tls, false, why, len);
	if (ret)
		return ret;
	info->tx = 1;
	ret = set_direction(fd, tls, true, why, len);
	if (ret)
		return ret;
	info->rx = 1;
	/* Readers may wake again: from here on they get plaintext. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one))) {
		snprintf(why, len, "cannot restore SO_RCVLOWAT after setting kTLS: %s",
			 strerror(errno));
		return -errno;
	}
	return 0;
}

static int ktls_setup(struct kpt_session *s)
{
	return 0;	/* gnutls keeps the record state we need; nothing to hook */
}

static int ktls_keys_install(struct kpt_session *s, struct kp_tls_info *info, char *why, size_t len)
{
	return ktls_install(s->fd, s->tls, info, why, len);
}

const struct kpt_keys kpt_keys_ktls = {
	.name = "ktls",
	.setup = ktls_setup,
	.secret = NULL,
	.install = ktls_keys_install,
};
