/* A typical small module: reads two fields, writes one, adds one (bench "light"). */
#include <gadget/wasm.h>

static gadget_field_t f_comm, f_pid, f_label;
static char buf[64];

static void on_event(gadget_ds_t ds, gadget_data_t d)
{
	(void)ds;
	uint32_t err = 0;
	uint32_t pid = gadget_field_u32(f_pid, d, &err);
	int32_t n = gadget_field_string(f_comm, d, buf, sizeof buf);
	if (err || n < 0)
		return;
	buf[0] = buf[0] >= 'a' && buf[0] <= 'z' ? buf[0] - 32 : buf[0];
	gadget_field_set_string(f_label, d, pid & 1 ? buf : "even");
}

GADGET_LIFECYCLE(gadgetInit)
{
	gadget_ds_t ds = gadget_get_datasource("events");
	f_comm = gadget_get_field(ds, "proc.comm");
	f_pid = gadget_get_field(ds, "proc.pid");
	f_label = gadget_add_field(ds, "label", GADGET_KIND_STRING);
	if (!ds || !f_comm || !f_pid || !f_label)
		return 1;
	return gadget_subscribe(ds, GADGET_SUB_DATA, 0, on_event);
}
