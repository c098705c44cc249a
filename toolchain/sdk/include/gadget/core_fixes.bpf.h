/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gadgetsmith SDK: CO-RE shims for kernel structures that changed over time.
 * Each helper picks the layout the running kernel has through CO-RE existence checks
 * on "flavour" structs (the ___suffix is ignored when matching kernel types).
 */
#ifndef __GADGET_CORE_FIXES_BPF_H
#define __GADGET_CORE_FIXES_BPF_H

#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

/* Calling this makes the verifier reject the program if the call survives dead-code
 * elimination: use it on branches CO-RE should have made unreachable. */
#define bpf_core_unreachable ((void (*)(void))0xbad2310)

/* task->__state (5.14+) vs task->state */
struct task_struct___gs_old {
	long state;
} __attribute__((preserve_access_index));

static __always_inline __s64 get_task_state(void *task)
{
	struct task_struct___gs_old *old = task;

	if (bpf_core_field_exists(old->state))
		return BPF_CORE_READ(old, state);
	return BPF_CORE_READ((struct task_struct *)task, __state);
}

/* bio->bi_bdev->bd_disk (5.12+) vs bio->bi_disk */
struct bio___gs_old {
	struct gendisk *bi_disk;
} __attribute__((preserve_access_index));

static __always_inline struct gendisk *get_gendisk(void *bio)
{
	struct bio___gs_old *old = bio;

	if (bpf_core_field_exists(old->bi_disk))
		return BPF_CORE_READ(old, bi_disk);
	return BPF_CORE_READ((struct bio *)bio, bi_bdev, bd_disk);
}

/* request->q->disk (5.16+) vs request->rq_disk */
struct request___gs_old {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

struct request_queue___gs_new {
	struct gendisk *disk;
} __attribute__((preserve_access_index));

struct request___gs_new {
	struct request_queue___gs_new *q;
} __attribute__((preserve_access_index));

static __always_inline struct gendisk *get_disk(void *request)
{
	struct request___gs_old *old = request;

	if (bpf_core_field_exists(old->rq_disk))
		return BPF_CORE_READ(old, rq_disk);
	return BPF_CORE_READ((struct request___gs_new *)request, q, disk);
}

struct trace_event_raw_block_rq_completion___gs {
	dev_t dev;
} __attribute__((preserve_access_index));

static __always_inline bool has_block_rq_completion(void)
{
	return bpf_core_type_exists(struct trace_event_raw_block_rq_completion___gs);
}

/* struct renamedata gained old_mnt_userns in 5.12 and replaced it by old_mnt_idmap in 6.3 */
struct renamedata___gs_userns {
	struct user_namespace *old_mnt_userns;
} __attribute__((preserve_access_index));

static __always_inline bool renamedata_has_old_mnt_userns_field(void)
{
	return bpf_core_field_exists(struct renamedata___gs_userns, old_mnt_userns);
}

struct trace_event_raw_kfree___gs {
	const void *ptr;
} __attribute__((preserve_access_index));

struct trace_event_raw_kmem_cache_free___gs {
	const void *ptr;
} __attribute__((preserve_access_index));

static __always_inline bool has_kfree(void)
{
	return bpf_core_type_exists(struct trace_event_raw_kfree___gs);
}

static __always_inline bool has_kmem_cache_free(void)
{
	return bpf_core_type_exists(struct trace_event_raw_kmem_cache_free___gs);
}

/* tcp:tcp_retransmit_skb used the shared sk_skb event class before getting its own */
struct trace_event_raw_tcp_event_sk_skb___gs {
	const void *skbaddr;
	const void *skaddr;
} __attribute__((preserve_access_index));

struct trace_event_raw_tcp_retransmit_skb___gs {
	const void *skbaddr;
	const void *skaddr;
} __attribute__((preserve_access_index));

static __always_inline const void *gadget_get_tcp_retransmit_skb_skbaddr(void *ctx)
{
	if (bpf_core_type_exists(struct trace_event_raw_tcp_retransmit_skb___gs))
		return BPF_CORE_READ((struct trace_event_raw_tcp_retransmit_skb___gs *)ctx, skbaddr);
	return BPF_CORE_READ((struct trace_event_raw_tcp_event_sk_skb___gs *)ctx, skbaddr);
}

static __always_inline const void *gadget_get_tcp_retransmit_skb_skaddr(void *ctx)
{
	if (bpf_core_type_exists(struct trace_event_raw_tcp_retransmit_skb___gs))
		return BPF_CORE_READ((struct trace_event_raw_tcp_retransmit_skb___gs *)ctx, skaddr);
	return BPF_CORE_READ((struct trace_event_raw_tcp_event_sk_skb___gs *)ctx, skaddr);
}

/* inode change time, in nanoseconds since the epoch. Three layouts: i_ctime (< 6.6),
 * __i_ctime (6.6 .. 6.10), i_ctime_sec + i_ctime_nsec (6.11+, where the top bit of the
 * nanoseconds is the I_CTIME_QUERIED flag and must be masked). */
struct inode___gs_ctime_old {
	struct timespec64 i_ctime;
} __attribute__((preserve_access_index));

struct inode___gs_ctime_mid {
	struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));

struct inode___gs_ctime_new {
	time64_t i_ctime_sec;
	__u32 i_ctime_nsec;
} __attribute__((preserve_access_index));

#define GADGET_I_CTIME_QUERIED (1U << 31)

static __always_inline __u64 gadget_get_ctime_nanosec_from_inode(void *inode)
{
	__u64 sec, nsec;

	if (bpf_core_field_exists(struct inode___gs_ctime_new, i_ctime_nsec)) {
		struct inode___gs_ctime_new *i = inode;

		sec = BPF_CORE_READ(i, i_ctime_sec);
		nsec = BPF_CORE_READ(i, i_ctime_nsec) & ~GADGET_I_CTIME_QUERIED;
	} else if (bpf_core_field_exists(struct inode___gs_ctime_mid, __i_ctime)) {
		struct inode___gs_ctime_mid *i = inode;

		sec = BPF_CORE_READ(i, __i_ctime.tv_sec);
		nsec = BPF_CORE_READ(i, __i_ctime.tv_nsec);
	} else {
		struct inode___gs_ctime_old *i = inode;

		sec = BPF_CORE_READ(i, i_ctime.tv_sec);
		nsec = BPF_CORE_READ(i, i_ctime.tv_nsec);
	}
	return sec * 1000000000ULL + nsec;
}

/* Syscall number and arguments from the pt_regs a syscall wrapper received.
 * Needs __TARGET_ARCH_x86 or __TARGET_ARCH_arm64 (gadget build defines it). */
static __always_inline long gadget_get_syscall_nr(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	return BPF_CORE_READ(regs, orig_ax);
#elif defined(__TARGET_ARCH_arm64)
	return BPF_CORE_READ(regs, syscallno);
#else
	return -1;
#endif
}

static __always_inline __u64 gadget_get_syscall_arg(struct pt_regs *regs, int n)
{
#if defined(__TARGET_ARCH_x86) || defined(__TARGET_ARCH_arm64)
	switch (n) {
	case 1: return PT_REGS_PARM1_CORE_SYSCALL(regs);
	case 2: return PT_REGS_PARM2_CORE_SYSCALL(regs);
	case 3: return PT_REGS_PARM3_CORE_SYSCALL(regs);
	case 4: return PT_REGS_PARM4_CORE_SYSCALL(regs);
	case 5: return PT_REGS_PARM5_CORE_SYSCALL(regs);
	case 6: return PT_REGS_PARM6_CORE_SYSCALL(regs);
	}
#endif
	return 0;
}

#endif /* __GADGET_CORE_FIXES_BPF_H */
