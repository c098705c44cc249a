/* SPDX-License-Identifier: Apache-2.0 */
/* One event per getpid of the thread `targ_tid` with the members whose decoding ig
 * decides: enums (a `_raw` name, a name given by the ebpf.formatter.enum annotation, a
 * `_set` bit set with its separator annotation, a plain name that stays a number), an
 * anonymous struct and union, a pointer, and floats (integral, float32, tiny, huge). */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/types.h>

enum dc_level { DC_LOW = 1, DC_HIGH = 2 };
enum dc_mode_set { DC_R = 1, DC_W = 2, DC_X = 4 };

struct dc_box {
	__u16 tag;
	union {
		__u32 word;
		__u8 bytes[4];
	};
};

struct event {
	enum dc_level level_raw;	/* -> level */
	enum dc_level grade;		/* annotation -> grade_name */
	enum dc_mode_set mode_raw;	/* -> mode, separator "+" from the annotation */
	enum dc_mode_set bare;		/* no _raw, no annotation: the number only */
	struct dc_box box;
	struct {
		__u32 depth;
	};
	void *where;
	double whole;
	float tenth;
	double tiny;
	double huge;
	__u32 seq;
};

const volatile __u32 targ_tid = 0;
GADGET_PARAM(targ_tid);

GADGET_TRACER_MAP(events, 1024 * 64);
GADGET_TRACER(decoded, events, event);

SEC("tracepoint/syscalls/sys_enter_getpid")
int dc_getpid(void *ctx)
{
	struct event *e;

	if (targ_tid && (__u32)bpf_get_current_pid_tgid() != targ_tid)
		return 0;
	e = gadget_reserve_buf(&events, sizeof(*e));
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	e->level_raw = DC_HIGH;
	e->grade = DC_LOW;
	e->mode_raw = DC_R | DC_X;
	e->bare = DC_W;
	e->box.tag = 7;
	e->box.word = 0x01020304;
	e->depth = 3;
	e->where = e;
	e->whole = 1500.0;
	e->tenth = 0.1f;
	e->tiny = 0.0000001;
	e->huge = 1e16;
	e->seq = 1;
	gadget_submit_buf(ctx, &events, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
