// SPDX-License-Identifier: Apache-2.0
/*
 * Two tracers, each with its own ring buffer: "pids" gets a record per getpid(2) and
 * "ppids" one per getppid(2) of the thread targ_tid (0: every thread), each numbered in
 * order. For the runtime's several-data-sources tests.
 */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/types.h>

struct pid_event {
	gadget_timestamp timestamp_raw;
	__u32 pid;
	__u32 seq;
};

struct ppid_event {
	__u32 ppid;
	__u32 seq;
	__u64 calls;
};

const volatile __u32 targ_tid = 0;
GADGET_PARAM(targ_tid);

GADGET_TRACER_MAP(pid_events, 1024 * 64);
GADGET_TRACER(pids, pid_events, pid_event);

GADGET_TRACER_MAP(ppid_events, 1024 * 64);
GADGET_TRACER(ppids, ppid_events, ppid_event);

static __u32 pid_seq;
static __u32 ppid_seq;

static __always_inline bool wanted(void)
{
	return !targ_tid || (__u32)bpf_get_current_pid_tgid() == targ_tid;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
	struct pid_event *e;

	if (!wanted())
		return 0;
	e = gadget_reserve_buf(&pid_events, sizeof(*e));
	if (!e)
		return 0;
	e->timestamp_raw = bpf_ktime_get_boot_ns();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->seq = pid_seq++;
	gadget_submit_buf(ctx, &pid_events, e, sizeof(*e));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct ppid_event *e;

	if (!wanted())
		return 0;
	e = gadget_reserve_buf(&ppid_events, sizeof(*e));
	if (!e)
		return 0;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->seq = ppid_seq++;
	e->calls = e->seq + 1;
	gadget_submit_buf(ctx, &ppid_events, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
