"""CO-RE relocations of an eBPF object, resolved against a kernel's BTF, in Python.

The object's ``.BTF.ext`` lists one record per relocated instruction: the instruction,
a local type, an access string (``0:3:1``: array index, then member/element indexes)
and a kind (field offset, field exists, type size, enum value ...). Resolving one means
what libbpf does before loading: find the kernel types with the local type's kind and
*essential* name (``task_struct___old`` -> ``task_struct``), walk the access path by
member names (through anonymous structs and unions), check the fields are compatible,
and compute the value the instruction gets. A relocation that cannot be resolved makes
libbpf poison its instruction; the program then fails to load if the verifier can reach
it (:mod:`.check` decides that), except the ``*_exists``/``type_matches`` kinds, which
just become 0.

:func:`core_digest` is the object's identity for the btfgen cache: its relocations and
the local types they reach, independent of type numbering (clang may number the same
types differently from one build to the next).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import Any

from gadgetsmith.runtime.bpf.btf import MODIFIERS, Btf, BtfType
from gadgetsmith.runtime.bpf.elf import Elf
from gadgetsmith.runtime.errors import BtfError
from gadgetsmith.toolchain.errors import FormatError

FIELD_BYTE_OFFSET, FIELD_BYTE_SIZE, FIELD_EXISTS, FIELD_SIGNED = 0, 1, 2, 3
FIELD_LSHIFT_U64, FIELD_RSHIFT_U64 = 4, 5
TYPE_ID_LOCAL, TYPE_ID_TARGET, TYPE_EXISTS, TYPE_SIZE = 6, 7, 8, 9
ENUMVAL_EXISTS, ENUMVAL_VALUE, TYPE_MATCHES = 10, 11, 12

KIND_NAMES = {
    0: "field offset", 1: "field size", 2: "field exists", 3: "field signedness",
    4: "field lshift", 5: "field rshift", 6: "local type id", 7: "target type id",
    8: "type exists", 9: "type size", 10: "enum value exists", 11: "enum value",
    12: "type matches",
}
FIELD_KINDS = {0, 1, 2, 3, 4, 5}
TYPE_KINDS = {6, 7, 8, 9, 12}
ENUM_KINDS = {10, 11}
#: kinds that never fail: an unresolved one is 0 ("does not exist")
EXISTS_KINDS = {FIELD_EXISTS, TYPE_EXISTS, ENUMVAL_EXISTS, TYPE_MATCHES}


class CoreError(FormatError):
    """The object's CO-RE relocation data (.BTF.ext core_relo records) cannot be read."""


@dataclass(frozen=True)
class CoreRelo:
    section: str  # the program's ELF section
    insn_off: int  # byte offset of the instruction in that section
    type_id: int  # local (object) type
    access: str
    kind: int


@dataclass
class Resolution:
    relo: CoreRelo
    what: str  # "struct inode.i_mtime.tv_sec", "enum bpf_func_id::BPF_FUNC_x" ...
    ok: bool  # resolved (or an exists-kind, which never fails)
    value: int | None  # what the instruction gets (None: poisoned)
    reason: str = ""  # why not, when not ok: "no such field" ...

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.relo.kind, f"kind {self.relo.kind}")

    def message(self) -> str:
        return f"{self.what}: {self.reason}" if self.reason else self.what


@dataclass
class CoreObject:
    elf: Elf
    btf: Btf
    relos: list[CoreRelo] = field(default_factory=list)


# -- reading ---------------------------------------------------------------------------
def read_object(data: bytes) -> CoreObject:
    elf = Elf(data)
    sec = elf.section(".BTF")
    if sec is None:
        raise CoreError("the object has no .BTF section (compile with -g)")
    btf = Btf.from_bytes(sec.data)
    ext = elf.section(".BTF.ext")
    relos = _core_relos(ext.data, sec.data) if ext is not None else []
    return CoreObject(elf, btf, relos)


def _btf_string(btf_data: bytes, off: int) -> str:
    hdr_len = struct.unpack_from("<I", btf_data, 4)[0]
    str_off = struct.unpack_from("<I", btf_data, 16)[0]
    base = hdr_len + str_off + off
    end = btf_data.find(b"\0", base)
    return btf_data[base:end].decode("utf-8", "replace")


def _core_relos(ext: bytes, btf_data: bytes) -> list[CoreRelo]:
    try:
        magic, _ver, _flags, hdr_len = struct.unpack_from("<HBBI", ext, 0)
        if magic != 0xEB9F:
            raise CoreError("bad .BTF.ext magic")
        if hdr_len < 32:
            return []  # no core_relo section in this header
        core_off, core_len = struct.unpack_from("<II", ext, 24)
        pos = hdr_len + core_off
        end = pos + core_len
        if core_len == 0:
            return []
        (rec_size,) = struct.unpack_from("<I", ext, pos)
        pos += 4
        if rec_size < 16:
            raise CoreError(f"bad CO-RE record size {rec_size}")
        out: list[CoreRelo] = []
        while pos < end:
            name_off, num = struct.unpack_from("<II", ext, pos)
            pos += 8
            sec = _btf_string(btf_data, name_off)
            for _ in range(num):
                insn_off, type_id, access_off, kind = struct.unpack_from("<IIII", ext, pos)
                pos += rec_size
                out.append(CoreRelo(sec, insn_off, type_id, _btf_string(btf_data, access_off), kind))
        return out
    except struct.error:
        raise CoreError("truncated .BTF.ext section") from None


# -- helpers over either Btf or LazyBtf ------------------------------------------------
def essential_name(name: str) -> str:
    """``task_struct___old`` -> ``task_struct`` (libbpf's flavour convention: the last
    ``___`` with something other than ``_`` on both sides)."""
    for i in range(len(name) - 5, -1, -1):
        if name[i] != "_" and name[i + 1:i + 4] == "___" and name[i + 4] != "_":
            return name[:i + 1]
    return name


def _skip(btf: Any, tid: int) -> BtfType:
    """Resolve modifiers and typedefs."""
    t = btf.types[tid]
    for _ in range(64):
        if t.kind not in MODIFIERS:
            return t
        t = btf.types[t.type]
    return t


def _size(btf: Any, tid: int) -> int:
    t = _skip(btf, tid)
    for _ in range(32):
        if t.kind == "array":
            return t.nelems * _size(btf, t.elem_type)
        if t.kind == "ptr":
            return 8
        return t.size
    return 0


COMPOSITE = ("struct", "union")
ENUMS = ("enum", "enum64")


def _same_kind(a: str, b: str) -> bool:
    return a == b or (a in ENUMS and b in ENUMS)


def describe_type(btf: Any, tid: int) -> str:
    t = btf.types[tid]
    if t.kind in COMPOSITE or t.kind in ENUMS or t.kind == "fwd":
        kw = "enum" if t.kind in ENUMS else ("struct" if t.kind == "fwd" and not t.linkage else
                                              ("union" if t.kind == "fwd" else t.kind))
        return f"{kw} {t.name or '(anon)'}"
    if t.kind == "typedef":
        return t.name
    if t.kind in MODIFIERS:
        return describe_type(btf, t.type)
    if t.kind == "ptr":
        return describe_type(btf, t.type) + " *"
    if t.kind == "array":
        return f"{describe_type(btf, t.elem_type)}[{t.nelems}]"
    if t.kind == "void":
        return "void"
    return t.name or t.kind


def fields_compat(lb: Any, lid: int, tb: Any, tid: int) -> bool:
    """libbpf's rules for a field of the object vs the kernel's field of the same name."""
    for _ in range(32):
        lt, tt = _skip(lb, lid), _skip(tb, tid)
        if lt.kind in COMPOSITE and tt.kind in COMPOSITE:
            return True
        if not _same_kind(lt.kind, tt.kind):
            return False
        if lt.kind in ("ptr", "float"):
            return True
        if lt.kind in ("fwd",) or lt.kind in ENUMS:
            return not lt.name or essential_name(lt.name) == essential_name(tt.name)
        if lt.kind == "int":
            return lt.int_offset == 0 and tt.int_offset == 0
        if lt.kind == "array":
            lid, tid = lt.elem_type, tt.elem_type
            continue
        return False
    return False


def types_compat(lb: Any, lid: int, tb: Any, tid: int, depth: int = 0) -> bool:
    """libbpf's looser type compatibility (type-based relocations)."""
    if depth > 32:
        return False
    lt, tt = _skip(lb, lid), _skip(tb, tid)
    if not _same_kind(lt.kind, tt.kind):
        return False
    if lt.kind in COMPOSITE or lt.kind in ENUMS or lt.kind in ("fwd", "void", "float"):
        return True
    if lt.kind == "int":
        return lt.int_offset == 0 and tt.int_offset == 0
    if lt.kind == "ptr":
        return types_compat(lb, lt.type, tb, tt.type, depth + 1)
    if lt.kind == "array":
        return types_compat(lb, lt.elem_type, tb, tt.elem_type, depth + 1)
    if lt.kind == "func_proto":
        if len(lt.params) != len(tt.params):
            return False
        for (_n1, a), (_n2, b) in zip(lt.params, tt.params, strict=True):
            if not types_compat(lb, a, tb, b, depth + 1):
                return False
        return types_compat(lb, lt.type, tb, tt.type, depth + 1)
    return False


# -- local access specs ----------------------------------------------------------------
@dataclass
class _Step:
    container: int  # local type id of the struct/union/array being accessed
    index: int
    name: str | None  # member name; None for an array index


@dataclass
class _Spec:
    root: int
    raw: list[int]
    steps: list[_Step]  # the first is the root's array index
    final: int  # type id of the accessed field
    bit_offset: int


def _local_spec(lb: Btf, relo: CoreRelo) -> _Spec:
    try:
        raw = [int(x) for x in relo.access.split(":")]
    except ValueError:
        raise CoreError(f"bad CO-RE access string {relo.access!r}") from None
    if not raw:
        raise CoreError("empty CO-RE access string")
    if relo.kind not in FIELD_KINDS:
        return _Spec(relo.type_id, raw, [], relo.type_id, 0)
    steps = [_Step(relo.type_id, raw[0], None)]
    bit = raw[0] * _size(lb, relo.type_id) * 8
    tid = relo.type_id
    for idx in raw[1:]:
        t = _skip(lb, tid)
        if t.kind in COMPOSITE:
            if idx >= len(t.members):
                raise CoreError(f"access string {relo.access} beyond {describe_type(lb, t.id)}")
            m = t.members[idx]
            bit += m.bit_offset
            if m.name:
                steps.append(_Step(t.id, idx, m.name))
            tid = m.type
        elif t.kind == "array":
            steps.append(_Step(t.id, idx, None))
            bit += idx * _size(lb, t.elem_type) * 8
            tid = t.elem_type
        else:
            raise CoreError(f"access string {relo.access} goes into {describe_type(lb, t.id)}")
    return _Spec(relo.type_id, raw, steps, tid, bit)


def describe(lb: Btf, relo: CoreRelo) -> str:
    """``struct inode.i_mtime.tv_sec``, ``enum foo::BAR``, ``struct task_struct``."""
    root = lb.types[relo.type_id]
    base = describe_type(lb, relo.type_id)
    if relo.kind in ENUM_KINDS:
        t = _skip(lb, relo.type_id)
        try:
            idx = int(relo.access.split(":")[0])
            return f"{base}::{t.values[idx][0]}"
        except (ValueError, IndexError):
            return base
    if relo.kind not in FIELD_KINDS:
        return base
    try:
        spec = _local_spec(lb, relo)
    except CoreError:
        return f"{base} (access {relo.access})"
    out = essential_name(root.name) if root.name else base
    if root.kind in COMPOSITE:
        out = f"{'union' if root.kind == 'union' else 'struct'} {essential_name(root.name) or '(anon)'}"
    if spec.steps and spec.steps[0].index:
        out += f"[{spec.steps[0].index}]"
    for s in spec.steps[1:]:
        out += f".{s.name}" if s.name else f"[{s.index}]"
    return out


# -- resolution ------------------------------------------------------------------------
def _candidates(lb: Btf, tb: Any, tid: int) -> list[BtfType]:
    lt = lb.types[tid]
    name = essential_name(lt.name)
    out = []
    for t in tb.find_all(name):
        if _same_kind(t.kind, lt.kind):
            out.append(t)
    # flavoured kernel names are rare but legal: task_struct___x matches task_struct
    return out


def _match_member(lb: Btf, lm_name: str, lm_type: int, tb: Any, targ: int,
                  depth: int = 0) -> tuple[list[tuple[int, int]], int, bool] | None:
    """Find member ``lm_name`` in kernel composite ``targ`` (through anonymous members).
    Returns ([(container id, member index)...], member type id, compatible) or None."""
    if depth > 32:
        return None
    t = _skip(tb, targ)
    if t.kind not in COMPOSITE:
        return None
    for i, m in enumerate(t.members):
        if not m.name:
            if _skip(tb, m.type).kind in COMPOSITE:
                got = _match_member(lb, lm_name, lm_type, tb, m.type, depth + 1)
                if got is not None:
                    return [(t.id, i)] + got[0], got[1], got[2]
            continue
        if m.name == lm_name:
            return [(t.id, i)], m.type, fields_compat(lb, lm_type, tb, m.type)
    return None


@dataclass
class _FieldMatch:
    bit_offset: int
    bit_size: int  # 0: not a bitfield
    type_id: int  # kernel type of the field
    byte_size: int


def _match_field(lb: Btf, spec: _Spec, tb: Any, cand: int) -> tuple[_FieldMatch | None, str]:
    bit = spec.steps[0].index * _size(tb, cand) * 8
    tid = cand
    bitfield = 0
    last = len(spec.steps) - 1
    for i, step in enumerate(spec.steps[1:], 1):
        if step.name is not None:
            lcont = _skip(lb, step.container)
            lm = lcont.members[step.index]
            got = _match_member(lb, step.name, lm.type, tb, tid)
            if got is None:
                if i == last:
                    return None, "no such field"
                return None, f"{describe_type(tb, _skip(tb, tid).id)} has no field {step.name}"
            path, mtype, compatible = got
            if not compatible:
                return None, (f"the field's type changed ({describe_type(lb, lm.type)} in the "
                              f"object, {describe_type(tb, mtype)} in this kernel)")
            for cont, idx in path:
                m = _skip(tb, cont).members[idx]
                bit += m.bit_offset
                bitfield = m.bitfield_size
            tid = mtype
        else:
            t = _skip(tb, tid)
            if t.kind != "array":
                return None, f"{describe_type(tb, tid)} is not an array in this kernel"
            if t.nelems and step.index >= t.nelems:
                return None, f"index {step.index} beyond the kernel's {t.nelems} elements"
            bit += step.index * _size(tb, t.elem_type) * 8
            tid = t.elem_type
            bitfield = 0
    return _FieldMatch(bit, bitfield, tid, _size(tb, tid)), ""


def _field_value(kind: int, fm: _FieldMatch, tb: Any) -> int:
    if kind == FIELD_EXISTS:
        return 1
    if kind == FIELD_BYTE_OFFSET:
        if not fm.bit_size or not fm.byte_size:
            return fm.bit_offset // 8
        # a bitfield is read as its whole, aligned storage unit
        return fm.bit_offset // 8 // fm.byte_size * fm.byte_size
    if kind == FIELD_BYTE_SIZE:
        return fm.byte_size
    if kind == FIELD_SIGNED:
        t = _skip(tb, fm.type_id)
        return int(t.kind == "int" and t.is_signed or (t.kind in ENUMS and t.signed))
    size = fm.byte_size or 1
    if not fm.bit_size:
        lshift = 64 - size * 8
        rshift = 64 - size * 8
        return lshift if kind == FIELD_LSHIFT_U64 else rshift
    start = fm.bit_offset - (fm.bit_offset // 8 & ~(size - 1)) * 8
    if kind == FIELD_LSHIFT_U64:
        return 64 - (start + fm.bit_size)
    return 64 - fm.bit_size


def resolve(obj: CoreObject, relo: CoreRelo, tb: Any) -> Resolution:
    """One relocation against a kernel BTF (:class:`Btf` or :class:`LazyBtf`)."""
    lb = obj.btf
    what = describe(lb, relo)
    if relo.kind == TYPE_ID_LOCAL:
        return Resolution(relo, what, True, relo.type_id)
    exists = relo.kind in EXISTS_KINDS
    root = lb.types[relo.type_id] if relo.type_id < len(lb.types) else None
    if root is None:
        return Resolution(relo, what, False, None, "bad local type id")
    if not root.name:
        return Resolution(relo, what, False, None,
                          "relocation on an anonymous type (libbpf refuses it)")
    cands = _candidates(lb, tb, relo.type_id)
    if not cands:
        kind = describe_type(lb, relo.type_id).split(" ")[0] if root.kind in COMPOSITE + ENUMS else "type"
        return Resolution(relo, what, exists, 0 if exists else None,
                          "" if exists else f"no {kind} {essential_name(root.name)} in this kernel")
    values: set[int] = set()
    reasons: list[str] = []
    try:
        spec = _local_spec(lb, relo)
        for cand in cands:
            got = _candidate_value(obj, relo, spec, tb, cand.id)
            if isinstance(got, str):
                reasons.append(got)
            else:
                values.add(got)
    except CoreError as e:
        return Resolution(relo, what, False, None, str(e))
    if not values:
        if exists:
            return Resolution(relo, what, True, 0)
        return Resolution(relo, what, False, None, reasons[0] if reasons else "no match")
    if len(values) > 1 and relo.kind != TYPE_ID_TARGET:
        return Resolution(relo, what, False, None,
                          f"ambiguous: {len(cands)} kernel types match with different results")
    return Resolution(relo, what, True, min(values))


def _candidate_value(obj: CoreObject, relo: CoreRelo, spec: _Spec, tb: Any, cand: int) -> int | str:
    """The relocated value against kernel type ``cand``, or why that candidate does not
    match. A local enumerator index out of range raises :class:`CoreError`."""
    lb = obj.btf
    if relo.kind in FIELD_KINDS:
        fm, why = _match_field(lb, spec, tb, cand)
        if fm is None:
            return why
        if relo.kind == FIELD_BYTE_OFFSET:
            bad = _size_adjust_problem(lb, spec, tb, fm, obj, relo)
            if bad:
                return bad
        return _field_value(relo.kind, fm, tb)
    if relo.kind in ENUM_KINDS:
        lt = _skip(lb, relo.type_id)
        try:
            lname = essential_name(lt.values[spec.raw[0]][0])
        except IndexError:
            raise CoreError("bad enumerator index") from None
        ct = _skip(tb, cand)
        hit = [v for n, v in ct.values if essential_name(n) == lname]
        if not hit:
            return "no such enumerator"
        return 1 if relo.kind == ENUMVAL_EXISTS else hit[0]
    if not types_compat(lb, relo.type_id, tb, cand):
        return "the type changed"
    if relo.kind in (TYPE_EXISTS, TYPE_MATCHES):
        return 1
    if relo.kind == TYPE_SIZE:
        return _size(tb, cand)
    return cand  # TYPE_ID_TARGET


def _size_adjust_problem(lb: Btf, spec: _Spec, tb: Any, fm: _FieldMatch, obj: CoreObject,
                         relo: CoreRelo) -> str:
    """libbpf rewrites the size of a load or store of a field only between integers of the
    same signedness, or pointers; anything else whose size changed fails to load."""
    if spec.final == 0:
        return ""
    lsize = _size(lb, spec.final)
    if lsize == fm.byte_size:
        return ""
    sec = obj.elf.section(relo.section)
    if sec is None or relo.insn_off + 8 > len(sec.data):
        return ""
    cls = sec.data[relo.insn_off] & 0x07
    if cls not in (1, 2, 3):  # only LDX, ST, STX access memory with the field's size
        return ""
    lt, tt = _skip(lb, spec.final), _skip(tb, fm.type_id)
    if lt.kind == "ptr" and tt.kind == "ptr":
        return ""
    if lt.kind in ("int",) + ENUMS and tt.kind in ("int",) + ENUMS and fm.byte_size in (1, 2, 4, 8):
        return ""
    return f"the field's size changed ({lsize} bytes in the object, {fm.byte_size} in this kernel)"


# -- the cache key -----------------------------------------------------------------------
def core_digest(obj: CoreObject) -> str:
    """A digest of the relocations and of the local types they reach, numbering-independent."""
    lb = obj.btf
    canon: dict[int, int] = {}
    parts: list[str] = []

    def visit(tid: int) -> int:
        # iterative DFS in a fixed order: member order, pointee, element...; ids are the
        # order of first visit from the (sorted) roots, so clang's numbering drops out
        if tid in canon:
            return canon[tid]
        stack = [tid]
        while stack:
            cur = stack.pop()
            if cur in canon:
                continue
            canon[cur] = len(canon)
            t = lb.types[cur]
            refs = _refs(t)
            parts.append(f"{canon[cur]}:{_shallow(t)}")
            for r in reversed(refs):
                if r not in canon:
                    stack.append(r)
        return canon[tid]

    keyed = sorted(obj.relos, key=lambda r: (r.kind, r.access, _shallow(lb.types[r.type_id])
                                             if r.type_id < len(lb.types) else ""))
    roots = [visit(r.type_id) if r.type_id < len(lb.types) else -1 for r in keyed]
    # second pass: reference lists use canonical ids (all assigned now)
    edges = [f"{canon[i]}>{','.join(str(canon.get(x, -1)) for x in _refs(lb.types[i]))}"
             for i in sorted(canon, key=canon.__getitem__)]
    relo_part = [f"{r.kind}|{r.access}|{root}" for r, root in zip(keyed, roots, strict=True)]
    h = hashlib.sha256()
    for chunk in (relo_part, parts, edges):
        h.update("\n".join(chunk).encode())
        h.update(b"\0")
    return h.hexdigest()


def _refs(t: BtfType) -> list[int]:
    if t.kind in COMPOSITE:
        return [m.type for m in t.members]
    if t.kind == "array":
        return [t.elem_type, t.index_type]
    if t.kind == "func_proto":
        return [t.type] + [p for _n, p in t.params]
    if t.kind in ("ptr", "typedef", "var", "func", "decl_tag") or t.kind in MODIFIERS:
        return [t.type]
    return []


def _shallow(t: BtfType) -> str:
    """Everything about a type except the ids it refers to."""
    if t.kind in COMPOSITE:
        body = ";".join(f"{m.name}@{m.bit_offset}/{m.bitfield_size}" for m in t.members)
        return f"{t.kind} {t.name} {t.size} {{{body}}}"
    if t.kind in ENUMS:
        body = ";".join(f"{n}={v}" for n, v in t.values)
        return f"{t.kind} {t.name} {t.size} {int(t.signed)} {{{body}}}"
    if t.kind == "int":
        return f"int {t.name} {t.size} {t.int_encoding} {t.int_offset} {t.int_bits}"
    if t.kind == "array":
        return f"array {t.nelems}"
    if t.kind == "func_proto":
        return "proto " + ",".join(n for n, _ in t.params)
    return f"{t.kind} {t.name} {t.size} {t.linkage}"


def try_core_digest(data: bytes) -> str | None:
    """:func:`core_digest` of an object, or None when it cannot be read."""
    try:
        return core_digest(read_object(data))
    except (CoreError, BtfError, ValueError, IndexError, struct.error):
        return None
