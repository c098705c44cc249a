// SPDX-License-Identifier: GPL-2.0
/* For tests/integration/test_wasm_run.py: no data source of its own (like IG's traceloop), only a
 * perf event array the program fills on getpgid(4242) calls, and a map of perf event
 * arrays (as traceloop's: the inner map declared without a size) whose entry 1 the WASM
 * module fills with an array of its own, filled on getpgid(4343) calls; the module reads
 * both back at gadgetStop, into a data source of its own. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, 4);
	__uint(value_size, 4);
} recorder SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 4);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
		__uint(key_size, sizeof(__u32));
		__uint(value_size, sizeof(__u32));
	});
} buffers SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpgid")
int on_getpgid(struct trace_event_raw_sys_enter *ctx)
{
	__u32 r[2] = {bpf_get_current_pid_tgid() >> 32, (__u32)ctx->args[0]};
	__u32 one = 1;
	void *inner;

	if (r[1] == 4242)
		bpf_perf_event_output(ctx, &recorder, BPF_F_CURRENT_CPU, r, sizeof(r));
	if (r[1] == 4343) {
		inner = bpf_map_lookup_elem(&buffers, &one);
		if (inner)
			bpf_perf_event_output(ctx, inner, BPF_F_CURRENT_CPU, r, sizeof(r));
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
