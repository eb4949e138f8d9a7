// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * msgclient CTL MUX COUNT SIZE...: the whole-message library (msg.h) against
 * a mux with 4-byte big-endian length framing and an echo backend. Sends
 * COUNT messages of each SIZE, all before reading (pipelined), then reads
 * COUNT messages and checks each is whole and equal to what was sent.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"

int main(int argc, char **argv)
{
	char err[512];
	struct kp_msg_sock *s;
	unsigned char *out, *in;
	int count, i, a;

	if (argc < 5) {
		fprintf(stderr, "usage: msgclient CTL MUX COUNT SIZE...\n");
		return 2;
	}
	count = atoi(argv[3]);
	s = kp_msg_attach(argv[1], argv[2], err, sizeof(err));
	if (!s) {
		fprintf(stderr, "msgclient: %s\n", err);
		return 1;
	}
	for (a = 4; a < argc; a++) {
		size_t size = strtoul(argv[a], NULL, 0);
		ssize_t n;

		out = malloc(size);
		in = malloc(size + 1);
		if (!out || !in || size < 5)
			return 2;
		for (i = 0; i < count; i++) {
			size_t k;

			for (k = 4; k < size; k++)
				out[k] = (unsigned char)(k * 31 + i * 7 + a);
			out[0] = size >> 24; out[1] = size >> 16; out[2] = size >> 8; out[3] = size;
			n = kp_msg_send(s, out, size);
			if (n != (ssize_t)size) {
				fprintf(stderr, "msgclient: send of %zu: %s\n", size, strerror(-n));
				return 1;
			}
		}
		/* A buffer one short: the library must keep the message for a larger one. */
		n = kp_msg_recv(s, in, size - 1);
		if (n != -EMSGSIZE) {
			fprintf(stderr, "msgclient: recv into a short buffer gave %zd, not -EMSGSIZE\n", n);
			return 1;
		}
		for (i = 0; i < count; i++) {
			size_t k;

			n = kp_msg_recv(s, in, size + 1);
			for (k = 4; k < size; k++)
				out[k] = (unsigned char)(k * 31 + i * 7 + a);
			if (n != (ssize_t)size || memcmp(in, out, size)) {
				fprintf(stderr, "msgclient: message %d of %zu bytes: got %zd bytes%s\n", i,
					size, n, n == (ssize_t)size ? ", different" : "");
				return 1;
			}
		}
		free(out);
		free(in);
	}
	/* Not one message: refused, nothing sent. */
	if (kp_msg_send(s, "\0\0\0\x09" "abc", 7) != -EBADMSG) {
		fprintf(stderr, "msgclient: a partial message was not refused\n");
		return 1;
	}
	kp_msg_close(s);
	printf("ok\n");
	return 0;
}
