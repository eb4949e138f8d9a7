/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef KP_CTLC_H
#define KP_CTLC_H

#include <stddef.h>
#include <json-c/json.h>

/**
 * kp_ctl_call() - send @argv to the kproxyd listening on the control socket
 * @path and return its JSON answer in @ans (the caller puts it). 0, or
 * -errno with one sentence in @err: -EACCES (not root), -ECONNREFUSED,
 * -ENOENT (no kproxyd), -EINVAL (kproxyd refused the request: its reason).
 */
int kp_ctl_call(const char *path, int argc, char **argv, json_object **ans, char *err,
		size_t errlen);

#endif
