/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gadgetsmith compat layer over the system <bpf/bpf_core_read.h> (libbpf 1.1 on Debian 12).
 * Makes sure bpf_core_type_matches() (a CO-RE "type matches" relocation, clang type-info
 * kind 2) exists: some 1.1 builds carry it, older headers do not.
 */
#ifndef __GADGETSMITH_COMPAT_BPF_CORE_READ_H
#define __GADGETSMITH_COMPAT_BPF_CORE_READ_H

#include_next <bpf/bpf_core_read.h>

#ifndef bpf_core_type_matches
# define __GS_BPF_TYPE_MATCHES 2
# define bpf_core_type_matches(type) \
	__builtin_preserve_type_info(*(typeof(type) *)0, __GS_BPF_TYPE_MATCHES)
#endif

#endif /* __GADGETSMITH_COMPAT_BPF_CORE_READ_H */
