/* For tests/integration/test_wasm_build.py: adds "label" to the tiny gadget's events and creates a
 * "tiny_stats" data source with a "count" field. */
#include <stdio.h>
#include <gadget/wasm.h>

static gadget_field_t pid_f, label_f;

static void on_event(gadget_ds_t ds, gadget_data_t d)
{
	char buf[32];
	snprintf(buf, sizeof buf, "pid=%u", gadget_field_u32(pid_f, d, NULL));
	gadget_field_set_string(label_f, d, buf);
}

GADGET_LIFECYCLE(gadgetInit)
{
	gadget_ds_t ds = gadget_get_datasource("tiny");
	gadget_ds_t stats = gadget_new_datasource("tiny_stats", GADGET_DS_SINGLE);
	if (!ds || !stats || !gadget_add_field(stats, "count", GADGET_KIND_UINT64))
		return 1;
	pid_f = gadget_get_field(ds, "pid");
	label_f = gadget_add_field(ds, "label", GADGET_KIND_STRING);
	if (!pid_f || !label_f)
		return 1;
	return gadget_subscribe(ds, GADGET_SUB_DATA, 0, on_event);
}
