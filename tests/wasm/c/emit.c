/* Data sources the module creates, packets, arrays, subscription kinds and priorities. */
#include <stdio.h>
#include <gadget/wasm.h>

static gadget_ds_t events, pairs, batches, snap;
static gadget_field_t ev_name, ev_order, pair_key, pair_count, batch_n, batch_name, snap_n, snap_total;
static uint64_t counter;
static uint32_t init_report;

static void append_order(gadget_data_t d, const char *s)
{
	char buf[32];
	int32_t n = gadget_field_string(ev_order, d, buf, sizeof buf - 2);
	if (n < 0)
		n = 0;
	snprintf(buf + n, sizeof buf - n, "%s", s);
	gadget_field_set_string(ev_order, d, buf);
}

static void on_data(gadget_ds_t ds, gadget_data_t d)
{
	(void)ds;
	char name[32];
	append_order(d, "d");
	gadget_field_string(ev_name, d, name, sizeof name);
	gadget_packet_t p = gadget_packet_new(pairs);
	gadget_field_set_string(pair_key, p, name);
	gadget_field_set_u64(pair_count, p, ++counter);
	gadget_emit(pairs, p);
	if (counter % 2 == 0) {           /* made and dropped: never seen */
		gadget_packet_t q = gadget_packet_new(pairs);
		gadget_field_set_string(pair_key, q, "released");
		gadget_release(pairs, q);
	}
}

static void on_packet(gadget_ds_t ds, gadget_packet_t p)
{
	(void)ds;
	append_order(p, "p");
}

static void on_early(gadget_ds_t ds, gadget_data_t d)
{
	(void)ds;
	append_order(d, "e");
}

static void on_array(gadget_ds_t ds, gadget_array_t a)
{
	(void)ds;
	uint32_t len = gadget_array_len(a);
	gadget_packet_t batch = gadget_packet_array_new(batches);
	for (uint32_t i = 0; i < len; i++) {
		gadget_data_t el = gadget_array_get(a, i);
		uint32_t n = gadget_field_u32(snap_n, el, NULL);
		gadget_data_t out = gadget_array_new_element(batch);
		char nm[16];
		snprintf(nm, sizeof nm, "e%u", (unsigned)i);
		gadget_field_set_u32(batch_n, out, n * 10);
		gadget_field_set_string(batch_name, out, nm);
		gadget_array_append(batch, out);
	}
	gadget_data_t dropped = gadget_array_new_element(batch);
	gadget_array_release_element(batch, dropped);
	/* out of range, and an element of the new batch read back */
	uint32_t oor = gadget_array_get(a, len) == 0 ? 1 : 0;
	gadget_data_t first = gadget_array_get(batch, 0);
	uint32_t back = len ? gadget_field_u32(batch_n, first, NULL) : 0;
	gadget_data_t extra = gadget_array_new_element(batch);
	gadget_field_set_u32(batch_n, extra, oor * 1000 + back);
	gadget_field_set_string(batch_name, extra, "check");
	gadget_array_append(batch, extra);
	gadget_emit(batches, batch);
}

static void on_elem(gadget_ds_t ds, gadget_data_t el)
{
	(void)ds;
	gadget_field_set_u32(snap_n, el, gadget_field_u32(snap_n, el, NULL) + 1);
}

static void on_snap_packet(gadget_ds_t ds, gadget_packet_t p)
{
	(void)ds;
	uint32_t len = gadget_array_len(p);
	if (len)
		gadget_field_set_u32(snap_total, gadget_array_get(p, 0), len);
}

GADGET_LIFECYCLE(gadgetInit)
{
	events = gadget_get_datasource("events");
	snap = gadget_get_datasource("snap");
	gadget_ds_t hidden = gadget_get_datasource("hidden");
	if (!events || !snap || !hidden)
		return 1;
	ev_name = gadget_get_field(events, "name");
	ev_order = gadget_add_field(events, "order", GADGET_KIND_STRING);
	snap_n = gadget_get_field(snap, "n");
	snap_total = gadget_add_field(snap, "total", GADGET_KIND_UINT32);

	pairs = gadget_new_datasource("pairs", GADGET_DS_SINGLE);
	pair_key = gadget_add_field(pairs, "key", GADGET_KIND_STRING);
	pair_count = gadget_add_field(pairs, "count", GADGET_KIND_UINT64);
	batches = gadget_new_datasource("batches", GADGET_DS_ARRAY);
	batch_n = gadget_add_field(batches, "n", GADGET_KIND_UINT32);
	batch_name = gadget_add_field(batches, "name", GADGET_KIND_STRING);
	if (!pairs || !batches || !pair_key || !pair_count || !batch_n || !batch_name || !snap_n)
		return 2;

	init_report |= gadget_new_datasource("events", GADGET_DS_SINGLE) == 0 ? 1 << 0 : 0;
	init_report |= gadget_new_datasource("weird", 3) == 0 ? 1 << 1 : 0;
	init_report |= ig_dataSourceSubscribe(events, GADGET_SUB_ARRAY, 0, 1) == 1 ? 1 << 2 : 0;
	init_report |= ig_dataSourceSubscribe(events, 7, 0, 1) == 1 ? 1 << 3 : 0;
	init_report |= gadget_packet_array_new(events) == 0 ? 1 << 4 : 0;
	init_report |= gadget_packet_new(snap) == 0 ? 1 << 5 : 0;
	init_report |= ig_dataSourceIsReferenced(hidden) == 1 ? 1 << 6 : 0;
	init_report |= gadget_unreference(hidden) == 0 ? 1 << 7 : 0;
	init_report |= ig_dataSourceIsReferenced(hidden) == 0 ? 1 << 8 : 0;
	init_report |= ig_dataSourceIsReferenced(9999) == 2 ? 1 << 9 : 0;
	init_report |= gadget_emit(events, 9999) == 1 ? 1 << 10 : 0;
	init_report |= gadget_release(events, 9999) == 1 ? 1 << 11 : 0;
	init_report |= gadget_array_len(9999) == 0 ? 1 << 12 : 0;
	init_report |= gadget_array_append(9999, 1) == 1 ? 1 << 13 : 0;
	init_report |= gadget_unreference(9999) == 1 ? 1 << 14 : 0;
	init_report |= gadget_get_datasource("nope") == 0 ? 1 << 15 : 0;

	if (gadget_subscribe(events, GADGET_SUB_PACKET, 20, on_packet) ||
	    gadget_subscribe(events, GADGET_SUB_DATA, 10, on_data) ||
	    gadget_subscribe(events, GADGET_SUB_DATA, -5, on_early) ||
	    gadget_subscribe(snap, GADGET_SUB_ARRAY, 0, on_array) ||
	    gadget_subscribe(snap, GADGET_SUB_DATA, 1, on_elem) ||
	    gadget_subscribe(snap, GADGET_SUB_PACKET, 2, on_snap_packet))
		return 3;

	/* the init report, as a packet of "pairs" */
	gadget_packet_t p = gadget_packet_new(pairs);
	gadget_field_set_string(pair_key, p, "init");
	gadget_field_set_u64(pair_count, p, init_report);
	gadget_emit(pairs, p);
	return 0;
}
