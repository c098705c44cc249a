"""What a gadget's module is and adds, without running the gadget: the static check a
build makes (:func:`check_module`), and the fields and data sources the module adds to
the gadget's, learned by running its ``gadgetInit`` over the object's data sources
(:func:`module_additions`; nothing is loaded into the kernel or attached). ``gadget
build`` and ``gadget validate`` use both; importing this module does not import
wasmtime (they do, when called).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from gadgetsmith.runtime.bpf.objmodel import GadgetObject, wasm_param_defaults
from gadgetsmith.runtime.errors import WasmError
from gadgetsmith.runtime.wasm.lazy import load_host
from gadgetsmith.runtime.wasm.providers import Providers
from gadgetsmith.runtime.wasm.specs import object_specs

_quiet = logging.getLogger("gadgetsmith.wasm.probe")  # a module's own logs: not shown here
_quiet.propagate = False
_quiet.addHandler(logging.NullHandler())


@dataclass
class Additions:
    """``fields``: data source of the object -> fields the module adds to it;
    ``datasources``: data source the module creates -> its fields; ``zero``: data source
    -> field -> the zero value of each of those fields (its type: for filters);
    ``error``: why the module could not be run (then the rest is empty)."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    datasources: dict[str, list[str]] = field(default_factory=dict)
    zero: dict[str, dict[str, Any]] = field(default_factory=dict)
    imports: list[str] = field(default_factory=list)
    error: str | None = None

    def adds_field(self, datasource: str, name: str) -> bool:
        return name in self.fields.get(datasource, ()) or name in self.datasources.get(datasource, ())


def check_module(wasm: bytes, name: str = "program.wasm") -> None:
    """A WebAssembly module exporting ``gadgetAPIVersion``, importing only IG's API, its
    memory within IG's cap; :class:`~gadgetsmith.runtime.errors.WasmModuleError` says
    what is wrong (nothing runs)."""
    load_host().Module(wasm, name).check()


def module_additions(wasm: bytes, obj: Any, name: str = "program.wasm",
                     metadata: dict[str, Any] | None = None) -> Additions:
    """Run ``wasm``'s gadgetInit over the data sources of ``obj`` (a
    :class:`~gadgetsmith.runtime.bpf.objmodel.GadgetObject`, or None for a gadget without
    eBPF), with gadget.yaml's wasm param defaults. ``metadata``: gadget.yaml, when ``obj``
    was read without it (its data source annotations shape the fields: ``ebpf.rest.name``)."""
    if obj is not None and metadata is not None and obj.metadata is not metadata:
        obj = GadgetObject(obj.data, metadata)
    specs = object_specs(obj) if obj is not None else []
    before = {s.name for s in specs}
    prov = Providers(params=wasm_param_defaults(obj.metadata if obj is not None else {}), logger=_quiet)
    try:
        host = load_host().WasmHost(wasm, specs, prov, name=name)
        try:
            host.init()
            out = Additions(imports=host.imports)
            for ds in host.datasources.values():
                added = [f.name for f in ds.fields.values() if f.added]
                out.zero[ds.name] = {f.name: f.default for f in ds.fields.values() if f.added}
                if ds.name in before:
                    if added:
                        out.fields[ds.name] = added
                else:
                    out.datasources[ds.name] = added
            return out
        finally:
            host.close()
    except WasmError as e:
        return Additions(error=str(e))
