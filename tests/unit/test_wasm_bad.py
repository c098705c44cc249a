"""Modules that fail: one line naming the module and the call, and nothing left running."""

from __future__ import annotations

import logging
import re

import pytest

from ..wasm_util import cmod, gomod, module_dir, providers, sample_event, standard_datasources  # noqa: F401

CASES = {
    "NOVERSION": ("load", r"does not export gadgetAPIVersion"),
    "VERSION": ("gadgetAPIVersion", r"returned 2, this host implements IG's WASM API version 1"),
    "TRAP_INIT": ("gadgetInit", r"trap: wasm `unreachable` instruction executed \(in gadgetInit\)"),
    "INIT_FAILS": ("gadgetInit", r"returned 1 \(an error\)"),
    "START_FAILS": ("gadgetStart", r"returned 7 \(an error\)"),
    "OOM": ("gadgetInit", r"trap: .*the module's memory is 1[45]\.\d MiB, IG's cap is 256 pages \(16 MiB\)"),
    "BIGMEM": ("load", r"needs 272 pages of memory at start, more than IG's cap of 256 pages"),
    "IMPORT": ("load", r"imports ig\.notInTheAPI, which is not in IG's WASM API version 1"),
    "SIGNATURE": ("load", r"imports ig\.fieldSet as \(i32, i32, i32\) -> \(i32\), the API has "
                          r"\(i32, i32, i32, i64\) -> \(i32\)"),
    "OTHER_MODULE": ("load", r"imports env\.thing, which this host does not provide"),
    "TRAP_CALLBACK": ("dataSourceCallback for 'events'", r"trap: .*unreachable.* \(in on_event\)"),
    "NO_CALLBACK": ("gadgetInit", r"returned 1"),
    "ERRPTR": ("gadgetInit", r"fieldGetScalar: error pointer is outside the module's memory"),
    "LOOP_EMIT": ("dataSourceCallback for 'events'", r"emission into 'events' nested more than 8 deep"),
}


def new_host(path, **kw):
    from gadgetsmith.runtime.wasm.host import WasmHost

    return WasmHost(path, standard_datasources(), providers(**kw.pop("prov", {})), **kw)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_c_module(case, cmod, caplog):
    from gadgetsmith.runtime.errors import RuntimeGadgetError, WasmModuleError

    caplog.set_level(logging.ERROR)
    path = cmod("bad", case)
    call, pattern = CASES[case]
    st = None
    with pytest.raises(WasmModuleError) as ei:
        st = new_host(path)
        st.run_all_start()
        for i in range(5):
            st.push("events", sample_event(u8=i))
    e = ei.value
    assert isinstance(e, RuntimeGadgetError)          # the runtime's tree: one line in the CLI
    assert "\n" not in str(e)
    assert str(e).startswith(f"wasm module {path.name}: {call}: "), str(e)
    assert e.call == call and e.module == path.name
    assert re.search(pattern, str(e)), str(e)
    if st is not None and case not in ("TRAP_CALLBACK", "LOOP_EMIT"):
        assert st.state == "closed"                     # nothing stays
    if case in ("TRAP_CALLBACK", "LOOP_EMIT"):
        # an event's failure stops the module: later calls say so, in one line
        with pytest.raises(WasmModuleError, match="cannot be called any more"):
            st.push("events", sample_event(u8=9))
        st.close()


def test_runaway_module_is_interrupted(cmod):
    from gadgetsmith.runtime.errors import WasmModuleError

    st = new_host(cmod("bad", "LOOP"), call_timeout=0.5)
    with pytest.raises(WasmModuleError, match=r"gadgetInit: did not return within 0\.5 s \(interrupted\)"):
        st.init()
    assert st.state == "closed"


def test_not_a_module(tmp_path):
    from gadgetsmith.runtime.errors import WasmModuleError
    from gadgetsmith.runtime.wasm.module import Module

    p = tmp_path / "x.wasm"
    p.write_bytes(b"hello")
    with pytest.raises(WasmModuleError, match=r"^wasm module x.wasm: load: not a valid WebAssembly module"):
        Module(p)
    with pytest.raises(WasmModuleError, match=r"^wasm module nope.wasm: load: No such file"):
        Module(tmp_path / "nope.wasm")


GO_CASES = {
    "oom": ("gadgetInit", r"runtime: out of memory: cannot allocate \d+-byte block .*IG's cap is 256 pages"),
    "panic-init": ("gadgetInit", r"panic: boom in init \(trap: wasm `unreachable`"),
    "panic-callback": ("dataSourceCallback for 'events'", r"panic: assignment to entry in nil map"),
    "fail-start": ("gadgetStart", r"returned 1 \(an error\)"),
}


@pytest.mark.parametrize("mode", sorted(GO_CASES))
def test_bad_go_module(mode, gomod, caplog):
    from gadgetsmith.runtime.errors import WasmModuleError

    caplog.set_level(logging.CRITICAL)
    path = gomod("bad")
    call, pattern = GO_CASES[mode]
    with pytest.raises(WasmModuleError) as ei:
        st = new_host(path, prov={"params": {"mode": mode}})
        st.run_all_start()
        st.push("events", sample_event())
    e = ei.value
    assert "\n" not in str(e) and e.call == call
    assert str(e).startswith(f"wasm module {path.name}: {call}: ")
    assert re.search(pattern, str(e)), str(e)


def test_runtime_exception_in_nested_emit_propagates(cmod):
    """A runtime step that raises while the module emits: the runtime's own exception
    comes out (not a trap message), and the module is not called again."""
    from gadgetsmith.runtime.errors import WasmModuleError

    st = new_host(cmod("emit"))
    st.init()

    def broken(ev):
        raise KeyError("runtime bug")
    st.subscribe("pairs", broken)
    with pytest.raises(KeyError, match="runtime bug"):
        st.push("events", sample_event())
    with pytest.raises(WasmModuleError, match="cannot be called any more"):
        st.push("events", sample_event())
    st.close()
