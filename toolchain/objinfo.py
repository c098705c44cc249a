"""What a compiled gadget object declares: data sources, their fields, params, maps.

Static analysis only (no kernel): the ELF symbol table, the object's BTF through
:mod:`gadgetsmith.runtime.btf` (the same reader the runtime's decoder uses), IG's marker
variables (:mod:`gadgetsmith.runtime.markers`) and IG's field naming
(:mod:`gadgetsmith.runtime.fields`). Validation and metadata generation both start here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gadgetsmith.runtime.btf import Btf, BtfError
from gadgetsmith.runtime.elf import Elf, ElfError
from gadgetsmith.runtime.fields import Field, fields_for_struct
from gadgetsmith.runtime.libbpf import MAP_TYPE_PERF_EVENT_ARRAY as PERF_EVENT_ARRAY
from gadgetsmith.runtime.libbpf import MAP_TYPE_RINGBUF as RINGBUF
from gadgetsmith.runtime.loader import WELL_KNOWN_KEYS  # GADGET_PARAMs with fixed keys
from gadgetsmith.runtime.markers import find_markers

from .errors import UsageError

MAP_TYPES = {
    0: "unspec", 1: "hash", 2: "array", 3: "prog_array", 4: "perf_event_array",
    5: "percpu_hash", 6: "percpu_array", 7: "stack_trace", 8: "cgroup_array", 9: "lru_hash",
    10: "lru_percpu_hash", 11: "lpm_trie", 12: "array_of_maps", 13: "hash_of_maps",
    14: "devmap", 15: "sockmap", 16: "cpumap", 17: "xskmap", 18: "sockhash",
    21: "queue", 22: "stack", 23: "sk_storage", 27: "ringbuf", 28: "inode_storage",
    29: "task_storage", 30: "bloom_filter", 31: "user_ringbuf",
}
HASH = 1

#: special types -> IG annotation template applied by the runtime
TEMPLATES = {
    "gadget_timestamp": "timestamp", "gadget_bytes": "bytes", "gadget_duration": "duration",
    "gadget_comm": "comm", "gadget_pcomm": "pcomm", "gadget_pid": "pid", "gadget_ppid": "ppid",
    "gadget_tid": "tid", "gadget_ptid": "ptid", "gadget_uid": "uid", "gadget_gid": "gid",
    "gadget_mntns_id": "mntns_id", "gadget_netns_id": "netns_id", "gadget_syscall": "syscall",
    "gadget_user_stack": "user_stack", "gadget_l4endpoint_t": "l4endpoint",
}

ENRICHMENT_PREFIXES = ("k8s.", "runtime.")


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


@dataclass
class DataSourceInfo:
    name: str
    kind: str  # tracer | iterator | mapiter
    structs: list[str]
    map_name: str = ""
    programs: list[str] = field(default_factory=list)
    fields: list[Field] = field(default_factory=list)
    derived: list[str] = field(default_factory=list)  # names the runtime adds (error, timestamp ...)
    problems: list[str] = field(default_factory=list)  # object-level errors, with the fix

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def enriched(self) -> bool:
        return any(f.has_type("gadget_mntns_id") or f.has_type("gadget_netns_id") for f in self.fields)

    def knows_field(self, name: str) -> bool:
        if name in self.field_names or name in self.derived:
            return True
        return self.enriched and name.startswith(ENRICHMENT_PREFIXES)


@dataclass
class ParamInfo:
    var: str
    c_type: str  # as written in C, roughly: bool, __u32, char[16]
    ig_type: str | None  # bool, int32, uint64, string, ip ...; None = unsupported
    size: int
    default: str | None  # initial value in .rodata, as ig prints it
    const_volatile: bool
    in_rodata: bool

    @property
    def key(self) -> str:
        return WELL_KNOWN_KEYS.get(self.var, self.var)


@dataclass
class ObjectInfo:
    datasources: dict[str, DataSourceInfo]
    params: dict[str, ParamInfo]
    maps: dict[str, MapInfo]
    programs: dict[str, str]  # program name -> ELF section
    problems: list[str] = field(default_factory=list)


def _map_defs(btf: Btf) -> dict[str, MapInfo]:
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
                if t.kind == "ptr":
                    arr = btf.resolve(t.type)
                    if arr.kind == "array":
                        n = arr.nelems
                        if m.name == "type":
                            mi.type = n
                        elif m.name == "max_entries":
                            mi.max_entries = n
                        elif m.name == "key_size":
                            mi.key_size = n
                        else:
                            mi.value_size = n
            elif m.name in ("key", "value") and t.kind == "ptr":
                if m.name == "key":
                    mi.key_type = t.type
                    mi.key_size = mi.key_size or btf.size_of(t.type)
                else:
                    mi.value_type = t.type
                    mi.value_size = mi.value_size or btf.size_of(t.type)
        out[var.name] = mi
    return out


def _programs(elf: Elf) -> dict[str, str]:
    out = {}
    for s in elf.symbols:
        if s.type == 2 and s.bind in (1, 2) and 0 < s.section_index < len(elf.sections):
            sec = elf.sections[s.section_index].name
            if sec not in (".text",):
                out[s.name] = sec
    return out


def _c_type(btf: Btf, type_id: int) -> str:
    t = btf.types[type_id]
    quals = []
    for _ in range(32):
        if t.kind in ("const", "volatile"):
            quals.append(t.kind)
            t = btf.types[t.type]
            continue
        break
    if t.kind == "array":
        return f"{_c_type(btf, t.elem_type)}[{t.nelems}]"
    if t.kind in ("struct", "union", "enum"):
        return f"{t.kind} {t.name}"
    return t.name or t.kind


def _ig_type(btf: Btf, type_id: int) -> tuple[str | None, int]:
    t = btf.resolve(type_id)
    if t.kind == "int":
        if t.is_bool:
            return "bool", t.size
        if t.is_char:
            return "uint8", 1
        return f"{'int' if t.is_signed else 'uint'}{t.size * 8}", t.size
    if t.kind in ("enum", "enum64"):
        return f"{'int' if t.signed else 'uint'}{t.size * 8}", t.size
    if t.kind == "float":
        return f"float{t.size * 8}", t.size
    if t.kind == "array":
        elem = btf.resolve(t.elem_type)
        if elem.kind == "int" and elem.size == 1:
            return "string", t.nelems
    if t.kind == "struct" and t.name == "gadget_l3endpoint_t":
        return "ip", t.size
    return None, btf.size_of(type_id)


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


def _default(ig_type: str | None, raw: bytes) -> str | None:
    if ig_type is None or not raw:
        return None
    if ig_type == "bool":
        return "true" if any(raw) else "false"
    if ig_type.startswith(("int", "uint")):
        return str(int.from_bytes(raw, "little", signed=ig_type.startswith("int")))
    if ig_type.startswith("float"):
        import struct

        return repr(struct.unpack("<f" if len(raw) == 4 else "<d", raw)[0])
    if ig_type == "string":
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")
    return None


def _derived_names(fields: list[Field], size: int) -> list[str]:
    from gadgetsmith.runtime.decode import Decoder

    try:
        dec = Decoder(fields, size)
    except Exception:  # noqa: BLE001 - a field the decoder cannot plan: no derived names
        return []
    have = {f.name for f in fields}
    return [c.name for c in dec.columns if c.name not in have]


def analyze(data: bytes, label: str = "object") -> ObjectInfo:
    """Analyse an eBPF ELF object. Raises UsageError when it is not a usable object."""
    try:
        elf = Elf(data)
        btf = Btf.from_elf(data)
    except (ElfError, BtfError, ValueError, IndexError, KeyError) as e:
        raise UsageError(f"{label}: not a usable eBPF object: {e}") from None
    markers = find_markers(btf)
    maps = _map_defs(btf)
    programs = _programs(elf)
    info = ObjectInfo({}, {}, maps, programs)

    def struct_fields(ds: DataSourceInfo, name: str, base: int = 0) -> int:
        st = btf.find(name, "struct") or btf.find(name, "union")
        if st is None:
            ds.problems.append(f"struct {name} is not in the object's BTF")
            return 0
        for f in fields_for_struct(btf, name):
            f.offset += base
            ds.fields.append(f)
        return st.size

    for t in markers.tracers:
        ds = DataSourceInfo(t.name, "tracer", [t.struct_name], map_name=t.map_name)
        size = struct_fields(ds, t.struct_name)
        m = maps.get(t.map_name)
        if m is None:
            ds.problems.append(f"tracer map {t.map_name!r} does not exist: declare it with "
                               f"GADGET_TRACER_MAP({t.map_name}, size)")
        elif m.type not in (RINGBUF, PERF_EVENT_ARRAY):
            ds.problems.append(
                f"tracer map {t.map_name!r} is a {m.type_name} map: tracers need a ring buffer "
                f"or perf event array (GADGET_TRACER_MAP({t.map_name}, size))")
        ds.derived = _derived_names(ds.fields, size)
        info.datasources.setdefault(t.name, ds)
    for it in markers.iterators:
        ds = DataSourceInfo(it.name, "iterator", [it.struct_name], programs=list(it.programs))
        size = struct_fields(ds, it.struct_name)
        for p in it.programs:
            sec = programs.get(p)
            if sec is None:
                ds.problems.append(f"iterator program {p!r} does not exist")
            elif not sec.startswith("iter/"):
                ds.problems.append(f"iterator program {p!r} is in section {sec!r}: iterators "
                                   "need SEC(\"iter/...\") programs")
        ds.derived = _derived_names(ds.fields, size)
        info.datasources.setdefault(it.name, ds)
    for mi in markers.mapiters:
        ds = DataSourceInfo(mi.name, "mapiter", [], map_name=mi.map_name)
        m = maps.get(mi.map_name)
        if m is None:
            ds.problems.append(f"map {mi.map_name!r} of GADGET_MAPITER({mi.name}, {mi.map_name}) "
                               "does not exist")
        else:
            if m.type != HASH:
                ds.problems.append(
                    f"map {mi.map_name!r} is a {m.type_name} map: map iterators need "
                    "BPF_MAP_TYPE_HASH (not LRU, not per-CPU)")
            size = 0
            for role, tid, want in (("key", m.key_type, m.key_size), ("value", m.value_type,
                                                                     m.value_size)):
                st = btf.resolve(tid) if tid else None
                if st is None or st.kind != "struct":
                    ds.problems.append(
                        f"map {mi.map_name!r} {role} must be a struct: declare "
                        f"__type({role}, struct ...)")
                    continue
                if want and st.size != want:
                    ds.problems.append(f"map {mi.map_name!r}: {role}_size {want} differs from "
                                       f"sizeof(struct {st.name}) = {st.size}")
                ds.structs.append(st.name)
                size += struct_fields(ds, st.name, size)
            ds.derived = _derived_names(ds.fields, size)
        info.datasources.setdefault(mi.name, ds)

    elf_rodata = elf.section(".rodata")
    rodata = elf_rodata.data if elf_rodata else b""
    gvars = {name: (tid, sec, off, size) for name, tid, sec, off, size in btf.global_vars()}
    for var in markers.params:
        vt = btf.find(var, "var")
        if vt is None:
            info.problems.append(f"GADGET_PARAM({var}): no global variable {var!r}")
            continue
        tid, sec, off, _size = gvars.get(var, (vt.type, "", 0, 0))
        ig_type, psize = _ig_type(btf, tid)
        raw = rodata[off:off + psize] if sec == ".rodata" and len(rodata) >= off + psize else b""
        info.params[var] = ParamInfo(
            var, _c_type(btf, tid), ig_type, psize, _default(ig_type, raw),
            _is_const_volatile(btf, tid), sec == ".rodata")
    return info
