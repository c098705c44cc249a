"""A pure-Python BTF reader.

Why not libbpf's btf__* API: the toolchain needs the same type information for objects
of any architecture without loading them (metadata generation, validation), and the
decoder needs only struct layouts, which are plain data. A ~200-line parser keeps
both free of native state; libbpf still does the loading and CO-RE relocation.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gadgetsmith.runtime.bpf.elf import Elf
from gadgetsmith.runtime.errors import BtfError

KINDS = {
    0: "void", 1: "int", 2: "ptr", 3: "array", 4: "struct", 5: "union", 6: "enum", 7: "fwd",
    8: "typedef", 9: "volatile", 10: "const", 11: "restrict", 12: "func", 13: "func_proto",
    14: "var", 15: "datasec", 16: "float", 17: "decl_tag", 18: "type_tag", 19: "enum64",
}
MODIFIERS = {"typedef", "volatile", "const", "restrict", "type_tag"}


@dataclass
class Member:
    name: str
    type: int
    bit_offset: int
    bitfield_size: int = 0

    @property
    def offset(self) -> int:
        return self.bit_offset // 8


@dataclass
class VarSecinfo:
    type: int
    offset: int
    size: int


@dataclass
class BtfType:
    id: int
    kind: str
    name: str = ""
    size: int = 0
    type: int = 0
    members: list[Member] = field(default_factory=list)
    values: list[tuple[str, int]] = field(default_factory=list)
    signed: bool = False
    elem_type: int = 0
    index_type: int = 0
    nelems: int = 0
    int_encoding: int = 0
    int_bits: int = 0
    linkage: int = 0
    vars: list[VarSecinfo] = field(default_factory=list)
    #: func_proto parameters: (name, type id); a last ("", 0) means varargs
    params: list[tuple[str, int]] = field(default_factory=list)
    int_offset: int = 0

    @property
    def is_char(self) -> bool:
        return self.kind == "int" and bool(self.int_encoding & 2)

    @property
    def is_bool(self) -> bool:
        return self.kind == "int" and bool(self.int_encoding & 4)

    @property
    def is_signed(self) -> bool:
        return self.kind == "int" and bool(self.int_encoding & 1)


class Btf:
    def __init__(self, types: list[BtfType]) -> None:
        self.types = types
        self._by_name: dict[str, list[BtfType]] = {}
        for t in types:
            if t.name:
                self._by_name.setdefault(t.name, []).append(t)

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes) -> Btf:
        tbase, tend, strings = _sections(data)
        # every string by its offset, decoded once (kernel BTF: ~250k lookups, ~60k strings)
        names: dict[int, str] = {}
        off = 0
        for raw in strings.split(b"\0"):
            names[off] = raw.decode("utf-8", "replace")
            off += len(raw) + 1
        name_at = _name_reader(strings, names)
        types = [BtfType(0, "void")]
        pos = tbase
        while pos < tend:
            t, pos = _decode(data, pos, len(types), name_at)
            types.append(t)
        return cls(types)

    @classmethod
    def from_elf(cls, obj: bytes | str | Path) -> Btf:
        data = obj if isinstance(obj, bytes) else Path(obj).read_bytes()
        elf = Elf(data)
        sec = elf.section(".BTF")
        if sec is None:
            raise BtfError("the object has no .BTF section (compile with -g)")
        btf = cls.from_bytes(sec.data)
        btf._fix_datasecs(elf)
        return btf

    @classmethod
    def from_kernel(cls, path: str = "/sys/kernel/btf/vmlinux") -> Btf:
        return cls.from_bytes(Path(path).read_bytes())

    def _fix_datasecs(self, elf: Elf) -> None:
        """Unlinked objects carry DATASEC size/offsets of 0: take them from ELF symbols."""
        for t in self.types:
            if t.kind != "datasec":
                continue
            sec = elf.section(t.name)
            if sec is None:
                continue
            if t.size == 0:
                t.size = sec.size
            syms = elf.symbol_in(t.name)
            for v in t.vars:
                var = self.types[v.type]
                sym = syms.get(var.name)
                if sym is not None:
                    v.offset = sym.value
                    if not v.size:
                        v.size = sym.size

    # -- queries --------------------------------------------------------------------
    def find(self, name: str, kind: str | None = None) -> BtfType | None:
        for t in self._by_name.get(name, []):
            if kind is None or t.kind == kind:
                return t
        return None

    def find_all(self, name: str, kind: str | None = None) -> list[BtfType]:
        return [t for t in self._by_name.get(name, []) if kind is None or t.kind == kind]

    def resolve(self, type_id: int) -> BtfType:
        t = self.types[type_id]
        seen = 0
        while t.kind in MODIFIERS and seen < 64:
            t = self.types[t.type]
            seen += 1
        return t

    def type_chain(self, type_id: int) -> list[str]:
        """Names met while resolving through typedefs/modifiers and array elements."""
        names = []
        t = self.types[type_id]
        for _ in range(64):
            if t.name:
                names.append(t.name)
            if t.kind in MODIFIERS:
                t = self.types[t.type]
            elif t.kind == "array":
                t = self.types[t.elem_type]
            else:
                break
        return names

    def size_of(self, type_id: int) -> int:
        t = self.resolve(type_id)
        if t.kind == "array":
            return self.size_of(t.elem_type) * t.nelems
        if t.kind == "ptr":
            return 8
        return t.size

    def datasec(self, name: str) -> BtfType | None:
        return self.find(name, "datasec")

    def global_vars(self) -> list[tuple[str, int, str, int, int]]:
        """(name, var type id, section, offset, size) of every variable in a DATASEC."""
        out = []
        for t in self.types:
            if t.kind != "datasec":
                continue
            for v in t.vars:
                var = self.types[v.type]
                if var.kind == "var":
                    out.append((var.name, var.type, t.name, v.offset, v.size))
        return out


# -- decoding, shared by Btf and LazyBtf --------------------------------------------------
#: bytes that follow the 12-byte common header, per kind number: (fixed, per vlen entry)
_EXTRA = {1: (4, 0), 3: (12, 0), 4: (0, 12), 5: (0, 12), 6: (0, 8), 13: (0, 8), 14: (4, 0),
          15: (0, 12), 17: (4, 0), 19: (0, 12)}


def _sections(data: bytes) -> tuple[int, int, bytes]:
    """(start of types, end of types, string section) of a BTF blob."""
    if len(data) < 24:
        raise BtfError("BTF data too short")
    magic, _version, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
    if magic != 0xEB9F:
        raise BtfError("bad BTF magic (only little-endian BTF is supported)")
    type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", data, 8)
    tbase = hdr_len + type_off
    sbase = hdr_len + str_off
    if tbase + type_len > len(data) or sbase + str_len > len(data):
        raise BtfError("truncated BTF data")
    return tbase, tbase + type_len, data[sbase:sbase + str_len]


NameAt = Callable[[int], str]


def _name_reader(strings: bytes, names: dict[int, str]) -> NameAt:
    def name_at(off: int) -> str:
        got = names.get(off)
        if got is None:  # not decoded yet, or an offset into the middle of a string
            end = strings.find(b"\0", off)
            got = names[off] = strings[off:end if end >= 0 else len(strings)].decode("utf-8", "replace")
        return got
    return name_at


def _decode(data: bytes, pos: int, tid: int, name_at: NameAt) -> tuple[BtfType, int]:
    """The type record at ``pos`` and where the next one starts."""
    try:
        name_off, info, size_or_type = struct.unpack_from("<III", data, pos)
    except struct.error:
        raise BtfError("truncated BTF type section") from None
    pos += 12
    kind = KINDS.get((info >> 24) & 0x1F)
    if kind is None:
        raise BtfError(f"unknown BTF kind {(info >> 24) & 0x1F}")
    vlen = info & 0xFFFF
    kflag = info >> 31
    t = BtfType(tid, kind, name_at(name_off))
    if kind in _LISTS:
        return t, _decode_list(t, data, pos, size_or_type, vlen, kflag, name_at)
    if kind == "int":
        (enc,) = struct.unpack_from("<I", data, pos)
        pos += 4
        t.size = size_or_type
        t.int_encoding = (enc >> 24) & 0xF
        t.int_offset = (enc >> 16) & 0xFF
        t.int_bits = enc & 0xFF
    elif kind == "array":
        t.elem_type, t.index_type, t.nelems = struct.unpack_from("<III", data, pos)
        pos += 12
    elif kind == "var":
        t.type = size_or_type
        (t.linkage,) = struct.unpack_from("<I", data, pos)
        pos += 4
    elif kind == "decl_tag":
        t.type = size_or_type
        pos += 4
    elif kind == "float":
        t.size = size_or_type
    else:  # ptr, fwd, typedef, volatile, const, restrict, func, type_tag
        t.type = size_or_type
        if kind in ("fwd", "func"):
            t.linkage = kflag if kind == "fwd" else vlen  # fwd: 1 = union; func: linkage
    return t, pos


#: kinds followed by ``vlen`` entries (members, values, params, variables)
_LISTS = ("struct", "union", "enum", "enum64", "func_proto", "datasec")


def _decode_list(t: BtfType, data: bytes, pos: int, size_or_type: int, vlen: int, kflag: int,
                 name_at: NameAt) -> int:
    """The entries of a struct, union, enum, function prototype or data section."""
    kind = t.kind
    if kind == "func_proto":
        t.type = size_or_type
    else:
        t.size = size_or_type
    if kind in ("enum", "enum64"):
        t.signed = bool(kflag)
    for _ in range(vlen):
        if kind in ("struct", "union"):
            mname, mtype, moff = struct.unpack_from("<III", data, pos)
            pos += 12
            if kflag:
                t.members.append(Member(name_at(mname), mtype, moff & 0xFFFFFF, moff >> 24))
            else:
                t.members.append(Member(name_at(mname), mtype, moff))
        elif kind == "enum":
            vname, val = struct.unpack_from("<Ii", data, pos)
            pos += 8
            t.values.append((name_at(vname), val if kflag else val & 0xFFFFFFFF))
        elif kind == "enum64":
            vname, lo, hi = struct.unpack_from("<III", data, pos)
            pos += 12
            val = (hi << 32) | lo
            if kflag and val >= 1 << 63:
                val -= 1 << 64
            t.values.append((name_at(vname), val))
        elif kind == "func_proto":
            pname, ptype = struct.unpack_from("<II", data, pos)
            pos += 8
            t.params.append((name_at(pname), ptype))
        else:  # datasec
            vt, vo, vs = struct.unpack_from("<III", data, pos)
            pos += 12
            t.vars.append(VarSecinfo(vt, vo, vs))
    return pos


class LazyBtf:
    """A BTF blob indexed in one quick pass; types are decoded when asked for.

    For kernel BTF (100k+ types) where a question touches a few hundred of them: the
    CO-RE check reads several kernels, and a full :meth:`Btf.from_bytes` costs ~1 s each.
    ``types[id]``, :meth:`find_all`, :meth:`resolve` work as on :class:`Btf`.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        tbase, tend, self._strings = _sections(data)
        self._name_at = _name_reader(self._strings, {})
        offsets = [0]
        name_offs = [0]
        unpack = struct.unpack_from
        extra = _EXTRA
        pos = tbase
        while pos < tend:
            try:
                name_off, info = unpack("<II", data, pos)
            except struct.error:
                raise BtfError("truncated BTF type section") from None
            offsets.append(pos)
            name_offs.append(name_off)
            fixed, per = extra.get((info >> 24) & 0x1F, (0, 0))
            pos += 12 + fixed + per * (info & 0xFFFF)
        if pos != tend:
            raise BtfError("truncated BTF type section")
        self._offsets = offsets
        self._name_offs = name_offs
        self._by_name_off: dict[int, list[int]] | None = None
        self._cache: dict[int, BtfType] = {0: BtfType(0, "void")}
        self.types = _LazyTypes(self)

    def __len__(self) -> int:
        return len(self._offsets)

    def get(self, tid: int) -> BtfType:
        t = self._cache.get(tid)
        if t is None:
            if not 0 < tid < len(self._offsets):
                raise BtfError(f"no BTF type {tid}")
            t, _ = _decode(self.data, self._offsets[tid], tid, self._name_at)
            self._cache[tid] = t
        return t

    def _string_offsets(self, name: str) -> list[int]:
        raw = b"\0" + name.encode() + b"\0"
        out, pos = [], self._strings.find(raw)
        while pos >= 0:
            out.append(pos + 1)
            pos = self._strings.find(raw, pos + 1)
        return out

    def find_all(self, name: str, kind: str | None = None) -> list[BtfType]:
        if self._by_name_off is None:
            idx: dict[int, list[int]] = {}
            for tid, off in enumerate(self._name_offs):
                if off:
                    idx.setdefault(off, []).append(tid)
            self._by_name_off = idx
        ids = [tid for off in self._string_offsets(name) for tid in self._by_name_off.get(off, ())]
        types = [self.get(tid) for tid in sorted(ids)]
        return [t for t in types if kind is None or t.kind == kind]

    def find(self, name: str, kind: str | None = None) -> BtfType | None:
        got = self.find_all(name, kind)
        return got[0] if got else None

    def resolve(self, type_id: int) -> BtfType:
        t = self.get(type_id)
        seen = 0
        while t.kind in MODIFIERS and seen < 64:
            t = self.get(t.type)
            seen += 1
        return t


class _LazyTypes:
    def __init__(self, btf: LazyBtf) -> None:
        self._btf = btf

    def __getitem__(self, tid: int) -> BtfType:
        return self._btf.get(tid)

    def __len__(self) -> int:
        return len(self._btf)
