/* SPDX-License-Identifier: Apache-2.0 */
/* gadgetsmith SDK: kernel stacks. Store the id in a gadget_kernel_stack field; the
 * runtime reads the addresses from ig_kstack and symbolises them. Brings BPF_CORE_READ
 * and BPF_KPROBE along, as IG's header does. */
#ifndef __GADGET_KERNEL_STACK_MAP_H
#define __GADGET_KERNEL_STACK_MAP_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define GADGET_KERNEL_MAX_STACK_DEPTH 127
#define GADGET_KERNEL_STACK_MAP_MAX_ENTRIES 10000

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, GADGET_KERNEL_MAX_STACK_DEPTH * sizeof(__u64));
	__uint(max_entries, GADGET_KERNEL_STACK_MAP_MAX_ENTRIES);
} ig_kstack SEC(".maps");

static __always_inline long gadget_get_kernel_stack(void *ctx)
{
	return bpf_get_stackid(ctx, &ig_kstack, BPF_F_FAST_STACK_CMP);
}

#endif /* __GADGET_KERNEL_STACK_MAP_H */
