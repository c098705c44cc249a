// SPDX-License-Identifier: Apache-2.0
/*
 * <gadget/gpu_bridge_maps.h> as IG's gpu_top_per_pid and profile_cpu use it: a task
 * iterator that reports the processes the GPU bridge knows, while its data is fresh.
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/macros.h>
#include <gadget/types.h>
#define GPU_BRIDGE_WANT_META
#define GPU_BRIDGE_WANT_DEVICE
#define GPU_BRIDGE_WANT_PER_PID
#define GPU_BRIDGE_WANT_PER_PID_PER_DEVICE
#include <gadget/gpu_bridge_maps.h>

#define CHECK(cond) _Static_assert(cond, #cond)
CHECK(sizeof(struct gpu_meta) == 32);
CHECK(sizeof(struct gpu_device_metrics) == 128);
CHECK(sizeof(struct gpu_pid_metrics) == 40);
CHECK(sizeof(struct gpu_pid_metrics_aggregated) == 32);
CHECK(__builtin_offsetof(struct gpu_device_metrics, throttle_reasons) == 56);
CHECK(__builtin_offsetof(struct gpu_device_metrics, compute_mode) == 124);

struct gpu_entry {
	gadget_pid pid;
	__u8 device;
	__u8 devices;
	__u16 pad;
	__u64 used_bytes;
	__u32 sm_util_pct;
	__u32 device_sm_util_pct;
};

GADGET_ITER(gpus, gpu_entry, igsdk_gpu_tasks);

const volatile __u64 min_gpu_mem_bytes = 1;
GADGET_PARAM(min_gpu_mem_bytes);

SEC("iter/task")
int igsdk_gpu_tasks(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	struct gpu_pid_metrics_aggregated *m;
	struct gpu_device_metrics *dev;
	struct gpu_entry e = {};
	__u32 idx;

	if (!task || task->pid != task->tgid)
		return 0;
	if (!gpu_meta_fresh(bpf_ktime_get_boot_ns(), 2000))
		return 0;
	m = gpu_pid_holder(task->tgid, min_gpu_mem_bytes);
	if (!m)
		return 0;
	e.pid = task->tgid;
	e.device = m->gpu_device_primary;
	e.devices = m->device_count;
	e.used_bytes = m->used_gpu_memory_total;
	e.sm_util_pct = m->sm_util_pct_max;
	idx = m->gpu_device_primary;
	if (idx != GPU_DEVICE_PRIMARY_MULTI) {
		dev = bpf_map_lookup_elem(&gpu_device, &idx);
		if (dev)
			e.device_sm_util_pct = dev->sm_util_pct;
	}
	bpf_seq_write(ctx->meta->seq, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
