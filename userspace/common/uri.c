// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "uri.h"

static const struct {
	const char *name;
	int scheme;
	int family;	/* 0: decided by the host */
} schemes[] = {
	{ "tcp", KP_URI_TCP, 0 },
	{ "tcp4", KP_URI_TCP, AF_INET },
	{ "tcp6", KP_URI_TCP, AF_INET6 },
	{ "udp", KP_URI_UDP, 0 },
	{ "udp4", KP_URI_UDP, AF_INET },
	{ "udp6", KP_URI_UDP, AF_INET6 },
	{ "tls", KP_URI_TLS, 0 },
	{ "tls6", KP_URI_TLS, AF_INET6 },
};

#define URI_HINT "use scheme://host:port, e.g. tcp://127.0.0.1:8080 or tcp6://[::1]:8080"

int kp_uri_parse(const char *s, struct kp_uri *u, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *sep, *h, *p;
	size_t i, n, hl;
	int family = 0;
	char *end;
	long port;

	memset(u, 0, sizeof(*u));
	sep = s ? strstr(s, "://") : NULL;
	if (!sep) {
		snprintf(err, errlen, "'%s' is not a URI: %s", s ? s : "", URI_HINT);
		return -EINVAL;
	}
	n = sep - s;
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		if (strlen(schemes[i].name) == n && !strncmp(s, schemes[i].name, n)) {
			u->scheme = schemes[i].scheme;
			family = schemes[i].family;
			break;
		}
	}
	if (!u->scheme) {
		snprintf(err, errlen, "unknown scheme '%.*s' in '%s': use tcp, tcp6, udp, udp6 or tls",
			 (int)n, s, s);
		return -EINVAL;
	}
	h = sep + 3;
	if (*h == '[') {
		p = strchr(h, ']');
		if (!p || p[1] != ':') {
			snprintf(err, errlen, "bad IPv6 host in '%s': %s", s, URI_HINT);
			return -EINVAL;
		}
		hl = p - h - 1;
		h++;
		p += 2;
		if (family == AF_INET) {
			snprintf(err, errlen, "'%s' names an IPv6 host with an IPv4 scheme", s);
			return -EINVAL;
		}
		family = AF_INET6;
	} else {
		p = strrchr(h, ':');
		if (!p) {
			snprintf(err, errlen, "no port in '%s': %s", s, URI_HINT);
			return -EINVAL;
		}
		hl = p - h;
		p++;
	}
	if (hl == 0 || hl >= sizeof(host)) {
		snprintf(err, errlen, "bad host in '%s': %s", s, URI_HINT);
		return -EINVAL;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	errno = 0;
	port = strtol(p, &end, 10);
	if (!*p || *end || errno || port < 0 || port > 65535) {
		snprintf(err, errlen, "bad port '%s' in '%s': a number from 0 to 65535", p, s);
		return -EINVAL;
	}
	if (!strcmp(host, "localhost"))
		strcpy(host, family == AF_INET6 ? "::1" : "127.0.0.1");

	if (family != AF_INET6) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&u->addr;

		if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			sin->sin_port = htons(port);
			u->addrlen = sizeof(*sin);
			return 0;
		}
		if (family == AF_INET || strchr(host, ':') == NULL) {
			snprintf(err, errlen, "bad host '%s' in '%s': give a numeric address (%s)",
				 host, s, URI_HINT);
			return -EINVAL;
		}
	}
	{
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&u->addr;

		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
			snprintf(err, errlen, "bad IPv6 host '%s' in '%s': %s", host, s, URI_HINT);
			return -EINVAL;
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		u->addrlen = sizeof(*sin6);
	}
	return 0;
}

char *kp_uri_format(int scheme, const struct sockaddr *sa, char *buf, size_t len)
{
	const char *name = scheme == KP_URI_UDP ? "udp" : scheme == KP_URI_TLS ? "tls" : "tcp";
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s://%s:%u", name, host, ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "%s6://[%s]:%u", name, host, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, len, "%s://?", name);
	}
	return buf;
}

int kp_sockaddr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

char *kp_uri_format_raw(int scheme, int family, const void *addr, unsigned int port, char *buf,
			size_t len)
{
	struct sockaddr_storage ss = {};

	ss.ss_family = family;
	if (family == AF_INET6) {
		memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, addr, 16);
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
	} else {
		memcpy(&((struct sockaddr_in *)&ss)->sin_addr, addr, 4);
		((struct sockaddr_in *)&ss)->sin_port = htons(port);
	}
	return kp_uri_format(scheme, (struct sockaddr *)&ss, buf, len);
}

int kp_sockaddr_raw(const struct sockaddr *sa, unsigned char addr[16])
{
	memset(addr, 0, 16);
	if (sa->sa_family == AF_INET)
		memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		memcpy(addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	return sa->sa_family;
}
