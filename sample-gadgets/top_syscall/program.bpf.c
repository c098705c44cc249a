// SPDX-License-Identifier: GPL-2.0
/* top_syscall: system calls per process and syscall number, drained periodically. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/maps.bpf.h>
#include <gadget/mntns.h>
#include <gadget/types.h>

struct syscall_key {
	gadget_mntns_id mntns_id;
	gadget_pid pid;
	gadget_comm comm[TASK_COMM_LEN];
	gadget_syscall syscall_raw;
};

struct syscall_stats {
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct syscall_key);
	__type(value, struct syscall_stats);
} stats SEC(".maps");

GADGET_MAPITER(syscalls, stats);

SEC("raw_tracepoint/sys_enter")
int ig_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	static const struct syscall_stats zero;
	struct syscall_key key = {};
	struct syscall_stats *s;

	if (gadget_should_discard_data_current())
		return 0;
	key.mntns_id = gadget_get_current_mntns_id();
	key.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	key.syscall_raw = ctx->args[1];
	s = bpf_map_lookup_or_try_init(&stats, &key, &zero);
	if (s)
		__sync_fetch_and_add(&s->count, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
