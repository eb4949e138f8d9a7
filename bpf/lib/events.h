/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef KP_BPF_EVENTS_H
#define KP_BPF_EVENTS_H

/* The event ring, shared (pinned by name) by every kproxy BPF object. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, KP_EVENTS_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_events SEC(".maps");

/* Events that did not fit in kp_events (consumer too slow or absent). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kp_evlost SEC(".maps");


/* Copy @ev into the ring; count it in kp_evlost when the ring is full. */
static __always_inline void kp_event_output(struct kp_event *ev)
{
	__u32 zero = 0;
	__u64 *lost;

	ev->ts_ns = bpf_ktime_get_ns();
	if (bpf_ringbuf_output(&kp_events, ev, sizeof(*ev), 0)) {
		lost = bpf_map_lookup_elem(&kp_evlost, &zero);
		if (lost)
			__sync_fetch_and_add(lost, 1);
	}
}

#endif
