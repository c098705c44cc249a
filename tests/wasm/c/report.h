/* Test helper: results go out as packets of a "report" data source. */
#include <stdio.h>
#include <gadget/wasm.h>

static gadget_ds_t report_ds;
static gadget_field_t report_check, report_value, report_text;

static void report_init(void)
{
	report_ds = gadget_new_datasource("report", GADGET_DS_SINGLE);
	report_check = gadget_add_field(report_ds, "check", GADGET_KIND_STRING);
	report_value = gadget_add_field(report_ds, "value", GADGET_KIND_INT64);
	report_text = gadget_add_field(report_ds, "text", GADGET_KIND_STRING);
}

static void report_full(const char *check, int64_t value, const char *text)
{
	gadget_packet_t p = gadget_packet_new(report_ds);
	gadget_field_set_string(report_check, p, check);
	gadget_field_set_i64(report_value, p, value);
	if (text)
		gadget_field_set_string(report_text, p, text);
	gadget_emit(report_ds, p);
}

static void report(const char *check, int64_t value) { report_full(check, value, NULL); }
