/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Whole messages to and from a kmux, for local processes: what an AF_KCM
 * socket gives (one send, one message; one recv, one message), over the
 * one socket type kmux parses on every kernel we support: a TCP connection
 * to the mux's listener (strparser, and so kmux, runs on TCP only; sockmap
 * takes AF_UNIX sockets but without stream parsers, and a redirect into one
 * does not keep message boundaries). docs/kmux.md has the why.
 *
 * The library asks kproxyd (its control socket) for the mux's address and
 * parsers, connects, and frames with the same parser the mux runs in BPF
 * (userspace/common/parse.c, the BPF parser's twin).
 */
#ifndef KP_MSG_H
#define KP_MSG_H

#include <stddef.h>
#include <sys/types.h>

struct kp_msg_sock;

/**
 * kp_msg_attach() - connect to mux @mux of the kproxyd at @ctl_path (NULL:
 * the default). NULL with one sentence in @err if it cannot.
 */
struct kp_msg_sock *kp_msg_attach(const char *ctl_path, const char *mux, char *err,
				  size_t errlen);

/** kp_msg_fd() - the connected socket, for poll() (readable: a message may be there). */
int kp_msg_fd(const struct kp_msg_sock *s);

/**
 * kp_msg_send() - send one whole message; blocks until it is all written.
 * @len bytes must be exactly one message by the mux's request parser:
 * -EBADMSG or -EMSGSIZE otherwise, with nothing sent. Returns @len or -errno.
 */
ssize_t kp_msg_send(struct kp_msg_sock *s, const void *msg, size_t len);

/**
 * kp_msg_recv() - receive one whole message into @buf; blocks until it has
 * come. Its length, 0 when the mux closed, -EMSGSIZE if it does not fit in
 * @cap (it stays for a larger buffer), -EBADMSG if the stream is not framed
 * as the response parser says, or -errno.
 */
ssize_t kp_msg_recv(struct kp_msg_sock *s, void *buf, size_t cap);

void kp_msg_close(struct kp_msg_sock *s);

#endif
