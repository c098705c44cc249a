/* SPDX-License-Identifier: Apache-2.0 */
/* Which process sent a packet, the way IG's socket-filter gadgets (trace_dns, trace_sni)
 * ask the socket enricher: for each UDP packet to port `port`, the entry of its source
 * socket in gadget_sockets (gadget_socket_lookup(skb): the network namespace from
 * skb->cb[0], set by the runtime's dispatcher). */
#include <vmlinux.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/types.h>
#define GADGET_TYPE_NETWORKING
#include <gadget/sockets-map.h>

struct event {
	struct gadget_process proc;
	gadget_netns_id netns_id;
	__u16 sport;
	bool known;
};

const volatile __u16 port = 0;
GADGET_PARAM(port);

GADGET_TRACER_MAP(events, 1024 * 64);
GADGET_TRACER(senders, events, event);

SEC("socket1")
int udp_senders(struct __sk_buff *skb)
{
	struct gadget_socket_value *owner;
	__u16 eth_proto, sport, dport;
	__u8 ihl, l4;
	struct event *e;
	__u32 off;

	if (bpf_skb_load_bytes(skb, 12, &eth_proto, 2) || eth_proto != bpf_htons(0x0800))
		return 0;
	if (skb->pkt_type != 4 /* PACKET_OUTGOING: each loopback packet is seen twice */)
		return 0;
	if (bpf_skb_load_bytes(skb, 14, &ihl, 1) || bpf_skb_load_bytes(skb, 23, &l4, 1) || l4 != 17)
		return 0;
	off = 14 + (ihl & 0xf) * 4;
	if (bpf_skb_load_bytes(skb, off, &sport, 2) || bpf_skb_load_bytes(skb, off + 2, &dport, 2))
		return 0;
	if (bpf_ntohs(dport) != port)
		return 0;
	owner = gadget_socket_lookup(skb);
	e = gadget_reserve_buf(&events, sizeof(*e));
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	gadget_process_populate_from_socket(owner, &e->proc);
	e->netns_id = skb->cb[0];
	e->sport = bpf_ntohs(sport);
	e->known = owner != NULL;
	gadget_submit_buf(skb, &events, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
