/* SPDX-License-Identifier: Apache-2.0 */
/* gadgetsmith SDK: bit helpers for log2 histograms. */
#ifndef __GADGET_BITS_BPF_H
#define __GADGET_BITS_BPF_H

/* floor(log2(v)) for v > 0, 0 for v == 0; branch-free binary search over the bits. */
static __always_inline __u64 log2(__u32 v)
{
	__u32 shift, r;

	r = (v > 0xFFFF) << 4;
	v >>= r;
	shift = (v > 0xFF) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xF) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	r |= (v >> 1);
	return r;
}

static __always_inline __u64 log2l(__u64 v)
{
	__u32 hi = v >> 32;

	return hi ? log2(hi) + 32 : log2((__u32)v);
}

/* Histogram slot: 0 for 0, otherwise floor(log2(v)) + 1 (values above 32 bits included). */
static __always_inline __u64 get_slot_idx(__u64 v)
{
	return v ? log2l(v) + 1 : 0;
}

#endif /* __GADGET_BITS_BPF_H */
