/* Every field accessor: scalars of each kind, strings, bytes, tags, and their errors. */
#include <stdio.h>
#include <string.h>
#include <gadget/wasm.h>

static gadget_field_t fu8, fi8, fu16, fi16, fu32, fi32, fu64, fi64, ff32, ff64, fflag, fcomm, fblob,
	fmixed;
static gadget_field_t out_u32, out_i16, out_f64, out_bool, out_str, out_bytes, out_errs, out_mixed;
static uint32_t init_errs;

#define GET(f, name)                                   \
	do {                                           \
		f = gadget_get_field(ds, name);        \
		if (!f)                                \
			return 10;                     \
	} while (0)
#define ADD(f, name, kind)                             \
	do {                                           \
		f = gadget_add_field(ds, name, kind);  \
		if (!f)                                \
			return 11;                     \
	} while (0)

static void on_event(gadget_ds_t ds, gadget_data_t d)
{
	(void)ds;
	uint32_t err = 0;
	uint8_t u8 = gadget_field_u8(fu8, d, &err);
	int8_t i8 = gadget_field_i8(fi8, d, &err);
	uint16_t u16 = gadget_field_u16(fu16, d, &err);
	int16_t i16 = gadget_field_i16(fi16, d, &err);
	uint32_t u32 = gadget_field_u32(fu32, d, &err);
	int32_t i32 = gadget_field_i32(fi32, d, &err);
	uint64_t u64 = gadget_field_u64(fu64, d, &err);
	int64_t i64 = gadget_field_i64(fi64, d, &err);
	float f32 = gadget_field_f32(ff32, d, &err);
	double f64 = gadget_field_f64(ff64, d, &err);
	bool flag = gadget_field_bool(fflag, d, &err);
	uint32_t errs = init_errs | (err ? 1u << 31 : 0);

	char comm[17], blob[64], out[96], small[2];
	int32_t n = gadget_field_string(fcomm, d, comm, sizeof comm);
	int32_t nb = gadget_field_bytes(fblob, d, blob, sizeof blob);

	gadget_field_set_u32(out_u32, d, u32 + u8 + u16 + (uint32_t)i8 + (uint32_t)i32);
	gadget_field_set_i16(out_i16, d, (int16_t)(i16 * 2));
	gadget_field_set_i64(fi64, d, -i64);
	gadget_field_set_u64(fu64, d, u64 + 1);
	gadget_field_set_f64(out_f64, d, (double)f32 + f64);
	gadget_field_set_f32(ff32, d, f32 * 2);
	gadget_field_set_bool(out_bool, d, !flag);
	snprintf(out, sizeof out, "comm=%s/%d blob=%d", comm, (int)n, (int)nb);
	gadget_field_set_string(out_str, d, out);
	for (int i = 0; i < nb / 2; i++) {
		char c = blob[i];
		blob[i] = blob[nb - 1 - i];
		blob[nb - 1 - i] = c;
	}
	if (nb >= 0)
		gadget_field_set_bytes(out_bytes, d, blob, (uint32_t)nb);
	for (int i = 0; i < n; i++)
		if (comm[i] >= 'a' && comm[i] <= 'z')
			comm[i] -= 32;
	gadget_field_set_string(fcomm, d, comm);

	/* errors */
	uint32_t e = 0;
	ig_fieldGetScalar(fu32, d, GADGET_KIND_UINT64, (uint32_t)(uintptr_t)&e);
	errs |= e ? 1u << 0 : 0; e = 0;
	ig_fieldGetScalar(fcomm, d, GADGET_KIND_UINT32, (uint32_t)(uintptr_t)&e);
	errs |= e ? 1u << 1 : 0; e = 0;
	errs |= ig_fieldGetBuffer(fcomm, d, GADGET_KIND_STRING, gadget_buf(small, sizeof small)) == -1 ? 1u << 2 : 0;
	errs |= gadget_field_set_string(fcomm, d, "seventeen-chars!!") == 1 ? 1u << 3 : 0;
	ig_fieldGetScalar(fu32, d, 99, (uint32_t)(uintptr_t)&e);
	errs |= e ? 1u << 4 : 0; e = 0;
	/* uint32 field read and written as int32: same size, allowed */
	errs |= gadget_field_i32(fu32, d, &e) == (int32_t)u32 && !e ? 1u << 5 : 0;
	ig_fieldGetScalar(9999, d, GADGET_KIND_UINT32, (uint32_t)(uintptr_t)&e);
	errs |= e ? 1u << 9 : 0; e = 0;
	ig_fieldGetScalar(fu32, 9999, GADGET_KIND_UINT32, (uint32_t)(uintptr_t)&e);
	errs |= e ? 1u << 10 : 0; e = 0;
	errs |= ig_fieldGetBuffer(fu32, d, GADGET_KIND_UINT32, gadget_buf(small, sizeof small)) == -1 ? 1u << 11 : 0;
	errs |= gadget_field_set_u16(fu32, d, 1) == 1 ? 1u << 12 : 0;   /* wrong size */
	errs |= ig_fieldSet(fu32, d, GADGET_KIND_CSTRING, 0) == 1 ? 1u << 13 : 0;
	/* a uint32 field's raw bytes */
	uint8_t raw[4];
	errs |= gadget_field_bytes(fu32, d, raw, sizeof raw) == 4 && raw[0] == (u32 & 0xff) ? 1u << 14 : 0;
	/* fieldGetScalar must not touch *err on success */
	e = 7;
	gadget_field_u8(fu8, d, &e);
	errs |= e == 7 ? 1u << 15 : 0;
	gadget_field_set_u32(out_errs, d, errs);
	gadget_field_set_u32(out_mixed, d, gadget_field_u32(fmixed, d, NULL) + 1);
}

GADGET_LIFECYCLE(gadgetInit)
{
	gadget_ds_t ds = gadget_get_datasource("events");
	if (!ds)
		return 1;
	GET(fu8, "u8"); GET(fi8, "i8"); GET(fu16, "u16"); GET(fi16, "i16");
	GET(fu32, "u32"); GET(fi32, "i32"); GET(fu64, "u64"); GET(fi64, "i64");
	GET(ff32, "f32"); GET(ff64, "f64"); GET(fflag, "flag"); GET(fcomm, "proc.comm");
	GET(fblob, "blob");
	GET(fmixed, "mixed.case");      /* the field is "Mixed.Case": case-insensitive */
	ADD(out_u32, "out_u32", GADGET_KIND_UINT32);
	ADD(out_i16, "out_i16", GADGET_KIND_INT16);
	ADD(out_f64, "out_f64", GADGET_KIND_FLOAT64);
	ADD(out_bool, "out_bool", GADGET_KIND_BOOL);
	ADD(out_str, "out_str", GADGET_KIND_STRING);
	ADD(out_bytes, "out_bytes", GADGET_KIND_BYTES);
	ADD(out_errs, "out_errs", GADGET_KIND_UINT32);
	ADD(out_mixed, "out_mixed", GADGET_KIND_UINT32);
	if (gadget_field_add_tag(out_str, "role:demo") || gadget_field_add_tag(out_str, "second"))
		return 12;
	init_errs |= gadget_get_field(ds, "nonexistent") == 0 ? 1u << 6 : 0;
	init_errs |= gadget_add_field(ds, "out_u32", GADGET_KIND_UINT32) == 0 ? 1u << 7 : 0;
	init_errs |= gadget_add_field(ds, "badkind", 15) == 0 ? 1u << 8 : 0;
	init_errs |= gadget_field_add_tag(9999, "x") == 1 ? 1u << 16 : 0;
	init_errs |= gadget_get_field(9999, "u8") == 0 ? 1u << 17 : 0;
	return gadget_subscribe(ds, GADGET_SUB_DATA, 5, on_event);
}
