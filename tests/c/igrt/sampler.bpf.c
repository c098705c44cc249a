/* SPDX-License-Identifier: Apache-2.0 */
/* CPU samples as IG's profile_cpu takes them: a perf_event program on every CPU counts
 * samples per (process, kernel stack, user stack) in a map iterator's hash map. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/common.h>
#include <gadget/filter.h>
#include <gadget/kernel_stack_map.h>
#include <gadget/macros.h>
#include <gadget/types.h>
#include <gadget/user_stack_map.h>

/* as in profile_cpu, the user stack's id is part of the key and the rest of the user
 * stack (which differs from sample to sample: its timestamp) the value's */
struct key_t {
	struct gadget_process proc;
	gadget_kernel_stack kern_stack_raw;
	__u32 user_stack_id;
};

struct value_t {
	__u64 samples;
	struct gadget_user_stack user_stack;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct key_t);
	__type(value, struct value_t);
} counts SEC(".maps");

GADGET_MAPITER(samples, counts);

struct scratch_t {
	struct key_t key;
	struct value_t value;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch_t);
} scratch SEC(".maps");

SEC("perf_event/sampler")
int sample(struct bpf_perf_event_data *ctx)
{
	__u32 zero = 0;
	struct scratch_t *s;
	struct value_t *v;

	if (gadget_should_discard_data_current())
		return 0;
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	__builtin_memset(s, 0, sizeof(*s));
	gadget_process_populate(&s->key.proc);
	s->key.kern_stack_raw = gadget_get_kernel_stack(ctx);
	gadget_get_user_stack(ctx, &s->value.user_stack);
	s->key.user_stack_id = s->value.user_stack.stack_id;
	v = bpf_map_lookup_elem(&counts, &s->key);
	if (v) {
		__sync_fetch_and_add(&v->samples, 1);
		return 0;
	}
	s->value.samples = 1;
	bpf_map_update_elem(&counts, &s->key, &s->value, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
