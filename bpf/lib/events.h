/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef KP_BPF_EVENTS_H
#define KP_BPF_EVENTS_H

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
