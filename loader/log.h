/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Logging shared by libkproxy and the daemons, in the manner of xdp-tools' pr_warn/pr_info/pr_debug. */
#ifndef KP_LOG_H
#define KP_LOG_H

#include "libkproxy.h"

void kp_log(enum kp_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define kp_warn(...)	kp_log(KP_LOG_WARN, __VA_ARGS__)
#define kp_info(...)	kp_log(KP_LOG_INFO, __VA_ARGS__)
#define kp_debug(...)	kp_log(KP_LOG_DEBUG, __VA_ARGS__)

#endif
