"""Find a gadget's data sources and params from the marker variables in its BTF."""

from __future__ import annotations

from dataclasses import dataclass, field

from gadgetsmith.runtime.bpf.btf import Btf

SEP = "___"


@dataclass
class Tracer:
    name: str
    map_name: str
    struct_name: str


@dataclass
class Iterator:
    name: str
    struct_name: str
    programs: list[str]


@dataclass
class MapIter:
    name: str
    map_name: str


@dataclass
class Markers:
    tracers: list[Tracer] = field(default_factory=list)
    iterators: list[Iterator] = field(default_factory=list)
    mapiters: list[MapIter] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    map_tracers: list[str] = field(default_factory=list)


def _is_const_void_ptr(btf: Btf, var_type: int) -> bool:
    t = btf.types[var_type]
    if t.kind != "ptr":
        return False
    c = btf.types[t.type]
    return c.kind == "const" and c.type == 0


def find_markers(btf: Btf) -> Markers:
    """IG's prefix table: global `const void *` variables named gadget_<kind>_<parts>."""
    m = Markers()
    seen_iters: set[str] = set()
    for t in btf.types:
        if t.kind != "var" or not t.name.startswith("gadget_"):
            continue
        if not _is_const_void_ptr(btf, t.type):
            continue
        name = t.name
        if name.startswith("gadget_tracer_"):
            parts = name[len("gadget_tracer_"):].split(SEP)
            if len(parts) == 3:
                m.tracers.append(Tracer(*parts))
        elif name.startswith(("gadget_iter_", "gadget_snapshotter_")):
            rest = name.split("_", 2)[2]
            parts = rest.split(SEP)
            if len(parts) >= 3 and parts[0] not in seen_iters:
                seen_iters.add(parts[0])
                m.iterators.append(Iterator(parts[0], parts[1], parts[2:]))
        elif name.startswith("gadget_mapiter_"):
            parts = name[len("gadget_mapiter_"):].split(SEP)
            if len(parts) == 2:
                m.mapiters.append(MapIter(*parts))
        elif name.startswith("gadget_param_"):
            m.params.append(name[len("gadget_param_"):])
        elif name.startswith("gadget_map_tracer_"):
            m.map_tracers.append(name[len("gadget_map_tracer_"):])
    return m
