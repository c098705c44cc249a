/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gadgetsmith SDK: special types. The runtime recognises these by their typedef/struct
 * names in BTF and derives extra fields from them (names for errno/signals, wall-clock
 * time, container metadata for mount namespaces, ...).
 *
 * Include <vmlinux.h> (tracing gadgets) or <linux/types.h> (networking gadgets) first.
 */
#ifndef __GADGET_TYPES_H
#define __GADGET_TYPES_H

#ifndef __VMLINUX_H__
#include <stdbool.h>
#endif

#ifndef TASK_COMM_LEN
#define TASK_COMM_LEN 16
#endif

#define GADGET_SE_PATH_MAX 4096

typedef __u64 gadget_mntns_id;    /* mount namespace inode: container key */
typedef __u32 gadget_netns_id;    /* network namespace inode */
typedef __u64 gadget_timestamp;   /* bpf_ktime_get_boot_ns(); shown as wall-clock time */
typedef __u32 gadget_signal;      /* signal number; shown as SIGxxx */
typedef __u32 gadget_errno;       /* positive errno; shown as Exxx */
typedef __u32 gadget_uid;         /* shown with the user name */
typedef __u32 gadget_gid;         /* shown with the group name */
typedef __u64 gadget_syscall;     /* syscall number; shown as SYS_xxx */
typedef __u32 gadget_file_mode;   /* st_mode style bits; shown like -rw-r--r-- */
typedef __u32 gadget_file_flags;  /* open(2) flags; shown like O_RDONLY|O_CLOEXEC */
typedef __u32 gadget_kernel_stack;/* stack id in ig_kstack */
typedef __u32 gadget_pid;
typedef __u32 gadget_ppid;
typedef __u32 gadget_tid;
typedef __u32 gadget_ptid;
typedef char gadget_comm;
typedef char gadget_pcomm;
typedef __u64 gadget_bytes;       /* shown human-readable (kB, MB ...) */
typedef __u64 gadget_duration;    /* nanoseconds; shown human-readable */

/* metric hints (note the double underscore before the width) */
typedef __u32 gadget_counter__u32;
typedef __u64 gadget_counter__u64;
typedef __u32 gadget_gauge__u32;
typedef __u64 gadget_gauge__u64;
typedef __u32 gadget_histogram_slot__u32;
typedef __u64 gadget_histogram_slot__u64;

/* An IPv4 or IPv6 address. The __int128 member makes it 16-byte aligned. */
union gadget_ip_addr_t {
	__u8 v6[16];
	unsigned __int128 v6_raw;
	__u32 v4;
};

struct gadget_l3endpoint_t {
	union gadget_ip_addr_t addr_raw;
	__u8 version; /* 4 or 6 */
};

struct gadget_l4endpoint_t {
	union gadget_ip_addr_t addr_raw;
	__u16 port;      /* host byte order */
	__u16 proto_raw; /* IPPROTO_* */
	__u8 version;    /* 4 or 6 */
};

struct gadget_creds {
	gadget_uid uid;
	gadget_gid gid;
};

struct gadget_parent {
	gadget_pcomm comm[TASK_COMM_LEN];
	gadget_ppid pid;
	gadget_ptid tid;
};

/* The process that caused an event. `pid` is the thread-group id, `tid` the thread id. */
struct gadget_process {
	gadget_comm comm[TASK_COMM_LEN];
	gadget_pid pid;
	gadget_tid tid;
	gadget_mntns_id mntns_id;
	struct gadget_creds creds;
	struct gadget_parent parent;
};

/* A user-space stack, filled by the helpers in <gadget/user_stack_map.h>. All zero: none. */
struct gadget_user_stack {
	__u32 major;
	__u32 minor;
	__u64 inode;
	__u64 mtime_sec;
	__u32 mtime_nsec;
	__u32 base_addr_hash;
	__u32 stack_id;
	__u32 tgid_level0;
	__u32 pid_level0;
	__u32 pidns_level0;
	__u32 pid_level1;
	__u32 pidns_level1;
	__u64 otel_correlation_id;
	__u64 boot_timestamp;
};

/* Value of the socket enricher's map. Relocated with CO-RE against the layout the
 * runtime describes, so the optional trailing fields must be probed with
 * bpf_core_field_exists() / bpf_core_field_size(). */
struct gadget_socket_value {
	__u64 mntns;
	__u64 pid_tgid;
	__u64 uid_gid;
	char task[TASK_COMM_LEN];
	char ptask[TASK_COMM_LEN];
	__u64 sock;
	__u64 deletion_timestamp;
	__u32 ppid;
	__u32 ptid;
	char ipv6only;
	char optional_fields_start[0] __attribute__((aligned(8)));
	char cwd[GADGET_SE_PATH_MAX];
	char exepath[GADGET_SE_PATH_MAX];
} __attribute__((preserve_access_index));

#endif /* __GADGET_TYPES_H */
