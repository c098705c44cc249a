/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gadgetsmith SDK: the common filter parameters (pid, tid, uid, gid, comm) and the
 * helpers that apply them together with the mount-namespace filter.
 */
#ifndef __GADGET_FILTER_H
#define __GADGET_FILTER_H

#include <bpf/bpf_helpers.h>
#include <gadget/macros.h>
#include <gadget/types.h>
#include <gadget/mntns_filter.h>
#ifndef GADGET_TYPE_NETWORKING
#include <gadget/mntns.h>
#endif

#define GADGET_INVALID_ID ((__u32)-1)

const volatile gadget_pid targ_pid = 0;
GADGET_PARAM(targ_pid);
const volatile gadget_tid targ_tid = 0;
GADGET_PARAM(targ_tid);
const volatile gadget_uid targ_uid = GADGET_INVALID_ID;
GADGET_PARAM(targ_uid);
const volatile gadget_gid targ_gid = GADGET_INVALID_ID;
GADGET_PARAM(targ_gid);
const volatile gadget_comm targ_comm[TASK_COMM_LEN] = {};
GADGET_PARAM(targ_comm);

static __always_inline bool gadget_should_discard_pid(gadget_pid pid)
{
	return targ_pid != 0 && targ_pid != pid;
}

static __always_inline bool gadget_should_discard_tid(gadget_tid tid)
{
	return targ_tid != 0 && targ_tid != tid;
}

static __always_inline bool gadget_should_discard_uid(gadget_uid uid)
{
	return targ_uid != GADGET_INVALID_ID && targ_uid != uid;
}

static __always_inline bool gadget_should_discard_gid(gadget_gid gid)
{
	return targ_gid != GADGET_INVALID_ID && targ_gid != gid;
}

static __always_inline bool __gadget_comm_filter_set(void)
{
	return targ_comm[0] != '\0';
}

/* Exact match over all TASK_COMM_LEN bytes. */
static __always_inline bool gadget_should_discard_comm(const gadget_comm comm[TASK_COMM_LEN])
{
	if (!__gadget_comm_filter_set())
		return false;
#pragma unroll
	for (int i = 0; i < TASK_COMM_LEN; i++) {
		if (comm[i] != targ_comm[i])
			return true;
	}
	return false;
}

static __always_inline bool
gadget_should_discard_data(gadget_mntns_id mntns_id, gadget_pid pid, gadget_tid tid,
			   const gadget_comm comm[TASK_COMM_LEN], gadget_uid uid, gadget_uid gid)
{
	return gadget_should_discard_mntns_id(mntns_id) || gadget_should_discard_pid(pid) ||
	       gadget_should_discard_tid(tid) || gadget_should_discard_comm(comm) ||
	       gadget_should_discard_uid(uid) || gadget_should_discard_gid(gid);
}

#ifndef GADGET_TYPE_NETWORKING
/* The same checks for the current task; reads only what an active filter needs. */
static __always_inline bool gadget_should_discard_data_current(void)
{
	if (gadget_should_discard_mntns_id(gadget_get_current_mntns_id()))
		return true;

	if (targ_pid != 0 || targ_tid != 0) {
		__u64 pid_tgid = bpf_get_current_pid_tgid();

		if (gadget_should_discard_pid(pid_tgid >> 32) ||
		    gadget_should_discard_tid((__u32)pid_tgid))
			return true;
	}

	if (targ_uid != GADGET_INVALID_ID || targ_gid != GADGET_INVALID_ID) {
		__u64 uid_gid = bpf_get_current_uid_gid();

		if (gadget_should_discard_uid((__u32)uid_gid) ||
		    gadget_should_discard_gid(uid_gid >> 32))
			return true;
	}

	if (__gadget_comm_filter_set()) {
		char comm[TASK_COMM_LEN] = {};

		bpf_get_current_comm(comm, sizeof(comm));
		if (gadget_should_discard_comm(comm))
			return true;
	}
	return false;
}
#endif

/* For socket-enricher data: NULL means "unknown socket", dropped if any filter is set. */
static __always_inline bool gadget_should_discard_data_by_skb(struct gadget_socket_value *v)
{
	if (!v)
		return gadget_filter_by_mntns || targ_pid != 0 || targ_tid != 0 ||
		       targ_uid != GADGET_INVALID_ID || targ_gid != GADGET_INVALID_ID ||
		       __gadget_comm_filter_set();
	return gadget_should_discard_data(v->mntns, v->pid_tgid >> 32, (__u32)v->pid_tgid,
					  v->task, (__u32)v->uid_gid, v->uid_gid >> 32);
}

#endif /* __GADGET_FILTER_H */
