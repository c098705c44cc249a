// SPDX-License-Identifier: Apache-2.0
/*
 * Compile-time checks of the SDK's ABI: sizes and offsets that Inspektor Gadget's runtime
 * and existing gadgets depend on. Any drift makes this file fail to compile.
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/buffer.h>
#include <gadget/filter.h>
#include <gadget/kernel_stack_map.h>
#include <gadget/macros.h>
#include <gadget/types.h>

#define OFF(type, member) __builtin_offsetof(type, member)
#define CHECK(cond) _Static_assert(cond, #cond)

/* scalar special types */
CHECK(sizeof(gadget_mntns_id) == 8);
CHECK(sizeof(gadget_netns_id) == 4);
CHECK(sizeof(gadget_timestamp) == 8);
CHECK(sizeof(gadget_signal) == 4);
CHECK(sizeof(gadget_errno) == 4);
CHECK(sizeof(gadget_uid) == 4 && sizeof(gadget_gid) == 4);
CHECK(sizeof(gadget_syscall) == 8);
CHECK(sizeof(gadget_file_mode) == 4 && sizeof(gadget_file_flags) == 4);
CHECK(sizeof(gadget_kernel_stack) == 4);
CHECK(sizeof(gadget_pid) == 4 && sizeof(gadget_ppid) == 4);
CHECK(sizeof(gadget_tid) == 4 && sizeof(gadget_ptid) == 4);
CHECK(sizeof(gadget_comm) == 1 && sizeof(gadget_pcomm) == 1);
CHECK(sizeof(gadget_bytes) == 8 && sizeof(gadget_duration) == 8);
CHECK(sizeof(gadget_counter__u32) == 4 && sizeof(gadget_counter__u64) == 8);
CHECK(TASK_COMM_LEN == 16);
CHECK(GADGET_SE_PATH_MAX == 4096);
CHECK(GADGET_INVALID_ID == 0xFFFFFFFFu);
CHECK(GADGET_KERNEL_MAX_STACK_DEPTH == 127);

/* endpoints */
CHECK(sizeof(union gadget_ip_addr_t) == 16);
CHECK(_Alignof(union gadget_ip_addr_t) == 16);
CHECK(sizeof(struct gadget_l3endpoint_t) == 32);
CHECK(OFF(struct gadget_l3endpoint_t, version) == 16);
CHECK(sizeof(struct gadget_l4endpoint_t) == 32);
CHECK(OFF(struct gadget_l4endpoint_t, addr_raw) == 0);
CHECK(OFF(struct gadget_l4endpoint_t, port) == 16);
CHECK(OFF(struct gadget_l4endpoint_t, proto_raw) == 18);
CHECK(OFF(struct gadget_l4endpoint_t, version) == 20);

/* process */
CHECK(sizeof(struct gadget_creds) == 8);
CHECK(sizeof(struct gadget_parent) == 24);
CHECK(OFF(struct gadget_parent, pid) == 16 && OFF(struct gadget_parent, tid) == 20);
CHECK(sizeof(struct gadget_process) == 64);
CHECK(OFF(struct gadget_process, comm) == 0);
CHECK(OFF(struct gadget_process, pid) == 16);
CHECK(OFF(struct gadget_process, tid) == 20);
CHECK(OFF(struct gadget_process, mntns_id) == 24);
CHECK(OFF(struct gadget_process, creds) == 32);
CHECK(OFF(struct gadget_process, creds.uid) == 32);
CHECK(OFF(struct gadget_process, creds.gid) == 36);
CHECK(OFF(struct gadget_process, parent) == 40);
CHECK(OFF(struct gadget_process, parent.comm) == 40);
CHECK(OFF(struct gadget_process, parent.pid) == 56);
CHECK(OFF(struct gadget_process, parent.tid) == 60);

/* user stack */
CHECK(sizeof(struct gadget_user_stack) == 72);
CHECK(OFF(struct gadget_user_stack, inode) == 8);
CHECK(OFF(struct gadget_user_stack, stack_id) == 32);
CHECK(OFF(struct gadget_user_stack, otel_correlation_id) == 56);
CHECK(OFF(struct gadget_user_stack, boot_timestamp) == 64);

/* event layouts of IG-style gadgets built on these types */
struct signal_like_event {
	gadget_timestamp timestamp_raw;
	struct gadget_process proc;
	__u32 tpid;
	gadget_signal sig_raw;
	gadget_errno error_raw;
};
CHECK(sizeof(struct signal_like_event) == 88);
CHECK(OFF(struct signal_like_event, proc) == 8);
CHECK(OFF(struct signal_like_event, tpid) == 72);
CHECK(OFF(struct signal_like_event, sig_raw) == 76);
CHECK(OFF(struct signal_like_event, error_raw) == 80);

struct open_like_event {
	gadget_timestamp timestamp_raw;
	struct gadget_process proc;
	gadget_errno error_raw;
	__u32 fd;
	gadget_file_flags flags_raw;
	gadget_file_mode mode_raw;
	struct gadget_user_stack ustack;
	char fname[255];
	char fpath[512];
};
CHECK(OFF(struct open_like_event, error_raw) == 72);
CHECK(OFF(struct open_like_event, ustack) == 88);
CHECK(OFF(struct open_like_event, fname) == 160);
CHECK(OFF(struct open_like_event, fpath) == 415);
CHECK(sizeof(struct open_like_event) == 928);

struct bind_like_event {
	gadget_timestamp timestamp_raw;
	struct gadget_l4endpoint_t addr;
};
CHECK(OFF(struct bind_like_event, addr) == 16);

char LICENSE[] SEC("license") = "GPL";
