/* The maps a gadget would give its WASM module in the host tests, and a program that
 * writes records "rec-<n>" into the perf event array when the test process calls
 * getpgid(n) (n < 10). */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, 4);
	__uint(value_size, 4);
} events_perf SEC(".maps");

const volatile __u32 target_pid = 0;

struct trace_event_raw_sys_enter_getpgid {
	__u64 common;
	long nr;
	long pid;
};

SEC("tracepoint/syscalls/sys_enter_getpgid")
int record(struct trace_event_raw_sys_enter_getpgid *ctx)
{
	if ((__u32)(bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	long n = ctx->pid;
	if (n < 0 || n > 9)
		return 0;
	char rec[16] = "rec-0";
	rec[4] = '0' + n;
	bpf_perf_event_output(ctx, &events_perf, BPF_F_CURRENT_CPU, rec, 8);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
