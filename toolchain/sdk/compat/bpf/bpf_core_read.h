/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gadgetsmith compat layer over the system <bpf/bpf_core_read.h> (libbpf 1.1 on Debian 12).
 * Adds, when the real header lacks them:
 *   - bpf_core_type_matches() (a CO-RE "type matches" relocation, clang type-info kind
 *     2): some 1.1 builds carry it, older headers do not;
 *   - bpf_core_cast(ptr, type) (libbpf >= 1.3): `ptr` as a `type *` the verifier lets
 *     the program read directly, through the bpf_rdonly_cast kfunc (Linux 6.2+);
 *   - BPF_CORE_WRITE_BITFIELD(s, field, value) (libbpf >= 1.3): store into a bitfield
 *     of a local struct at the position the target's BTF gives it.
 */
#ifndef __GADGETSMITH_COMPAT_BPF_CORE_READ_H
#define __GADGETSMITH_COMPAT_BPF_CORE_READ_H

#include_next <bpf/bpf_core_read.h>

#ifndef bpf_core_type_matches
# define __GS_BPF_TYPE_MATCHES 2
# define bpf_core_type_matches(type) \
	__builtin_preserve_type_info(*(typeof(type) *)0, __GS_BPF_TYPE_MATCHES)
#endif

#ifndef bpf_core_cast
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __attribute__((weak))
	__attribute__((section(".ksyms")));
# define bpf_core_cast(ptr, type) \
	((typeof(type) *)bpf_rdonly_cast((ptr), bpf_core_type_id_kernel(type)))
#endif

#ifndef BPF_CORE_WRITE_BITFIELD
/*
 * The relocations give the containing word (byte offset and size, 1/2/4/8) and the two
 * shifts BPF_CORE_READ_BITFIELD uses: loaded into a u64 (little-endian BPF), the field
 * is bits [rshift - lshift, 64 - lshift). Load the word, replace those bits, store it.
 */
# define BPF_CORE_WRITE_BITFIELD(s, field, new_val)                                   \
	({                                                                            \
		void *__gs_p = (void *)(s) + __CORE_RELO(s, field, BYTE_OFFSET);      \
		unsigned int __gs_lsh = __CORE_RELO(s, field, LSHIFT_U64);            \
		unsigned int __gs_rsh = __CORE_RELO(s, field, RSHIFT_U64);            \
		unsigned long long __gs_mask = (~0ULL << __gs_rsh) >> __gs_lsh;       \
		unsigned long long __gs_w = 0;                                        \
                                                                                      \
		switch (__CORE_RELO(s, field, BYTE_SIZE)) {                           \
		case 1: __gs_w = *(volatile __u8 *)__gs_p; break;                     \
		case 2: __gs_w = *(volatile __u16 *)__gs_p; break;                    \
		case 4: __gs_w = *(volatile __u32 *)__gs_p; break;                    \
		case 8: __gs_w = *(volatile __u64 *)__gs_p; break;                    \
		}                                                                     \
		__gs_w = (__gs_w & ~__gs_mask) |                                      \
			 (((unsigned long long)(new_val) << (__gs_rsh - __gs_lsh)) &  \
			  __gs_mask);                                                 \
		switch (__CORE_RELO(s, field, BYTE_SIZE)) {                           \
		case 1: *(volatile __u8 *)__gs_p = __gs_w; break;                     \
		case 2: *(volatile __u16 *)__gs_p = __gs_w; break;                    \
		case 4: *(volatile __u32 *)__gs_p = __gs_w; break;                    \
		case 8: *(volatile __u64 *)__gs_p = __gs_w; break;                    \
		}                                                                     \
	})
#endif

#endif /* __GADGETSMITH_COMPAT_BPF_CORE_READ_H */
