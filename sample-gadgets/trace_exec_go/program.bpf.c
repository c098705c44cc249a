// SPDX-License-Identifier: GPL-2.0
/* trace_exec_go: programs being executed, with their arguments as the kernel keeps them
 * (NUL-separated); the WASM module (go/program.go) joins them and adds fields. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include <gadget/buffer.h>
#include <gadget/common.h>
#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/types.h>

#define FILENAME_MAX 256
#define ARGS_MAX 512 /* power of two: used as a mask for the verifier */

struct event {
	gadget_timestamp timestamp_raw;
	struct gadget_process proc;
	__u32 args_size;
	char filename[FILENAME_MAX];
	char args[ARGS_MAX]; /* argv, each argument NUL-terminated */
};

GADGET_TRACER_MAP(events, 1024 * 256);
GADGET_TRACER(exec, events, event);

SEC("tracepoint/sched/sched_process_exec")
int ig_sched_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	unsigned long arg_start, arg_end;
	__u32 off, len;
	struct event *e;

	if (gadget_should_discard_data_current())
		return 0;
	e = gadget_reserve_buf(&events, sizeof(*e));
	if (!e)
		return 0;
	e->timestamp_raw = bpf_ktime_get_boot_ns();
	gadget_process_populate(&e->proc);

	off = ctx->__data_loc_filename & 0xFFFF;
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (char *)ctx + off);

	arg_start = BPF_CORE_READ(task, mm, arg_start);
	arg_end = BPF_CORE_READ(task, mm, arg_end);
	len = arg_end - arg_start;
	if (len > ARGS_MAX)
		len = ARGS_MAX;
	len &= ARGS_MAX * 2 - 1;
	e->args_size = 0;
	if (len > 0 && len <= ARGS_MAX && bpf_probe_read_user(e->args, len, (void *)arg_start) == 0)
		e->args_size = len;
	gadget_submit_buf(ctx, &events, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
