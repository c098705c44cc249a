/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gadgetsmith SDK: a slot for a packet filter (a pcap expression the user gives at run
 * time) in a TC or socket-filter program.
 *
 *   GADGET_PF();                        // declares the unnamed filter gadget_pf_()
 *   GADGET_PF(dns);                     // declares gadget_pf_dns()
 *   ...
 *   if (!gadget_pf_matches(skb, data, data_end))       // the unnamed one
 *   if (!gadget_pf_matches(dns, skb, data, data_end))  // a named one
 *           return TC_ACT_UNSPEC;
 *
 * Each filter is a separate, never-inlined function with five arguments: the skb three
 * times, then the packet's data and data_end. A runtime that compiles the user's
 * expression (cBPF converted to eBPF, as ig does) replaces the function's body with it;
 * the repeated skb keeps R1-R3 holding the skb for that code. The function names and
 * the argument order are what ig looks for, so they must not change.
 *
 * Without a replacement (gadgetsmith's runtime today) the filter matches every packet
 * that has data. Its body uses every argument so the compiler keeps the call and passes
 * all five registers.
 */
#ifndef __GADGET_PACKETFILTER_H
#define __GADGET_PACKETFILTER_H

#ifndef __VMLINUX_H__
#include <stdbool.h>
#endif
#include <bpf/bpf_helpers.h>

#define GADGET_PF(name)                                                            \
	static __noinline bool gadget_pf_##name(void *__pf_skb1, void *__pf_skb2,  \
						void *__pf_skb3, void *__pf_data,  \
						void *__pf_data_end)               \
	{                                                                          \
		return (__pf_skb1 == __pf_skb2) & (__pf_skb2 == __pf_skb3) &       \
		       (__pf_data != __pf_data_end);                               \
	}

/* gadget_pf_matches([name,] skb, data, data_end): three arguments call the unnamed
 * filter, four a named one; anything else does not compile. */
#define __gadget_pf_call(name, skb, data, data_end) \
	gadget_pf_##name((skb), (skb), (skb), (data), (data_end))
#define __gadget_pf_args3(skb, data, data_end) __gadget_pf_call(, skb, data, data_end)
#define __gadget_pf_args4(name, skb, data, data_end) \
	__gadget_pf_call(name, skb, data, data_end)
#define __gadget_pf_bad(...) \
	({ _Static_assert(0, "gadget_pf_matches takes ([name,] skb, data, data_end)"); false; })
#define __gadget_pf_args0(...) __gadget_pf_bad()
#define __gadget_pf_args1(...) __gadget_pf_bad()
#define __gadget_pf_args2(...) __gadget_pf_bad()
#define __gadget_pf_nargs(...) __gadget_pf_nth(_, ##__VA_ARGS__, 4, 3, 2, 1, 0)
#define __gadget_pf_nth(_, a1, a2, a3, a4, n, ...) n
#define __gadget_pf_pick(n) __gadget_pf_args##n
#define __gadget_pf_pick_(n) __gadget_pf_pick(n)
#define gadget_pf_matches(...) __gadget_pf_pick_(__gadget_pf_nargs(__VA_ARGS__))(__VA_ARGS__)

#endif /* __GADGET_PACKETFILTER_H */
