/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gadgetsmith SDK: marker macros.
 *
 * Each macro declares global, uninitialised `const void *` variables whose *names* carry
 * the information (parts joined by three underscores). They end up in .bss and in the
 * object's BTF, where the runtime (ours or Inspektor Gadget's) finds them by prefix.
 */
#ifndef __GADGET_MACROS_H
#define __GADGET_MACROS_H

#define __GADGET_MARKER __attribute__((unused))

/* A tracer data source `name`: records of `struct event_type` sent through `map_name`
 * (a ring buffer or perf event array). The typed pointer keeps the struct in BTF. */
#define GADGET_TRACER(name, map_name, event_type)                                   \
	const void *gadget_tracer_##name##___##map_name##___##event_type __GADGET_MARKER; \
	const struct event_type *__gadget_tracer_type_##name __GADGET_MARKER

/* Marks the `const volatile` global `var` as a user-settable parameter. */
#define GADGET_PARAM(var) const void *gadget_param_##var __GADGET_MARKER

/* An iterator (snapshot) data source fed by one to three SEC("iter/...") programs. */
#define __GADGET_ITER_COUNT(...) __GADGET_ITER_PICK(__VA_ARGS__, 3, 2, 1, 0)
#define __GADGET_ITER_PICK(_1, _2, _3, n, ...) n
#define __GADGET_JOIN(a, b) __GADGET_JOIN_(a, b)
#define __GADGET_JOIN_(a, b) a##b
#define __GADGET_ITER_SYM_1(name, type, p1) gadget_iter_##name##___##type##___##p1
#define __GADGET_ITER_SYM_2(name, type, p1, p2) \
	gadget_iter_##name##___##type##___##p1##___##p2
#define __GADGET_ITER_SYM_3(name, type, p1, p2, p3) \
	gadget_iter_##name##___##type##___##p1##___##p2##___##p3

#define GADGET_ITER(name, type, ...)                                              \
	const struct type *unusedevent_##name##___##type __GADGET_MARKER;            \
	const void *__GADGET_JOIN(__GADGET_ITER_SYM_, __GADGET_ITER_COUNT(__VA_ARGS__))( \
		name, type, __VA_ARGS__) __GADGET_MARKER

/* Older name of GADGET_ITER; emits exactly the same markers. */
#define GADGET_SNAPSHOTTER(name, type, ...) GADGET_ITER(name, type, __VA_ARGS__)

/* A map-iterator ("top") data source: the hash map `mapname` is drained periodically. */
#define GADGET_MAPITER(name, mapname) \
	const void *gadget_mapiter_##name##___##mapname __GADGET_MARKER

/* Binds an SEC("iter/bpf_map_elem") program to the map it iterates. */
#define GADGET_ITER_TARGET_MAP(prog, mapname) \
	const void *gadget_mapelem_iter_target_##prog##___##mapname __GADGET_MARKER

/* Binds an sk_skb / sk_msg program to its sockmap or sockhash. */
#define GADGET_SK_TARGET_MAP(prog, mapname) \
	const void *gadget_sk_prog_target_##prog##___##mapname __GADGET_MARKER

#endif /* __GADGET_MACROS_H */
