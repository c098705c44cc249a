/* eBPF maps (the gadget's, new ones, maps of maps) and perf readers. */
#include <string.h>
#include "report.h"

static gadget_perf_t reader;

GADGET_LIFECYCLE(gadgetStart)
{
	report_init();
	uint32_t k = 1;
	uint64_t v = 10, got = 0;
	gadget_map_t m = gadget_map_get("counts");      /* HASH u32 -> u64, 4 entries */
	report("get", m != 0);
	report("update", gadget_map_update(m, &k, 4, &v, 8, GADGET_MAP_ANY));
	report("update_noexist", gadget_map_update(m, &k, 4, &v, 8, GADGET_MAP_NOEXIST));
	v = 11;
	report("update_exist", gadget_map_update(m, &k, 4, &v, 8, GADGET_MAP_EXIST));
	report("lookup", gadget_map_lookup(m, &k, 4, &got, 8));
	report("lookup_value", (int64_t)got);
	k = 2;
	report("lookup_missing", gadget_map_lookup(m, &k, 4, &got, 8));
	report("update_flags", ig_mapUpdate(m, gadget_buf(&k, 4), gadget_buf(&v, 8), 8));
	report("update_exist_missing", gadget_map_update(m, &k, 4, &v, 8, GADGET_MAP_EXIST));
	k = 3;
	v = 33;
	gadget_map_update(m, &k, 4, &v, 8, GADGET_MAP_ANY);
	k = 1;
	report("delete", gadget_map_delete(m, &k, 4));
	report("delete_again", gadget_map_delete(m, &k, 4));
	report("lookup_small", gadget_map_lookup(m, &k, 4, &got, 4));
	report("release_not_created", gadget_map_release(m));
	report("release_handle", gadget_release_handle(m));
	report("get_missing", gadget_map_get("nope"));

	gadget_map_t s = gadget_map_new("scratch", GADGET_MAP_HASH, 4, 4, 2);
	report("new", s != 0);
	uint32_t a = 1, b = 2, c = 3;
	report("new_update1", gadget_map_update(s, &a, 4, &a, 4, GADGET_MAP_ANY));
	report("new_update2", gadget_map_update(s, &b, 4, &b, 4, GADGET_MAP_ANY));
	report("new_full", gadget_map_update(s, &c, 4, &c, 4, GADGET_MAP_ANY));
	report("new_badtype", gadget_map_new("bad", 99, 4, 4, 1));
	report("new_release", gadget_map_release(s));
	report("new_release_again", gadget_map_release(s));

	/* a hash of maps: the inner map crosses as a handle */
	gadget_map_t outer = gadget_map_get("outer");
	gadget_map_t inner = gadget_map_new("inner", GADGET_MAP_ARRAY, 4, 8, 4);
	uint32_t key = 7, ih = inner, idx = 1;
	uint64_t val = 42;
	report("mom_update", gadget_map_update(outer, &key, 4, &ih, 4, GADGET_MAP_ANY));
	uint32_t h2 = 0;
	report("mom_lookup", gadget_map_lookup(outer, &key, 4, &h2, 4));
	report("mom_new_handle", h2 != 0 && h2 != inner);
	report("mom_inner_update", gadget_map_update(h2, &idx, 4, &val, 8, GADGET_MAP_ANY));
	uint64_t back = 0;
	report("mom_inner_lookup", gadget_map_lookup(inner, &idx, 4, &back, 8) * 1000 + (int64_t)back);
	uint32_t bad = 9999;
	report("mom_bad_inner", gadget_map_update(outer, &key, 4, &bad, 4, GADGET_MAP_ANY));

	/* perf: the reader now, the records at gadgetStop (the test makes them between) */
	gadget_map_t perf = gadget_map_get("events_perf");
	report("perf_map_lookup", gadget_map_lookup(perf, &key, 4, &h2, 4));   /* FD array */
	reader = gadget_perf_new(perf, 4096, true);
	report("perf_new", reader != 0);
	report("perf_new_bad", gadget_perf_new(9999, 4096, true));
	report("perf_new_notperf", gadget_perf_new(inner, 4096, true));
	return 0;
}

GADGET_LIFECYCLE(gadgetStop)
{
	gadget_perf_t r = reader;
	char rec[16];
	/* an overwritable reader gives records only while paused, newest first */
	report("perf_read_running", gadget_perf_read(r, rec, sizeof rec));
	report("perf_pause", gadget_perf_pause(r));
	memset(rec, 0, sizeof rec);
	int rr = gadget_perf_read(r, rec, sizeof rec);
	report_full("perf_read1", rr, rec);
	memset(rec, 0, sizeof rec);
	rr = gadget_perf_read(r, rec, sizeof rec);
	report_full("perf_read2", rr, rec);
	report("perf_read_small", gadget_perf_read(r, rec, 2));
	report("perf_read_empty", gadget_perf_read(r, rec, sizeof rec));
	report("perf_resume", gadget_perf_resume(r));
	report("perf_close", gadget_perf_close(r));
	report("perf_close_again", gadget_perf_close(r));
	return 0;
}
