// SPDX-License-Identifier: GPL-2.0
/* {{ cookiecutter.name }}: {{ cookiecutter.description | replace('*/', '* /') }}.
 *
 * A network gadget: a socket filter sees every packet of the host's network namespace
 * (all interfaces, both directions) and sends one event per TCP or UDP packet with its
 * endpoints. It returns 0, so the socket it is attached to queues nothing. Start editing
 * at the lines marked EDIT.
 * Build and run: gadget build . && sudo gadget run . --host -p port=443
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/types.h>

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define PACKET_OUTGOING 4

/* EDIT: one event; gadget_l4endpoint_t fields are shown as src.addr, src.port and
 * src.proto (and a src column 127.0.0.1:53). Describe new fields in gadget.yaml. */
struct event {
	gadget_timestamp timestamp_raw;
	struct gadget_l4endpoint_t src;
	struct gadget_l4endpoint_t dst;
	__u32 len;
	bool egress;
};

GADGET_TRACER_MAP(events, 1024 * 256);
GADGET_TRACER({{ cookiecutter.name }}, events, event);

/* EDIT: a param, `gadget run . -p port=53`: packets from or to this port (0: all) */
const volatile __u16 port = 0;
GADGET_PARAM(port);

/* the endpoints from the network and transport headers: false when it is not
 * a TCP or UDP packet this program reads (IPv6 extension headers are not followed) */
static __always_inline bool endpoints(struct __sk_buff *skb, struct event *e)
{
	__u32 l4 = ETH_HLEN;
	__u8 proto, ihl;
	__u16 ports[2];

	__builtin_memset(&e->src, 0, sizeof(e->src));
	__builtin_memset(&e->dst, 0, sizeof(e->dst));
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ihl, 1) ||
		    bpf_skb_load_bytes(skb, ETH_HLEN + 9, &proto, 1) ||
		    bpf_skb_load_bytes(skb, ETH_HLEN + 12, &e->src.addr_raw.v4, 4) ||
		    bpf_skb_load_bytes(skb, ETH_HLEN + 16, &e->dst.addr_raw.v4, 4))
			return false;
		l4 += (ihl & 0x0f) * 4;
		e->src.version = e->dst.version = 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN + 6, &proto, 1) ||
		    bpf_skb_load_bytes(skb, ETH_HLEN + 8, e->src.addr_raw.v6, 16) ||
		    bpf_skb_load_bytes(skb, ETH_HLEN + 24, e->dst.addr_raw.v6, 16))
			return false;
		l4 += 40;
		e->src.version = e->dst.version = 6;
	} else {
		return false;
	}
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return false;
	/* TCP and UDP both start with the source and destination ports */
	if (bpf_skb_load_bytes(skb, l4, ports, sizeof(ports)))
		return false;
	e->src.port = bpf_ntohs(ports[0]);
	e->dst.port = bpf_ntohs(ports[1]);
	e->src.proto_raw = e->dst.proto_raw = proto;
	return true;
}

SEC("socket1")
int {{ cookiecutter.name }}_packets(struct __sk_buff *skb)
{
	struct event *e = gadget_reserve_buf(&events, sizeof(*e));

	if (!e)
		return 0;
	if (!endpoints(skb, e) || (port && e->src.port != port && e->dst.port != port)) {
		gadget_discard_buf(e);
		return 0;
	}
	e->timestamp_raw = bpf_ktime_get_boot_ns();
	e->len = skb->len;
	e->egress = skb->pkt_type == PACKET_OUTGOING;
	gadget_submit_buf(skb, &events, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
