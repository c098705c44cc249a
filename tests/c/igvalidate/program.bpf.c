// SPDX-License-Identifier: Apache-2.0
/*
 * A gadget whose gadget.yaml has what ig accepts and gadgetsmith used to refuse: fields
 * ig's formatters and operators derive (kstack from a kernel-stack id, ustack.* from a
 * user stack, addr/proto/endpoint from an endpoint), a data source with `fields:` left
 * empty, a field and a data source the object lacks, the SDK's own user-stack param.
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/buffer.h>
#include <gadget/common.h>
#include <gadget/filter.h>
#include <gadget/kernel_stack_map.h>
#include <gadget/macros.h>
#include <gadget/types.h>
#include <gadget/user_stack_map.h>

struct event {
	gadget_timestamp timestamp_raw;
	struct gadget_process proc;
	struct gadget_l4endpoint_t addr;
	gadget_kernel_stack kstack_raw;
	struct gadget_user_stack ustack;
};

struct other {
	__u32 n;
};

GADGET_TRACER_MAP(events, 1024 * 64);
GADGET_TRACER(calls, events, event);
GADGET_TRACER_MAP(others, 1024 * 64);
GADGET_TRACER(others, others, other);

SEC("tracepoint/syscalls/sys_enter_getppid")
int igv_getppid(struct syscall_trace_enter *ctx)
{
	struct event *e;

	if (gadget_should_discard_data_current())
		return 0;
	e = gadget_reserve_buf(&events, sizeof(*e));
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	e->timestamp_raw = bpf_ktime_get_boot_ns();
	gadget_process_populate(&e->proc);
	e->kstack_raw = gadget_get_kernel_stack(ctx);
	gadget_get_user_stack_from_tracepoint(ctx, &e->ustack);
	gadget_submit_buf(ctx, &events, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
