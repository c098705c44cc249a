// SPDX-License-Identifier: GPL-2.0
/* {{ cookiecutter.name }}: {{ cookiecutter.description | replace('*/', '* /') }}.
 *
 * A tracer: a pair of syscall tracepoints remembers the path at entry and sends one
 * event per call at exit, with the result, through a ring buffer. Start editing at the
 * lines marked EDIT. Build and run: gadget build . && sudo gadget run . --host
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include <gadget/buffer.h>
#include <gadget/common.h>
#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/types.h>

#define PATH_LEN 256

/* EDIT: one event. Each member is a field of the data source; the gadget_* types get
 * derived fields (timestamp_raw -> timestamp, error_raw -> error, proc -> proc.pid,
 * proc.comm, proc.creds.uid, proc.mntns_id, ...). Describe new fields in gadget.yaml. */
struct event {
	gadget_timestamp timestamp_raw;
	struct gadget_process proc;
	gadget_errno error_raw;
	char path[PATH_LEN];
};

/* the path a thread passed at entry, until its exit tracepoint */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32); /* thread id */
	__type(value, const char *);
} paths SEC(".maps");

/* the ring buffer (256 KiB) and the data source "{{ cookiecutter.name }}" it carries */
GADGET_TRACER_MAP(events, 1024 * 256);
GADGET_TRACER({{ cookiecutter.name }}, events, event);

/* EDIT: a param, set with `gadget run . -p failed=true`; gadget.yaml gives its key,
 * default and description */
const volatile bool failed_only = false;
GADGET_PARAM(failed_only);

static __always_inline int enter(const char *path)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	/* the common filters: selected containers (mount namespaces), pid, uid, comm ... */
	if (gadget_should_discard_data_current())
		return 0;
	bpf_map_update_elem(&paths, &tid, &path, BPF_ANY);
	return 0;
}

static __always_inline int leave(void *ctx, long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	const char **path = bpf_map_lookup_elem(&paths, &tid);
	struct event *e;

	if (!path)
		return 0;
	if (failed_only && ret == 0)
		goto out;
	e = gadget_reserve_buf(&events, sizeof(*e));
	if (!e)
		goto out; /* the ring buffer is full: counted as lost */
	e->timestamp_raw = bpf_ktime_get_boot_ns();
	gadget_process_populate(&e->proc);
	e->error_raw = ret < 0 ? -ret : 0;
	bpf_probe_read_user_str(e->path, sizeof(e->path), *path);
	gadget_submit_buf(ctx, &events, e, sizeof(*e));
out:
	bpf_map_delete_elem(&paths, &tid);
	return 0;
}

/* EDIT: the tracepoints (sudo ls /sys/kernel/tracing/events/syscalls lists them) */
#ifndef __TARGET_ARCH_arm64 /* arm64 has unlinkat(2) only */
SEC("tracepoint/syscalls/sys_enter_unlink")
int {{ cookiecutter.name }}_unlink_enter(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_exit_unlink")
int {{ cookiecutter.name }}_unlink_exit(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, ctx->ret);
}
#endif

SEC("tracepoint/syscalls/sys_enter_unlinkat")
int {{ cookiecutter.name }}_unlinkat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_exit_unlinkat")
int {{ cookiecutter.name }}_unlinkat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
