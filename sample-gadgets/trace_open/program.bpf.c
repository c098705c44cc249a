// SPDX-License-Identifier: GPL-2.0
/* trace_open: files opened with open(2)/openat(2), with the result. Tracepoints only. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include <gadget/buffer.h>
#include <gadget/common.h>
#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/types.h>

#define NAME_MAX 255

struct event {
	gadget_timestamp timestamp_raw;
	struct gadget_process proc;
	gadget_errno error_raw;
	__u32 fd;
	gadget_file_flags flags_raw;
	gadget_file_mode mode_raw;
	char fname[NAME_MAX];
};

struct open_args {
	const char *fname;
	__u32 flags;
	__u32 mode;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct open_args);
} start SEC(".maps");

GADGET_TRACER_MAP(events, 1024 * 256);
GADGET_TRACER(open, events, event);

const volatile bool targ_failed = false;
GADGET_PARAM(targ_failed);

static __always_inline int remember(const char *fname, __u32 flags, __u32 mode)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct open_args a = { .fname = fname, .flags = flags, .mode = mode };

	if (gadget_should_discard_data_current())
		return 0;
	bpf_map_update_elem(&start, &tid, &a, BPF_ANY);
	return 0;
}

static __always_inline int report(void *ctx, long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct open_args *a = bpf_map_lookup_elem(&start, &tid);
	struct event *e;

	if (!a)
		return 0;
	if (targ_failed && ret >= 0)
		goto out;
	e = gadget_reserve_buf(&events, sizeof(*e));
	if (!e)
		goto out;
	e->timestamp_raw = bpf_ktime_get_boot_ns();
	gadget_process_populate(&e->proc);
	e->error_raw = ret < 0 ? -ret : 0;
	e->fd = ret >= 0 ? ret : 0;
	e->flags_raw = a->flags;
	e->mode_raw = a->mode;
	bpf_probe_read_user_str(e->fname, sizeof(e->fname), a->fname);
	gadget_submit_buf(ctx, &events, e, sizeof(*e));
out:
	bpf_map_delete_elem(&start, &tid);
	return 0;
}

#ifndef __TARGET_ARCH_arm64 /* arm64 has no open(2), only openat(2) */
SEC("tracepoint/syscalls/sys_enter_open")
int ig_open_e(struct trace_event_raw_sys_enter *ctx)
{
	return remember((const char *)ctx->args[0], ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_open")
int ig_open_x(struct trace_event_raw_sys_exit *ctx)
{
	return report(ctx, ctx->ret);
}
#endif

SEC("tracepoint/syscalls/sys_enter_openat")
int ig_openat_e(struct trace_event_raw_sys_enter *ctx)
{
	return remember((const char *)ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int ig_openat_x(struct trace_event_raw_sys_exit *ctx)
{
	return report(ctx, ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
