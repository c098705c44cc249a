/* flight: the gadget's perf array, and one the module makes and puts into the gadget's
 * map of perf arrays (as IG's traceloop does per container), both read while paused at
 * gadgetStop (overwritable readers, as traceloop's), each record an event of "recorded". */
#include <gadget/wasm.h>

static gadget_ds_t recorded;
static gadget_field_t r_pid, r_arg;
static gadget_perf_t reader, own_reader;

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
	/* max_entries 0: one entry per CPU, as cilium/ebpf sizes a perf event array */
	gadget_map_t own = gadget_map_new("own_buffer", GADGET_MAP_PERF_EVENT_ARRAY, 4, 4, 0);
	own_reader = gadget_perf_new(own, 4096, true);
	uint32_t key = 1;
	if (!reader || !own || !own_reader ||
	    gadget_map_update(gadget_map_get("buffers"), &key, 4, &own, 4, GADGET_MAP_NOEXIST))
		return 1;
	return 0;
}

static void drain(gadget_perf_t r)
{
	uint32_t rec[4];
	gadget_perf_pause(r);
	while (gadget_perf_read(r, rec, sizeof rec) == GADGET_PERF_OK) {
		gadget_packet_t p = gadget_packet_new(recorded);
		gadget_field_set_u32(r_pid, p, rec[0]);
		gadget_field_set_u32(r_arg, p, rec[1]);
		gadget_emit(recorded, p);
	}
	gadget_perf_close(r);
}

GADGET_LIFECYCLE(gadgetStop)
{
	drain(reader);
	drain(own_reader);
	return 0;
}
