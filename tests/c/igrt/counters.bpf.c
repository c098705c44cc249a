/* SPDX-License-Identifier: Apache-2.0 */
/* Counters and gauges as IG's metrics annotations know them: a tracer of the getpgid(2)
 * calls of the thread `targ_tid`, with a gadget_counter__u32 (1 per call), a
 * gadget_gauge__u64 (the argument) and a plain field; gadget.yaml asks for metrics.print
 * and an implicit counter of the events. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/types.h>

struct event {
	__u32 kind;
	gadget_counter__u32 calls;
	gadget_gauge__u64 level;
	__u32 plain;
};

const volatile __u32 targ_tid = 0;
GADGET_PARAM(targ_tid);

GADGET_TRACER_MAP(events, 1024 * 64);
GADGET_TRACER(pgids, events, event);

SEC("tracepoint/syscalls/sys_enter_getpgid")
int on_getpgid(struct trace_event_raw_sys_enter *ctx)
{
	struct event *e;

	if ((__u32)bpf_get_current_pid_tgid() != targ_tid)
		return 0;
	e = gadget_reserve_buf(&events, sizeof(*e));
	if (!e)
		return 0;
	e->kind = 1;
	e->calls = 1;
	e->level = ctx->args[0];
	e->plain = 7;
	gadget_submit_buf(ctx, &events, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
