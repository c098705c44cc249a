/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gadgetsmith SDK: which process owns a socket, for network gadgets.
 *
 * The runtime's socket enricher keeps the map gadget_sockets up to date: one entry per
 * open TCP or UDP socket, keyed by (network namespace, family, protocol, local port),
 * holding the process that opened it (struct gadget_socket_value in <gadget/types.h>).
 * A gadget looks a packet or a struct sock up and copies the owner into its event:
 *
 *   #define GADGET_TYPE_NETWORKING          // socket filters, TC: look up by skb
 *   #include <gadget/sockets-map.h>
 *   struct gadget_socket_value *owner = gadget_socket_lookup(skb);
 *   gadget_process_populate_from_socket(owner, &event->proc);
 *
 *   #define GADGET_TYPE_TRACING             // tracepoints, kprobes: look up by sock
 *   #include <gadget/sockets-map.h>
 *   struct gadget_socket_value *owner = gadget_socket_lookup(sk, netns_inum);
 *
 * Define the switch before including this file, and include <vmlinux.h> or
 * <linux/types.h> (not both) first. The skb lookup reads the network namespace from
 * skb->cb[0], which the runtime's dispatcher sets before it runs the gadget's program.
 *
 * ABI with the enricher (ig's and gadgetsmith's), all native byte order:
 *
 *   key (12 bytes, zero padding)          value (struct gadget_socket_value)
 *     0  u32 netns   netns inode            0  u64 mntns       owner's mount ns inode
 *     4  u16 family  AF_INET / AF_INET6     8  u64 pid_tgid    tgid << 32 | tid
 *     6  u8  proto   IPPROTO_TCP / _UDP    16  u64 uid_gid     gid << 32 | uid
 *     8  u16 port    local port, host      24  char task[16]   comm
 *                    byte order            40  char ptask[16]  parent's comm
 *                                          56  u64 sock        struct sock address
 *                                          64  u64 deletion_timestamp  0 while open
 *                                          72  u32 ppid, 76 u32 ptid   parent
 *                                          80  u8  ipv6only    an AF_INET6 socket
 *                                                              that refuses IPv4
 *                                          88  optional cwd[], exepath[]
 *
 * A lookup that finds nothing records its key in gadget_sockets_misses (an LRU map of
 * the same keys): gadgetsmith's enricher reads it and rescans then, instead of on a
 * timer, so the socket's next packets find their owner. ig's enricher, which follows
 * sockets as they are made, leaves that map alone.
 *
 * The value is relocated with CO-RE (preserve_access_index): the enricher describes the
 * layout it really fills in BTF, so the optional trailing arrays may be shorter than
 * GADGET_SE_PATH_MAX or absent; test them with bpf_core_field_exists() and size reads
 * with bpf_core_field_size().
 */
#ifndef __GADGET_SOCKETS_MAP_H
#define __GADGET_SOCKETS_MAP_H

#if !defined(__VMLINUX_H__) && !defined(_LINUX_TYPES_H)
#error "include <vmlinux.h> or <linux/types.h> before <gadget/sockets-map.h>"
#endif

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <gadget/types.h>

/* Protocol numbers and header offsets, under our own prefix so that gadgets including
 * <linux/if_ether.h> and friends (or vmlinux.h) see no clash. */
#define GADGET_SE_PACKET_HOST 0      /* skb->pkt_type of a packet for this host */
#define GADGET_SE_ETH_HLEN 14
#define GADGET_SE_ETH_PROTO_OFFSET 12 /* the ethertype in the Ethernet header */
#define GADGET_SE_ETH_P_IP 0x0800
#define GADGET_SE_ETH_P_IPV6 0x86DD
#define GADGET_SE_AF_INET 2
#define GADGET_SE_AF_INET6 10

#define GADGET_SE_IP_PROTO_OFFSET 9   /* iphdr.protocol */
#define GADGET_SE_IPV6_HLEN 40
#define GADGET_SE_IPV6_NEXTHDR_OFFSET 6

/* offsets of the ports in the TCP and in the UDP header */
#define GADGET_SE_TCPHDR_SOURCE_OFFSET 0
#define GADGET_SE_TCPHDR_DEST_OFFSET 2
#define GADGET_SE_UDPHDR_SOURCE_OFFSET 0
#define GADGET_SE_UDPHDR_DEST_OFFSET 2

/* IPv6 next-header values */
#define GADGET_SE_NEXTHDR_HOP 0
#define GADGET_SE_NEXTHDR_TCP 6
#define GADGET_SE_NEXTHDR_UDP 17
#define GADGET_SE_NEXTHDR_ROUTING 43
#define GADGET_SE_NEXTHDR_FRAGMENT 44
#define GADGET_SE_NEXTHDR_AUTH 51
#define GADGET_SE_NEXTHDR_NONE 59
#define GADGET_SE_NEXTHDR_DEST 60

/* IPv6 allows this many extension headers before the transport header (as the kernel's
 * ipv6_ext_hdr() list); more is not a TCP or UDP packet the enricher can know. */
#define __GADGET_SE_MAX_EXT_HDRS 6

struct gadget_socket_key {
	__u32 netns;
	__u16 family;
	__u8 proto;
	__u16 port;
};

#define GADGET_MAX_SOCKETS 16384

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GADGET_MAX_SOCKETS);
	__type(key, struct gadget_socket_key);
	__type(value, struct gadget_socket_value);
} gadget_sockets SEC(".maps");

#define GADGET_SOCKETS_MISSES 256

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GADGET_SOCKETS_MISSES);
	__type(key, struct gadget_socket_key);
	__type(value, __u8);
} gadget_sockets_misses SEC(".maps");

/* `key` was not found: tell the enricher (see above). */
static __always_inline void __gadget_socket_missed(const struct gadget_socket_key *key)
{
	__u8 one = 1;

	bpf_map_update_elem(&gadget_sockets_misses, key, &one, BPF_ANY);
}

/* Look `key` up; an IPv4 key falls back to a dual-stack IPv6 socket on the same port. */
static __always_inline struct gadget_socket_value *
__gadget_socket_find(struct gadget_socket_key *key)
{
	struct gadget_socket_value *v = bpf_map_lookup_elem(&gadget_sockets, key);

	if (v || key->family != GADGET_SE_AF_INET)
		goto out;
	key->family = GADGET_SE_AF_INET6;
	v = bpf_map_lookup_elem(&gadget_sockets, key);
	key->family = GADGET_SE_AF_INET;
	if (v && v->ipv6only)
		v = NULL;
out:
	if (!v && key->port)
		__gadget_socket_missed(key);
	return v;
}

#ifdef GADGET_TYPE_NETWORKING
/*
 * The socket a packet belongs to. `is_ingress`: the packet comes in, so the local port
 * is its destination port; otherwise its source port. Use this form in TC programs,
 * where skb->pkt_type does not tell the direction (a CNI routes a container's incoming
 * packets through the host).
 */
static __always_inline struct gadget_socket_value *
gadget_socket_lookup_with_direction(const struct __sk_buff *skb, __u8 is_ingress)
{
	struct gadget_socket_key key;
	__u16 ethertype, port;
	__u32 l4;
	__u8 b;

	__builtin_memset(&key, 0, sizeof(key));
	key.netns = skb->cb[0];
	if (bpf_skb_load_bytes(skb, GADGET_SE_ETH_PROTO_OFFSET, &ethertype, sizeof(ethertype)))
		return NULL;

	if (ethertype == bpf_htons(GADGET_SE_ETH_P_IP)) {
		key.family = GADGET_SE_AF_INET;
		if (bpf_skb_load_bytes(skb, GADGET_SE_ETH_HLEN + GADGET_SE_IP_PROTO_OFFSET,
				       &key.proto, 1))
			return NULL;
		/* the header length is the low nibble of the first byte, in 32-bit words */
		if (bpf_skb_load_bytes(skb, GADGET_SE_ETH_HLEN, &b, 1))
			return NULL;
		l4 = GADGET_SE_ETH_HLEN + (b & 0x0f) * 4;
	} else if (ethertype == bpf_htons(GADGET_SE_ETH_P_IPV6)) {
		key.family = GADGET_SE_AF_INET6;
		if (bpf_skb_load_bytes(skb, GADGET_SE_ETH_HLEN + GADGET_SE_IPV6_NEXTHDR_OFFSET,
				       &key.proto, 1))
			return NULL;
		l4 = GADGET_SE_ETH_HLEN + GADGET_SE_IPV6_HLEN;
#pragma unroll
		for (int i = 0; i < __GADGET_SE_MAX_EXT_HDRS; i++) {
			__u8 next, hlen;

			if (key.proto == GADGET_SE_NEXTHDR_TCP || key.proto == GADGET_SE_NEXTHDR_UDP)
				break;
			/* every extension header starts with the next header's number */
			if (bpf_skb_load_bytes(skb, l4, &next, 1))
				return NULL;
			switch (key.proto) {
			case GADGET_SE_NEXTHDR_FRAGMENT: /* fixed size, no length byte */
				l4 += 8;
				break;
			case GADGET_SE_NEXTHDR_AUTH: /* length in 4-byte units, minus 2 */
				if (bpf_skb_load_bytes(skb, l4 + 1, &hlen, 1))
					return NULL;
				l4 += ((__u32)hlen + 2) * 4;
				break;
			case GADGET_SE_NEXTHDR_HOP:
			case GADGET_SE_NEXTHDR_ROUTING:
			case GADGET_SE_NEXTHDR_DEST: /* length in 8-byte units, minus 1 */
				if (bpf_skb_load_bytes(skb, l4 + 1, &hlen, 1))
					return NULL;
				l4 += ((__u32)hlen + 1) * 8;
				break;
			default: /* GADGET_SE_NEXTHDR_NONE or not an extension header */
				return NULL;
			}
			key.proto = next;
		}
	} else {
		return NULL;
	}

	if (key.proto == GADGET_SE_NEXTHDR_TCP)
		l4 += is_ingress ? GADGET_SE_TCPHDR_DEST_OFFSET : GADGET_SE_TCPHDR_SOURCE_OFFSET;
	else if (key.proto == GADGET_SE_NEXTHDR_UDP)
		l4 += is_ingress ? GADGET_SE_UDPHDR_DEST_OFFSET : GADGET_SE_UDPHDR_SOURCE_OFFSET;
	else
		return NULL;
	if (bpf_skb_load_bytes(skb, l4, &port, sizeof(port)))
		return NULL;
	key.port = bpf_ntohs(port);
	return __gadget_socket_find(&key);
}

/* The socket a packet belongs to, its direction taken from skb->pkt_type (a packet for
 * this host is incoming). Right for socket filters; TC programs should use
 * gadget_socket_lookup_with_direction(). */
static __always_inline struct gadget_socket_value *
gadget_socket_lookup(const struct __sk_buff *skb)
{
	return gadget_socket_lookup_with_direction(skb,
						   skb->pkt_type == GADGET_SE_PACKET_HOST);
}
#endif /* GADGET_TYPE_NETWORKING */

#ifdef GADGET_TYPE_TRACING
/* The entry of socket `sk` in the network namespace with inode `netns`. */
static __always_inline struct gadget_socket_value *
gadget_socket_lookup(const struct sock *sk, __u32 netns)
{
	struct gadget_socket_key key;
	__u16 sport;

	__builtin_memset(&key, 0, sizeof(key));
	key.netns = netns;
	key.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	/* a bitfield on older kernels, a plain u16 on newer ones */
	key.proto = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
	if (key.proto != GADGET_SE_NEXTHDR_TCP && key.proto != GADGET_SE_NEXTHDR_UDP)
		return NULL;
	sport = BPF_CORE_READ((const struct inet_sock *)sk, inet_sport);
	key.port = bpf_ntohs(sport);
	struct gadget_socket_value *v = bpf_map_lookup_elem(&gadget_sockets, &key);

	if (!v && key.port)
		__gadget_socket_missed(&key);
	return v;
}
#endif /* GADGET_TYPE_TRACING */

/* Fill `p` with the socket's owner; nothing when `v` is NULL (socket not known). */
static __always_inline void
gadget_process_populate_from_socket(const struct gadget_socket_value *v,
				    struct gadget_process *p)
{
	if (!v)
		return;
	__builtin_memcpy(p->comm, v->task, sizeof(p->comm));
	p->pid = v->pid_tgid >> 32;
	p->tid = (__u32)v->pid_tgid;
	p->mntns_id = v->mntns;
	p->creds.uid = (__u32)v->uid_gid;
	p->creds.gid = v->uid_gid >> 32;
	__builtin_memcpy(p->parent.comm, v->ptask, sizeof(p->parent.comm));
	p->parent.pid = v->ppid;
	/* enrichers older than the ptid member do not describe it */
	p->parent.tid = bpf_core_field_exists(v->ptid) ? v->ptid : 0;
}

#endif /* __GADGET_SOCKETS_MAP_H */
