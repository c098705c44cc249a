/* The module of tests/wasm/gadgets/getpgid, driven by its "mode" param:
 *   (any)          adds "doubled" (2 * arg) to every call event; the gadget's perf array
 *                  "recorder" is read at gadgetStop and each record emitted as an event
 *                  of "recorded" (with the "label" param); each container the
 *                  "containers" data source reports goes out as an event of "seen"
 *   trap-callback  traps on the event whose arg is 666
 *   fail-start     gadgetStart returns 5
 *   disable        gadgetPreStart: the program is not to be attached */
#include <string.h>
#include <gadget/wasm.h>

static char mode[32], label[32];
static gadget_field_t arg_f, doubled_f;
static gadget_ds_t recorded, seen;
static gadget_field_t r_pid, r_arg, r_label, s_type, s_name;
static gadget_field_t c_type, c_name;
static gadget_perf_t reader;

static void on_call(gadget_ds_t ds, gadget_data_t d)
{
	uint32_t arg = gadget_field_u32(arg_f, d, NULL);
	if (arg == 666 && !strcmp(mode, "trap-callback"))
		__builtin_trap();
	gadget_field_set_u32(doubled_f, d, arg * 2);
}

static void on_container(gadget_ds_t ds, gadget_data_t d)
{
	char buf[128];
	gadget_packet_t p = gadget_packet_new(seen);
	gadget_field_string(c_type, d, buf, sizeof buf);
	gadget_field_set_string(s_type, p, buf);
	gadget_field_string(c_name, d, buf, sizeof buf);
	gadget_field_set_string(s_name, p, buf);
	gadget_emit(seen, p);
}

GADGET_LIFECYCLE(gadgetInit)
{
	gadget_param("mode", mode, sizeof mode);
	gadget_param("label", label, sizeof label);
	gadget_ds_t calls = gadget_get_datasource("calls");
	arg_f = gadget_get_field(calls, "arg");
	doubled_f = gadget_add_field(calls, "doubled", GADGET_KIND_UINT32);
	recorded = gadget_new_datasource("recorded", GADGET_DS_SINGLE);
	r_pid = gadget_add_field(recorded, "pid", GADGET_KIND_UINT32);
	r_arg = gadget_add_field(recorded, "arg", GADGET_KIND_UINT32);
	r_label = gadget_add_field(recorded, "label", GADGET_KIND_STRING);
	if (!calls || !arg_f || !doubled_f || !recorded || !r_label)
		return 1;
	gadget_ds_t containers = gadget_get_datasource("containers");
	if (containers) {
		seen = gadget_new_datasource("seen", GADGET_DS_SINGLE);
		s_type = gadget_add_field(seen, "event_type", GADGET_KIND_STRING);
		s_name = gadget_add_field(seen, "name", GADGET_KIND_STRING);
		c_type = gadget_get_field(containers, "event_type");
		c_name = gadget_get_field(containers, "name");
		if (gadget_subscribe(containers, GADGET_SUB_DATA, 0, on_container))
			return 1;
	}
	return gadget_subscribe(calls, GADGET_SUB_DATA, 0, on_call);
}

GADGET_LIFECYCLE(gadgetPreStart)
{
	if (!strcmp(mode, "disable"))
		return gadget_set_config("programs.on_getpgid.attach_to", "gadget_program_disabled");
	return 0;
}

GADGET_LIFECYCLE(gadgetStart)
{
	if (!strcmp(mode, "fail-start"))
		return 5;
	reader = gadget_perf_new(gadget_map_get("recorder"), 4096, true);
	return reader ? 0 : 1;
}

GADGET_LIFECYCLE(gadgetStop)
{
	/* a raw sample is padded: 8 bytes of record, 4 of padding */
	struct { uint32_t pid, arg, pad[2]; } rec;
	if (gadget_perf_pause(reader))
		return 1;
	while (gadget_perf_read(reader, &rec, sizeof rec) == GADGET_PERF_OK) {
		gadget_packet_t p = gadget_packet_new(recorded);
		gadget_field_set_u32(r_pid, p, rec.pid);
		gadget_field_set_u32(r_arg, p, rec.arg);
		gadget_field_set_string(r_label, p, label);
		gadget_emit(recorded, p);
	}
	return gadget_perf_close(reader);
}
