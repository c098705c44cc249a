/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gadgetsmith SDK: user-space stacks.
 *
 * Fill a `struct gadget_user_stack` with gadget_get_user_stack(ctx, &ev->ustack) from
 * kprobes/uprobes (struct pt_regs *ctx) or perf events (struct bpf_perf_event_data *ctx),
 * or call gadget_get_user_stack_from_tracepoint() from tracepoints. The runtime
 * symbolises the addresses in ig_ustack using the executable identity recorded here.
 *
 * ig_build_id is declared with max_entries 0: the runtime sizes it from
 * ig_build_id_max_entries (the `<map>_max_entries` convention) before loading.
 */
#ifndef __GADGET_USER_STACK_MAP_H
#define __GADGET_USER_STACK_MAP_H

#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <gadget/macros.h>
#include <gadget/types.h>
#include <gadget/fnv1a.h>
#include <gadget/core_fixes.bpf.h>

#define GADGET_USER_MAX_STACK_DEPTH 127
#define GADGET_USER_STACK_MAP_MAX_ENTRIES 10000

const volatile bool collect_ustack = false;
GADGET_PARAM(collect_ustack);
const volatile bool collect_build_id = false;
GADGET_PARAM(collect_build_id);
const volatile bool collect_otel_stack = false;
GADGET_PARAM(collect_otel_stack);
const volatile int ig_build_id_max_entries = 1024;
GADGET_PARAM(ig_build_id_max_entries);

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, GADGET_USER_MAX_STACK_DEPTH * sizeof(__u64));
	__uint(max_entries, GADGET_USER_STACK_MAP_MAX_ENTRIES);
} ig_ustack SEC(".maps");

struct gadget_build_id_stack {
	struct bpf_stack_build_id frames[GADGET_USER_MAX_STACK_DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 0); /* set at load time from ig_build_id_max_entries */
	__type(key, __u32);
	__type(value, struct gadget_build_id_stack);
} ig_build_id SEC(".maps");

static const struct gadget_build_id_stack ig_empty_build_id = {};

/* Parameters shared with an external OpenTelemetry stack unwinder. */
struct gadget_otel_params {
	__u64 correlation_id;
	__u64 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gadget_otel_params);
} otel_generic_params SEC(".maps");

/* Filled by an external unwinder if one is present; empty otherwise. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, int());
} otel_tc_kprobe SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, int());
} otel_tc_perf SEC(".maps");

/* inode modification time: i_mtime (< 6.6), __i_mtime (6.6 .. 6.10), i_mtime_sec/nsec */
struct inode___gs_mtime_old {
	struct timespec64 i_mtime;
} __attribute__((preserve_access_index));

struct inode___gs_mtime_mid {
	struct timespec64 __i_mtime;
} __attribute__((preserve_access_index));

struct inode___gs_mtime_new {
	time64_t i_mtime_sec;
	__u32 i_mtime_nsec;
} __attribute__((preserve_access_index));

/* A fourth historical layout kept the time in a struct timespec (32-bit era kernels). */
struct inode___gs_mtime_ts {
	struct {
		long tv_sec;
		long tv_nsec;
	} i_mtime;
} __attribute__((preserve_access_index));

static __always_inline void gadget_inode_get_mtime(struct inode *inode, __u64 *sec, __u32 *nsec)
{
	if (bpf_core_field_exists(struct inode___gs_mtime_new, i_mtime_nsec)) {
		*sec = BPF_CORE_READ((struct inode___gs_mtime_new *)inode, i_mtime_sec);
		*nsec = BPF_CORE_READ((struct inode___gs_mtime_new *)inode, i_mtime_nsec);
	} else if (bpf_core_field_exists(struct inode___gs_mtime_mid, __i_mtime)) {
		*sec = BPF_CORE_READ((struct inode___gs_mtime_mid *)inode, __i_mtime.tv_sec);
		*nsec = BPF_CORE_READ((struct inode___gs_mtime_mid *)inode, __i_mtime.tv_nsec);
	} else if (bpf_core_type_matches(struct inode___gs_mtime_old)) {
		*sec = BPF_CORE_READ((struct inode___gs_mtime_old *)inode, i_mtime.tv_sec);
		*nsec = BPF_CORE_READ((struct inode___gs_mtime_old *)inode, i_mtime.tv_nsec);
	} else {
		*sec = BPF_CORE_READ((struct inode___gs_mtime_ts *)inode, i_mtime.tv_sec);
		*nsec = BPF_CORE_READ((struct inode___gs_mtime_ts *)inode, i_mtime.tv_nsec);
	}
}

/* Identifies an address-space layout: FNV-1a over mm pointer, start_code, start_stack. */
static __always_inline __u32 gadget_get_base_addr_hash(struct task_struct *task)
{
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	__u32 h = fnv_32a_init();

	h = fnv_32a_update_u64(h, (__u64)mm);
	h = fnv_32a_update_u64(h, BPF_CORE_READ(mm, start_code));
	h = fnv_32a_update_u64(h, BPF_CORE_READ(mm, start_stack));
	return h;
}

static __always_inline void __gadget_fill_user_stack_identity(struct gadget_user_stack *us)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct inode *inode = BPF_CORE_READ(task, mm, exe_file, f_inode);
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	dev_t dev = BPF_CORE_READ(inode, i_sb, s_dev);

	us->major = dev >> 20;
	us->minor = dev & ((1U << 20) - 1);
	us->inode = BPF_CORE_READ(inode, i_ino);
	gadget_inode_get_mtime(inode, &us->mtime_sec, &us->mtime_nsec);
	us->base_addr_hash = gadget_get_base_addr_hash(task);
	us->tgid_level0 = BPF_CORE_READ(task, tgid);
	us->pid_level0 = BPF_CORE_READ(pid, numbers[0].nr);
	us->pidns_level0 = BPF_CORE_READ(pid, numbers[0].ns, ns.inum);
	if (level >= 1) {
		us->pid_level1 = BPF_CORE_READ(pid, numbers[1].nr);
		us->pidns_level1 = BPF_CORE_READ(pid, numbers[1].ns, ns.inum);
	}
	us->boot_timestamp = bpf_ktime_get_boot_ns();
}

static __always_inline void __gadget_collect_build_id(void *ctx, __u32 stack_id)
{
	struct gadget_build_id_stack *frames;

	if (!collect_build_id)
		return;
	bpf_map_update_elem(&ig_build_id, &stack_id, &ig_empty_build_id, BPF_NOEXIST);
	frames = bpf_map_lookup_elem(&ig_build_id, &stack_id);
	if (frames)
		bpf_get_stack(ctx, frames, sizeof(*frames), BPF_F_USER_STACK | BPF_F_USER_BUILD_ID);
}

static __always_inline void __gadget_user_stack_common(void *ctx, struct gadget_user_stack *us)
{
	long id;

	__builtin_memset(us, 0, sizeof(*us));
	if (!collect_ustack)
		return;
	id = bpf_get_stackid(ctx, &ig_ustack, BPF_F_USER_STACK | BPF_F_FAST_STACK_CMP);
	if (id < 0)
		return;
	us->stack_id = id;
	__gadget_fill_user_stack_identity(us);
	__gadget_collect_build_id(ctx, id);
}

static __always_inline void __gadget_user_stack_otel(void *tail_map, void *ctx,
						     struct gadget_user_stack *us)
{
	__u32 zero = 0;
	struct gadget_otel_params *p;

	if (!collect_otel_stack)
		return;
	p = bpf_map_lookup_elem(&otel_generic_params, &zero);
	if (!p)
		return;
	p->correlation_id = bpf_get_prandom_u32() | ((__u64)bpf_get_smp_processor_id() << 32);
	us->otel_correlation_id = p->correlation_id;
	bpf_tail_call(ctx, tail_map, 0);
}

static __always_inline void gadget_get_user_stack_from_kprobe(struct pt_regs *ctx,
							      struct gadget_user_stack *us)
{
	__gadget_user_stack_common(ctx, us);
	__gadget_user_stack_otel(&otel_tc_kprobe, ctx, us);
}

static __always_inline void gadget_get_user_stack_from_perf_event(struct bpf_perf_event_data *ctx,
								  struct gadget_user_stack *us)
{
	__gadget_user_stack_common(ctx, us);
	__gadget_user_stack_otel(&otel_tc_perf, ctx, us);
}

static __always_inline void gadget_get_user_stack_from_tracepoint(void *ctx,
								  struct gadget_user_stack *us)
{
	__gadget_user_stack_common(ctx, us);
	if (collect_otel_stack)
		bpf_core_unreachable(); /* the external unwinder cannot run from tracepoints */
}

#define gadget_get_user_stack(ctx, ustack)                                         \
	_Generic((ctx),                                                            \
		struct pt_regs *: gadget_get_user_stack_from_kprobe,              \
		struct bpf_perf_event_data *: gadget_get_user_stack_from_perf_event)( \
		ctx, ustack)

#endif /* __GADGET_USER_STACK_MAP_H */
