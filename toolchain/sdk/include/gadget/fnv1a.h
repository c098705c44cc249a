/* SPDX-License-Identifier: Apache-2.0 */
/* gadgetsmith SDK: FNV-1a hashing (32 and 64 bit), values fed in little-endian order. */
#ifndef __GADGET_FNV1A_H
#define __GADGET_FNV1A_H

#define GADGET_FNV32_OFFSET 2166136261U
#define GADGET_FNV32_PRIME 16777619U
#define GADGET_FNV64_OFFSET 14695981039346656037ULL
#define GADGET_FNV64_PRIME 1099511628211ULL

static __always_inline __u32 fnv_32a_init(void) { return GADGET_FNV32_OFFSET; }
static __always_inline __u64 fnv_64a_init(void) { return GADGET_FNV64_OFFSET; }

static __always_inline __u32 fnv_32a_update_u8(__u32 h, __u8 b)
{
	return (h ^ b) * GADGET_FNV32_PRIME;
}

static __always_inline __u64 fnv_64a_update_u8(__u64 h, __u8 b)
{
	return (h ^ b) * GADGET_FNV64_PRIME;
}

#define __GADGET_FNV_BYTES(bits, width)                                              \
	static __always_inline __u##bits fnv_##bits##a_update_u##width(__u##bits h,    \
								      __u##width v) \
	{                                                                              \
		for (int i = 0; i < (width) / 8; i++)                                  \
			h = fnv_##bits##a_update_u8(h, (__u8)(v >> (8 * i)));         \
		return h;                                                              \
	}

__GADGET_FNV_BYTES(32, 16)
__GADGET_FNV_BYTES(32, 32)
__GADGET_FNV_BYTES(32, 64)
__GADGET_FNV_BYTES(64, 16)
__GADGET_FNV_BYTES(64, 32)
__GADGET_FNV_BYTES(64, 64)

#endif /* __GADGET_FNV1A_H */
