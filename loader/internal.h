/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Helpers shared by the loader's objects (dataplane.c, service.c); not exported. */
#ifndef KP_LOADER_INTERNAL_H
#define KP_LOADER_INTERNAL_H

#include <stddef.h>
#include <linux/types.h>

/*
 * Sum entry @key of a per-CPU map whose value is a struct of __u64 counters
 * (@size bytes) into @out, or zero it on every CPU.
 */
int kp_percpu_sum(int map_fd, __u32 key, void *out, size_t size, int ncpus);
int kp_percpu_zero(int map_fd, __u32 key, size_t size, int ncpus);

#endif
