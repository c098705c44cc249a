/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gadgetsmith SDK: turning kernel file objects into path strings.
 *
 * get_path_str() walks dentries up to the mount root, crosses mount points, and writes
 * the components backwards into the first half of a per-CPU scratch buffer, so the
 * result ends just before the middle of the buffer and needs no copying.
 */
#ifndef __GADGET_FILESYSTEM_H
#define __GADGET_FILESYSTEM_H

#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define GADGET_PATH_MAX 512
#ifndef PATH_MAX
#define PATH_MAX 4096
#endif
#define MAX_PERCPU_BUFSIZE (1 << 15)
#define MAX_PATH_COMPONENTS 80

#define __GADGET_PATH_HALF (MAX_PERCPU_BUFSIZE >> 1)
#define __GADGET_PATH_MASK (__GADGET_PATH_HALF - 1)
#define __GADGET_NAME_MASK 255

typedef struct {
	__u8 buf[MAX_PERCPU_BUFSIZE];
} buf_t;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, buf_t);
} bufs SEC(".maps");

static __always_inline buf_t *get_buf(int idx)
{
	return bpf_map_lookup_elem(&bufs, &idx);
}

static __always_inline struct mount *real_mount(struct vfsmount *mnt)
{
	return (struct mount *)((char *)mnt - bpf_core_field_offset(struct mount, mnt));
}

static __always_inline struct dentry *get_mnt_root_ptr_from_vfsmnt(struct vfsmount *vfsmnt)
{
	return BPF_CORE_READ(vfsmnt, mnt_root);
}

static __always_inline struct dentry *get_d_parent_ptr_from_dentry(struct dentry *dentry)
{
	return BPF_CORE_READ(dentry, d_parent);
}

static __always_inline struct qstr get_d_name_from_dentry(struct dentry *dentry)
{
	return BPF_CORE_READ(dentry, d_name);
}

/*
 * Absolute path of `path` (a struct path in kernel memory or on the stack), as a string
 * in this CPU's scratch buffer; NULL if the buffer is unavailable. A file without a
 * path in any mounted tree (a memfd, a pipe) gives its dentry's own name.
 *
 * The walk is written for the verifier. A precise scalar that differs from one path
 * through the loop to the next stops the verifier from pruning: every mount crossing and
 * every component would then double the states it explores, and a deep path took it
 * past its 1M-instruction budget (E2BIG). So the write offset lives in the scratch
 * buffer itself (`__gadget_path_off`, past the string half), where a load gives the
 * verifier an unknown value: no comparison on it is decided in advance, nothing makes
 * it precise, and the states of every path through one iteration compare equal. Every
 * index is masked into the buffer instead of being proved from the offset's range.
 * Cost: about 40 instructions per iteration, checked once per iteration.
 */
#define __gadget_path_off(out) (*(volatile __u32 *)&(out)->buf[__GADGET_PATH_HALF])

static __always_inline char *get_path_str(struct path *path)
{
	buf_t *out = get_buf(0);
	struct dentry *dentry, *parent, *mnt_root;
	struct vfsmount *vfsmnt;
	struct mount *mnt, *mnt_parent;
	__u32 off, len;

	if (!out)
		return NULL;
	dentry = BPF_CORE_READ(path, dentry);
	vfsmnt = BPF_CORE_READ(path, mnt);
	mnt = real_mount(vfsmnt);
	mnt_parent = BPF_CORE_READ(mnt, mnt_parent);

	/* the string ends at the last byte of the first half; components go before it */
	out->buf[__GADGET_PATH_HALF - 1] = '\0';
	__gadget_path_off(out) = __GADGET_PATH_HALF - 1;

#pragma clang loop unroll(disable)
	for (int i = 0; i < MAX_PATH_COMPONENTS; i++) {
		mnt_root = get_mnt_root_ptr_from_vfsmnt(vfsmnt);
		parent = get_d_parent_ptr_from_dentry(dentry);
		if (dentry == mnt_root || dentry == parent) {
			if (dentry != mnt_root || mnt == mnt_parent)
				break; /* the global root, or a dentry outside its mount */
			/* cross into the parent mount, at the point this one is mounted on */
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = mnt_parent;
			mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
			vfsmnt = __builtin_preserve_access_index(&mnt->mnt);
			continue;
		}
		struct qstr name = get_d_name_from_dentry(dentry);

		len = name.len & __GADGET_NAME_MASK;
		off = __gadget_path_off(out);
		if (len == 0 || off < len + 1)
			break; /* an empty name, or no room for "/name" */
		off -= len + 1;
		out->buf[off & __GADGET_PATH_MASK] = '/';
		bpf_probe_read_kernel(&out->buf[(off + 1) & __GADGET_PATH_MASK], len, name.name);
		__gadget_path_off(out) = off;
		dentry = parent;
	}
	off = __gadget_path_off(out);
	if (off == __GADGET_PATH_HALF - 1) {
		/* nothing above it: the dentry's own name ("/" for the root itself) */
		struct qstr name = get_d_name_from_dentry(dentry);

		bpf_probe_read_kernel_str(&out->buf[0], __GADGET_NAME_MASK + 1, name.name);
		return (char *)&out->buf[0];
	}
	return (char *)&out->buf[off & __GADGET_PATH_MASK];
}

/* The struct file of descriptor `fd` of the current task (NULL if none). */
static __always_inline struct file *get_struct_file_for_fd(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	unsigned int max = BPF_CORE_READ(task, files, fdt, max_fds);
	struct file *f = NULL;

	if (fd < 0 || (unsigned int)fd >= max)
		return NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/* Copy the path of descriptor `fd` into `buf`; returns the copied length or < 0. */
static __always_inline long read_full_path_of_open_file_fd(int fd, char *buf, __u32 len)
{
	struct file *f = get_struct_file_for_fd(fd);
	char *path;

	if (!f)
		return -1;
	path = get_path_str(__builtin_preserve_access_index(&f->f_path));
	if (!path)
		return -1;
	return bpf_probe_read_kernel_str(buf, len, path);
}

#endif /* __GADGET_FILESYSTEM_H */
