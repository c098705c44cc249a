/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gadgetsmith SDK: the GPU bridge's pinned maps, for gadgets that read GPU telemetry.
 *
 * Select the maps before including this file (a gadget declares only what it reads):
 *
 *   #define GPU_BRIDGE_WANT_META                // gpu_meta: ARRAY, 1 entry
 *   #define GPU_BRIDGE_WANT_DEVICE              // gpu_device: ARRAY, GPU_MAX_DEVICES
 *   #define GPU_BRIDGE_WANT_PER_PID             // gpu_per_pid: LRU_HASH, 4096, key tgid
 *   #define GPU_BRIDGE_WANT_PER_PID_PER_DEVICE  // gpu_per_pid_per_device: LRU_HASH,
 *                                               //   4096, key (pid << 32) | device
 *   #define GPU_BRIDGE_WANT_ALL                 // all four
 *   #include <gadget/gpu_bridge_maps.h>
 *
 * The maps are pinned by name (LIBBPF_PIN_BY_NAME, under /sys/fs/bpf): loading the
 * gadget reuses the bridge's maps when the bridge runs, and otherwise creates and pins
 * empty ones (which stay until removed). Type, key, value and size must therefore be
 * exactly the bridge's, or the load fails.
 *
 * Include it after <vmlinux.h> (or <linux/types.h>).
 */
#ifndef __GADGET_GPU_BRIDGE_MAPS_H
#define __GADGET_GPU_BRIDGE_MAPS_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <gadget/gpu_types.h>

#ifdef GPU_BRIDGE_WANT_ALL
#define GPU_BRIDGE_WANT_META
#define GPU_BRIDGE_WANT_DEVICE
#define GPU_BRIDGE_WANT_PER_PID
#define GPU_BRIDGE_WANT_PER_PID_PER_DEVICE
#endif

#define __GPU_BRIDGE_PIDS 4096

#ifdef GPU_BRIDGE_WANT_META
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gpu_meta);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} gpu_meta SEC(".maps");

/*
 * The bridge's state if it polled within `stale_threshold_ms` of `now_boot_ns` (a
 * bpf_ktime_get_boot_ns() value), else NULL: without a fresh poll the other maps are
 * not to be trusted. Its clock_offset_ns converts the driver's wall-clock times.
 */
static __always_inline struct gpu_meta *gpu_meta_fresh(__u64 now_boot_ns,
						       __u64 stale_threshold_ms)
{
	__u32 key = 0;
	struct gpu_meta *meta = bpf_map_lookup_elem(&gpu_meta, &key);

	if (!meta)
		return NULL;
	if (now_boot_ns - meta->last_update_boottime_ns > stale_threshold_ms * 1000000ULL)
		return NULL;
	return meta;
}
#endif

#ifdef GPU_BRIDGE_WANT_DEVICE
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GPU_MAX_DEVICES);
	__type(key, __u32);
	__type(value, struct gpu_device_metrics);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} gpu_device SEC(".maps");
#endif

#ifdef GPU_BRIDGE_WANT_PER_PID
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, __GPU_BRIDGE_PIDS);
	__type(key, __u32);
	__type(value, struct gpu_pid_metrics_aggregated);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} gpu_per_pid SEC(".maps");

/* The process's record if it holds at least `min_gpu_mem_bytes` of device memory,
 * else NULL. */
static __always_inline struct gpu_pid_metrics_aggregated *
gpu_pid_holder(__u32 tgid, __u64 min_gpu_mem_bytes)
{
	struct gpu_pid_metrics_aggregated *m = bpf_map_lookup_elem(&gpu_per_pid, &tgid);

	return m && m->used_gpu_memory_total >= min_gpu_mem_bytes ? m : NULL;
}
#endif

#ifdef GPU_BRIDGE_WANT_PER_PID_PER_DEVICE
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, __GPU_BRIDGE_PIDS);
	__type(key, __u64);
	__type(value, struct gpu_pid_metrics);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} gpu_per_pid_per_device SEC(".maps");
#endif

#endif /* __GADGET_GPU_BRIDGE_MAPS_H */
