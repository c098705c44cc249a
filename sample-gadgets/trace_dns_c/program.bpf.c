// SPDX-License-Identifier: GPL-2.0
/* trace_dns_c: UDP datagrams sent with sendto() to a port (53 by default), with their
 * first bytes; the WASM module (wasm/program.c) parses the DNS queries among them and
 * emits them as a second data source, "queries". */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include <gadget/buffer.h>
#include <gadget/common.h>
#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/types.h>

#define PAYLOAD_MAX 128
#define AF_INET 2
#define AF_INET6 10

struct event {
	gadget_timestamp timestamp_raw;
	struct gadget_process proc;
	__u16 dport;
	__u32 len;                  /* bytes sent */
	__u8 payload[PAYLOAD_MAX];  /* the first of them */
};

GADGET_TRACER_MAP(events, 1024 * 256);
GADGET_TRACER(sends, events, event);

const volatile __u16 port = 53;
GADGET_PARAM(port);

SEC("tracepoint/syscalls/sys_enter_sendto")
int ig_sendto(struct trace_event_raw_sys_enter *ctx)
{
	struct sockaddr_in sa = {};
	void *addr = (void *)ctx->args[4];
	const void *buf = (const void *)ctx->args[1];
	__u64 len = ctx->args[2];
	__u32 n;
	struct event *e;

	if (!addr || gadget_should_discard_data_current())
		return 0;
	/* sin_family and sin_port sit at the same offsets in sockaddr_in6 */
	if (bpf_probe_read_user(&sa, sizeof(sa), addr))
		return 0;
	if ((sa.sin_family != AF_INET && sa.sin_family != AF_INET6) || bpf_ntohs(sa.sin_port) != port)
		return 0;
	e = gadget_reserve_buf(&events, sizeof(*e));
	if (!e)
		return 0;
	e->timestamp_raw = bpf_ktime_get_boot_ns();
	gadget_process_populate(&e->proc);
	e->dport = port;
	e->len = len;
	n = len < PAYLOAD_MAX ? len : PAYLOAD_MAX;
	__builtin_memset(e->payload, 0, sizeof(e->payload));
	if (n > 0 && n <= PAYLOAD_MAX)
		bpf_probe_read_user(e->payload, n, buf);
	gadget_submit_buf(ctx, &events, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
