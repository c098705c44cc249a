// SPDX-License-Identifier: GPL-2.0
/* {{ cookiecutter.name }}: {{ cookiecutter.description | replace('*/', '* /') }}.
 *
 * A top gadget: a tracepoint adds each write(2) to a hash map keyed by process; the map
 * is the data source, read and emptied every --map-fetch-interval (a map iterator). Start
 * editing at the lines marked EDIT.
 * Build and run: gadget build . && sudo gadget run . --host --sort=-bytes
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/maps.bpf.h>
#include <gadget/mntns.h>
#include <gadget/types.h>

/* EDIT: what a row is about (the key) and what is counted (the value); the fields of
 * both are the data source's columns. Describe new fields in gadget.yaml. */
struct writes_key {
	gadget_mntns_id mntns_id;
	gadget_pid pid;
	gadget_comm comm[TASK_COMM_LEN];
};

struct writes_value {
	__u64 writes;
	gadget_bytes bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240); /* gadget run -p writers_max_entries=N changes it */
	__type(key, struct writes_key);
	__type(value, struct writes_value);
} writers SEC(".maps");

/* the data source "{{ cookiecutter.name }}": the entries of the map, drained periodically */
GADGET_MAPITER({{ cookiecutter.name }}, writers);

/* EDIT: what is counted (sudo ls /sys/kernel/tracing/events/syscalls lists tracepoints) */
SEC("tracepoint/syscalls/sys_exit_write")
int {{ cookiecutter.name }}_write_exit(struct trace_event_raw_sys_exit *ctx)
{
	static const struct writes_value zero;
	struct writes_key key = {};
	struct writes_value *w;

	/* the common filters: selected containers (mount namespaces), pid, uid, comm ... */
	if (gadget_should_discard_data_current())
		return 0;
	key.mntns_id = gadget_get_current_mntns_id();
	key.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	w = bpf_map_lookup_or_try_init(&writers, &key, &zero);
	if (!w)
		return 0;
	__sync_fetch_and_add(&w->writes, 1);
	if (ctx->ret > 0)
		__sync_fetch_and_add(&w->bytes, ctx->ret);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
