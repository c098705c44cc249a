// SPDX-License-Identifier: Apache-2.0
/*
 * <gadget/sockets-map.h> from a socket filter, as IG's trace_sni and trace_dns use it
 * (GADGET_TYPE_NETWORKING, <linux/types.h> instead of vmlinux.h), with the ABI checked
 * at compile time: the socket enricher of any runtime fills this map.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>
#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/types.h>
#define GADGET_TYPE_NETWORKING
#include <gadget/filter.h>
#include <gadget/sockets-map.h>

#define CHECK(cond) _Static_assert(cond, #cond)
CHECK(sizeof(struct gadget_socket_key) == 12);
CHECK(offsetof(struct gadget_socket_key, netns) == 0);
CHECK(offsetof(struct gadget_socket_key, family) == 4);
CHECK(offsetof(struct gadget_socket_key, proto) == 6);
CHECK(offsetof(struct gadget_socket_key, port) == 8);
CHECK(offsetof(struct gadget_socket_value, mntns) == 0);
CHECK(offsetof(struct gadget_socket_value, pid_tgid) == 8);
CHECK(offsetof(struct gadget_socket_value, uid_gid) == 16);
CHECK(offsetof(struct gadget_socket_value, task) == 24);
CHECK(offsetof(struct gadget_socket_value, ptask) == 40);
CHECK(offsetof(struct gadget_socket_value, sock) == 56);
CHECK(offsetof(struct gadget_socket_value, deletion_timestamp) == 64);
CHECK(offsetof(struct gadget_socket_value, ppid) == 72);
CHECK(offsetof(struct gadget_socket_value, ptid) == 76);
CHECK(offsetof(struct gadget_socket_value, ipv6only) == 80);
CHECK(offsetof(struct gadget_socket_value, cwd) == 88);

struct event {
	struct gadget_process proc;
	gadget_netns_id netns_id;
	__u8 found;
};

GADGET_TRACER_MAP(events, 1024 * 64);
GADGET_TRACER(packets, events, event);

SEC("socket1")
int igsdk_sockets(struct __sk_buff *skb)
{
	struct gadget_socket_value *owner = gadget_socket_lookup(skb);
	struct event *e;

	if (gadget_should_discard_data_by_skb(owner))
		return 0;
	e = gadget_reserve_buf(&events, sizeof(*e));
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	e->netns_id = skb->cb[0];
	e->found = owner != NULL;
	gadget_process_populate_from_socket(owner, &e->proc);
	gadget_submit_buf(skb, &events, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
