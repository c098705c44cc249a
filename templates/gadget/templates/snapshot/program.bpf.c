// SPDX-License-Identifier: GPL-2.0
/* {{ cookiecutter.name }}: {{ cookiecutter.description | replace('*/', '* /') }}.
 *
 * A snapshotter: a task iterator visits every task of the system once per run and writes
 * one record per process (its main thread). Start editing at the lines marked EDIT.
 * Build and run: gadget build . && sudo gadget run . --host
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/types.h>

/* EDIT: one record. Each member is a field of the data source; gadget_* types get derived
 * fields (uid -> user, gid -> group: the names). Describe new fields in gadget.yaml. */
struct process {
	gadget_mntns_id mntns_id;
	gadget_pid pid;
	gadget_ppid ppid;
	gadget_comm comm[TASK_COMM_LEN];
	gadget_uid uid;
	gadget_gid gid;
	__u32 threads;
	bool kernel;
};

/* EDIT: a param, `gadget run . -p kernel-threads=true`; see gadget.yaml */
const volatile bool kernel_threads = false;
GADGET_PARAM(kernel_threads);

/* the data source "{{ cookiecutter.name }}": records of struct process from the program */
GADGET_SNAPSHOTTER({{ cookiecutter.name }}, process, {{ cookiecutter.name }}_tasks);

SEC("iter/task")
int {{ cookiecutter.name }}_tasks(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	struct process p = {};

	if (!task)
		return 0; /* the end of the walk */
	p.pid = BPF_CORE_READ(task, tgid);
	if (p.pid != BPF_CORE_READ(task, pid))
		return 0; /* a thread other than the main one */
	p.kernel = BPF_CORE_READ(task, mm) == NULL;
	if (p.kernel && !kernel_threads)
		return 0;
	p.ppid = BPF_CORE_READ(task, real_parent, tgid);
	BPF_CORE_READ_STR_INTO(&p.comm, task, comm);
	p.mntns_id = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	p.uid = BPF_CORE_READ(task, cred, uid.val);
	p.gid = BPF_CORE_READ(task, cred, gid.val);
	p.threads = BPF_CORE_READ(task, signal, nr_threads);

	/* the common filters: selected containers (mount namespaces), pid, uid, comm ... */
	if (gadget_should_discard_data(p.mntns_id, p.pid, p.pid, p.comm, p.uid, p.gid))
		return 0;
	bpf_seq_write(ctx->meta->seq, &p, sizeof(p));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
