/* SPDX-License-Identifier: Apache-2.0 */
/* A latency-like histogram as IG's profile_* gadgets keep one: a map iterator whose value
 * is an array of gadget_histogram_slot__u32, printed as text by metrics.print. Each getpid
 * of the thread `targ_tid` counts in slot 3 (4 -> 8), each getppid in slot 1 (1 -> 2);
 * the key is the syscall's class (`kind`, a metrics key: one histogram per class) and a
 * field that is no key (`other`, summed over). */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/macros.h>
#include <gadget/types.h>

#define SLOTS 8

struct hist_key {
	__u32 kind;
	__u32 other;
};

struct hist_value {
	gadget_histogram_slot__u32 latency[SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct hist_key);
	__type(value, struct hist_value);
} hists SEC(".maps");

GADGET_MAPITER(lat, hists);

const volatile __u32 targ_tid = 0;
GADGET_PARAM(targ_tid);

static __always_inline int count(__u32 kind, __u32 other, int slot)
{
	struct hist_key key = { .kind = kind, .other = other };
	static const struct hist_value zero;
	struct hist_value *v;

	if ((__u32)bpf_get_current_pid_tgid() != targ_tid)
		return 0;
	v = bpf_map_lookup_elem(&hists, &key);
	if (!v) {
		bpf_map_update_elem(&hists, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&hists, &key);
		if (!v)
			return 0;
	}
	__sync_fetch_and_add(&v->latency[slot], 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
	return count(1, bpf_get_prandom_u32() & 1, 3);
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	return count(2, 0, 1);
}

char LICENSE[] SEC("license") = "GPL";
