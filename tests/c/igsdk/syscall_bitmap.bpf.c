// SPDX-License-Identifier: Apache-2.0
/*
 * The indexing pattern of IG's advise_seccomp: a 32-bit syscall number taken from the
 * raw tracepoint's 64-bit argument, bounds-checked, then used to index a map value.
 * clang 19 with the default BPF ISA (v1) indexes with the unchecked 64-bit register
 * masked to 9 bits, and the verifier refuses the access; the SDK builds for v3.
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/macros.h>
#include <gadget/maps.bpf.h>
#include <gadget/mntns.h>
#include <gadget/types.h>

#define NR_SYSCALLS 500

struct key_t {
	gadget_mntns_id mntns_id_raw;
	__u32 tgid;
	__u32 pad;
};

struct val_t {
	__u8 syscalls[NR_SYSCALLS + 1];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct key_t);
	__type(value, struct val_t);
} seen SEC(".maps");

GADGET_MAPITER(syscalls, seen);

const volatile __u32 only_tgid = 0;
GADGET_PARAM(only_tgid);

const struct val_t empty = {};

SEC("raw_tracepoint/sys_enter")
int igsdk_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	struct key_t key = {};
	struct val_t *v;
	unsigned int id = ctx->args[1];

	key.tgid = bpf_get_current_pid_tgid() >> 32;
	if (only_tgid && key.tgid != only_tgid)
		return 0;
	if (id >= NR_SYSCALLS)
		return 0;
	key.mntns_id_raw = gadget_get_current_mntns_id();
	v = bpf_map_lookup_or_try_init(&seen, &key, &empty);
	if (!v)
		return 0;
	v->syscalls[id] = 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
