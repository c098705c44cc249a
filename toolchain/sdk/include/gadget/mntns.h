/* SPDX-License-Identifier: Apache-2.0 */
/* gadgetsmith SDK: mount namespace of the current task. */
#ifndef __GADGET_MNTNS_H
#define __GADGET_MNTNS_H

#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/* Inode number of the current task's mount namespace (0 if it has none). */
static __always_inline __u64 gadget_get_current_mntns_id(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
}

__attribute__((deprecated("use gadget_get_current_mntns_id()")))
static __always_inline __u64 gadget_get_mntns_id(void)
{
	return gadget_get_current_mntns_id();
}

#endif /* __GADGET_MNTNS_H */
