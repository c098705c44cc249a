// SPDX-License-Identifier: Apache-2.0
/*
 * BPF_UPROBE / BPF_URETPROBE (libbpf >= 1.2) as IG's trace_malloc and deadlock use
 * them, with all six register arguments. @TARGET@ is replaced by the test with the
 * absolute path of the library it builds.
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <gadget/buffer.h>
#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/types.h>

enum call_kind { CALL_ENTRY, CALL_RETURN };

struct event {
	gadget_tid tid;
	enum call_kind kind_raw;
	__s64 a, b, c, d, e, f;
	__s64 ret;
};

GADGET_TRACER_MAP(events, 1024 * 64);
GADGET_TRACER(calls, events, event);

SEC("uprobe/@TARGET@:igsdk_add6")
int BPF_UPROBE(on_add6, long a, long b, long c, long d, long e, long f)
{
	struct event *ev;

	if (gadget_should_discard_data_current())
		return 0;
	ev = gadget_reserve_buf(&events, sizeof(*ev));
	if (!ev)
		return 0;
	ev->tid = (__u32)bpf_get_current_pid_tgid();
	ev->kind_raw = CALL_ENTRY;
	ev->a = a, ev->b = b, ev->c = c, ev->d = d, ev->e = e, ev->f = f;
	ev->ret = 0;
	gadget_submit_buf(ctx, &events, ev, sizeof(*ev));
	return 0;
}

SEC("uretprobe/@TARGET@:igsdk_add6")
int BPF_URETPROBE(on_add6_ret, long ret)
{
	struct event *ev;

	if (gadget_should_discard_data_current())
		return 0;
	ev = gadget_reserve_buf(&events, sizeof(*ev));
	if (!ev)
		return 0;
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->tid = (__u32)bpf_get_current_pid_tgid();
	ev->kind_raw = CALL_RETURN;
	ev->ret = ret;
	gadget_submit_buf(ctx, &events, ev, sizeof(*ev));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
