/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gadgetsmith compat layer over the system <bpf/bpf_helpers.h> (libbpf 1.1 on Debian 12).
 *
 * Adds what libbpf >= 1.2's version of this header gives BPF programs and 1.1 lacks:
 *   - bpf_ksym_exists(sym): is the __weak __ksym / __kconfig extern `sym` present on the
 *     running kernel (resolved at load time, so the dead branch is pruned);
 *   - open-coded iterators: bpf_for_each(type, cur, args...), bpf_for(i, start, end),
 *     bpf_repeat(n) over the kernel's bpf_iter_<type>_new/_next/_destroy kfuncs
 *     (Linux 6.4 or later);
 *   - the BTF tags newer kernels read: __kptr_untrusted, __percpu_kptr, __uptr and the
 *     global-function argument tags __arg_ctx, __arg_nonnull, __arg_nullable,
 *     __arg_trusted, __arg_untrusted, __arg_arena.
 * Everything is defined only when the real header did not, so a newer libbpf wins.
 */
#ifndef __GADGETSMITH_COMPAT_BPF_HELPERS_H
#define __GADGETSMITH_COMPAT_BPF_HELPERS_H

#include_next <bpf/bpf_helpers.h>

/* BTF type tags on map value members */
#ifndef __kptr_untrusted
# define __kptr_untrusted __attribute__((btf_type_tag("kptr_untrusted")))
#endif
#ifndef __percpu_kptr
# define __percpu_kptr __attribute__((btf_type_tag("percpu_kptr")))
#endif
#ifndef __uptr
# define __uptr __attribute__((btf_type_tag("uptr")))
#endif

/* BTF decl tags on the arguments of global (non-static, noinline) functions */
#ifndef __arg_ctx
# define __arg_ctx __attribute__((btf_decl_tag("arg:ctx")))
# define __arg_nonnull __attribute__((btf_decl_tag("arg:nonnull")))
# define __arg_nullable __attribute__((btf_decl_tag("arg:nullable")))
# define __arg_trusted __attribute__((btf_decl_tag("arg:trusted")))
# define __arg_untrusted __attribute__((btf_decl_tag("arg:untrusted")))
# define __arg_arena __attribute__((btf_decl_tag("arg:arena")))
#endif

/* True when the weak kernel symbol `sym` resolved at load time. A strong extern is
 * always present, which makes the test meaningless: refuse it at compile time. */
#ifndef bpf_ksym_exists
# define bpf_ksym_exists(sym)                                                          \
	({                                                                             \
		_Static_assert(!__builtin_constant_p(!!(sym)),                         \
			       #sym " must be declared __weak to test whether it exists"); \
		!!(sym);                                                               \
	})
#endif

/*
 * Open-coded iterators. `bpf_for_each(num, v, 0, 10)` declares an iterator state on the
 * stack, creates it with bpf_iter_num_new(&it, 0, 10), takes bpf_iter_num_next(&it)
 * until it returns NULL and destroys the state when the loop is left in any way (the
 * cleanup attribute). struct bpf_iter_<type> comes from vmlinux.h; the number
 * iterator's kfuncs are declared here, weak, so an object that never iterates
 * references none of them.
 */
#ifndef bpf_for_each
struct bpf_iter_num;
extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __weak __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __weak __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __weak __ksym;

# define bpf_for_each(type, cur, args...)                                              \
	for (struct bpf_iter_##type ___gs_it                                            \
		     __attribute__((aligned(8), cleanup(bpf_iter_##type##_destroy))),  \
	     *___gs_once __attribute__((unused)) =                                     \
		     (bpf_iter_##type##_new(&___gs_it, ##args), (void *)0);            \
	     ((cur) = bpf_iter_##type##_next(&___gs_it));)

/* `for (i = start; i < end; i++)` that the verifier checks once, not per iteration. */
# define bpf_for(i, start, end)                                                        \
	for (struct bpf_iter_num ___gs_it                                               \
		     __attribute__((aligned(8), cleanup(bpf_iter_num_destroy))),       \
	     *___gs_once __attribute__((unused)) =                                     \
		     (bpf_iter_num_new(&___gs_it, (start), (end)),                     \
		      (void)((i) = (start)), (void *)0);                               \
	     ({                                                                        \
		     int *___gs_cur = bpf_iter_num_next(&___gs_it);                    \
		     if (___gs_cur)                                                    \
			     (i) = *___gs_cur;                                         \
		     ___gs_cur;                                                        \
	     });)

/* Run the body `n` times. */
# define bpf_repeat(n)                                                                 \
	for (struct bpf_iter_num ___gs_it                                               \
		     __attribute__((aligned(8), cleanup(bpf_iter_num_destroy))),       \
	     *___gs_once __attribute__((unused)) =                                     \
		     (bpf_iter_num_new(&___gs_it, 0, (n)), (void *)0);                 \
	     bpf_iter_num_next(&___gs_it);)
#endif

#endif /* __GADGETSMITH_COMPAT_BPF_HELPERS_H */
