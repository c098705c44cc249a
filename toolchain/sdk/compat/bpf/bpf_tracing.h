/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gadgetsmith compat layer over the system <bpf/bpf_tracing.h>.
 *
 * Debian 12 ships libbpf 1.1 headers. Gadgets written for libbpf >= 1.2 also use:
 *   - PT_REGS_PARM6..8 (+ _CORE) and the sixth syscall argument (PT_REGS_PARM6_SYSCALL,
 *     PT_REGS_PARM6_CORE_SYSCALL);
 *   - BPF_KPROBE with six to eight arguments, BPF_KSYSCALL with six;
 *   - BPF_UPROBE / BPF_URETPROBE (uprobes read their arguments like kprobes).
 * This file includes the real header and then defines only what is still missing, so
 * a newer libbpf's own definitions win.
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


/* Arguments 7 and 8: arm64 passes them in x6 and x7. x86-64 passes them on the stack,
 * where a probe inside the function cannot find them reliably, so there they are a
 * compile-time error, as with libbpf. */
#if defined(__TARGET_ARCH_arm64)
# ifndef PT_REGS_PARM7
#  define PT_REGS_PARM7(x) (__PT_REGS_CAST(x)->regs[6])
#  define PT_REGS_PARM7_CORE(x) BPF_CORE_READ(__PT_REGS_CAST(x), regs[6])
# endif
# ifndef PT_REGS_PARM8
#  define PT_REGS_PARM8(x) (__PT_REGS_CAST(x)->regs[7])
#  define PT_REGS_PARM8_CORE(x) BPF_CORE_READ(__PT_REGS_CAST(x), regs[7])
# endif
#else
# define __GS_NO_STACK_ARGS "GCC error \"this architecture passes the 7th and later arguments on the stack: PT_REGS_PARM7/8 (and BPF_KPROBE with more than 6 arguments) exist only for arm64 here\""
# ifndef PT_REGS_PARM7
#  define PT_REGS_PARM7(x) ({ _Pragma(__GS_NO_STACK_ARGS); 0l; })
#  define PT_REGS_PARM7_CORE(x) ({ _Pragma(__GS_NO_STACK_ARGS); 0l; })
# endif
# ifndef PT_REGS_PARM8
#  define PT_REGS_PARM8(x) ({ _Pragma(__GS_NO_STACK_ARGS); 0l; })
#  define PT_REGS_PARM8_CORE(x) ({ _Pragma(__GS_NO_STACK_ARGS); 0l; })
# endif
#endif

/* BPF_KPROBE(name, a1, ..., a8): libbpf 1.1 stops after five arguments. The argument
 * list is built right to left, each step adding one register read. */
#ifndef ___bpf_kprobe_args6
# define ___bpf_kprobe_args6(x, args...) ___bpf_kprobe_args5(args), (void *)PT_REGS_PARM6(ctx)
#endif
#ifndef ___bpf_kprobe_args7
# define ___bpf_kprobe_args7(x, args...) ___bpf_kprobe_args6(args), (void *)PT_REGS_PARM7(ctx)
#endif
#ifndef ___bpf_kprobe_args8
# define ___bpf_kprobe_args8(x, args...) ___bpf_kprobe_args7(args), (void *)PT_REGS_PARM8(ctx)
#endif

/* BPF_KSYSCALL(name, a1, ..., a6): syscalls have at most six arguments. */
#ifndef ___bpf_syscall_args6
# define ___bpf_syscall_args6(x, args...) \
	___bpf_syscall_args5(args), (void *)PT_REGS_PARM6_SYSCALL(regs)
#endif
#ifndef ___bpf_syswrap_args6
# define ___bpf_syswrap_args6(x, args...) \
	___bpf_syswrap_args5(args), (void *)PT_REGS_PARM6_CORE_SYSCALL(regs)
#endif

/* Uprobes: at the probed instruction (the function's entry for uprobe/, its return for
 * uretprobe/) the user registers follow the same calling convention a kprobe sees, so
 * these are BPF_KPROBE / BPF_KRETPROBE under their libbpf >= 1.2 names:
 *
 *   SEC("uprobe/libc:malloc")
 *   int BPF_UPROBE(on_malloc, size_t size) { ... }
 *   SEC("uretprobe/libc:malloc")
 *   int BPF_URETPROBE(on_malloc_ret, void *ptr) { ... }
 */
#ifndef BPF_UPROBE
# define BPF_UPROBE(name, args...) BPF_KPROBE(name, ##args)
#endif
#ifndef BPF_URETPROBE
# define BPF_URETPROBE(name, args...) BPF_KRETPROBE(name, ##args)
#endif

#endif /* __GADGETSMITH_COMPAT_BPF_TRACING_H */
