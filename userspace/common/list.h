/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The kernel's doubly linked list, the little of it kproxyd and kptlsd use. */
#ifndef KP_LIST_H
#define KP_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list_head {
	struct list_head *next, *prev;
};

#define LIST_INIT(h)		do { (h)->next = (h); (h)->prev = (h); } while (0)
#define container_of(p, t, m)	((t *)((char *)(p) - offsetof(t, m)))

static inline void list_add_tail(struct list_head *n, struct list_head *h)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

static inline void list_del_init(struct list_head *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	LIST_INIT(n);
}

static inline bool list_empty(const struct list_head *h)
{
	return h->next == h;
}

#endif
