/* Subscribes to "events" and does nothing: the cost of a module in the chain. */
#include <gadget/wasm.h>

static void on_event(gadget_ds_t ds, gadget_data_t d) { (void)ds; (void)d; }

GADGET_LIFECYCLE(gadgetInit)
{
	gadget_ds_t ds = gadget_get_datasource("events");
	if (!ds)
		return 1;
	return gadget_subscribe(ds, GADGET_SUB_DATA, 0, on_event);
}
