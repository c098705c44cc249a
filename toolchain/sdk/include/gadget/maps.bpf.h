/* SPDX-License-Identifier: Apache-2.0 */
/* gadgetsmith SDK: map helpers. The errno constants (EEXIST, ENOENT ...) come along. */
#ifndef __GADGET_MAPS_BPF_H
#define __GADGET_MAPS_BPF_H

#include <bpf/bpf_helpers.h>
#include <asm-generic/errno.h>

#ifndef EEXIST
#define EEXIST 17
#endif

/* Look `key` up; if absent, insert `init` (unless another CPU won the race) and look
 * it up again. Returns NULL only when the map is full. */
static __always_inline void *bpf_map_lookup_or_try_init(void *map, const void *key,
							const void *init)
{
	void *val = bpf_map_lookup_elem(map, key);
	long err;

	if (val)
		return val;
	err = bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	if (err && err != -EEXIST)
		return 0;
	return bpf_map_lookup_elem(map, key);
}

#endif /* __GADGET_MAPS_BPF_H */
