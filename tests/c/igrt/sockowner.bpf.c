/* SPDX-License-Identifier: Apache-2.0 */
/* Which process owns a TCP socket, the way IG's tracing network gadgets (trace_tcpdrop,
 * trace_tcpretrans) ask the socket enricher: on each TCP state change of a socket with
 * local port `port`, the entry of (netns, family, proto, local port) in gadget_sockets,
 * copied into the event's process (gadget_process_populate_from_socket). */
#include <vmlinux.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/types.h>
#define GADGET_TYPE_TRACING
#include <gadget/sockets-map.h>

struct event {
	struct gadget_process proc;
	gadget_netns_id netns_id;
	__u16 sport;
	__u32 newstate;
	bool known;
};

const volatile __u16 port = 0;
GADGET_PARAM(port);

GADGET_TRACER_MAP(events, 1024 * 64);
GADGET_TRACER(owners, events, event);

SEC("tracepoint/sock/inet_sock_set_state")
int on_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	const struct sock *sk = ctx->skaddr;
	struct gadget_socket_value *owner;
	struct event *e;
	__u32 netns;

	if (ctx->protocol != IPPROTO_TCP || ctx->sport != port)
		return 0;
	netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	owner = gadget_socket_lookup(sk, netns);
	e = gadget_reserve_buf(&events, sizeof(*e));
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	gadget_process_populate_from_socket(owner, &e->proc);
	e->netns_id = netns;
	e->sport = ctx->sport;
	e->newstate = ctx->newstate;
	e->known = owner != NULL;
	gadget_submit_buf(ctx, &events, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
