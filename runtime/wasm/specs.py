"""The gadget's data sources as a module sees them, from the object model's decoders.

A module sees every field the runtime decodes, under the same names (IG's dotted full
names, ``proc.comm``), with IG's kinds: a tracer is a single data source, an iterator or
a map iterator an array one (one packet per snapshot or drain, as IG's). Derived fields
(``error`` next to ``error_raw``, ``user``, timestamps as text) are strings; a char array
is a string of fixed size (a module may set at most that many bytes, as in IG); an
integer array and other bytes fields (a record's rest, ``ebpf.rest.name``) are bytes; nested
structs are left out (their members are fields).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gadgetsmith.runtime.events.decode import decoder_for
from gadgetsmith.runtime.wasm.kinds import Kind
from gadgetsmith.runtime.wasm.model import DataSourceSpec, DataSourceType, FieldSpec, containers_datasource

_KINDS = {
    "bool": Kind.BOOL, "int8": Kind.INT8, "int16": Kind.INT16, "int32": Kind.INT32,
    "int64": Kind.INT64, "uint8": Kind.UINT8, "uint16": Kind.UINT16, "uint32": Kind.UINT32,
    "uint64": Kind.UINT64, "float32": Kind.FLOAT32, "float64": Kind.FLOAT64,
    "string": Kind.STRING, "array": Kind.BYTES,
}


def field_specs(decoder: Any) -> list[FieldSpec]:
    """The fields of events ``decoder`` (a :class:`~gadgetsmith.runtime.events.decode.Decoder`)
    makes, in column order; hidden columns stay hidden."""
    by_name = {f.name: f for f in decoder.fields}
    rest = decoder.rest[0] if getattr(decoder, "rest", None) else None
    out = []
    for col in decoder.columns:
        f = by_name.get(col.name)
        if col.name == rest:                # a record's bytes after the struct (ebpf.rest)
            out.append(FieldSpec(col.name, Kind.BYTES, hidden=col.hidden))
            continue
        if f is None:                       # derived: text made from another field
            out.append(FieldSpec(col.name, Kind.STRING, hidden=col.hidden))
            continue
        if f.kind == "struct":
            continue
        if f.kind == "enum":
            kind = _KINDS.get(f.elem_kind, Kind.UINT32)
        elif f.kind == "bytes":
            kind = Kind.BYTES               # hex text, or bytes when the module reads them
        else:
            kind = _KINDS.get(f.kind, Kind.STRING)
        size = f.size if f.kind == "string" else 0
        out.append(FieldSpec(f.name, kind, size=size, hidden=col.hidden))
    return out


def datasource_spec(name: str, kind: str, decoder: Any,
                    annotations: Mapping[str, Mapping[str, str]] | None = None) -> DataSourceSpec:
    """One data source of the object: ``kind`` tracer | iterator | mapiter;
    ``annotations``: gadget.yaml's field annotations (for the fields the module adds)."""
    typ = DataSourceType.SINGLE if kind == "tracer" else DataSourceType.ARRAY
    return DataSourceSpec(name, field_specs(decoder), typ,
                          field_annotations={k: dict(v) for k, v in (annotations or {}).items()})


def metadata_annotations(metadata: Mapping[str, Any] | None) -> dict[str, dict[str, dict[str, str]]]:
    """gadget.yaml's ``datasources.<ds>.fields.<f>.annotations`` as text, by data source."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    dss = (metadata or {}).get("datasources")
    for ds, spec in (dss.items() if isinstance(dss, dict) else ()):
        fields = spec.get("fields") if isinstance(spec, dict) else None
        for fname, fspec in (fields.items() if isinstance(fields, dict) else ()):
            ann = fspec.get("annotations") if isinstance(fspec, dict) else None
            if isinstance(ann, dict):
                out.setdefault(str(ds), {})[str(fname)] = {str(k): _text(v) for k, v in ann.items()}
    return out


def containers_enabled(metadata: Mapping[str, Any] | None) -> bool:
    """gadget.yaml's ``annotations: {enable-containers-datasource: "true"}`` (IG's switch
    for the ``containers`` data source)."""
    ann = (metadata or {}).get("annotations")
    return isinstance(ann, dict) and _text(ann.get("enable-containers-datasource", "")).lower() == "true"


def object_specs(obj: Any) -> list[DataSourceSpec]:
    """Every data source of a :class:`~gadgetsmith.runtime.bpf.objmodel.GadgetObject` (a
    broken one is left out: the runtime refuses it anyway), and ``containers`` when
    gadget.yaml enables it."""
    ann = metadata_annotations(obj.metadata)
    out = []
    for info in obj.datasources.values():
        if info.problems:
            continue
        out.append(datasource_spec(info.name, info.kind, decoder_for(info), ann.get(info.name)))
    if containers_enabled(obj.metadata):
        out.append(containers_datasource())
    return out


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
