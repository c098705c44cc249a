// SPDX-License-Identifier: GPL-2.0
/* bench_getppid: one event per getppid(2), a record shaped like a typical tracer's. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>

#include <gadget/buffer.h>
#include <gadget/common.h>
#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/types.h>

struct event {
	gadget_timestamp timestamp_raw;
	struct gadget_process proc;
	__u64 seq;
	gadget_errno error_raw;
	char tag[16];
};

GADGET_TRACER_MAP(events, 1024 * 1024 * 4);
GADGET_TRACER(getppid, events, event);

static __u64 seq;

SEC("tracepoint/syscalls/sys_enter_getppid")
int bench_getppid(void *ctx)
{
	struct event *e;

	if (gadget_should_discard_data_current())
		return 0;
	e = gadget_reserve_buf(&events, sizeof(*e));
	if (!e)
		return 0;
	e->timestamp_raw = bpf_ktime_get_boot_ns();
	gadget_process_populate(&e->proc);
	e->seq = seq++;
	e->error_raw = 0;
	__builtin_memcpy(e->tag, "bench", 6);
	gadget_submit_buf(ctx, &events, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
