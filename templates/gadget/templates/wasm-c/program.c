// SPDX-License-Identifier: Apache-2.0
/* {{ cookiecutter.name }}'s WASM module, in C against gadgetsmith's <gadget/wasm.h> (IG's
 * WASM API): for each event of the "{{ cookiecutter.name }}" data source it adds "file",
 * the base name of "path", and "in_tmp", whether the path is under /tmp. `gadget build`
 * compiles it with clang for wasm32-wasip1 (wasi-libc) into the image's WASM layer. */
#include <string.h>
#include <gadget/wasm.h>

#define PATH_LEN 256 /* as in program.bpf.c */

static gadget_field_t path_f, file_f, in_tmp_f;

/* EDIT: what is done with each event */
static void on_event(gadget_ds_t ds, gadget_data_t d)
{
	char path[PATH_LEN + 1]; /* the whole char array, and a NUL */
	const char *slash;

	(void)ds;
	if (gadget_field_string(path_f, d, path, sizeof(path)) < 0)
		return;
	slash = strrchr(path, '/');
	gadget_field_set_string(file_f, d, slash ? slash + 1 : path);
	gadget_field_set_bool(in_tmp_f, d, strncmp(path, "/tmp/", 5) == 0);
}

GADGET_LIFECYCLE(gadgetInit)
{
	gadget_ds_t ds = gadget_get_datasource("{{ cookiecutter.name }}");

	if (!ds) {
		gadget_log(GADGET_LOG_ERROR, "no data source '{{ cookiecutter.name }}'");
		return 1;
	}
	path_f = gadget_get_field(ds, "path");
	/* EDIT: the fields the module adds (describe them in gadget.yaml too) */
	file_f = gadget_add_field(ds, "file", GADGET_KIND_STRING);
	in_tmp_f = gadget_add_field(ds, "in_tmp", GADGET_KIND_BOOL);
	if (!path_f || !file_f || !in_tmp_f)
		return 1;
	/* priority 0: before the runtime's filter (9000) and sort (9500) */
	return gadget_subscribe(ds, GADGET_SUB_DATA, 0, on_event);
}
