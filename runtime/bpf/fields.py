"""Flatten a BTF struct into data-source fields, with Inspektor Gadget's naming rules.

Nested structs/unions become dotted names (``proc.comm``; an anonymous one is a member
with an empty name, ``inner..word``, as in IG), members starting with ``__``
are private and skipped, char arrays are strings, and every field remembers the type
names met on the way (``gadget_comm``, ``gadget_errno`` ...) so formatters can find it.

The names of the fields derived from special types (``error`` from ``error_raw``,
``user`` next to a uid, enum names) are decided here too (:func:`derived_name`): the
decoder names its derived fields with it, and the object model reports them to
``gadget validate`` and ``gadget metadata``, so both always agree.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from gadgetsmith.runtime.bpf.btf import Btf


@dataclass
class Field:
    name: str  # full dotted name
    offset: int
    size: int
    kind: str  # bool int8..int64 uint8..uint64 float32 float64 string bytes enum array struct
    type_names: list[str] = field(default_factory=list)
    type_id: int = 0
    parent: str = ""
    enum_values: list[tuple[str, int]] = field(default_factory=list)
    enum_name: str = ""
    elem_kind: str = ""
    nelems: int = 0

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    def sibling(self, short: str) -> str:
        """The full name of a field ``short`` beside this one (same parent)."""
        return self.name[: len(self.name) - len(self.short_name)] + short

    def has_type(self, name: str) -> bool:
        return name in self.type_names


_INT_SIZES = (1, 2, 4, 8)  # other integers (__int128) are bytes, shown as hex


def _int_kind(size: int, signed: bool) -> str:
    return f"{'int' if signed else 'uint'}{size * 8}"


def fields_for_struct(btf: Btf, struct_name: str) -> list[Field]:
    st = btf.find(struct_name, "struct") or btf.find(struct_name, "union")
    if st is None:
        raise LookupError(f"struct {struct_name} is not in the object's BTF")
    out: list[Field] = []
    _walk(btf, st.id, 0, "", out)
    return out


def _walk(btf: Btf, type_id: int, base: int, prefix: str, out: list[Field]) -> None:
    st = btf.resolve(type_id)
    for m in st.members:
        anonymous = not m.name and btf.resolve(m.type).kind in ("struct", "union")
        if not anonymous and (not m.name or m.name.startswith("__") or m.bitfield_size):
            continue
        # an anonymous struct/union member is a field with an empty name, as in IG:
        # ``inner..word`` (JSON ``{"inner": {"": {"word": ...}}}``)
        name = f"{prefix}{m.name}"
        off = base + m.offset
        t = btf.resolve(m.type)
        names = btf.type_chain(m.type)
        size = btf.size_of(m.type)
        f = Field(name, off, size, "bytes", names, m.type, prefix[:-1])
        if t.kind == "int" and t.size in _INT_SIZES:
            f.kind = "bool" if t.is_bool else _int_kind(t.size, t.is_signed)
        elif t.kind in ("enum", "enum64"):
            f.kind = "enum"
            f.enum_values = t.values
            f.enum_name = t.name
            f.elem_kind = _int_kind(t.size, t.signed)
        elif t.kind == "float" and t.size in (4, 8):
            f.kind = f"float{t.size * 8}"
        elif t.kind == "ptr":
            continue  # IG has no field for a pointer
        elif t.kind == "array":
            elem = btf.resolve(t.elem_type)
            if elem.kind == "int" and elem.size == 1 and (elem.is_char or elem.name == "char"):
                f.kind = "string"
            elif elem.kind == "int" and elem.size in _INT_SIZES:
                f.kind = "array"
                f.elem_kind = _int_kind(elem.size, elem.is_signed)
                f.nelems = t.nelems
        elif t.kind in ("struct", "union"):
            f.kind = "struct"
            out.append(f)
            _walk(btf, m.type, off, name + ".", out)
            continue
        out.append(f)


#: the struct module code of each scalar kind
SCALAR_CODES = {
    "bool": "?", "int8": "b", "uint8": "B", "int16": "h", "uint16": "H", "int32": "i",
    "uint32": "I", "int64": "q", "uint64": "Q", "float32": "f", "float64": "d",
}

#: IG's special types that change how a scalar is shown, in the order they are looked for
SPECIAL_TYPES = ("gadget_timestamp", "gadget_errno", "gadget_signal", "gadget_syscall",
                 "gadget_file_flags", "gadget_file_mode", "gadget_bytes", "gadget_duration",
                 "gadget_uid", "gadget_gid", "gadget_mntns_id")
#: the derived field's name for those without a ``_raw`` suffix to drop
_FALLBACK = {"gadget_uid": "user", "gadget_gid": "group"}


def scalar_fits(f: Field) -> bool:
    """A scalar field whose size is its kind's (other sizes are shown as raw bytes)."""
    code = SCALAR_CODES.get(f.kind)
    return code is not None and struct.calcsize("<" + code) == f.size


def special_of(f: Field) -> str | None:
    """The first of :data:`SPECIAL_TYPES` among the field's type names."""
    return next((s for s in SPECIAL_TYPES if s in f.type_names), None)


def _named(f: Field, fallback: str | None) -> str | None:
    if f.short_name.endswith("_raw"):
        base = f.short_name[: -len("_raw")]
    elif fallback:
        base = fallback
    else:
        return None
    return f.sibling(base)


#: gadget.yaml field annotation naming the text field of an enum (IG's)
ENUM_TARGET = "ebpf.formatter.enum"
#: gadget.yaml field annotation: the separator of a ``*_set`` enum's names (``|``)
ENUM_SEPARATOR = "ebpf.formatter.bitfield.separator"


def derived_name(f: Field, ann: dict[str, str] | None = None) -> str | None:
    """The field the decoder derives from ``f``, as IG names it, or None: ``error`` from
    ``error_raw`` (errno, signal, syscall, file flags and mode, bytes, duration, the
    wall-clock ``timestamp``), ``user``/``group`` next to a uid/gid without ``_raw``, an
    enum's name: the ``ebpf.formatter.enum`` annotation (in ``ann``, the field's
    annotations) or ``x`` from ``x_raw``; an enum named otherwise stays a number, as in
    IG."""
    if f.kind == "enum":
        target = (ann or {}).get(ENUM_TARGET)
        if target:
            return f.sibling(str(target))
        return _named(f, None)
    if not scalar_fits(f):
        return None
    special = special_of(f)
    if special is None or special == "gadget_mntns_id":
        return None
    return _named(f, _FALLBACK.get(special))


__all__ = ["ENUM_SEPARATOR", "ENUM_TARGET", "SCALAR_CODES", "SPECIAL_TYPES", "Field",
           "derived_name", "fields_for_struct", "scalar_fits", "special_of"]
