"""The WASM host's functions through real modules: C modules written against the SDK's
<gadget/wasm.h> and a Go module using IG's Go SDK (wasmapi/go from the Go module proxy).
Maps, perf readers and the container filter are real eBPF objects; syscalls and kernel
symbols are this machine's."""

from __future__ import annotations

import logging
import math
import os
import platform

import pytest

from ..conftest import need_root
from ..wasm_util import (  # noqa: F401
    cmod,
    count_calls,
    ensure_tracefs,
    gomod,
    kernel,
    kernel_object_file,
    module_dir,
    providers,
    reports,
    sample_event,
    standard_datasources,
)

X86 = pytest.mark.skipif(platform.machine() != "x86_64", reason="x86_64 syscall numbers")


def host(path, kernel=None, **kw):
    from gadgetsmith.runtime.wasm.host import WasmHost

    prov = kw.pop("providers", None) or providers(kernel)
    return WasmHost(path, standard_datasources(), prov, **kw)


def test_fields_scalars_strings_bytes(cmod):
    from gadgetsmith.runtime.wasm.kinds import Kind
    from gadgetsmith.runtime.wasm.model import FieldFlag

    with host(cmod("fields")) as st:
        st.pre_start()
        st.start()
        ds = st.datasources["events"]
        added = [f.name for f in ds.fields.values() if f.flags & FieldFlag.ADDED]
        assert added == ["out_u32", "out_i16", "out_f64", "out_bool", "out_str", "out_bytes",
                         "out_errs", "out_mixed"]
        assert ds.fields["out_str"].tags == ["role:demo", "second"]
        assert ds.fields["out_f64"].kind == Kind.FLOAT64
        (name, ev), = st.push("events", sample_event())
        assert name == "events"
        assert ev["out_u32"] == (70000 + 1 + 300 - 2 - 80000) & 0xFFFFFFFF
        assert ev["out_i16"] == -800
        assert ev["i64"] == 1 << 40                 # negated
        assert ev["u64"] == (1 << 40) + 1
        assert ev["out_f64"] == 3.75
        assert ev["f32"] == 3.0
        assert ev["out_bool"] is False
        assert ev["out_str"] == "comm=cat/3 blob=3"
        assert ev["out_bytes"] == "030201"          # bytes a module adds: hex text, as shown
        assert ev["proc.comm"] == "CAT"
        assert ev["out_mixed"] == 42
        errs = ev["out_errs"]
        want = {0: "u32 read as u64", 1: "scalar read of a string", 2: "buffer too small",
                3: "string longer than the field's 16 bytes", 4: "invalid kind",
                5: "uint32 read as int32", 6: "unknown field", 7: "duplicate field",
                8: "kind out of range", 9: "bad field handle", 10: "bad data handle",
                11: "fieldGetBuffer with a scalar kind", 12: "set of the wrong size",
                13: "set as cstring", 14: "raw bytes of a scalar", 15: "err untouched on success",
                16: "tag on a bad handle", 17: "get field on a bad handle"}
        assert [what for bit, what in want.items() if not errs >> bit & 1] == []
        assert not errs >> 31, "a valid scalar read reported an error"


def test_fields_defaults_and_raw_text(cmod):
    """Fields the module adds start as zero values; a raw text field (NULs kept, as IG's
    fieldGetBuffer sees the record) comes out as text up to the first NUL."""
    from gadgetsmith.runtime.wasm.host import WasmHost
    from gadgetsmith.runtime.wasm.model import DataSourceSpec, FieldSpec

    specs = standard_datasources()
    specs[0] = DataSourceSpec("events", [
        FieldSpec(f.name, f.kind, f.size, raw=f.name == "proc.comm") for f in specs[0].fields])
    with WasmHost(cmod("fields"), specs, providers()) as st:
        (_, ev), = st.push("events", sample_event(**{"proc.comm": b"dd\0junk\0\0\0\0\0\0\0\0\0"}))
        assert ev["out_str"].startswith("comm=dd")     # the C string stops at the NUL
        assert ev["proc.comm"] == "DD"
        assert st.datasources["events"].new_event()["out_u32"] == 0
        assert st.datasources["events"].new_event()["out_str"] == ""


def test_float_roundtrip_nan(cmod):
    with host(cmod("fields")) as st:
        (_, ev), = st.push("events", sample_event(f32=float("inf"), f64=float("nan")))
        assert math.isinf(ev["f32"]) and math.isnan(ev["out_f64"])


def test_datasources_packets_arrays_priorities(cmod):
    st = host(cmod("emit"))
    seen = []

    def host_mid(ev):                 # between the module's 10 and 20
        seen.append(ev.get("order"))
        ev["order"] += "h"
        return ev

    st.init()
    st.subscribe("events", host_mid, priority=15)
    init = [ev for n, ev in st.lifecycle_outputs if n == "pairs"]
    assert init[0]["key"] == "init" and init[0]["count"] == (1 << 16) - 1, bin(init[0]["count"])
    assert {d.name for d in st.new_datasources} == {"pairs", "batches"}
    assert st.datasources["batches"].is_array

    out = st.push("events", sample_event(name="first"))
    assert [n for n, _ in out] == ["pairs", "events"]
    assert out[0][1] == {"key": "first", "count": 1}
    assert out[1][1]["order"] == "edhp"        # -5, 10, host 15, packet 20
    out = st.push("events", sample_event(name="second"))
    assert [ev["key"] for n, ev in out if n == "pairs"] == ["second"]   # released one never shows

    out = st.push_array("snap", [{"n": 1}, {"n": 2}, {"n": 5}])
    assert [n for n, _ in out] == ["batches", "snap"]
    batch = out[0][1]
    assert [e["n"] for e in batch] == [10, 20, 50, 1010]   # array cb at 0 saw the originals
    assert [e["name"] for e in batch] == ["e0", "e1", "e2", "check"]
    assert [e["n"] for e in out[1][1]] == [2, 3, 6]         # element cb at 1
    assert out[1][1][0]["total"] == 3                       # packet cb at 2

    # "hidden" was unreferenced by the module: nothing comes out of it
    assert st.push("hidden", {"x": 1}) == []
    st.close()


def test_host_subscriber_drops(cmod):
    with host(cmod("emit")) as st:
        st.subscribe("events", lambda ev: None if ev["name"] == "drop" else ev, priority=9000)
        st.subscribe("snap", lambda el: el if el["n"] % 2 else None, priority=9000)
        out = st.push("events", sample_event(name="drop"))
        assert [n for n, _ in out] == ["pairs"]    # the module saw it (prio 10), the filter dropped it
        out = st.push_array("snap", [{"n": 1}, {"n": 2}, {"n": 4}])
        assert [e["n"] for e in dict(out)["snap"]] == [3, 5]   # +1 by the module first


def test_processor_adapter(cmod):
    with host(cmod("emit")) as st:
        proc = st.processor("events")
        ev = proc(sample_event(name="x"))
        assert ev["order"] == "edp"
        assert st.take_side_outputs() == [("pairs", {"key": "x", "count": 1})]
        assert st.side_outputs == []


@X86
def test_misc_log_params_config_syscalls_kallsyms_handles(cmod, caplog):
    ensure_tracefs()
    need_root("/proc/kallsyms shows symbols to root only")
    prov = providers(log_level=3)
    with caplog.at_level(5, logger="gadgetsmith.wasm"):
        st = host(cmod("misc"), providers=prov)
        st.init()
        st.pre_start()
        st.start()
        st.stop()
        st.post_stop()
    r = reports(st.lifecycle_outputs)
    st.close()
    should = [ev["value"] for n, ev in st.lifecycle_outputs if ev.get("check") == "shouldlog"]
    assert should == [1, 11, 21, 31, 40]          # level 3 (debug): trace is off
    msgs = [(rec.levelno, rec.getMessage()) for rec in caplog.records if rec.name == "gadgetsmith.wasm"]
    assert (logging.ERROR, "level 0") in msgs and (logging.WARNING, "level 1") in msgs
    assert (logging.INFO, "level 2") in msgs and (logging.DEBUG, "level 3") in msgs
    assert (5, "level 4") in msgs and (logging.INFO, "through gadget_log") in msgs
    assert r["param"] == (0, "hello wasm")
    assert r["param_missing"][0] == 1 and r["param_small"][0] == 1
    assert r["config"][0] == 0 and prov.config == {"programs.ig_fa_pick_e.attach_to": "fsnotify_insert_event"}
    assert r["config_kind"][0] == 1
    assert r["sysname_59"] == (0, "execve")
    assert r["sysname_9999"] == (0, "syscall_270f")
    assert r["sysname_small"][0] == 1
    assert r["sysid_openat"][0] == 257 and r["sysid_nope"][0] == -1
    assert r["sysdecl_openat"] == (0, "openat/4/dfd/0/filename/1")
    assert r["sysdecl_nope"][0] == 1 and r["sysdecl_small"][0] == 1
    assert r["kallsyms_yes"][0] == 1 and r["kallsyms_no"][0] == 0
    assert r["handles_distinct"][0] == 1
    assert r["release"][0] == 0 and r["release_again"][0] == 1
    assert r["use_released"][0] == 0 and r["use_other"][0] == 1
    assert all(k in r for k in ("prestart", "stop", "poststop"))


def test_mntns_filter(cmod, kernel):
    """With the container filter on, a mount namespace not in the filter map is
    discarded (777 is in it); with it off (--host) nothing is."""
    from gadgetsmith.runtime.wasm.bpfmaps import KernelMntnsFilter

    for enabled, want in ((True, (1, 0)), (False, (0, 0))):
        prov = providers(kernel, mntns_filter=KernelMntnsFilter(kernel.mntns_fd, enabled))
        st = host(cmod("misc"), providers=prov)
        st.run_all_start()
        r = reports(st.lifecycle_outputs)
        st.close()
        assert (r["mntns_555"][0], r["mntns_777"][0]) == want


def test_setconfig_without_config(cmod):
    st = host(cmod("misc"), providers=providers(config=None))
    st.init()
    assert reports(st.lifecycle_outputs)["config"][0] == 1
    st.close()


def test_maps_and_perf(cmod, kernel):
    """The gadget's maps by name, new maps (closed with the instance), a hash of maps
    taking an inner map by handle, an overwritable perf reader read while paused."""
    st = host(cmod("maps"), kernel)
    st.run_all_start()
    kernel.records(1, 2, 3)
    st.stop()
    r = {k: v for k, (v, _) in reports(st.lifecycle_outputs).items()}
    texts = {k: t for k, (_, t) in reports(st.lifecycle_outputs).items()}
    want = {"get": 1, "update": 0, "update_noexist": 1, "update_exist": 0, "lookup": 0,
            "lookup_value": 11, "lookup_missing": 1, "update_flags": 1,
            "update_exist_missing": 1, "delete": 0, "delete_again": 1, "lookup_small": 1,
            "release_not_created": 1, "release_handle": 0, "get_missing": 0, "new": 1,
            "new_update1": 0, "new_update2": 0, "new_full": 1, "new_badtype": 0,
            "new_release": 0, "new_release_again": 1, "mom_update": 0, "mom_lookup": 0,
            "mom_new_handle": 1, "mom_inner_update": 0, "mom_inner_lookup": 42,
            "mom_bad_inner": 1, "perf_map_lookup": 1, "perf_new": 1, "perf_new_bad": 0,
            "perf_new_notperf": 0, "perf_read_running": 2, "perf_pause": 0, "perf_read1": 0,
            "perf_read2": 0, "perf_read_small": 1, "perf_read_empty": 2, "perf_resume": 0,
            "perf_close": 0, "perf_close_again": 1}
    assert {k: r.get(k) for k in want} == want
    # two of the records (one ring per CPU: any order); the third, read into 2 bytes, is lost
    assert {texts["perf_read1"], texts["perf_read2"]} < {"rec-1", "rec-2", "rec-3"}
    # what the module left in the gadget's maps, read back from the kernel
    assert kernel.lookup("counts", (3).to_bytes(4, "little"), 8) == (33).to_bytes(8, "little")
    assert kernel.lookup("counts", (1).to_bytes(4, "little"), 8) is None
    assert kernel.lookup("outer", (7).to_bytes(4, "little"), 4) is not None   # the inner map's id
    st.close()


def test_every_host_function_is_called_from_c(cmod, kernel, count_calls):
    from gadgetsmith.runtime.wasm.abi import IMPORTS

    ensure_tracefs()
    for name in ("fields", "emit", "misc", "maps"):
        st = host(cmod(name), kernel)
        st.run_all_start()
        st.push("events", sample_event())
        st.push_array("snap", [{"n": 1}])
        st.stop()
        st.close()
    assert sorted(set(IMPORTS) - set(count_calls)) == []


def test_handle_limit(cmod, caplog):
    caplog.set_level(logging.ERROR)
    st = host(cmod("handles"))
    st.init()
    r = {k: v for k, (v, _) in reports(st.lifecycle_outputs).items()}
    # IG's 4096 handles, less those the host keeps for callbacks and the report's four
    assert r["held"] == 4096 - 10 - 4 and r["packet_when_full"] == 0
    assert r["released"] == r["held"] and r["after"] == 1
    st.close()


def test_runtime_filter_sees_module_fields(cmod):
    """A runtime step after the module (IG's filter runs at 9000) filters on a field the
    module added; one before it (a formatter at priority -1) gives the module its input."""
    from gadgetsmith.runtime.wasm.host import WasmHost
    from gadgetsmith.runtime.wasm.model import DataSourceSpec, FieldSpec

    spec = DataSourceSpec("events", [FieldSpec("proc.comm", "string", 16),
                                     FieldSpec("proc.pid", "uint32")])
    st = WasmHost(cmod("rename"), [spec], providers())
    st.init()
    st.subscribe("events", lambda ev: ev if ev["label"] != "even" else None, priority=9000)
    st.subscribe("events", lambda ev: {**ev, "proc.comm": ev["proc.comm"].lower()}, priority=-1)
    assert st.push("events", {"proc.comm": "CAT", "proc.pid": 2}) == []
    (_, ev), = st.push("events", {"proc.comm": "CAT", "proc.pid": 3})
    assert ev["label"] == "Cat"
    st.close()


@X86
def test_go_sdk_every_function(gomod, kernel, count_calls):
    """Every function of IG's Go SDK, against real maps, perf buffer and filter map."""
    from gadgetsmith.runtime.wasm.abi import IMPORTS
    from gadgetsmith.runtime.wasm.kinds import Kind
    from gadgetsmith.runtime.wasm.model import FieldFlag

    ensure_tracefs()
    need_root("/proc/kallsyms shows symbols to root only")
    prov = providers(kernel)
    st = host(gomod("allapi"), providers=prov)
    st.run_all_start()
    r = reports(st.lifecycle_outputs)
    want = {
        "getfield_missing": 1, "addtag": 0, "addfield_dup": 1, "subscribe_array_on_single": 1,
        "referenced_before": 1, "unreference": 0, "referenced_after": 0, "release_packet": 0,
        "param": 0, "param_missing": 1, "config": 0, "config_int": 1, "sysname": 0,
        "sysid": 257, "sysid_missing": 1, "sysdecl": 0, "sysdecl_missing": 1, "kallsyms": 1,
        "kallsyms_missing": 0, "release_handle": 0, "release_handle_again": 1, "mntns_555": 1,
        "mntns_777": 0, "getmap": 0, "put": 0, "update_noexist": 1, "lookup": 0,
        "lookup_missing": 1, "delete": 0, "delete_missing": 1, "close_not_created": 1,
        "getmap_missing": 1, "newmap": 0, "newmap_put": 0, "newmap_close": 0, "mom_put": 0,
        "mom_lookup": 0, "mom_inner_put": 0, "perf_new": 0,
    }
    assert {k: r[k][0] for k in want} == want
    assert r["param"][1] == "hello wasm"
    assert r["sysname"][1] == "execve" and r["sysname_unknown"][1] == "syscall_270f"
    assert r["sysdecl"][1] == "openat,dfd:false,filename:true,flags:false,mode:false"
    assert prov.config == {"programs.prog.attach_to": "target_fn"}
    assert st.logs == [(2, "info from go"), (1, "warn x"), (0, "error from go")]

    ds = st.datasources["events"]
    assert ds.fields["go_out"].tags == ["from:go"] and ds.fields["go_out"].flags & FieldFlag.ADDED
    assert ds.fields["go_sum"].kind == Kind.FLOAT64
    assert st.datasources["summary"].is_array

    out = st.push("events", sample_event())
    assert [n for n, _ in out] == ["report", "report", "events"]
    assert reports(out)["scalar_wrong_size"] == (1, "error getting field")
    assert "packet_after_data" in reports(out)
    ev = out[-1][1]
    assert ev["go_out"] == ("1/-2/300/-400/70000/-80000/1099511627776/-1099511627776/1.5/2.25/"
                            "true/cat/010203")
    assert ev["go_sum"] == 3.75
    assert (ev["u8"], ev["i8"], ev["u16"], ev["i16"]) == (2, -3, 301, -401)
    assert (ev["u32"], ev["i32"], ev["u64"], ev["i64"]) == (70001, -80001, (1 << 40) + 1, -(1 << 40) - 1)
    assert (ev["f32"], ev["f64"], ev["flag"], ev["proc.comm"]) == (3.0, 4.5, False, "CAT")
    assert ev["blob"] == b"\x09\x08\x07"

    out = st.push_array("snap", [{"n": 1}, {"n": 5}])
    assert dict(out)["summary"] == [{"total": 6, "names": "1,5"}]
    assert dict(out)["snap"] == [{"n": 1}, {"n": 5}]
    assert reports(out)["array_get_oob"][0] == 0
    assert st.push("hidden", {"x": 1}) == []
    kernel.records(3, 4, 5)
    st.stop()
    r = reports(st.lifecycle_outputs)
    assert r["stop"][0] == 1 and r["perf_pause"][0] == 0
    assert r["perf_read"][0] == 3 and sorted(r["perf_read"][1].split(",")) == ["rec-3", "rec-4", "rec-5"]
    assert r["perf_read_deadline"] == (1, "i/o timeout")
    assert r["perf_resume"][0] == 0 and r["perf_close"][0] == 0
    # the module's writes, read back from the kernel
    assert kernel.lookup("counts", (1).to_bytes(4, "little"), 8) is None
    st.post_stop()
    st.close()
    assert sorted(set(IMPORTS) - set(count_calls)) == []


def test_perf_ring_modes(kernel):
    """The perf reader behind newPerfReader on its own: a normal ring gives each record
    once, oldest first per CPU; an overwritable one only while paused, and after a wrap
    the newest records (a flight recorder)."""
    from gadgetsmith.runtime.bpf.perfring import PerfRing

    fd = kernel.fd("events_perf")
    ring = PerfRing(fd, 4096)
    kernel.records(1, 2, 3)
    got = [ring.read() for _ in range(4)]
    assert sorted(r[:5] for r in got[:3]) == [b"rec-1", b"rec-2", b"rec-3"] and got[3] is None
    ring.close()

    ring = PerfRing(fd, 4096, overwritable=True)
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})             # every record in one CPU's ring
    try:
        kernel.records(*[1] * 250)
        kernel.records(*[2] * 20)
        assert ring.read() is None                   # not paused: nothing
        ring.pause()
        got = []
        while (r := ring.read()) is not None:
            got.append(r[:5])
    finally:
        os.sched_setaffinity(0, cpus)
    # 270 records of 24 bytes (header 8, size 4, sample 12) do not fit in 4096 bytes: the
    # ring holds the newest 170, newest first
    assert len(got) == 4096 // 24 and got[:20] == [b"rec-2"] * 20 and set(got[20:]) == {b"rec-1"}
    assert ring.read() is None                       # each record once
    ring.resume()
    kernel.records(7)
    ring.pause()
    assert ring.read()[:5] == b"rec-7" and ring.read() is None
    ring.close()
