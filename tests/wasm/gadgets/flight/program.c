/* flight: the gadget's perf array, read while paused at gadgetStop (an overwritable
 * reader, as IG's traceloop uses), each record an event of "recorded". */
#include <gadget/wasm.h>

static gadget_ds_t recorded;
static gadget_field_t r_pid, r_arg;
static gadget_perf_t reader;

GADGET_LIFECYCLE(gadgetInit)
{
	recorded = gadget_new_datasource("recorded", GADGET_DS_SINGLE);
	r_pid = gadget_add_field(recorded, "pid", GADGET_KIND_UINT32);
	r_arg = gadget_add_field(recorded, "arg", GADGET_KIND_UINT32);
	return recorded && r_pid && r_arg ? 0 : 1;
}

GADGET_LIFECYCLE(gadgetStart)
{
	reader = gadget_perf_new(gadget_map_get("recorder"), 4096, true);
	return reader ? 0 : 1;
}

GADGET_LIFECYCLE(gadgetStop)
{
	uint32_t rec[4];
	gadget_perf_pause(reader);
	while (gadget_perf_read(reader, rec, sizeof rec) == GADGET_PERF_OK) {
		gadget_packet_t p = gadget_packet_new(recorded);
		gadget_field_set_u32(r_pid, p, rec[0]);
		gadget_field_set_u32(r_arg, p, rec[1]);
		gadget_emit(recorded, p);
	}
	return gadget_perf_close(reader);
}
