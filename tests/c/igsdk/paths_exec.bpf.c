// SPDX-License-Identifier: Apache-2.0
/*
 * get_path_str() four times in one program (cwd, root, exe, parent's exe), as IG's
 * trace_exec calls it. BPF_CORE_READ comes through the SDK headers, as there.
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/buffer.h>
#include <gadget/common.h>
#include <gadget/filesystem.h>
#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/types.h>

struct exec_event {
	struct gadget_process proc;
	char cwd[GADGET_PATH_MAX];
	char root[GADGET_PATH_MAX];
	char exepath[GADGET_PATH_MAX];
	char parent_exepath[GADGET_PATH_MAX];
};

GADGET_TRACER_MAP(execs, 1024 * 256);
GADGET_TRACER(exec, execs, exec_event);

SEC("tracepoint/sched/sched_process_exec")
int paths_exec(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct task_struct *parent = BPF_CORE_READ(task, real_parent);
	struct fs_struct *fs = BPF_CORE_READ(task, fs);
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	struct file *pexe = BPF_CORE_READ(parent, mm, exe_file);
	struct exec_event *e;
	char *s;

	if (gadget_should_discard_data_current())
		return 0;
	e = gadget_reserve_buf(&execs, sizeof(*e));
	if (!e)
		return 0;
	gadget_process_populate(&e->proc);
	s = get_path_str(__builtin_preserve_access_index(&fs->pwd));
	bpf_probe_read_kernel_str(e->cwd, sizeof(e->cwd), s);
	s = get_path_str(__builtin_preserve_access_index(&fs->root));
	bpf_probe_read_kernel_str(e->root, sizeof(e->root), s);
	s = get_path_str(__builtin_preserve_access_index(&exe->f_path));
	bpf_probe_read_kernel_str(e->exepath, sizeof(e->exepath), s);
	s = get_path_str(__builtin_preserve_access_index(&pexe->f_path));
	bpf_probe_read_kernel_str(e->parent_exepath, sizeof(e->parent_exepath), s);
	gadget_submit_buf(ctx, &execs, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
