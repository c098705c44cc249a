// SPDX-License-Identifier: GPL-2.0
/* For tests/integration/test_wasm_run.py: a tracer of getpgid(2) calls (their argument), a map
 * iterator counting the calls per argument (drained while the tracer is followed), and a
 * perf event array "recorder" that gets a record per getpgid(4242) call, which the WASM
 * module reads back at gadgetStop. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>

#include <gadget/buffer.h>
#include <gadget/common.h>
#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/types.h>

struct event {
	struct gadget_process proc;
	__u32 arg;
};

struct record {
	__u32 pid;
	__u32 arg;
};

GADGET_TRACER_MAP(events, 1024 * 64);
GADGET_TRACER(calls, events, event);

struct total_key {
	__u32 arg;
};

struct total_value {
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct total_key);
	__type(value, struct total_value);
} totals_map SEC(".maps");

GADGET_MAPITER(totals, totals_map);

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, 4);
	__uint(value_size, 4);
} recorder SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpgid")
int on_getpgid(struct trace_event_raw_sys_enter *ctx)
{
	__u32 arg = ctx->args[0];
	struct event *e;

	if (gadget_should_discard_data_current())
		return 0;
	if (arg >= 4000 && arg < 5000) {
		struct total_key k = {arg};
		struct total_value one = {1}, *v = bpf_map_lookup_elem(&totals_map, &k);
		if (v)
			__sync_fetch_and_add(&v->count, 1);
		else
			bpf_map_update_elem(&totals_map, &k, &one, BPF_NOEXIST);
	}
	if (arg == 4242) {
		struct record r = {bpf_get_current_pid_tgid() >> 32, arg};
		bpf_perf_event_output(ctx, &recorder, BPF_F_CURRENT_CPU, &r, sizeof(r));
	}
	e = gadget_reserve_buf(&events, sizeof(*e));
	if (!e)
		return 0;
	gadget_process_populate(&e->proc);
	e->arg = arg;
	gadget_submit_buf(ctx, &events, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
