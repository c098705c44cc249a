// SPDX-License-Identifier: Apache-2.0
/*
 * BPF-side API of libbpf >= 1.2/1.3 that Debian's libbpf 1.1 headers lack, each giving a
 * value the test checks in the decoded event:
 *   bpf_for, bpf_repeat, bpf_for_each(num, ...)   open-coded iterators (sum, count)
 *   bpf_ksym_exists                               a kfunc this kernel has, one it lacks
 *   bpf_core_cast                                 read task->pid through a cast pointer
 *   BPF_CORE_WRITE_BITFIELD                       bitfields of a struct bpf_insn
 *   __arg_ctx                                     a global function taking the context
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <gadget/buffer.h>
#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/types.h>

struct event {
	gadget_tid tid;
	__s32 for_sum;
	__s32 repeat_count;
	__s32 each_sum;
	__u8 has_task_from_pid;
	__u8 has_missing_kfunc;
	__u8 bits_read;
	__u8 pad;
	__u32 cast_pid;
	__s64 global_ret;
};

GADGET_TRACER_MAP(events, 1024 * 64);
GADGET_TRACER(api, events, event);

extern struct task_struct *bpf_task_from_pid(s32 pid) __weak __ksym;
extern void igsdk_kfunc_that_does_not_exist(void) __weak __ksym;

__noinline int igsdk_global(void *ctx __arg_ctx, int x)
{
	return ctx ? x * 2 : -1;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int api_getppid(struct trace_event_raw_sys_enter *ctx)
{
	struct task_struct *task = bpf_core_cast((void *)bpf_get_current_task(), struct task_struct);
	struct bpf_insn insn = {}; /* a kernel type with bitfields: dst_reg:4, src_reg:4 */
	struct event *e;
	int i, *v;

	if (gadget_should_discard_data_current())
		return 0;
	e = gadget_reserve_buf(&events, sizeof(*e));
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	e->tid = (__u32)bpf_get_current_pid_tgid();
	bpf_for(i, 0, 10)
		e->for_sum += i;
	bpf_repeat(7)
		e->repeat_count++;
	bpf_for_each(num, v, 100, 104)
		e->each_sum += *v;
	e->has_task_from_pid = bpf_ksym_exists(bpf_task_from_pid);
	e->has_missing_kfunc = bpf_ksym_exists(igsdk_kfunc_that_does_not_exist);
	insn.code = 0xff;
	BPF_CORE_WRITE_BITFIELD(&insn, src_reg, 5);
	BPF_CORE_WRITE_BITFIELD(&insn, dst_reg, 9);
	e->bits_read = BPF_CORE_READ_BITFIELD(&insn, src_reg) * 16 + insn.dst_reg;
	e->cast_pid = task->pid;
	e->global_ret = igsdk_global(ctx, 21);
	gadget_submit_buf(ctx, &events, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
