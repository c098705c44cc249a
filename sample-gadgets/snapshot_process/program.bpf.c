// SPDX-License-Identifier: GPL-2.0
/* snapshot_process: the processes (optionally threads) running right now. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/types.h>

const volatile bool show_threads = false;
GADGET_PARAM(show_threads);

GADGET_ITER(processes, gadget_process, ig_snap_proc);

SEC("iter/task")
int ig_snap_proc(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct task_struct *parent;
	struct gadget_process p = {};

	if (!task)
		return 0;
	p.pid = BPF_CORE_READ(task, tgid);
	p.tid = BPF_CORE_READ(task, pid);
	if (!show_threads && p.pid != p.tid)
		return 0;
	BPF_CORE_READ_STR_INTO(&p.comm, task, comm);
	p.mntns_id = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	p.creds.uid = BPF_CORE_READ(task, cred, uid.val);
	p.creds.gid = BPF_CORE_READ(task, cred, gid.val);
	parent = BPF_CORE_READ(task, real_parent);
	if (parent) {
		BPF_CORE_READ_STR_INTO(&p.parent.comm, parent, comm);
		p.parent.pid = BPF_CORE_READ(parent, tgid);
		p.parent.tid = BPF_CORE_READ(parent, pid);
	}
	if (gadget_should_discard_data(p.mntns_id, p.pid, p.tid, p.comm, p.creds.uid,
				       p.creds.gid))
		return 0;
	bpf_seq_write(seq, &p, sizeof(p));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
