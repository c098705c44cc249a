// SPDX-License-Identifier: Apache-2.0
/*
 * BPF_KPROBE / BPF_KRETPROBE reached the way IG's gadgets reach them: trace_oomkill and
 * ttysnoop include <gadget/mntns_filter.h> (here) or <gadget/filter.h>, never
 * <bpf/bpf_tracing.h> itself; fsnotify has a six-argument BPF_KPROBE, which libbpf 1.1
 * cannot expand. The kernel stack header comes with its own includes too.
 * This kernel has no kprobes: the test only loads it (the verifier's verdict).
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/buffer.h>
#include <gadget/kernel_stack_map.h>
#include <gadget/macros.h>
#include <gadget/mntns_filter.h>
#include <gadget/types.h>

struct event {
	__u64 mask;
	__u32 cookie;
	__u32 len;
	gadget_kernel_stack kstack_raw;
	__s32 ret;
};

GADGET_TRACER_MAP(events, 1024 * 64);
GADGET_TRACER(inotify, events, event);

SEC("kprobe/inotify_handle_inode_event")
int BPF_KPROBE(kp_six, struct fsnotify_mark *mark, u32 mask, struct inode *inode,
	       struct inode *dir, const struct qstr *name, u32 cookie)
{
	struct event *e = gadget_reserve_buf(&events, sizeof(*e));

	if (!e)
		return 0;
	e->mask = mask;
	e->cookie = cookie;
	e->len = BPF_CORE_READ(name, len);
	e->kstack_raw = gadget_get_kernel_stack(ctx);
	e->ret = 0;
	gadget_submit_buf(ctx, &events, e, sizeof(*e));
	return 0;
}

SEC("kretprobe/inotify_handle_inode_event")
int BPF_KRETPROBE(kp_six_ret, int ret)
{
	struct event *e = gadget_reserve_buf(&events, sizeof(*e));

	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	e->ret = ret;
	gadget_submit_buf(ctx, &events, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
