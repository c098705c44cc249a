/* SPDX-License-Identifier: Apache-2.0 */
/* TC classifiers as IG's network gadgets have them (classifier/ingress|egress/NAME,
 * attached to the interface of the `iface` param): one event per IPv4 UDP packet with
 * the direction, interface and destination port; ingress drops the packets to port
 * `drop_port` (TC_ACT_SHOT). */
#include <vmlinux.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/types.h>

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define ETH_P_IP 0x0800
#define ETH_HLEN 14

struct event {
	__u32 ifindex;
	__u32 len;
	__u16 dport;
	bool egress;
	bool dropped;
};

const volatile __u16 drop_port = 0;
GADGET_PARAM(drop_port);

GADGET_TRACER_MAP(events, 1024 * 64);
GADGET_TRACER(packets, events, event);

static __always_inline int watch(struct __sk_buff *skb, bool egress)
{
	struct udphdr udp;
	struct iphdr ip;
	struct event *e;
	bool drop;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) || ip.protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + ip.ihl * 4, &udp, sizeof(udp)))
		return TC_ACT_OK;
	drop = !egress && drop_port && bpf_ntohs(udp.dest) == drop_port;
	e = gadget_reserve_buf(&events, sizeof(*e));
	if (e) {
		e->ifindex = skb->ifindex;
		e->len = skb->len;
		e->dport = bpf_ntohs(udp.dest);
		e->egress = egress;
		e->dropped = drop;
		gadget_submit_buf(skb, &events, e, sizeof(*e));
	}
	return drop ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("classifier/ingress/watch_in")
int watch_in(struct __sk_buff *skb)
{
	return watch(skb, false);
}

SEC("classifier/egress/watch_out")
int watch_out(struct __sk_buff *skb)
{
	return watch(skb, true);
}

char LICENSE[] SEC("license") = "GPL";
