// SPDX-License-Identifier: GPL-2.0
/* For tests/test_wasm_run.py: no data source of its own (like IG's traceloop), only a
 * perf event array the program fills on getpgid(4242) calls and the WASM module reads
 * back at gadgetStop, into a data source of the module's. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, 4);
	__uint(value_size, 4);
} recorder SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpgid")
int on_getpgid(struct trace_event_raw_sys_enter *ctx)
{
	__u32 r[2] = {bpf_get_current_pid_tgid() >> 32, (__u32)ctx->args[0]};

	if (r[1] == 4242)
		bpf_perf_event_output(ctx, &recorder, BPF_F_CURRENT_CPU, r, sizeof(r));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
