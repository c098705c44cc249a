/* SPDX-License-Identifier: Apache-2.0 */
/* A tracer whose second program the verifier rejects: the index into a 16-byte map
 * value is masked with 31, so the write may land past its end. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/types.h>

struct event {
	gadget_timestamp timestamp_raw;
	__u32 value;
};

GADGET_TRACER_MAP(events, 4096);
GADGET_TRACER(rejected, events, event);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, char[16]);
} scratch SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int fine(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpgid")
int out_of_bounds(void *ctx)
{
	__u32 zero = 0;
	char *v = bpf_map_lookup_elem(&scratch, &zero);

	if (!v)
		return 0;
	v[bpf_get_prandom_u32() & 31] = 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
