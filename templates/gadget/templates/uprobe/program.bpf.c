// SPDX-License-Identifier: GPL-2.0
/* {{ cookiecutter.name }}: {{ cookiecutter.description | replace('*/', '* /') }}.
 *
 * A uprobe gadget: a uprobe on libc's getaddrinfo() remembers the name looked up, a
 * uretprobe sends it with the result. `gadget run` puts the probes on this host's libc
 * and on each selected container's own libc (found in the container's filesystem), so
 * lookups in containers are seen too. Start editing at the lines marked EDIT.
 * Build and run: gadget build . && sudo gadget run . --host
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include <gadget/buffer.h>
#include <gadget/common.h>
#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/types.h>

#define NAME_LEN 128

/* EDIT: one event; each member is a field of the data source. */
struct event {
	gadget_timestamp timestamp_raw;
	struct gadget_process proc;
	char node[NAME_LEN];
	char service[32];
	__s32 result; /* 0, or an EAI_* code (negative, see <netdb.h>) */
};

/* the arguments of a call in progress, by thread */
struct lookup {
	const char *node;
	const char *service;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct lookup);
} lookups SEC(".maps");

GADGET_TRACER_MAP(events, 1024 * 256);
GADGET_TRACER({{ cookiecutter.name }}, events, event);

/* EDIT: the function: uprobe/LIBRARY:SYMBOL (a short library name, a program in PATH
 * or an absolute path); BPF_UPROBE names its arguments */
SEC("uprobe/libc:getaddrinfo")
int BPF_UPROBE({{ cookiecutter.name }}_enter, const char *node, const char *service)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct lookup l = { .node = node, .service = service };

	/* the common filters: selected containers (mount namespaces), pid, uid, comm ... */
	if (gadget_should_discard_data_current())
		return 0;
	bpf_map_update_elem(&lookups, &tid, &l, BPF_ANY);
	return 0;
}

SEC("uretprobe/libc:getaddrinfo")
int BPF_URETPROBE({{ cookiecutter.name }}_exit, int ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct lookup *l = bpf_map_lookup_elem(&lookups, &tid);
	struct event *e;

	if (!l)
		return 0;
	e = gadget_reserve_buf(&events, sizeof(*e));
	if (!e)
		goto out;
	e->timestamp_raw = bpf_ktime_get_boot_ns();
	gadget_process_populate(&e->proc);
	if (l->node)
		bpf_probe_read_user_str(e->node, sizeof(e->node), l->node);
	else
		e->node[0] = 0;
	if (l->service)
		bpf_probe_read_user_str(e->service, sizeof(e->service), l->service);
	else
		e->service[0] = 0;
	e->result = ret;
	gadget_submit_buf(ctx, &events, e, sizeof(*e));
out:
	bpf_map_delete_elem(&lookups, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
