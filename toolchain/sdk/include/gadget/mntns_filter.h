/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gadgetsmith SDK: filtering by mount namespace (i.e. by container).
 *
 * The runtime replaces gadget_mntns_filter_map with its own map of the selected
 * containers' mount namespaces and sets gadget_filter_by_mntns before loading, so the
 * map's shape (hash, u64 key, u32 value, 1024 entries) is part of the ABI.
 *
 * Like IG's header it also brings <bpf/bpf_core_read.h> and <bpf/bpf_tracing.h>: gadgets
 * that include only <gadget/filter.h> or this file use BPF_CORE_READ and BPF_KPROBE.
 */
#ifndef __GADGET_MNTNS_FILTER_H
#define __GADGET_MNTNS_FILTER_H

#include <gadget/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

const volatile bool gadget_filter_by_mntns = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, gadget_mntns_id);
	__type(value, __u32);
} gadget_mntns_filter_map SEC(".maps");

/* True when filtering is on and `mntns_id` is not one of the selected namespaces. */
static __always_inline bool gadget_should_discard_mntns_id(gadget_mntns_id mntns_id)
{
	return gadget_filter_by_mntns &&
	       !bpf_map_lookup_elem(&gadget_mntns_filter_map, &mntns_id);
}

#endif /* __GADGET_MNTNS_FILTER_H */
