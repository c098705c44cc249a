// SPDX-License-Identifier: Apache-2.0
/* <gadget/packetfilter.h> in TC programs, as IG's tcpdump uses it: the unnamed filter
 * in both directions, a named one on egress. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/packetfilter.h>
#include <gadget/types.h>

#define TC_ACT_UNSPEC -1

struct event {
	__u32 len;
	__u8 egress;
};

GADGET_TRACER_MAP(events, 1024 * 64);
GADGET_TRACER(packets, events, event);

GADGET_PF();
GADGET_PF(dns);

static __always_inline int handle(struct __sk_buff *skb, bool egress)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct event *e;

	if (!gadget_pf_matches(skb, data, data_end))
		return TC_ACT_UNSPEC;
	if (egress && !gadget_pf_matches(dns, skb, data, data_end))
		return TC_ACT_UNSPEC;
	e = gadget_reserve_buf(&events, sizeof(*e));
	if (!e)
		return TC_ACT_UNSPEC;
	e->len = skb->len;
	e->egress = egress;
	gadget_submit_buf(skb, &events, e, sizeof(*e));
	return TC_ACT_UNSPEC;
}

SEC("classifier/ingress/igsdk")
int igsdk_ingress(struct __sk_buff *skb)
{
	return handle(skb, false);
}

SEC("classifier/egress/igsdk")
int igsdk_egress(struct __sk_buff *skb)
{
	return handle(skb, true);
}

char LICENSE[] SEC("license") = "GPL";
