/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gadgetsmith SDK: <gadget/wasm.h>, a C API for gadget WebAssembly modules, for hosts
 * that implement Inspektor Gadget's WASM API version 1 (host module "ig").
 *
 * `gadget build` builds `wasm: program.c` (build.yaml) as a WASI reactor:
 *
 *     clang-19 --target=wasm32-wasi -mexec-model=reactor -O2 -I<the SDK's include dir> \
 *         -o program.wasm program.c
 *
 * A module exports gadgetAPIVersion (this header defines it), optionally the lifecycle
 * functions (GADGET_LIFECYCLE(gadgetInit) { ...; return 0; }) and, when it subscribes
 * to data sources, dataSourceCallback (defined here too: it calls the function given to
 * gadget_subscribe()). Both definitions are weak, so several files may include this
 * header; define GADGET_WASM_NO_DEFAULTS to write them yourself.
 *
 * Conventions of the API: handles are uint32_t, 0 means an error; a string or buffer
 * crosses as one uint64_t, length << 32 | address (gadget_buf()); "0 on success, 1 on
 * error" for most calls. The host writes into guest buffers but never appends a NUL: the
 * helpers below do.
 */
#ifndef GADGET_WASM_H
#define GADGET_WASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GADGET_WASM_API_VERSION 1

#define GADGET_EXPORT(name) __attribute__((export_name(name)))
#define GADGET_IMPORT(name) __attribute__((import_module("ig"), import_name(name)))
/* int32_t gadgetInit(void) and friends, exported under their own name; 0 = success */
#define GADGET_LIFECYCLE(name) GADGET_EXPORT(#name) int32_t name(void)

typedef uint32_t gadget_ds_t;      /* data source */
typedef uint32_t gadget_field_t;   /* field of a data source */
typedef uint32_t gadget_data_t;    /* one event (or one element of an array packet) */
typedef uint32_t gadget_array_t;   /* the elements of an array packet */
typedef uint32_t gadget_packet_t;  /* a whole packet: single (= data) or array */
typedef uint32_t gadget_map_t;     /* eBPF map */
typedef uint32_t gadget_perf_t;    /* perf buffer reader */
typedef uint64_t gadget_buf_t;     /* len << 32 | ptr */

enum gadget_kind {
	GADGET_KIND_INVALID = 0,
	GADGET_KIND_BOOL = 1,
	GADGET_KIND_INT8 = 2,
	GADGET_KIND_INT16 = 3,
	GADGET_KIND_INT32 = 4,
	GADGET_KIND_INT64 = 5,
	GADGET_KIND_UINT8 = 6,
	GADGET_KIND_UINT16 = 7,
	GADGET_KIND_UINT32 = 8,
	GADGET_KIND_UINT64 = 9,
	GADGET_KIND_FLOAT32 = 10,
	GADGET_KIND_FLOAT64 = 11,
	GADGET_KIND_STRING = 12,
	GADGET_KIND_CSTRING = 13,
	GADGET_KIND_BYTES = 14,
};

enum gadget_ds_type { GADGET_DS_SINGLE = 1, GADGET_DS_ARRAY = 2 };

/* what a subscription receives: each event (each element of an array packet), the whole
 * array, or the packet as it is */
enum gadget_subscription { GADGET_SUB_DATA = 1, GADGET_SUB_ARRAY = 2, GADGET_SUB_PACKET = 3 };

enum gadget_log_level {
	GADGET_LOG_ERROR = 0,
	GADGET_LOG_WARN = 1,
	GADGET_LOG_INFO = 2,
	GADGET_LOG_DEBUG = 3,
	GADGET_LOG_TRACE = 4,
};

/* the kernel's map types that matter here (all of 0..33 are accepted) */
enum gadget_map_type {
	GADGET_MAP_HASH = 1,
	GADGET_MAP_ARRAY = 2,
	GADGET_MAP_PERF_EVENT_ARRAY = 4,
	GADGET_MAP_PERCPU_HASH = 5,
	GADGET_MAP_PERCPU_ARRAY = 6,
	GADGET_MAP_LRU_HASH = 9,
	GADGET_MAP_ARRAY_OF_MAPS = 12,
	GADGET_MAP_HASH_OF_MAPS = 13,
	GADGET_MAP_RINGBUF = 27,
};

enum gadget_map_update { GADGET_MAP_ANY = 0, GADGET_MAP_NOEXIST = 1, GADGET_MAP_EXIST = 2, GADGET_MAP_LOCK = 4 };

enum gadget_perf_read { GADGET_PERF_OK = 0, GADGET_PERF_ERROR = 1, GADGET_PERF_DEADLINE = 2 };

#define GADGET_SYSCALL_NAME_LEN 32
#define GADGET_SYSCALL_MAX_PARAMS 6
#define GADGET_SYSCALL_PARAM_IS_POINTER 1

/* what getSyscallDeclaration writes (252 bytes, little endian) */
struct gadget_syscall_decl {
	char name[GADGET_SYSCALL_NAME_LEN];
	uint8_t nr_params;
	uint8_t _pad[3];
	struct {
		char name[GADGET_SYSCALL_NAME_LEN];
		uint32_t flags;
	} params[GADGET_SYSCALL_MAX_PARAMS];
};

/* ---- buffers -------------------------------------------------------------------- */

static inline gadget_buf_t gadget_buf(const void *ptr, uint32_t len)
{
	return (uint64_t)len << 32 | (uint32_t)(uintptr_t)ptr;
}

static inline gadget_buf_t gadget_str(const char *s)
{
	return s ? gadget_buf(s, (uint32_t)__builtin_strlen(s)) : 0;
}

static inline void *gadget_buf_ptr(gadget_buf_t b) { return (void *)(uintptr_t)(uint32_t)b; }
static inline uint32_t gadget_buf_len(gadget_buf_t b) { return (uint32_t)(b >> 32); }

/* ---- the host's functions, as imported (names and wasm signatures of API v1) ------ */

void ig_gadgetLog(uint32_t level, gadget_buf_t msg) GADGET_IMPORT("gadgetLog");
uint32_t ig_gadgetShouldLog(uint32_t level) GADGET_IMPORT("gadgetShouldLog");

gadget_ds_t ig_newDataSource(gadget_buf_t name, uint32_t type) GADGET_IMPORT("newDataSource");
gadget_ds_t ig_getDataSource(gadget_buf_t name) GADGET_IMPORT("getDataSource");
uint32_t ig_dataSourceSubscribe(gadget_ds_t ds, uint32_t type, uint32_t prio, uint64_t cb)
	GADGET_IMPORT("dataSourceSubscribe");
gadget_field_t ig_dataSourceGetField(gadget_ds_t ds, gadget_buf_t name) GADGET_IMPORT("dataSourceGetField");
gadget_field_t ig_dataSourceAddField(gadget_ds_t ds, gadget_buf_t name, uint32_t kind)
	GADGET_IMPORT("dataSourceAddField");
gadget_packet_t ig_dataSourceNewPacketSingle(gadget_ds_t ds) GADGET_IMPORT("dataSourceNewPacketSingle");
gadget_packet_t ig_dataSourceNewPacketArray(gadget_ds_t ds) GADGET_IMPORT("dataSourceNewPacketArray");
uint32_t ig_dataSourceEmitAndRelease(gadget_ds_t ds, gadget_packet_t p) GADGET_IMPORT("dataSourceEmitAndRelease");
uint32_t ig_dataSourceRelease(gadget_ds_t ds, gadget_packet_t p) GADGET_IMPORT("dataSourceRelease");
uint32_t ig_dataSourceUnreference(gadget_ds_t ds) GADGET_IMPORT("dataSourceUnreference");
uint32_t ig_dataSourceIsReferenced(gadget_ds_t ds) GADGET_IMPORT("dataSourceIsReferenced");

gadget_data_t ig_dataArrayNew(gadget_array_t a) GADGET_IMPORT("dataArrayNew");
uint32_t ig_dataArrayAppend(gadget_array_t a, gadget_data_t d) GADGET_IMPORT("dataArrayAppend");
uint32_t ig_dataArrayRelease(gadget_array_t a, gadget_data_t d) GADGET_IMPORT("dataArrayRelease");
uint32_t ig_dataArrayLen(gadget_array_t a) GADGET_IMPORT("dataArrayLen");
gadget_data_t ig_dataArrayGet(gadget_array_t a, uint32_t index) GADGET_IMPORT("dataArrayGet");

uint64_t ig_fieldGetScalar(gadget_field_t f, gadget_data_t d, uint32_t kind, uint32_t err_ptr)
	GADGET_IMPORT("fieldGetScalar");
int32_t ig_fieldGetBuffer(gadget_field_t f, gadget_data_t d, uint32_t kind, gadget_buf_t dst)
	GADGET_IMPORT("fieldGetBuffer");
uint32_t ig_fieldSet(gadget_field_t f, gadget_data_t d, uint32_t kind, uint64_t value) GADGET_IMPORT("fieldSet");
uint32_t ig_fieldAddTag(gadget_field_t f, gadget_buf_t tag) GADGET_IMPORT("fieldAddTag");

uint32_t ig_getParamValue(gadget_buf_t key, gadget_buf_t dst) GADGET_IMPORT("getParamValue");
uint32_t ig_setConfig(gadget_buf_t key, uint64_t value, uint32_t kind) GADGET_IMPORT("setConfig");

gadget_map_t ig_newMap(gadget_buf_t name, uint32_t type, uint32_t key_size, uint32_t value_size,
		       uint32_t max_entries) GADGET_IMPORT("newMap");
gadget_map_t ig_getMap(gadget_buf_t name) GADGET_IMPORT("getMap");
uint32_t ig_mapLookup(gadget_map_t m, gadget_buf_t key, gadget_buf_t value) GADGET_IMPORT("mapLookup");
uint32_t ig_mapUpdate(gadget_map_t m, gadget_buf_t key, gadget_buf_t value, uint64_t flags)
	GADGET_IMPORT("mapUpdate");
uint32_t ig_mapDelete(gadget_map_t m, gadget_buf_t key) GADGET_IMPORT("mapDelete");
uint32_t ig_mapRelease(gadget_map_t m) GADGET_IMPORT("mapRelease");

uint32_t ig_releaseHandle(uint32_t h) GADGET_IMPORT("releaseHandle");

uint32_t ig_getSyscallName(uint32_t id, gadget_buf_t dst) GADGET_IMPORT("getSyscallName");
int32_t ig_getSyscallID(gadget_buf_t name) GADGET_IMPORT("getSyscallID");
uint32_t ig_getSyscallDeclaration(gadget_buf_t name, gadget_buf_t dst) GADGET_IMPORT("getSyscallDeclaration");

gadget_perf_t ig_newPerfReader(gadget_map_t m, uint32_t size, uint32_t overwritable) GADGET_IMPORT("newPerfReader");
uint32_t ig_perfReaderPause(gadget_perf_t p) GADGET_IMPORT("perfReaderPause");
uint32_t ig_perfReaderResume(gadget_perf_t p) GADGET_IMPORT("perfReaderResume");
uint32_t ig_perfReaderRead(gadget_perf_t p, gadget_buf_t dst) GADGET_IMPORT("perfReaderRead");
uint32_t ig_perfReaderClose(gadget_perf_t p) GADGET_IMPORT("perfReaderClose");

uint32_t ig_kallsymsSymbolExists(gadget_buf_t symbol) GADGET_IMPORT("kallsymsSymbolExists");
uint32_t ig_shouldDiscardMntnsID(uint64_t mntns_id) GADGET_IMPORT("shouldDiscardMntnsID");

/* ---- helpers ----------------------------------------------------------------------- */

static inline bool gadget_should_log(enum gadget_log_level level) { return ig_gadgetShouldLog(level) == 1; }
static inline void gadget_log(enum gadget_log_level level, const char *msg)
{
	if (gadget_should_log(level))
		ig_gadgetLog(level, gadget_str(msg));
}

static inline gadget_ds_t gadget_get_datasource(const char *name) { return ig_getDataSource(gadget_str(name)); }
static inline gadget_ds_t gadget_new_datasource(const char *name, enum gadget_ds_type type)
{
	return ig_newDataSource(gadget_str(name), type);
}
static inline gadget_field_t gadget_get_field(gadget_ds_t ds, const char *name)
{
	return ig_dataSourceGetField(ds, gadget_str(name));
}
static inline gadget_field_t gadget_add_field(gadget_ds_t ds, const char *name, enum gadget_kind kind)
{
	return ig_dataSourceAddField(ds, gadget_str(name), kind);
}
static inline int gadget_field_add_tag(gadget_field_t f, const char *tag)
{
	return (int)ig_fieldAddTag(f, gadget_str(tag));
}

/* the callback gets the data source handle and, per subscription kind, a gadget_data_t,
 * gadget_array_t or gadget_packet_t */
typedef void (*gadget_callback_fn)(gadget_ds_t ds, uint32_t data);

/* a lower priority runs earlier (IG: formatters 0, filter 9000, sort 9500) */
static inline int gadget_subscribe(gadget_ds_t ds, enum gadget_subscription kind, int32_t priority,
				   gadget_callback_fn fn)
{
	return (int)ig_dataSourceSubscribe(ds, kind, (uint32_t)priority, (uint64_t)(uintptr_t)fn);
}

/* scalar getters: the field read as the named type (same size as the field's);
 * *err (if not NULL) becomes 1 on error, else stays as it was */
#define GADGET__GETTER(suffix, ctype, kind)                                                     \
	static inline ctype gadget_field_##suffix(gadget_field_t f, gadget_data_t d, uint32_t *err) \
	{                                                                                       \
		return (ctype)ig_fieldGetScalar(f, d, kind, (uint32_t)(uintptr_t)err);         \
	}                                                                                       \
	static inline int gadget_field_set_##suffix(gadget_field_t f, gadget_data_t d, ctype v) \
	{                                                                                       \
		return (int)ig_fieldSet(f, d, kind, (uint64_t)v);                               \
	}
GADGET__GETTER(i8, int8_t, GADGET_KIND_INT8)
GADGET__GETTER(i16, int16_t, GADGET_KIND_INT16)
GADGET__GETTER(i32, int32_t, GADGET_KIND_INT32)
GADGET__GETTER(i64, int64_t, GADGET_KIND_INT64)
GADGET__GETTER(u8, uint8_t, GADGET_KIND_UINT8)
GADGET__GETTER(u16, uint16_t, GADGET_KIND_UINT16)
GADGET__GETTER(u32, uint32_t, GADGET_KIND_UINT32)
GADGET__GETTER(u64, uint64_t, GADGET_KIND_UINT64)
#undef GADGET__GETTER

static inline bool gadget_field_bool(gadget_field_t f, gadget_data_t d, uint32_t *err)
{
	return ig_fieldGetScalar(f, d, GADGET_KIND_BOOL, (uint32_t)(uintptr_t)err) != 0;
}
static inline int gadget_field_set_bool(gadget_field_t f, gadget_data_t d, bool v)
{
	return (int)ig_fieldSet(f, d, GADGET_KIND_BOOL, v ? 1 : 0);
}
static inline float gadget_field_f32(gadget_field_t f, gadget_data_t d, uint32_t *err)
{
	uint32_t bits = (uint32_t)ig_fieldGetScalar(f, d, GADGET_KIND_FLOAT32, (uint32_t)(uintptr_t)err);
	float v;
	__builtin_memcpy(&v, &bits, sizeof v);
	return v;
}
static inline int gadget_field_set_f32(gadget_field_t f, gadget_data_t d, float v)
{
	uint32_t bits;
	__builtin_memcpy(&bits, &v, sizeof bits);
	return (int)ig_fieldSet(f, d, GADGET_KIND_FLOAT32, bits);
}
static inline double gadget_field_f64(gadget_field_t f, gadget_data_t d, uint32_t *err)
{
	uint64_t bits = ig_fieldGetScalar(f, d, GADGET_KIND_FLOAT64, (uint32_t)(uintptr_t)err);
	double v;
	__builtin_memcpy(&v, &bits, sizeof v);
	return v;
}
static inline int gadget_field_set_f64(gadget_field_t f, gadget_data_t d, double v)
{
	uint64_t bits;
	__builtin_memcpy(&bits, &v, sizeof bits);
	return (int)ig_fieldSet(f, d, GADGET_KIND_FLOAT64, bits);
}

/* raw bytes of a field (a string's bytes, a scalar's little-endian bytes): their number,
 * or -1 (also when they do not fit in cap) */
static inline int32_t gadget_field_bytes(gadget_field_t f, gadget_data_t d, void *dst, uint32_t cap)
{
	return ig_fieldGetBuffer(f, d, GADGET_KIND_BYTES, gadget_buf(dst, cap));
}
/* a string field into dst as a C string (at most cap-1 bytes): its length, or -1 when the
 * field's bytes do not fit in cap. A char array field gives its whole array, as in IG (a
 * char comm[16] is 16 bytes: a 16-byte dst holds it, its last byte is dropped for the NUL) */
static inline int32_t gadget_field_string(gadget_field_t f, gadget_data_t d, char *dst, uint32_t cap)
{
	if (!cap)
		return -1;
	int32_t n = ig_fieldGetBuffer(f, d, GADGET_KIND_STRING, gadget_buf(dst, cap));
	if (n < 0) {
		dst[0] = 0;
		return -1;
	}
	dst[(uint32_t)n < cap ? (uint32_t)n : cap - 1] = 0;
	return (int32_t)__builtin_strlen(dst);
}
static inline int gadget_field_set_string(gadget_field_t f, gadget_data_t d, const char *s)
{
	return (int)ig_fieldSet(f, d, GADGET_KIND_STRING, gadget_str(s));
}
static inline int gadget_field_set_bytes(gadget_field_t f, gadget_data_t d, const void *p, uint32_t len)
{
	return (int)ig_fieldSet(f, d, GADGET_KIND_BYTES, gadget_buf(p, len));
}

/* a packet of a data source: fill it (a single packet is also a gadget_data_t; an array
 * packet is also a gadget_array_t), then emit or release it */
static inline gadget_packet_t gadget_packet_new(gadget_ds_t ds) { return ig_dataSourceNewPacketSingle(ds); }
static inline gadget_packet_t gadget_packet_array_new(gadget_ds_t ds) { return ig_dataSourceNewPacketArray(ds); }
static inline int gadget_emit(gadget_ds_t ds, gadget_packet_t p) { return (int)ig_dataSourceEmitAndRelease(ds, p); }
static inline int gadget_release(gadget_ds_t ds, gadget_packet_t p) { return (int)ig_dataSourceRelease(ds, p); }
/* no further stage gets this data source's packets (its output is gone) */
static inline int gadget_unreference(gadget_ds_t ds) { return (int)ig_dataSourceUnreference(ds); }
static inline bool gadget_is_referenced(gadget_ds_t ds) { return ig_dataSourceIsReferenced(ds) == 1; }

static inline uint32_t gadget_array_len(gadget_array_t a) { return ig_dataArrayLen(a); }
static inline gadget_data_t gadget_array_get(gadget_array_t a, uint32_t i) { return ig_dataArrayGet(a, i); }
static inline gadget_data_t gadget_array_new_element(gadget_array_t a) { return ig_dataArrayNew(a); }
static inline int gadget_array_append(gadget_array_t a, gadget_data_t d) { return (int)ig_dataArrayAppend(a, d); }
static inline int gadget_array_release_element(gadget_array_t a, gadget_data_t d)
{
	return (int)ig_dataArrayRelease(a, d);
}

/* a parameter's value (params.wasm in gadget.yaml), NUL-terminated; 0 on success */
static inline int gadget_param(const char *key, char *dst, uint32_t cap)
{
	if (!cap)
		return 1;
	__builtin_memset(dst, 0, cap);
	return (int)ig_getParamValue(gadget_str(key), gadget_buf(dst, cap - 1));
}
/* a key of the gadget's configuration (e.g. "programs.<name>.attach_to") */
static inline int gadget_set_config(const char *key, const char *value)
{
	return (int)ig_setConfig(gadget_str(key), gadget_str(value), GADGET_KIND_STRING);
}

static inline gadget_map_t gadget_map_get(const char *name) { return ig_getMap(gadget_str(name)); }
static inline gadget_map_t gadget_map_new(const char *name, enum gadget_map_type type, uint32_t key_size,
					  uint32_t value_size, uint32_t max_entries)
{
	return ig_newMap(gadget_str(name), type, key_size, value_size, max_entries);
}
static inline int gadget_map_lookup(gadget_map_t m, const void *key, uint32_t key_size, void *value,
				    uint32_t value_size)
{
	return (int)ig_mapLookup(m, gadget_buf(key, key_size), gadget_buf(value, value_size));
}
static inline int gadget_map_update(gadget_map_t m, const void *key, uint32_t key_size, const void *value,
				    uint32_t value_size, enum gadget_map_update flags)
{
	return (int)ig_mapUpdate(m, gadget_buf(key, key_size), gadget_buf(value, value_size), flags);
}
static inline int gadget_map_delete(gadget_map_t m, const void *key, uint32_t key_size)
{
	return (int)ig_mapDelete(m, gadget_buf(key, key_size));
}
/* closes a map made by gadget_map_new(); for gadget_map_get()'s use gadget_release_handle() */
static inline int gadget_map_release(gadget_map_t m) { return (int)ig_mapRelease(m); }
static inline int gadget_release_handle(uint32_t h) { return (int)ig_releaseHandle(h); }

/* "openat"; an unknown number gives "syscall_<hex>"; NUL-terminated; 0 on success */
static inline int gadget_syscall_name(uint16_t id, char *dst, uint32_t cap)
{
	if (!cap)
		return 1;
	__builtin_memset(dst, 0, cap);
	return (int)ig_getSyscallName(id, gadget_buf(dst, cap - 1));
}
static inline int32_t gadget_syscall_id(const char *name) { return ig_getSyscallID(gadget_str(name)); }
static inline int gadget_syscall_declaration(const char *name, struct gadget_syscall_decl *out)
{
	return (int)ig_getSyscallDeclaration(gadget_str(name), gadget_buf(out, sizeof *out));
}

static inline gadget_perf_t gadget_perf_new(gadget_map_t perf_map, uint32_t size, bool overwritable)
{
	return ig_newPerfReader(perf_map, size, overwritable ? 1 : 0);
}
/* one record into dst (its length is not reported): enum gadget_perf_read */
static inline int gadget_perf_read(gadget_perf_t p, void *dst, uint32_t cap)
{
	return (int)ig_perfReaderRead(p, gadget_buf(dst, cap));
}
static inline int gadget_perf_pause(gadget_perf_t p) { return (int)ig_perfReaderPause(p); }
static inline int gadget_perf_resume(gadget_perf_t p) { return (int)ig_perfReaderResume(p); }
static inline int gadget_perf_close(gadget_perf_t p) { return (int)ig_perfReaderClose(p); }

static inline bool gadget_kallsyms_exists(const char *symbol)
{
	return ig_kallsymsSymbolExists(gadget_str(symbol)) != 0;
}
/* only meaningful from gadgetStart on */
static inline bool gadget_should_discard_mntns(uint64_t mntns_id) { return ig_shouldDiscardMntnsID(mntns_id) != 0; }

/* ---- the exports every module has ---------------------------------------------------- */
#ifndef GADGET_WASM_NO_DEFAULTS
__attribute__((weak)) GADGET_EXPORT("gadgetAPIVersion") uint64_t gadget__api_version(void)
{
	return GADGET_WASM_API_VERSION;
}

__attribute__((weak)) GADGET_EXPORT("dataSourceCallback") void gadget__callback(uint64_t cb, uint32_t ds,
										  uint32_t data)
{
	if (cb)
		((gadget_callback_fn)(uintptr_t)cb)(ds, data);
}
#endif

#ifdef __cplusplus
}
#endif

#endif /* GADGET_WASM_H */
