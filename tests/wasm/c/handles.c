/* Runs out of handles, then gives them back. */
#include "report.h"

static gadget_ds_t held[5000];

GADGET_LIFECYCLE(gadgetInit)
{
	report_init();
	int n = 0;
	while (n < 5000 && (held[n] = gadget_get_datasource("events")) != 0)
		n++;
	gadget_packet_t p = gadget_packet_new(report_ds);   /* no handle left: 0 */
	int released = 0;
	for (int i = 0; i < n; i++)
		released += gadget_release_handle(held[i]) == 0;
	report("held", n);
	report("packet_when_full", p);
	report("released", released);
	report("after", gadget_get_datasource("events") != 0);
	return 0;
}
