/* The pass-through WASM module of bench/runtime.py (scenario e): subscribed to the bench
 * gadget's data source, it does nothing with the events: the cost of a module in the
 * event path, and nothing else. */
#include <gadget/wasm.h>

static void on_event(gadget_ds_t ds, gadget_data_t d)
{
	(void)ds;
	(void)d;
}

GADGET_LIFECYCLE(gadgetInit)
{
	gadget_ds_t ds = gadget_get_datasource("getppid");
	return ds ? gadget_subscribe(ds, GADGET_SUB_DATA, 0, on_event) : 1;
}
