// SPDX-License-Identifier: Apache-2.0
/*
 * read_full_path_of_open_file_fd() as IG's trace_open uses it: the path of the fd
 * openat returned. Includes only what trace_open includes.
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/buffer.h>
#include <gadget/common.h>
#include <gadget/filesystem.h>
#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/types.h>

struct open_event {
	struct gadget_process proc;
	__s32 fd;
	char fpath[GADGET_PATH_MAX];
};

GADGET_TRACER_MAP(opens, 1024 * 256);
GADGET_TRACER(open, opens, open_event);

SEC("tracepoint/syscalls/sys_exit_openat")
int paths_openat_x(struct syscall_trace_exit *ctx)
{
	struct open_event *e;

	if (ctx->ret < 0 || gadget_should_discard_data_current())
		return 0;
	e = gadget_reserve_buf(&opens, sizeof(*e));
	if (!e)
		return 0;
	gadget_process_populate(&e->proc);
	e->fd = ctx->ret;
	if (read_full_path_of_open_file_fd(ctx->ret, e->fpath, sizeof(e->fpath)) <= 0)
		e->fpath[0] = '\0';
	gadget_submit_buf(ctx, &opens, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
