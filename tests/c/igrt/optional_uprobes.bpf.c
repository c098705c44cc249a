/* SPDX-License-Identifier: Apache-2.0 */
/* Like IG's trace_ssl: uprobes on several libraries, some of which a host may not have
 * installed, next to a tracepoint. The missing ones are warnings; the rest runs. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <gadget/buffer.h>
#include <gadget/common.h>
#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/types.h>

enum source { FROM_TRACEPOINT = 1, FROM_UPROBE = 2 };

struct event {
	struct gadget_process proc;
	enum source source_raw;
};

GADGET_TRACER_MAP(events, 4096);
GADGET_TRACER(optional, events, event);

static __always_inline int emit(void *ctx, enum source source)
{
	struct event *e;

	if (gadget_should_discard_data_current())
		return 0;
	e = gadget_reserve_buf(&events, sizeof(*e));
	if (!e)
		return 0;
	gadget_process_populate(&e->proc);
	e->source_raw = source;
	gadget_submit_buf(ctx, &events, e, sizeof(*e));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	return emit(ctx, FROM_TRACEPOINT);
}

SEC("uprobe/libgadgetsmith_not_installed:gs_function")
int BPF_UPROBE(on_absent_library)
{
	return emit(ctx, FROM_UPROBE);
}

SEC("uprobe/libc:gadgetsmith_no_such_symbol")
int BPF_UPROBE(on_absent_symbol)
{
	return emit(ctx, FROM_UPROBE);
}

SEC("uprobe/libc:getppid")
int BPF_UPROBE(on_getppid_call)
{
	return emit(ctx, FROM_UPROBE);
}

char LICENSE[] SEC("license") = "GPL";
