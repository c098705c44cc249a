// SPDX-License-Identifier: GPL-2.0
/* trace_signal: signals generated for processes, and failed kill(2) calls. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include <gadget/buffer.h>
#include <gadget/common.h>
#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/types.h>

struct event {
	gadget_timestamp timestamp_raw;
	struct gadget_process proc;
	__u32 tpid;
	gadget_signal sig_raw;
	gadget_errno error_raw;
};

struct kill_args {
	__u32 tpid;
	__u32 sig;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct kill_args);
} kills SEC(".maps");

GADGET_TRACER_MAP(events, 1024 * 256);
GADGET_TRACER(signal, events, event);

const volatile int target_signal = 0;
GADGET_PARAM(target_signal);
const volatile bool failed_only = false;
GADGET_PARAM(failed_only);

static __always_inline int emit(void *ctx, __u32 tpid, __u32 sig, __u32 err)
{
	struct event *e;

	if (target_signal && sig != (__u32)target_signal)
		return 0;
	if (failed_only && !err)
		return 0;
	if (gadget_should_discard_data_current())
		return 0;
	e = gadget_reserve_buf(&events, sizeof(*e));
	if (!e)
		return 0;
	e->timestamp_raw = bpf_ktime_get_boot_ns();
	gadget_process_populate(&e->proc);
	e->tpid = tpid;
	e->sig_raw = sig;
	e->error_raw = err;
	gadget_submit_buf(ctx, &events, e, sizeof(*e));
	return 0;
}

/* Delivered (or queued) signals, whoever sent them. */
SEC("tracepoint/signal/signal_generate")
int ig_sig_generate(struct trace_event_raw_signal_generate *ctx)
{
	return emit(ctx, ctx->pid, ctx->sig, 0);
}

/* kill(2) that fails never reaches signal_generate: pair enter and exit for those. */
SEC("tracepoint/syscalls/sys_enter_kill")
int ig_kill_e(struct trace_event_raw_sys_enter *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct kill_args a = { .tpid = ctx->args[0], .sig = ctx->args[1] };

	bpf_map_update_elem(&kills, &tid, &a, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_kill")
int ig_kill_x(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct kill_args *a = bpf_map_lookup_elem(&kills, &tid);
	long ret = ctx->ret;

	if (!a)
		return 0;
	if (ret < 0)
		emit(ctx, a->tpid, a->sig, -ret);
	bpf_map_delete_elem(&kills, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
