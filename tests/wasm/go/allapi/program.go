// Every function of IG's Go SDK (wasmapi/go), each result reported as a packet of a
// "report" data source for the Python test to check.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	api "github.com/inspektor-gadget/inspektor-gadget/wasmapi/go"
)

var (
	rep                         api.DataSource
	repCheck, repValue, repText api.Field
)

func report(check string, value int64, text string) {
	p, err := rep.NewPacketSingle()
	if err != nil {
		return
	}
	repCheck.SetString(api.Data(p), check)
	repValue.SetInt64(api.Data(p), value)
	repText.SetString(api.Data(p), text)
	rep.EmitAndRelease(api.Packet(p))
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func e2i(err error) int64 {
	if err != nil {
		return 1
	}
	return 0
}

var (
	events, summary                     api.DataSource
	fU8, fI8, fU16, fI16, fU32, fI32    api.Field
	fU64, fI64, fF32, fF64, fFlag, fStr api.Field
	fBlob, fOut, fSum                   api.Field
	sumTotal, sumNames                  api.Field
	snap                                api.DataSource
	snapN                               api.Field
)

//go:wasmexport gadgetInit
func gadgetInit() int32 {
	var err error
	if rep, err = api.NewDataSource("report", api.DataSourceTypeSingle); err != nil {
		return 1
	}
	repCheck, _ = rep.AddField("check", api.Kind_String)
	repValue, _ = rep.AddField("value", api.Kind_Int64)
	repText, _ = rep.AddField("text", api.Kind_String)

	api.Info("info from go")
	api.Debugf("debug %d", 3)
	api.Warnf("warn %s", "x")
	api.Error("error from go")
	api.Trace("trace from go")

	if events, err = api.GetDataSource("events"); err != nil {
		return 2
	}
	get := func(name string) api.Field {
		f, err := events.GetField(name)
		if err != nil {
			report("getfield:"+name, 1, err.Error())
		}
		return f
	}
	fU8, fI8, fU16, fI16 = get("u8"), get("i8"), get("u16"), get("i16")
	fU32, fI32, fU64, fI64 = get("u32"), get("i32"), get("u64"), get("i64")
	fF32, fF64, fFlag, fStr, fBlob = get("f32"), get("f64"), get("flag"), get("proc.comm"), get("blob")
	_, err = events.GetField("nonexistent")
	report("getfield_missing", e2i(err), "")
	if fOut, err = events.AddField("go_out", api.Kind_String); err != nil {
		return 3
	}
	report("addtag", e2i(fOut.AddTag("from:go")), "")
	if fSum, err = events.AddField("go_sum", api.Kind_Float64); err != nil {
		return 3
	}
	_, err = events.AddField("go_out", api.Kind_String)
	report("addfield_dup", e2i(err), "")

	if summary, err = api.NewDataSource("summary", api.DataSourceTypeArray); err != nil {
		return 4
	}
	sumTotal, _ = summary.AddField("total", api.Kind_Uint64)
	sumNames, _ = summary.AddField("names", api.Kind_String)

	err = events.Subscribe(func(ds api.DataSource, d api.Data) {
		u8, _ := fU8.Uint8(d)
		i8, _ := fI8.Int8(d)
		u16, _ := fU16.Uint16(d)
		i16, _ := fI16.Int16(d)
		u32, _ := fU32.Uint32(d)
		i32, _ := fI32.Int32(d)
		u64, _ := fU64.Uint64(d)
		i64, _ := fI64.Int64(d)
		f32, _ := fF32.Float32(d)
		f64, _ := fF64.Float64(d)
		flag, _ := fFlag.Bool(d)
		s, _ := fStr.String(d, 64)
		blob := make([]byte, 64)
		n, _ := fBlob.Bytes(d, blob)
		fOut.SetString(d, fmt.Sprintf("%d/%d/%d/%d/%d/%d/%d/%d/%g/%g/%t/%s/%x", u8, i8, u16, i16, u32, i32,
			u64, i64, f32, f64, flag, s, blob[:n]))
		fSum.SetFloat64(d, float64(f32)+f64)
		fU8.SetUint8(d, u8+1)
		fI8.SetInt8(d, i8-1)
		fU16.SetUint16(d, u16+1)
		fI16.SetInt16(d, i16-1)
		fU32.SetUint32(d, u32+1)
		fI32.SetInt32(d, i32-1)
		fU64.SetUint64(d, u64+1)
		fI64.SetInt64(d, i64-1)
		fF32.SetFloat32(d, f32*2)
		fF64.SetFloat64(d, f64*2)
		fFlag.SetBool(d, !flag)
		fStr.SetString(d, strings.ToUpper(s))
		fBlob.SetBytes(d, []byte{9, 8, 7})
		_, err := fU32.Uint64(d)
		if err != nil && u8 == 1 {
			report("scalar_wrong_size", 1, err.Error())
		}
	}, 0)
	if err != nil {
		return 5
	}
	err = events.SubscribePacket(func(ds api.DataSource, p api.Packet) error {
		v, _ := fU8.Uint8(api.Data(p))
		if v == 2 { // the data callback (priority 0) ran first
			report("packet_after_data", 1, "")
		}
		return nil
	}, 1)
	if err != nil {
		return 6
	}
	report("subscribe_array_on_single", e2i(events.SubscribeArray(func(api.DataSource, api.DataArray) error { return nil }, 0)), "")

	if snap, err = api.GetDataSource("snap"); err != nil {
		return 7
	}
	snapN, _ = snap.GetField("n")
	err = snap.SubscribeArray(func(ds api.DataSource, a api.DataArray) error {
		out, err := summary.NewPacketArray()
		if err != nil {
			return err
		}
		arr := api.DataArray(out)
		var total uint64
		names := []string{}
		for i := 0; i < a.Len(); i++ {
			n, _ := snapN.Uint32(a.Get(i))
			total += uint64(n)
			names = append(names, fmt.Sprint(n))
		}
		el := arr.New()
		sumTotal.SetUint64(el, total)
		sumNames.SetString(el, strings.Join(names, ","))
		arr.Append(el)
		dropped := arr.New()
		arr.Release(dropped)
		report("array_get_oob", int64(a.Get(a.Len())), "")
		return summary.EmitAndRelease(api.Packet(out))
	}, 0)
	if err != nil {
		return 8
	}

	hidden, _ := api.GetDataSource("hidden")
	report("referenced_before", b2i(hidden.IsReferenced()), "")
	report("unreference", e2i(hidden.Unreference()), "")
	report("referenced_after", b2i(hidden.IsReferenced()), "")

	p, _ := rep.NewPacketSingle()
	report("release_packet", e2i(rep.Release(api.Packet(p))), "")

	v, err := api.GetParamValue("greeting", 64)
	report("param", e2i(err), v)
	_, err = api.GetParamValue("missing", 64)
	report("param_missing", e2i(err), "")
	report("config", e2i(api.SetConfig("programs.prog.attach_to", "target_fn")), "")
	report("config_int", e2i(api.SetConfig("x", 5)), "")

	name, err := api.GetSyscallName(59)
	report("sysname", e2i(err), name)
	name, _ = api.GetSyscallName(9999)
	report("sysname_unknown", 0, name)
	id, err := api.GetSyscallID("openat")
	report("sysid", int64(id), "")
	_, err = api.GetSyscallID("nope")
	report("sysid_missing", e2i(err), "")
	decl, err := api.GetSyscallDeclaration("openat")
	parts := []string{decl.Name}
	for _, p := range decl.Params {
		parts = append(parts, fmt.Sprintf("%s:%t", p.Name, p.IsPointer))
	}
	report("sysdecl", e2i(err), strings.Join(parts, ","))
	_, err = api.GetSyscallDeclaration("nope")
	report("sysdecl_missing", e2i(err), "")

	report("kallsyms", b2i(api.KallsymsSymbolExists("vfs_read")), "")
	report("kallsyms_missing", b2i(api.KallsymsSymbolExists("nope")), "")

	report("release_handle", e2i(api.ReleaseHandle(hidden)), "")
	report("release_handle_again", e2i(api.ReleaseHandle(hidden)), "")
	return 0
}

//go:wasmexport gadgetStart
func gadgetStart() int32 {
	report("mntns_555", b2i(api.ShouldDiscardMntNsID(555)), "")
	report("mntns_777", b2i(api.ShouldDiscardMntNsID(777)), "")

	m, err := api.GetMap("counts")
	report("getmap", e2i(err), "")
	report("put", e2i(m.Put(uint32(1), uint64(10))), "")
	report("update_noexist", e2i(m.Update(uint32(1), uint64(11), api.UpdateNoExist)), "")
	var got uint64
	report("lookup", e2i(m.Lookup(uint32(1), &got)), fmt.Sprint(got))
	report("lookup_missing", e2i(m.Lookup(uint32(2), &got)), "")
	report("delete", e2i(m.Delete(uint32(1))), "")
	report("delete_missing", e2i(m.Delete(uint32(1))), "")
	report("close_not_created", e2i(m.Close()), "")
	_, err = api.GetMap("nope")
	report("getmap_missing", e2i(err), "")

	s, err := api.NewMap(api.MapSpec{Name: "scratch", Type: api.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 8})
	report("newmap", e2i(err), "")
	report("newmap_put", e2i(s.Put(uint32(5), uint32(50))), "")
	report("newmap_close", e2i(s.Close()), "")

	outer, _ := api.GetMap("outer")
	inner, _ := api.NewMap(api.MapSpec{Name: "inner", Type: api.Array, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	report("mom_put", e2i(outer.Put(uint32(7), uint32(inner))), "")
	var ih uint32
	report("mom_lookup", e2i(outer.Lookup(uint32(7), &ih)), "")
	report("mom_inner_put", e2i(api.Map(ih).Put(uint32(2), uint64(77))), "")

	pm, _ := api.GetMap("events_perf")
	var err2 error
	reader, err2 = api.NewPerfReader(pm, 4096, true)
	report("perf_new", e2i(err2), "")
	return 0
}

var reader api.PerfReader

//go:wasmexport gadgetStop
func gadgetStop() int32 {
	report("stop", 1, "")
	r := reader
	report("perf_pause", e2i(r.Pause()), "")
	records := []string{}
	var err error
	for i := 0; i < 10; i++ {
		buf := make([]byte, 16)
		if err = r.Read(buf); err != nil {
			break
		}
		records = append(records, strings.TrimRight(string(buf), "\x00"))
	}
	report("perf_read", int64(len(records)), strings.Join(records, ","))
	report("perf_read_deadline", b2i(errors.Is(err, os.ErrDeadlineExceeded)), fmt.Sprint(err))
	report("perf_resume", e2i(r.Resume()), "")
	report("perf_close", e2i(r.Close()), "")
	return 0
}

func main() {}
