/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Endpoints as URIs, as in the socket offload seed: tcp://1.2.3.4:80, tcp6://[::1]:80. */
#ifndef KP_URI_H
#define KP_URI_H

#include <sys/socket.h>
#include <netinet/in.h>

enum kp_uri_scheme {
	KP_URI_TCP = 1,	/* tcp:// and tcp6:// */
	KP_URI_UDP,	/* udp:// and udp6:// */
	KP_URI_TLS,	/* tls:// (TLS over TCP) */
};

struct kp_uri {
	int scheme;			/* enum kp_uri_scheme */
	struct sockaddr_storage addr;	/* numeric address and port */
	socklen_t addrlen;
};

/**
 * kp_uri_parse() - parse "scheme://host:port" into @u.
 * Hosts are numeric (IPv4 dotted quad, IPv6 in brackets); "localhost" is
 * accepted as 127.0.0.1 (::1 for tcp6). Returns 0, or -EINVAL with a sentence
 * in @err that says what is wrong and what a good URI looks like.
 */
int kp_uri_parse(const char *s, struct kp_uri *u, char *err, size_t errlen);

/** kp_uri_format() - write @sa as a URI of @scheme into @buf. Returns @buf. */
char *kp_uri_format(int scheme, const struct sockaddr *sa, char *buf, size_t len);

/**
 * kp_uri_format_raw() - write a URI of @scheme for a raw address (4 or 16
 * bytes, as BPF maps keep them) of @family and a port in host order.
 */
char *kp_uri_format_raw(int scheme, int family, const void *addr, unsigned int port, char *buf,
			size_t len);

/** kp_sockaddr_raw() - the address of @sa as 16 raw bytes (IPv4 in the first 4); returns the family. */
int kp_sockaddr_raw(const struct sockaddr *sa, unsigned char addr[16]);

/** kp_sockaddr_port() - the port of @sa in host order. */
int kp_sockaddr_port(const struct sockaddr *sa);

#define KP_URI_MAX 64

#endif
