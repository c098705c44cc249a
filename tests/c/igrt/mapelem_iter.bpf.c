// SPDX-License-Identifier: GPL-2.0
/* For tests/integration/test_ig_runtime.py: a GADGET_ITER_TARGET_MAP iterator
 * (iter/bpf_map_elem over a hash map of levels), which this kernel refuses with EPERM
 * before verifying it ("processed 0 insns", bpftool prog load says the same). */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/macros.h>
#include <gadget/types.h>

struct igc_slot { __u32 id; };
struct igc_level { __u64 value; };
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct igc_slot);
	__type(value, struct igc_level);
} levels SEC(".maps");

struct igc_row { __u32 id; __u32 pad; __u64 value; };

GADGET_ITER(rows, igc_row, dump_levels);
GADGET_ITER_TARGET_MAP(dump_levels, levels);

SEC("iter/bpf_map_elem")
int dump_levels(struct bpf_iter__bpf_map_elem *ctx)
{
	struct igc_slot *k = ctx->key;
	struct igc_level *v = ctx->value;
	if (!k || !v)
		return 0;
	struct igc_row r = {.id = k->id, .value = v->value};
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
