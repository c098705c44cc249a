// SPDX-License-Identifier: Apache-2.0
/* <gadget/sockets-map.h> from a tracepoint, by struct sock, as IG's trace_tcpdrop and
 * trace_tcpretrans use it (GADGET_TYPE_TRACING). */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <gadget/buffer.h>
#include <gadget/common.h>
#include <gadget/macros.h>
#include <gadget/types.h>
#define GADGET_TYPE_TRACING
#include <gadget/sockets-map.h>

struct event {
	struct gadget_process proc;
	gadget_netns_id netns_id;
	__u8 found;
};

GADGET_TRACER_MAP(events, 1024 * 64);
GADGET_TRACER(states, events, event);

SEC("tracepoint/sock/inet_sock_set_state")
int igsdk_sock_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	const struct sock *sk = ctx->skaddr;
	struct gadget_socket_value *owner;
	struct event *e;
	__u32 netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);

	owner = gadget_socket_lookup(sk, netns);
	e = gadget_reserve_buf(&events, sizeof(*e));
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	e->netns_id = netns;
	e->found = owner != NULL;
	gadget_process_populate_from_socket(owner, &e->proc);
	gadget_submit_buf(ctx, &events, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
