"""What a compiled gadget object declares, read from its ELF and BTF alone (no kernel).

One model for everyone who looks at an object: the runtime sets params, sizes maps and
builds its record decoders from it (:meth:`DataSourceInfo.decoder`), and the toolchain
(``gadget validate``, metadata generation) checks gadget.yaml against it. It holds IG's
marker variables (:mod:`.markers`), the map definitions of ``.maps``, the program
sections, the ``GADGET_PARAM`` variables with their IG type, their place in ``.rodata``
and their initial value, and the data sources with their fields.

Param types follow Inspektor Gadget's ebpf operator: ``bool``, ``int8``..``int64``,
``uint8``..``uint64`` (enums by their signedness, ``char`` as ``uint8``), ``float32``,
``float64``, ``string`` (a char array) and ``ip`` (``struct gadget_l3endpoint_t``). A param
whose C type is none of these has ``type None``: validation reports it and the runtime
refuses to set it, instead of ignoring it.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from gadgetsmith.runtime.bpf import markers as mk
from gadgetsmith.runtime.bpf.btf import Btf
from gadgetsmith.runtime.bpf.elf import Elf
from gadgetsmith.runtime.bpf.fields import Field, derived_name, fields_for_struct
from gadgetsmith.runtime.bpf.formatted import Formatted, formatted
from gadgetsmith.runtime.bpf.libbpf import MAP_TYPE_PERF_EVENT_ARRAY as PERF_EVENT_ARRAY
from gadgetsmith.runtime.bpf.libbpf import MAP_TYPE_RINGBUF as RINGBUF
from gadgetsmith.runtime.bpf.markers import Markers, find_markers
from gadgetsmith.runtime.errors import FormatError, ObjectError, ParamError

#: GADGET_PARAMs whose flag name ig fixes, whatever gadget.yaml says
WELL_KNOWN_KEYS = {
    "targ_pid": "pid", "targ_tid": "tid", "targ_uid": "uid", "targ_gid": "gid",
    "targ_comm": "comm", "collect_ustack": "collect-ustack",
    "collect_build_id": "collect-build-id", "collect_otel_stack": "collect-otel-stack",
}

MAP_TYPES = {
    0: "unspec", 1: "hash", 2: "array", 3: "prog_array", 4: "perf_event_array",
    5: "percpu_hash", 6: "percpu_array", 7: "stack_trace", 8: "cgroup_array", 9: "lru_hash",
    10: "lru_percpu_hash", 11: "lpm_trie", 12: "array_of_maps", 13: "hash_of_maps",
    14: "devmap", 15: "sockmap", 16: "cpumap", 17: "xskmap", 18: "sockhash",
    21: "queue", 22: "stack", 23: "sk_storage", 27: "ringbuf", 28: "inode_storage",
    29: "task_storage", 30: "bloom_filter", 31: "user_ringbuf",
}
HASH = 1

ENRICHMENT_PREFIXES = ("k8s.", "runtime.")
L3ENDPOINT = "gadget_l3endpoint_t"
PARAM_TYPES_HINT = ("bool, an integer, a float, a char array or struct " + L3ENDPOINT
                    + " (an IP address)")
BOOL_TEXT = {"true": True, "t": True, "1": True, "yes": True, "on": True,
             "false": False, "f": False, "0": False, "no": False, "off": False, "": False}


# ---------------------------------------------------------------------------- maps
@dataclass
class MapInfo:
    name: str
    type: int
    key_type: int = 0  # BTF type ids, 0 = not declared with __type
    value_type: int = 0
    key_size: int = 0
    value_size: int = 0
    max_entries: int = 0

    @property
    def type_name(self) -> str:
        return MAP_TYPES.get(self.type, f"type {self.type}")


def map_definitions(btf: Btf) -> dict[str, MapInfo]:
    """The BTF-defined maps of ``.maps``: type, sizes, max_entries, key/value types."""
    out: dict[str, MapInfo] = {}
    sec = btf.datasec(".maps")
    if sec is None:
        return out
    for v in sec.vars:
        var = btf.types[v.type]
        st = btf.resolve(var.type)
        if st.kind != "struct":
            continue
        mi = MapInfo(var.name, 0)
        for m in st.members:
            t = btf.resolve(m.type)
            if m.name in ("type", "max_entries", "key_size", "value_size"):
                # __uint(name, N) is `int (*name)[N]`
                arr = btf.resolve(t.type) if t.kind == "ptr" else None
                if arr is not None and arr.kind == "array":
                    n = arr.nelems
                    if m.name == "type":
                        mi.type = n
                    elif m.name == "max_entries":
                        mi.max_entries = n
                    elif m.name == "key_size":
                        mi.key_size = n
                    else:
                        mi.value_size = n
            elif m.name == "key" and t.kind == "ptr":
                mi.key_type = t.type
                mi.key_size = mi.key_size or btf.size_of(t.type)
            elif m.name == "value" and t.kind == "ptr":
                mi.value_type = t.type
                mi.value_size = mi.value_size or btf.size_of(t.type)
        out[var.name] = mi
    return out


def program_sections(elf: Elf) -> dict[str, str]:
    """Program name -> ELF section, for global functions outside .text."""
    out = {}
    for s in elf.symbols:
        if s.type == 2 and s.bind in (1, 2) and 0 < s.section_index < len(elf.sections):
            sec = elf.sections[s.section_index].name
            if sec != ".text":
                out[s.name] = sec
    return out


# ---------------------------------------------------------------------------- params
def parse_int(text: str) -> int | None:
    """An integer as ig's flags take it: decimal (leading zeros allowed), 0x.., 0o.., 0b.."""
    try:
        return int(text.strip(), 0)
    except ValueError:
        try:
            return int(text.strip())
        except ValueError:
            return None


def int_range(ptype: str) -> tuple[int, int]:
    bits = int(ptype.lstrip("uint"))
    if ptype.startswith("int"):
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _c_type(btf: Btf, type_id: int) -> str:
    t = btf.types[type_id]
    for _ in range(32):
        if t.kind not in ("const", "volatile"):
            break
        t = btf.types[t.type]
    if t.kind == "array":
        return f"{_c_type(btf, t.elem_type)}[{t.nelems}]"
    if t.kind in ("struct", "union", "enum"):
        return f"{t.kind} {t.name}"
    return t.name or t.kind


def _is_const_volatile(btf: Btf, type_id: int) -> bool:
    seen = set()
    t = btf.types[type_id]
    for _ in range(32):
        if t.kind in ("const", "volatile"):
            seen.add(t.kind)
            t = btf.types[t.type]
        elif t.kind == "array":
            t = btf.types[t.elem_type]
        elif t.kind in ("typedef", "restrict", "type_tag"):
            if seen == {"const", "volatile"}:
                break
            t = btf.types[t.type]
        else:
            break
    return seen == {"const", "volatile"}


def _param_type(btf: Btf, type_id: int) -> tuple[str | None, int, tuple[int, int]]:
    """(IG type or None, size in .rodata, (address offset, version offset) for ip)."""
    t = btf.resolve(type_id)
    if t.kind == "int":
        if t.is_bool:
            return "bool", t.size, (0, 0)
        if t.is_char:
            return "uint8", 1, (0, 0)
        if t.size in (1, 2, 4, 8):
            return f"{'int' if t.is_signed else 'uint'}{t.size * 8}", t.size, (0, 0)
    elif t.kind in ("enum", "enum64") and t.size in (1, 2, 4, 8):
        return f"{'int' if t.signed else 'uint'}{t.size * 8}", t.size, (0, 0)
    elif t.kind == "float" and t.size in (4, 8):
        return f"float{t.size * 8}", t.size, (0, 0)
    elif t.kind == "array":
        elem = btf.resolve(t.elem_type)
        if elem.kind == "int" and elem.size == 1:
            return "string", t.nelems, (0, 0)
    elif t.kind == "struct" and t.name == L3ENDPOINT:
        offs = {m.name: m.offset for m in t.members}
        if "addr_raw" in offs and "version" in offs and offs["addr_raw"] + 16 <= t.size:
            return "ip", t.size, (offs["addr_raw"], offs["version"])
    return None, btf.size_of(type_id), (0, 0)


@dataclass
class Param:
    """One GADGET_PARAM: how ig types it, where it lives in .rodata, its C default."""

    var: str
    key: str  # the flag name: ig's fixed key, else gadget.yaml's key, else the variable
    type: str | None  # bool int8..int64 uint8..uint64 float32 float64 string ip; None: unsupported
    c_type: str  # as written in C, roughly: bool, __u32, char[16]
    size: int
    offset: int  # in .rodata
    default: str | None  # initial value in .rodata, as ig prints it (None: none or unknown)
    const_volatile: bool = True
    in_rodata: bool = True
    description: str = ""
    ip_offsets: tuple[int, int] = (0, 0)  # ip: offsets of addr_raw and version

    @property
    def settable(self) -> bool:
        return self.in_rodata and self.const_volatile and self.type is not None

    def why_not_settable(self) -> str:
        if self.type is None:
            return f"its C type {self.c_type} cannot be a param: use {PARAM_TYPES_HINT}"
        return (f"C variable {self.var} ({self.c_type}) must be a global 'const volatile' "
                "variable so it can be set in .rodata")

    def encode(self, text: Any) -> bytes:
        """The bytes of ``text`` for this param's place in .rodata; ParamError if it does
        not fit."""
        if not self.settable:
            raise ParamError(f"--param {self.key}: cannot be set: {self.why_not_settable()}")
        return self.pack(text)

    def pack(self, text: Any) -> bytes:
        """:meth:`encode` without the check that the param can be set (type known)."""
        text = str(text)
        t = self.type
        if t is None:
            raise ParamError(f"--param {self.key}: {self.why_not_settable()}")
        if t == "bool":
            v = BOOL_TEXT.get(text.strip().lower())
            if v is None:
                raise ParamError(f"--param {self.key}={text}: expected true or false")
            return (b"\1" if v else b"\0") + bytes(self.size - 1)
        if t.startswith(("int", "uint")):
            n = parse_int(text)
            if n is None:
                raise ParamError(f"--param {self.key}={text}: expected an integer")
            lo, hi = int_range(t)
            if not lo <= n <= hi:
                raise ParamError(
                    f"--param {self.key}={text}: out of range for a {self.size * 8}-bit "
                    f"{'signed' if t.startswith('int') else 'unsigned'} value ({lo}..{hi})")
            return n.to_bytes(self.size, "little", signed=t.startswith("int"))
        if t.startswith("float"):
            try:
                return struct.pack("<f" if self.size == 4 else "<d", float(text.strip()))
            except ValueError:
                raise ParamError(f"--param {self.key}={text}: expected a number") from None
            except OverflowError:
                raise ParamError(f"--param {self.key}={text}: out of range for {t}") from None
        if t == "ip":
            return self._encode_ip(text)
        raw = text.encode()
        if len(raw) > self.size:
            raise ParamError(f"--param {self.key}: value longer than {self.size} bytes")
        return bytes(raw + bytes(self.size - len(raw)))

    def _encode_ip(self, text: str) -> bytes:
        out = bytearray(self.size)
        if not text.strip():
            return bytes(out)  # no address: version 0
        try:
            addr = ipaddress.ip_address(text.strip())
        except ValueError:
            raise ParamError(f"--param {self.key}={text}: expected an IPv4 or IPv6 "
                             "address") from None
        a, v = self.ip_offsets
        out[a:a + len(addr.packed)] = addr.packed
        out[v] = addr.version
        return bytes(out)

    def decode(self, raw: bytes) -> str | None:
        """The value ``raw`` (this param's .rodata bytes) stands for, as ig prints it."""
        t = self.type
        if t is None or len(raw) < self.size or not raw:
            return None
        if t == "bool":
            return "true" if any(raw) else "false"
        if t.startswith(("int", "uint")):
            return str(int.from_bytes(raw, "little", signed=t.startswith("int")))
        if t.startswith("float"):
            return repr(struct.unpack("<f" if self.size == 4 else "<d", raw)[0])
        if t == "string":
            return raw.split(b"\0", 1)[0].decode("utf-8", "replace")
        a, v = self.ip_offsets
        if raw[v] == 4:
            return str(ipaddress.IPv4Address(raw[a:a + 4]))
        if raw[v] == 6:
            return str(ipaddress.IPv6Address(raw[a:a + 16]))
        return None


# ---------------------------------------------------------------------------- data sources
MACROS = {"tracer": "GADGET_TRACER", "iterator": "GADGET_ITER", "mapiter": "GADGET_MAPITER"}


@dataclass
class DataSourceInfo:
    """One data source: what ``gadget validate`` and ``gadget metadata`` report, and what
    ``gadget run`` decodes (:meth:`decoder` is the runtime's only way to a decoder)."""

    name: str
    kind: str  # tracer | iterator | mapiter
    structs: list[str]
    map_name: str = ""
    programs: list[str] = field(default_factory=list)
    fields: list[Field] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # object-level errors, with the fix
    size: int = 0  # bytes of one record (a map iterator's: key, then value)
    key_size: int = 0  # map iterators: sizeof the key and value structs
    value_size: int = 0
    #: gadget.yaml's annotations of each field (columns.hidden, columns.width ...)
    annotations: dict[str, dict[str, str]] = field(default_factory=dict)
    #: the data source's ``ebpf.rest.name`` / ``ebpf.rest.len`` annotations (IG): the field
    #: that holds a record's bytes after the struct, and the field saying how many
    rest: tuple[str, str | None] | None = None

    @property
    def macro(self) -> str:
        return MACROS[self.kind]

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def enriched(self) -> bool:
        return any(f.has_type("gadget_mntns_id") or f.has_type("gadget_netns_id") for f in self.fields)

    @cached_property
    def derived(self) -> list[str]:
        """Names a decoded record has besides :attr:`fields` (error, timestamp, user ...):
        the decoder names its derived fields with the same rule
        (:func:`~gadgetsmith.runtime.bpf.fields.derived_name`)."""
        have = set(self.field_names)
        names = (derived_name(f, self.annotations.get(f.name)) for f in self.fields)
        return [n for n in names if n is not None and n not in have] + \
            self.formatted.added

    @cached_property
    def formatted(self) -> Formatted:
        """What ig's formatters and ustack operator add (:attr:`derived` lists the names)
        and remove (:attr:`removed`: an endpoint's ``addr_raw``)."""
        return formatted(self.fields, self.annotations)

    @property
    def removed(self) -> set[str]:
        """Fields of the struct that the events do not have (ig's formatters drop them)."""
        return self.formatted.removed

    def knows_field(self, name: str) -> bool:
        if name in self.field_names or name in self.derived:
            return True
        return self.enriched and name.startswith(ENRICHMENT_PREFIXES)


def wasm_param_defaults(metadata: dict[str, Any] | None) -> dict[str, str]:
    """gadget.yaml's ``params.wasm`` (the WASM module's params): each param's key -> its
    default value, as text."""
    params = (metadata or {}).get("params")
    section = params.get("wasm") if isinstance(params, dict) else None
    out = {}
    for name, spec in (section.items() if isinstance(section, dict) else ()):
        spec = spec if isinstance(spec, dict) else {}
        key = str(spec.get("key") or name)
        default = spec.get("defaultValue", spec.get("defaultvalue"))
        out[key] = "" if default is None else (str(default).lower() if isinstance(default, bool)
                                              else str(default))
    return out


def _mapping(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def ig_get(node: Any, key: str) -> Any:
    """``node[key]`` as ig's viper reads gadget.yaml: keys in any case (``dataSources``)."""
    node = _mapping(node)
    if key in node:
        return node[key]
    low = key.lower()
    return next((v for k, v in node.items() if str(k).lower() == low), None)


def _rest_field(metadata: dict[str, Any], ds: str) -> tuple[str, str | None] | None:
    """``datasources.<ds>.annotations``' ``ebpf.rest.name`` and ``ebpf.rest.len``."""
    ann = ig_get(ig_get(ig_get(metadata, "datasources"), ds), "annotations")
    if not isinstance(ann, dict) or not ann.get("ebpf.rest.name"):
        return None
    length = ann.get("ebpf.rest.len")
    return str(ann["ebpf.rest.name"]), str(length) if length else None


def _field_annotations(metadata: dict[str, Any], ds: str) -> dict[str, dict[str, str]]:
    """gadget.yaml's ``datasources.<ds>.fields.<name>.annotations``, as text."""
    fields = _mapping(ig_get(ig_get(ig_get(metadata, "datasources"), ds), "fields"))
    out = {}
    for name, spec in fields.items():
        ann = ig_get(spec, "annotations")
        if isinstance(ann, dict):
            out[str(name)] = {str(k): str(v) for k, v in ann.items()}
    return out


def datasource_annotations(metadata: dict[str, Any], ds: str) -> dict[str, str]:
    """gadget.yaml's ``datasources.<ds>.annotations`` (metrics.print, ...), as text."""
    ann = _mapping(ig_get(ig_get(ig_get(metadata, "datasources"), ds), "annotations"))
    return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in ann.items()}


# ---------------------------------------------------------------------------- the object
class GadgetObject:
    """Static view of a compiled gadget: ELF, BTF, markers, maps, programs, params and
    data sources. ``metadata`` (gadget.yaml, parsed) supplies param keys and descriptions.
    Raises :class:`ObjectError` when ``data`` is not a readable eBPF object."""

    def __init__(self, data: bytes, metadata: dict[str, Any] | None = None) -> None:
        self.data = data
        self.metadata: dict[str, Any] = metadata or {}
        try:
            self.elf = Elf(data)
            self.btf = Btf.from_elf(data)
        except (FormatError, struct.error, ValueError, IndexError, KeyError) as e:
            raise ObjectError(str(e)) from None
        self.markers: Markers = find_markers(self.btf)
        self.maps: dict[str, MapInfo] = map_definitions(self.btf)
        self.programs: dict[str, str] = program_sections(self.elf)
        self.problems: list[str] = []  # object-level errors, with the fix
        #: every GADGET_PARAM with a global variable, by variable name
        self.params: dict[str, Param] = self._params()

    def rodata_vars(self) -> dict[str, tuple[int, int, int]]:
        """name -> (type id, offset, size) for .rodata variables."""
        return {name: (tid, off, size) for name, tid, sec, off, size in self.btf.global_vars()
                if sec == ".rodata"}

    def rodata(self) -> bytes:
        sec = self.elf.section(".rodata")
        return sec.data if sec else b""

    def _params(self) -> dict[str, Param]:
        meta = self.metadata
        params = meta.get("params")
        section = (params.get("ebpf") if isinstance(params, dict) else None) or \
            meta.get("ebpfParams")
        meta_params = section if isinstance(section, dict) else {}
        rodata = self.rodata()
        gvars = {name: (tid, sec, off) for name, tid, sec, off, _size in self.btf.global_vars()}
        out: dict[str, Param] = {}
        for var in self.markers.params:
            vt = self.btf.find(var, "var")
            if vt is None:
                self.problems.append(f"GADGET_PARAM({var}): no global variable {var!r}")
                continue
            tid, sec, off = gvars.get(var, (vt.type, "", 0))
            ptype, size, ip_offsets = _param_type(self.btf, tid)
            m = meta_params.get(var)
            m = m if isinstance(m, dict) else {}
            key = WELL_KNOWN_KEYS.get(var) or m.get("key") or var
            p = Param(var, str(key), ptype, _c_type(self.btf, tid), size, off, None,
                      _is_const_volatile(self.btf, tid), sec == ".rodata",
                      str(m.get("description", "") or ""), ip_offsets)
            if p.in_rodata and len(rodata) >= off + size:
                p.default = p.decode(rodata[off:off + size])
            out[var] = p
        return out

    def param(self, key: str) -> Param:
        """The param with flag name or variable ``key``, ready to be set."""
        for p in self.params.values():
            if key in (p.key, p.var):
                if not p.settable:
                    raise ParamError(f"param {key!r} cannot be set: {p.why_not_settable()}")
                return p
        known = ", ".join(sorted(p.key for p in self.params.values() if p.settable)) or "none"
        raise ParamError(f"unknown param {key!r}: this gadget's params are {known}")

    # -- data sources ------------------------------------------------------------------
    @cached_property
    def datasources(self) -> dict[str, DataSourceInfo]:
        """Data sources the markers declare, with their fields and what is wrong with them."""
        out: dict[str, DataSourceInfo] = {}
        for ds in (*map(self._tracer, self.markers.tracers),
                   *map(self._iterator, self.markers.iterators),
                   *map(self._mapiter, self.markers.mapiters)):
            out.setdefault(ds.name, ds)
        return out

    def _struct_fields(self, ds: DataSourceInfo, name: str, base: int = 0) -> int:
        """Add struct ``name``'s fields (at ``base``) to ``ds``; the struct's size."""
        st = self.btf.find(name, "struct") or self.btf.find(name, "union")
        if st is None:
            ds.problems.append(f"struct {name} is not in the object's BTF")
            return 0
        for f in fields_for_struct(self.btf, name):
            f.offset += base
            ds.fields.append(f)
        return st.size

    def _tracer(self, t: mk.Tracer) -> DataSourceInfo:
        ds = DataSourceInfo(t.name, "tracer", [t.struct_name], map_name=t.map_name,
                            annotations=_field_annotations(self.metadata, t.name),
                            rest=_rest_field(self.metadata, t.name))
        ds.size = self._struct_fields(ds, t.struct_name)
        m = self.maps.get(t.map_name)
        if m is None:
            ds.problems.append(f"tracer map {t.map_name!r} does not exist: declare it with "
                               f"GADGET_TRACER_MAP({t.map_name}, size)")
        elif m.type not in (RINGBUF, PERF_EVENT_ARRAY):
            ds.problems.append(
                f"tracer map {t.map_name!r} is a {m.type_name} map: tracers need a ring "
                f"buffer or perf event array (GADGET_TRACER_MAP({t.map_name}, size))")
        return ds

    def _iterator(self, it: mk.Iterator) -> DataSourceInfo:
        ds = DataSourceInfo(it.name, "iterator", [it.struct_name], programs=list(it.programs),
                            annotations=_field_annotations(self.metadata, it.name))
        ds.size = self._struct_fields(ds, it.struct_name)
        for p in it.programs:
            sec = self.programs.get(p)
            if sec is None:
                ds.problems.append(f"iterator program {p!r} does not exist")
            elif not sec.startswith("iter/"):
                ds.problems.append(f"iterator program {p!r} is in section {sec!r}: "
                                   "iterators need SEC(\"iter/...\") programs")
        return ds

    def _mapiter(self, mi: mk.MapIter) -> DataSourceInfo:
        ds = DataSourceInfo(mi.name, "mapiter", [], map_name=mi.map_name,
                            annotations=_field_annotations(self.metadata, mi.name))
        m = self.maps.get(mi.map_name)
        if m is None:
            ds.problems.append(f"map {mi.map_name!r} of GADGET_MAPITER({mi.name}, "
                               f"{mi.map_name}) does not exist")
            return ds
        if m.type != HASH:
            ds.problems.append(
                f"map {mi.map_name!r} is a {m.type_name} map: map iterators need "
                "BPF_MAP_TYPE_HASH (not LRU, not per-CPU)")
        for role, tid, want in (("key", m.key_type, m.key_size),
                                ("value", m.value_type, m.value_size)):
            st = self.btf.resolve(tid) if tid else None
            if st is None or st.kind != "struct":
                ds.problems.append(f"map {mi.map_name!r} {role} must be a struct: declare "
                                   f"__type({role}, struct ...)")
                continue
            if want and st.size != want:
                ds.problems.append(f"map {mi.map_name!r}: {role}_size {want} differs from "
                                   f"sizeof(struct {st.name}) = {st.size}")
            ds.structs.append(st.name)
            n = self._struct_fields(ds, st.name, ds.size)
            ds.size += n
            if role == "key":
                ds.key_size = n
            else:
                ds.value_size = n
        return ds

__all__ = ["MACROS", "WELL_KNOWN_KEYS", "DataSourceInfo", "GadgetObject", "MapInfo", "ObjectError",
           "Param", "datasource_annotations", "ig_get", "map_definitions", "parse_int",
           "program_sections"]
