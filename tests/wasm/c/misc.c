/* Logging, params, config, syscalls, kallsyms, the mount-namespace filter, handles. */
#include <string.h>
#include "report.h"

GADGET_LIFECYCLE(gadgetInit)
{
	char buf[64];
	report_init();
	for (int lvl = GADGET_LOG_ERROR; lvl <= GADGET_LOG_TRACE; lvl++) {
		char msg[32];
		snprintf(msg, sizeof msg, "level %d", lvl);
		report_full("shouldlog", lvl * 10 + (int)ig_gadgetShouldLog(lvl), NULL);
		ig_gadgetLog(lvl, gadget_str(msg));   /* unconditionally */
	}
	gadget_log(GADGET_LOG_INFO, "through gadget_log");

	int r = gadget_param("greeting", buf, sizeof buf);
	report_full("param", r, buf);
	report("param_missing", gadget_param("missing", buf, sizeof buf));
	char tiny[3];
	report("param_small", gadget_param("greeting", tiny, sizeof tiny));
	report("config", gadget_set_config("programs.ig_fa_pick_e.attach_to", "fsnotify_insert_event"));
	report("config_kind", ig_setConfig(gadget_str("x"), 5, GADGET_KIND_UINT32));

	r = gadget_syscall_name(59, buf, sizeof buf);
	report_full("sysname_59", r, buf);
	r = gadget_syscall_name(9999, buf, sizeof buf);
	report_full("sysname_9999", r, buf);
	report("sysname_small", gadget_syscall_name(59, tiny, sizeof tiny));
	report("sysid_openat", gadget_syscall_id("openat"));
	report("sysid_nope", gadget_syscall_id("no_such_syscall"));
	struct gadget_syscall_decl decl;
	memset(&decl, 0xff, sizeof decl);
	r = gadget_syscall_declaration("openat", &decl);
	snprintf(buf, sizeof buf, "%.32s/%u/%.32s/%u/%.32s/%u", decl.name, decl.nr_params, decl.params[0].name,
		 (unsigned)decl.params[0].flags, decl.params[1].name, (unsigned)decl.params[1].flags);
	report_full("sysdecl_openat", r, buf);
	report("sysdecl_nope", gadget_syscall_declaration("no_such_syscall", &decl));
	report("sysdecl_small", ig_getSyscallDeclaration(gadget_str("openat"), gadget_buf(&decl, 100)));

	report("kallsyms_yes", gadget_kallsyms_exists("vfs_read"));
	report("kallsyms_no", gadget_kallsyms_exists("no_such_symbol"));

	gadget_ds_t ds = gadget_get_datasource("events");
	gadget_ds_t ds2 = gadget_get_datasource("events");
	report("handles_distinct", ds != ds2 && ds && ds2);
	report("release", gadget_release_handle(ds));
	report("release_again", gadget_release_handle(ds));
	report("use_released", gadget_get_field(ds, "name"));
	report("use_other", gadget_get_field(ds2, "name") != 0);
	return 0;
}

GADGET_LIFECYCLE(gadgetStart)
{
	report("mntns_555", gadget_should_discard_mntns(555));
	report("mntns_777", gadget_should_discard_mntns(777));
	return 0;
}

GADGET_LIFECYCLE(gadgetPreStart) { report("prestart", 1); return 0; }
GADGET_LIFECYCLE(gadgetStop) { report("stop", 1); return 0; }
GADGET_LIFECYCLE(gadgetPostStop) { report("poststop", 1); return 0; }
