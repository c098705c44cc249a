// SPDX-License-Identifier: Apache-2.0
/* get_path_str() in a task_file iterator, as IG's snapshot_file uses it. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/filesystem.h>
#include <gadget/macros.h>
#include <gadget/types.h>

struct file_entry {
	gadget_pid pid;
	__u32 fd;
	char path[256];
};

GADGET_ITER(files, file_entry, paths_files);

const volatile gadget_pid only_pid = 0;
GADGET_PARAM(only_pid);

SEC("iter/task_file")
int paths_files(struct bpf_iter__task_file *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct file_entry e = {};
	char *s;

	if (!task || !file || (only_pid && task->tgid != only_pid))
		return 0;
	e.pid = task->tgid;
	e.fd = ctx->fd;
	s = get_path_str(&file->f_path);
	if (s)
		bpf_probe_read_kernel_str(e.path, sizeof(e.path), s);
	bpf_seq_write(seq, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
