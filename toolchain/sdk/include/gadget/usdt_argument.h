/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gadgetsmith SDK: USDT arguments through Inspektor Gadget's usdt_get_argument().
 *
 * In a usdt program (SEC("usdt/...")), usdt_get_argument(ctx, i) returns a pointer to the
 * value of argument i (from 0) of the probe that fired, widened to 64 bits, or NULL when it
 * cannot be read. The pointer is this CPU's slot of __usdt_args_buffer, which the next call
 * overwrites: copy the value out before asking for the next argument.
 *
 * One object serves two loaders:
 * - Inspektor Gadget's `ig` replaces the global function __usdt_get_argument() at load time
 *   with an eBPF extension program (freplace) that stores the argument in __usdt_args_buffer
 *   and returns true. The function's name and signature and the map's name and shape are
 *   what it looks for, so they stay as they are.
 * - gadgetsmith's runtime cannot load extensions here; it attaches usdt programs with
 *   libbpf's bpf_program__attach_usdt(), which fills <bpf/usdt.bpf.h>'s argument maps. The
 *   placeholder is left in place and returns false, and the argument is then read with
 *   libbpf's bpf_usdt_arg().
 *
 * <bpf/usdt.bpf.h> picks between BPF cookies and an address lookup through a
 * LINUX_HAS_BPF_COOKIE __kconfig extern that only libbpf fills in; cilium/ebpf, which `ig` is
 * built on, looks such names up in the kernel's config and refuses the object when they are
 * missing. When this header is the one that brings <bpf/usdt.bpf.h> in, that name is a
 * constant instead (BPF cookies, Linux 5.15 and later, which IG's own extension needs too),
 * so the object has no .kconfig extern.
 */
#ifndef __GADGET_USDT_ARGUMENT_H
#define __GADGET_USDT_ARGUMENT_H

#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#ifndef __USDT_BPF_H__
/* usdt.bpf.h's `extern const _Bool LINUX_HAS_BPF_COOKIE __kconfig;` becomes a redeclaration
 * of this internal constant (C11 6.2.2p4), and the test on it folds away. */
static const _Bool __gadget_usdt_has_bpf_cookie = 1;
#define LINUX_HAS_BPF_COOKIE __gadget_usdt_has_bpf_cookie
#include <bpf/usdt.bpf.h>
#undef LINUX_HAS_BPF_COOKIE
#endif

/* One u64 per CPU: where the argument is handed back. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} __usdt_args_buffer SEC(".maps");

/*
 * Replaced by `ig` with an extension that stores argument arg_idx in __usdt_args_buffer and
 * returns true. Global (so the verifier checks it on its own and it can be replaced) and
 * compiled without optimisation, so the call and its result stay in every caller.
 * Unreplaced it returns false: ctx is never NULL in a probe.
 */
__attribute__((noinline, optnone)) bool __usdt_get_argument(struct pt_regs *ctx, __u64 arg_idx)
{
	(void)arg_idx;
	return ctx == NULL;
}

static __always_inline __u64 *usdt_get_argument(struct pt_regs *ctx, __u64 arg_idx)
{
	__u32 zero = 0;
	__u64 *slot;
	long value;

	if (__usdt_get_argument(ctx, arg_idx))
		return bpf_map_lookup_elem(&__usdt_args_buffer, &zero);

	/* not replaced: libbpf's argument specs */
	slot = bpf_map_lookup_elem(&__usdt_args_buffer, &zero);
	if (!slot || bpf_usdt_arg(ctx, arg_idx, &value))
		return NULL;
	*slot = value;
	return slot;
}

#endif /* __GADGET_USDT_ARGUMENT_H */
