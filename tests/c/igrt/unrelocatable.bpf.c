/* SPDX-License-Identifier: Apache-2.0 */
/* A program that reads a member of a struct no kernel has: its CO-RE relocation matches
 * nothing in this kernel's BTF. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/types.h>

struct event {
	__u32 value;
};

GADGET_TRACER_MAP(events, 4096);
GADGET_TRACER(unrelocatable, events, event);

struct gadgetsmith_no_such_struct {
	int member;
} __attribute__((preserve_access_index));

SEC("tracepoint/syscalls/sys_enter_getppid")
int reads_missing(void *ctx)
{
	struct gadgetsmith_no_such_struct *p = (void *)bpf_get_current_task();
	struct event *e = gadget_reserve_buf(&events, sizeof(*e));

	if (!e)
		return 0;
	e->value = BPF_CORE_READ(p, member);
	gadget_submit_buf(ctx, &events, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
