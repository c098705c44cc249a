/* SPDX-License-Identifier: Apache-2.0 */
/* TCP state changes as IG's network gadgets report them: the local and remote ends as
 * struct gadget_l4endpoint_t (address, port, protocol), the remote address alone as a
 * struct gadget_l3endpoint_t, and the kernel stack (gadget_kernel_stack) of the change. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/buffer.h>
#include <gadget/common.h>
#include <gadget/filter.h>
#include <gadget/kernel_stack_map.h>
#include <gadget/macros.h>
#include <gadget/types.h>

#define AF_INET 2
#define AF_INET6 10

struct event {
	gadget_timestamp timestamp_raw;
	struct gadget_process proc;
	struct gadget_l4endpoint_t src;
	struct gadget_l4endpoint_t dst;
	struct gadget_l3endpoint_t peer;
	__u32 newstate;
	gadget_kernel_stack kstack_raw;
};

GADGET_TRACER_MAP(events, 1024 * 64);
GADGET_TRACER(tcpstate, events, event);

SEC("tracepoint/sock/inet_sock_set_state")
int on_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	struct event *e;

	if (ctx->protocol != IPPROTO_TCP || gadget_should_discard_data_current())
		return 0;
	e = gadget_reserve_buf(&events, sizeof(*e));
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	gadget_process_populate(&e->proc);
	e->timestamp_raw = bpf_ktime_get_boot_ns();
	e->src.port = ctx->sport;
	e->dst.port = ctx->dport;
	e->src.proto_raw = e->dst.proto_raw = ctx->protocol;
	/* the context's arrays are read with a helper: the verifier allows no loads through
	 * a moved context pointer */
	if (ctx->family == AF_INET) {
		e->src.version = e->dst.version = e->peer.version = 4;
		bpf_probe_read_kernel(&e->src.addr_raw.v4, 4, ctx->saddr);
		bpf_probe_read_kernel(&e->dst.addr_raw.v4, 4, ctx->daddr);
	} else if (ctx->family == AF_INET6) {
		e->src.version = e->dst.version = e->peer.version = 6;
		bpf_probe_read_kernel(e->src.addr_raw.v6, 16, ctx->saddr_v6);
		bpf_probe_read_kernel(e->dst.addr_raw.v6, 16, ctx->daddr_v6);
	}
	e->peer.addr_raw = e->dst.addr_raw;
	e->newstate = ctx->newstate;
	e->kstack_raw = gadget_get_kernel_stack(ctx);
	gadget_submit_buf(ctx, &events, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
