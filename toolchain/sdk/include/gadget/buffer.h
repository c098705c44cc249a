/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gadgetsmith SDK: sending events to user space.
 *
 * Tracer maps are ring buffers. On kernels without ring buffers (no
 * BPF_FUNC_ringbuf_reserve in the kernel's enum bpf_func_id) the runtime turns maps marked
 * by GADGET_TRACER_MAP into perf event arrays, and the helpers below switch to
 * bpf_perf_event_output(); the choice is a CO-RE relocation resolved at load time.
 *
 * The map argument of the helpers must be written literally as `&name`: the macros find
 * the matching `name_lost_samples` counter by token pasting.
 */
#ifndef __GADGET_BUFFER_H
#define __GADGET_BUFFER_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <gadget/macros.h>

#ifndef GADGET_MAX_EVENT_SIZE
#define GADGET_MAX_EVENT_SIZE 10240
#endif

#define GADGET_TRACER_MAP(name, size)                      \
	struct {                                             \
		__uint(type, BPF_MAP_TYPE_RINGBUF);          \
		__uint(max_entries, size);                   \
	} name SEC(".maps");                                 \
	struct {                                             \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);     \
		__uint(max_entries, 1);                      \
		__type(key, __u32);                          \
		__type(value, __u64);                        \
	} name##_lost_samples SEC(".maps");                  \
	const void *gadget_map_tracer_##name __attribute__((unused))

static __always_inline void __gadget_count_lost(void *lost_map)
{
	__u32 zero = 0;
	__u64 *lost = bpf_map_lookup_elem(lost_map, &zero);

	if (lost)
		*lost += 1; /* per-CPU slot: no atomics needed */
}

#ifndef GADGET_NO_BUF_RESERVE
/* Scratch space for one event when there is no ring buffer to reserve from. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, GADGET_MAX_EVENT_SIZE);
} gadget_heap SEC(".maps");

static __always_inline void *__gadget_reserve_buf(void *map, void *lost_map, __u64 size)
{
	__u32 zero = 0;
	void *buf;

	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_ringbuf_reserve)) {
		buf = bpf_ringbuf_reserve(map, size, 0);
		if (!buf)
			__gadget_count_lost(lost_map);
		return buf;
	}
	return bpf_map_lookup_elem(&gadget_heap, &zero);
}

#define gadget_reserve_buf(map, size) __gadget_reserve_buf(map, map##_lost_samples, size)

static __always_inline void gadget_submit_buf(void *ctx, void *map, void *buf, __u64 size)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_ringbuf_submit))
		bpf_ringbuf_submit(buf, 0);
	else
		bpf_perf_event_output(ctx, map, BPF_F_CURRENT_CPU, buf, size);
}

static __always_inline void gadget_discard_buf(void *buf)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_ringbuf_discard))
		bpf_ringbuf_discard(buf, 0);
}
#endif /* GADGET_NO_BUF_RESERVE */

/* Copy-style output of `size` bytes (size may be smaller than the record struct). */
static __always_inline long __gadget_output_buf(void *ctx, void *map, void *lost_map, void *buf,
						__u64 size)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_ringbuf_output)) {
		if (bpf_ringbuf_output(map, buf, size, 0))
			__gadget_count_lost(lost_map);
		return 0;
	}
	return bpf_perf_event_output(ctx, map, BPF_F_CURRENT_CPU, buf, size);
}

#define gadget_output_buf(ctx, map, buf, size) \
	__gadget_output_buf(ctx, map, map##_lost_samples, buf, size)

#endif /* __GADGET_BUFFER_H */
