/* Bad modules, one per -DBAD_<case>. */
#include <stdlib.h>
#include <string.h>
#if defined(BAD_NOVERSION) || defined(BAD_VERSION) || defined(BAD_NO_CALLBACK)
#define GADGET_WASM_NO_DEFAULTS
#endif
#include <gadget/wasm.h>

#ifdef BAD_VERSION
GADGET_EXPORT("gadgetAPIVersion") uint64_t version2(void) { return 2; }
#endif

#ifdef BAD_TRAP_INIT
GADGET_LIFECYCLE(gadgetInit) { __builtin_trap(); }
#endif

#ifdef BAD_INIT_FAILS
GADGET_LIFECYCLE(gadgetInit) { return 1; }
#endif

#ifdef BAD_START_FAILS
GADGET_LIFECYCLE(gadgetStart) { return 7; }
#endif

#ifdef BAD_OOM
/* grow past the 256-page cap, then write through the NULL malloc returns */
char *volatile last;
GADGET_LIFECYCLE(gadgetInit)
{
	for (;;) {
		char *p = malloc(1 << 20);
		if (!p)
			__builtin_trap();
		memset(p, 1, 1 << 20);
		last = p;
	}
}
#endif

#ifdef BAD_LOOP
/* never returns */
volatile int spin = 1;
GADGET_LIFECYCLE(gadgetInit)
{
	while (spin)
		;
	return 0;
}
#endif

#ifdef BAD_BIGMEM
/* linked with -Wl,--initial-memory=17825792: 272 pages at start, over the cap */
GADGET_LIFECYCLE(gadgetInit) { return 0; }
#endif

#ifdef BAD_IMPORT
uint32_t ig_notInTheAPI(uint32_t x) GADGET_IMPORT("notInTheAPI");
GADGET_LIFECYCLE(gadgetInit) { return (int32_t)ig_notInTheAPI(1); }
#endif

#ifdef BAD_SIGNATURE
uint32_t bad_fieldSet(uint32_t f, uint32_t d, uint32_t kind) GADGET_IMPORT("fieldSet");
GADGET_LIFECYCLE(gadgetInit) { return (int32_t)bad_fieldSet(1, 2, 3); }
#endif

#ifdef BAD_OTHER_MODULE
uint32_t env_thing(uint32_t x) __attribute__((import_module("env"), import_name("thing")));
GADGET_LIFECYCLE(gadgetInit) { return (int32_t)env_thing(1); }
#endif

#ifdef BAD_TRAP_CALLBACK
static void on_event(gadget_ds_t ds, gadget_data_t d)
{
	(void)ds;
	if (gadget_field_u8(gadget_get_field(ds, "u8"), d, NULL) == 3)
		__builtin_trap();
}
GADGET_LIFECYCLE(gadgetInit)
{
	return gadget_subscribe(gadget_get_datasource("events"), GADGET_SUB_DATA, 0, on_event);
}
#endif

#ifdef BAD_NO_CALLBACK
/* subscribes without exporting dataSourceCallback */
GADGET_EXPORT("gadgetAPIVersion") uint64_t version1(void) { return 1; }
GADGET_LIFECYCLE(gadgetInit)
{
	return (int32_t)ig_dataSourceSubscribe(gadget_get_datasource("events"), GADGET_SUB_DATA, 0, 1);
}
#endif

#ifdef BAD_ERRPTR
/* an error pointer outside memory: IG closes the module */
GADGET_LIFECYCLE(gadgetInit)
{
	ig_fieldGetScalar(9999, 1, GADGET_KIND_UINT32, 0xfffffff0u);
	return 0;
}
#endif

#ifdef BAD_LOOP_EMIT
/* emits into the data source it is subscribed to, for ever */
static gadget_ds_t ds;
static void on_event(gadget_ds_t d, gadget_data_t data)
{
	(void)d; (void)data;
	gadget_emit(ds, gadget_packet_new(ds));
}
GADGET_LIFECYCLE(gadgetInit)
{
	ds = gadget_get_datasource("events");
	return gadget_subscribe(ds, GADGET_SUB_DATA, 0, on_event);
}
#endif

#ifdef BAD_NOT_WASM
#error not built
#endif
