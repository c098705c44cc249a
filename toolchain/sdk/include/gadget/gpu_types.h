/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gadgetsmith SDK: the record layouts of the GPU bridge maps.
 *
 * Inspektor Gadget's gpu-ebpf-bridge daemon polls the GPU driver (NVML) and publishes
 * what it reads in four BPF maps pinned under /sys/fs/bpf; GPU gadgets only read them
 * (see <gadget/gpu_bridge_maps.h> for the maps). The structs below are that daemon's
 * schema version 1: member names, types and order are an ABI shared with it. Read new
 * members through CO-RE (bpf_core_field_exists) if a later schema adds any.
 *
 * Times are CLOCK_BOOTTIME nanoseconds unless a comment says otherwise; a metric the
 * driver cannot report is 0.
 */
#ifndef __GADGET_GPU_TYPES_H
#define __GADGET_GPU_TYPES_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define GPU_SCHEMA_VERSION 1

/* Devices the bridge indexes: the length of the gpu_device array. */
#define GPU_MAX_DEVICES 16

/* gpu_pid_metrics_aggregated.gpu_device_primary when a process uses several devices. */
#define GPU_DEVICE_PRIMARY_MULTI 0xFF

/* gpu_meta[0]: the bridge's own state, rewritten on every poll. */
struct gpu_meta {
	__u32 schema_version;          /* GPU_SCHEMA_VERSION of the writer */
	__u32 n_devices;               /* valid entries of gpu_device */
	__u64 last_update_boottime_ns; /* when the bridge last polled: stale if old */
	__u32 helper_pid;              /* the bridge's pid */
	__u32 _reserved;
	__s64 clock_offset_ns;         /* CLOCK_REALTIME - CLOCK_BOOTTIME, in ns */
};

/* gpu_device[i]: one device's utilisation and health. */
struct gpu_device_metrics {
	__u64 timestamp_ns;
	__u32 sm_util_pct;             /* streaming multiprocessors busy, 0-100 */
	__u32 mem_util_pct;            /* memory controller busy, 0-100 */
	__u64 mem_total;               /* bytes of device memory */
	__u64 mem_used;                /* bytes allocated by users (not mem_reserved) */
	__u64 mem_reserved;            /* bytes the driver and firmware keep */
	__u32 temp_c;
	__u32 power_mw;
	__u32 sm_clock_mhz;
	__u32 mem_clock_mhz;
	__u64 throttle_reasons;        /* the driver's clock-event reason bits */
	__u64 pcie_tx_kbps;
	__u64 pcie_rx_kbps;
	__u32 enc_util_pct;            /* video encoder */
	__u32 dec_util_pct;            /* video decoder */
	__u64 nvlink_tx_kbps;          /* 0 without NVLink */
	__u64 nvlink_rx_kbps;
	__u64 ecc_corrected_total;
	__u64 ecc_uncorrected_total;
	__u32 fan_speed_pct;           /* 0 without a controllable fan */
	__u32 compute_mode;            /* the driver's compute-mode number */
};

/* gpu_per_pid_per_device[(pid << 32) | device]: one process on one device. */
struct gpu_pid_metrics {
	__u64 timestamp_ns;
	__u64 used_gpu_memory;         /* bytes */
	__u32 sm_util_pct;
	__u32 mem_util_pct;
	__u32 enc_util_pct;
	__u32 dec_util_pct;
	__u8 gpu_device;               /* device index */
	__u8 mig_instance;             /* 0: MIG partitions are not reported yet */
	__u16 _pad;
};

/* gpu_per_pid[tgid]: one process over all its devices. */
struct gpu_pid_metrics_aggregated {
	__u64 timestamp_ns;
	__u64 used_gpu_memory_total;   /* bytes, summed over the devices */
	__u32 sm_util_pct_max;         /* the highest of its devices */
	__u32 mem_util_pct_max;
	__u8 gpu_device_primary;       /* its device, or GPU_DEVICE_PRIMARY_MULTI */
	__u8 device_count;
	__u16 _pad;
};

#endif /* __GADGET_GPU_TYPES_H */
