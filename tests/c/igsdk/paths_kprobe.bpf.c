// SPDX-License-Identifier: Apache-2.0
/*
 * get_path_str() in kprobes, as IG's top_file (vfs_read/vfs_write) and trace_link
 * (two paths in one program) use it; BPF_KPROBE comes through <gadget/filter.h>.
 * This kernel has no kprobes: the test only loads it (the verifier's verdict).
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/filesystem.h>
#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/types.h>

struct file_id {
	__u32 pid;
	__u32 pad;
	__u64 inode;
};

struct file_stat {
	__u64 reads;
	char file[GADGET_PATH_MAX];
	char other[GADGET_PATH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct file_id);
	__type(value, struct file_stat);
} stats SEC(".maps");

GADGET_MAPITER(file, stats);

const struct file_stat zero_stat = {};

static __always_inline int account(struct file *file, struct file *other)
{
	struct file_id key = {};
	struct file_stat *st;
	struct path p;
	char *s;

	key.pid = bpf_get_current_pid_tgid() >> 32;
	key.inode = BPF_CORE_READ(file, f_inode, i_ino);
	bpf_map_update_elem(&stats, &key, &zero_stat, BPF_NOEXIST);
	st = bpf_map_lookup_elem(&stats, &key);
	if (!st)
		return 0;
	st->reads++;
	p = BPF_CORE_READ(file, f_path);
	s = get_path_str(&p);
	bpf_probe_read_kernel_str(st->file, sizeof(st->file), s);
	if (other) {
		p = BPF_CORE_READ(other, f_path);
		s = get_path_str(&p);
		bpf_probe_read_kernel_str(st->other, sizeof(st->other), s);
	}
	return 0;
}

SEC("kprobe/vfs_read")
int BPF_KPROBE(paths_vfs_read, struct file *file)
{
	return account(file, NULL);
}

SEC("kprobe/vfs_copy_file_range")
int BPF_KPROBE(paths_copy, struct file *in, loff_t pos_in, struct file *out)
{
	return account(in, out);
}

char LICENSE[] SEC("license") = "GPL";
