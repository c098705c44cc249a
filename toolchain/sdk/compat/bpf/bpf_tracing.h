/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gadgetsmith compat layer over the system <bpf/bpf_tracing.h>.
 *
 * Debian 12 ships libbpf 1.1 headers. Gadgets written for libbpf >= 1.2 also use the
 * sixth-argument accessors (PT_REGS_PARM6*, including the _SYSCALL variants). This file
 * includes the real header and then defines only what is still missing.
 */
#ifndef __GADGETSMITH_COMPAT_BPF_TRACING_H
#define __GADGETSMITH_COMPAT_BPF_TRACING_H

#include_next <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#if defined(__TARGET_ARCH_x86)
/* x86-64: 6th function argument in r9; syscall arguments: di si dx r10 r8 r9 */
# define __GS_PARM6_REG r9
# define __GS_SYSCALL_PARM6_REG r9
#elif defined(__TARGET_ARCH_arm64)
/* arm64: arguments in x0..x7; the syscall wrapper passes the user regs, x5 is arg 6 */
# define __GS_PARM6_REG regs[5]
# define __GS_SYSCALL_PARM6_REG regs[5]
#endif

#ifdef __GS_PARM6_REG
# ifndef PT_REGS_PARM6
#  define PT_REGS_PARM6(x) (__PT_REGS_CAST(x)->__GS_PARM6_REG)
# endif
# ifndef PT_REGS_PARM6_CORE
#  define PT_REGS_PARM6_CORE(x) BPF_CORE_READ(__PT_REGS_CAST(x), __GS_PARM6_REG)
# endif
# ifndef PT_REGS_PARM6_SYSCALL
#  define PT_REGS_PARM6_SYSCALL(x) (__PT_REGS_CAST(x)->__GS_SYSCALL_PARM6_REG)
# endif
# ifndef PT_REGS_PARM6_CORE_SYSCALL
#  define PT_REGS_PARM6_CORE_SYSCALL(x) BPF_CORE_READ(__PT_REGS_CAST(x), __GS_SYSCALL_PARM6_REG)
# endif
#else
# ifndef PT_REGS_PARM6
#  define PT_REGS_PARM6(x) ({ _Pragma(__BPF_TARGET_MISSING); 0l; })
#  define PT_REGS_PARM6_CORE(x) ({ _Pragma(__BPF_TARGET_MISSING); 0l; })
#  define PT_REGS_PARM6_SYSCALL(x) ({ _Pragma(__BPF_TARGET_MISSING); 0l; })
#  define PT_REGS_PARM6_CORE_SYSCALL(x) ({ _Pragma(__BPF_TARGET_MISSING); 0l; })
# endif
#endif

#endif /* __GADGETSMITH_COMPAT_BPF_TRACING_H */
