"""Decode raw records into field values, generically from BTF.

A :class:`Decoder` is built once per data source from its flattened fields; it turns a
record's bytes into an ordered flat mapping ``{"proc.comm": "cat", "error_raw": 2,
"error": "ENOENT", ...}``. Derived fields for special types follow IG's naming: the source
name without ``_raw`` (e.g. ``error_raw`` -> ``error``), ``user``/``group`` next to uids
and gids, and the raw field is marked hidden for columns.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gadgetsmith.runtime.bpf.fields import (
    ENUM_SEPARATOR,
    SCALAR_CODES,
    Field,
    derived_name,
    scalar_fits,
    special_of,
)
from gadgetsmith.runtime.errors import RuntimeGadgetError
from gadgetsmith.runtime.events import formatters as fmt

if TYPE_CHECKING:
    from gadgetsmith.runtime.bpf.objmodel import DataSourceInfo

#: special type -> the formatter of its derived field
_FORMATTERS: dict[str, Callable[[Any], Any]] = {
    "gadget_errno": fmt.errno_name, "gadget_signal": fmt.signal_name,
    "gadget_syscall": fmt.syscall_name, "gadget_file_flags": fmt.file_flags,
    "gadget_file_mode": fmt.file_mode, "gadget_bytes": fmt.human_bytes,
    "gadget_duration": fmt.human_duration, "gadget_uid": fmt.user_name,
    "gadget_gid": fmt.group_name,
}
#: derived fields hidden from the default columns
_HIDDEN_DERIVED = ("gadget_uid", "gadget_gid")
#: derived fields that hold a name from a fixed set, for --filter (events/filter.NAMED_KINDS)
_NAMED = {"gadget_errno": "errno", "gadget_signal": "signal"}
#: steps that read bytes of the record (the others compute from what was read)
_READS = ("read", "string", "array", "blob")

Step = tuple[Any, ...]  # (kind, field, extra...)
#: struct codes of integers (not bool, not floats)
_INT_CODES = frozenset("bBhHiIqQ")


class _Memo(dict[Any, Any]):
    """A formatter's results by value, filled on first use (a hit is one dict lookup, a
    call costs two to four times that); bounded like :class:`_StringCache`."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        super().__init__()
        self.fn = fn

    def __missing__(self, v: Any) -> Any:
        out = self.fn(v)
        if len(self) >= 4096:
            self.clear()
        self[v] = out
        return out


#: formatters of values that repeat (few distinct ones per run): memoised per decoder
_MEMOISED = (fmt.errno_name, fmt.signal_name, fmt.syscall_name, fmt.file_flags, fmt.file_mode,
             fmt.user_name, fmt.group_name)


class _StringCache(dict[bytes, str]):
    """Raw fixed-size char array -> decoded text, filled on first use (a hit, empty
    strings included, is one dict lookup); bounded so hostile data cannot grow it."""

    def __missing__(self, raw: bytes) -> str:
        text = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
        if len(self) >= 4096:
            self.clear()
        self[raw] = text
        return text


@dataclass
class Column:
    name: str
    hidden: bool = False
    alias: str = ""
    width: int = 0
    derived: bool = False
    #: the cell's value when it is not a field of the event (ig's columns.replace: an
    #: endpoint's "addr:port" column, which JSON does not print)
    value: Callable[[dict[str, Any]], Any] | None = None
    #: left out of JSON (ig's ``json.skip`` field annotation)
    json_skip: bool = False


def decoder_for(info: DataSourceInfo) -> Decoder:
    """A new decoder of a data source of the object model (its columns are the caller's
    to change). ``RuntimeGadgetError`` naming the first problem when there is one."""
    if info.problems:
        raise RuntimeGadgetError(f"data source {info.name!r} ({info.macro}): {info.problems[0]}")
    return Decoder(info.fields, info.size, info.annotations, info.rest)


class Decoder:
    """Planned once per data source: a list of steps (read a field, derive a name ...)
    and the columns to show; :meth:`decode` runs a function generated from the steps,
    :meth:`decode_slow` interprets them (for records whose fields overlap)."""

    def __init__(self, fields: list[Field], record_size: int,
                 annotations: dict[str, dict[str, str]] | None = None,
                 rest: tuple[str, str | None] | None = None) -> None:
        """``rest``: IG's ``ebpf.rest.name``/``ebpf.rest.len`` data source annotations:
        the bytes a record has after the struct (a packet a perf event carries) are the
        field of that name, as many as the length field says (all of them without one);
        shown as hex text, like other bytes."""
        self.fields = fields
        self.size = record_size
        self.boot_offset = fmt.boot_to_realtime_offset_ns()
        self.columns: list[Column] = []
        #: gadget.yaml's annotations of each field (metrics.unit, json.skip ...)
        self.annotations: dict[str, dict[str, str]] = dict(annotations or {})
        self._mntns_field: str | None = None
        self._netns_field: str | None = None
        self._steps: list[Step] = []
        self._short_strings = _StringCache()
        #: char arrays decoded as their bytes (see keep_raw)
        self._raw: frozenset[str] = frozenset()
        self.rest = rest
        #: derived fields holding a name from a fixed set (error: "errno", sig: "signal"),
        #: so a --filter can refuse a name that does not exist
        self.value_kinds: dict[str, str] = {}
        ann = annotations or {}
        for f in fields:
            self._plan(f, ann.get(f.name, {}))
        if rest is not None:
            self._col(rest[0], ann.get(rest[0], {}), hidden=True)
        self._fast = self._compile()

    @property
    def mntns_field(self) -> str | None:
        """First field typed gadget_mntns_id (the container enrichment key)."""
        return self._mntns_field

    @property
    def netns_field(self) -> str | None:
        """First field typed gadget_netns_id (the container enrichment key of a data source
        without a mount namespace id)."""
        return self._netns_field

    # -- planning ------------------------------------------------------------------------
    def _col(self, name: str, ann: dict[str, str], hidden: bool = False, derived: bool = False,
             alias: str = "") -> None:
        if "columns.hidden" in ann:
            hidden = str(ann["columns.hidden"]).lower() == "true"
        width = 0
        try:
            width = int(ann.get("columns.width", 0))
        except (TypeError, ValueError):
            width = 0
        self.columns.append(Column(name, hidden, ann.get("columns.alias", alias), width, derived,
                                   json_skip=str(ann.get("json.skip", "")).lower() == "true"))

    def _process_child(self, f: Field) -> tuple[str, bool]:
        """(alias, hidden) for a member of ``struct gadget_process``: shown as COMM / PID /
        TID; its nested members and mntns_id hidden."""
        if not f.parent or "gadget_process" not in self._parent_types(f):
            return "", False
        return f.short_name, f.parent.count(".") >= 1 or f.short_name == "mntns_id"

    def _parent_types(self, f: Field) -> list[str]:
        """Type names of the struct directly containing ``f``."""
        for g in self.fields:
            if g.kind == "struct" and f.parent == g.name:
                return g.type_names
        return []

    def _plan(self, f: Field, ann: dict[str, str]) -> None:
        alias, hide_proc = self._process_child(f)
        if f.kind in SCALAR_CODES and scalar_fits(f):
            self._steps.append(("read", f, SCALAR_CODES[f.kind]))
            self._plan_special(f, ann, alias, hide_proc)
        elif f.kind == "enum":
            self._plan_enum(f, ann)
        elif f.kind == "string":
            self._steps.append(("string", f, f"{f.size}s"))
            self._col(f.name, ann, hidden=hide_proc or f.has_type("gadget_pcomm"), alias=alias)
        elif f.kind == "array":
            self._steps.append(("array", f, SCALAR_CODES.get(f.elem_kind, "B") * f.nelems))
            self._col(f.name, ann, hidden=True)
        elif f.kind in SCALAR_CODES or f.kind == "struct":
            self._col(f.name, ann, hidden=True)  # a scalar of another size, a struct
        else:
            self._steps.append(("blob", f, f"{f.size}s"))
            self._col(f.name, ann, hidden=True)

    def _plan_enum(self, f: Field, ann: dict[str, str]) -> None:
        """IG's enum formatter: the number, hidden from the columns, and the value's name
        as the field ``x`` of ``x_raw`` (or the one the ``ebpf.formatter.enum`` annotation
        names); a ``*_set`` enum's names joined by ``|`` (or the
        ``ebpf.formatter.bitfield.separator`` annotation). An enum field named otherwise
        is the number only."""
        self._steps.append(("read", f, SCALAR_CODES.get(f.elem_kind, "I")))
        self._col(f.name, ann, hidden=True)
        target = derived_name(f, ann)
        if target is None:
            return
        values = None if f.enum_name.endswith("_set") else {v: n for n, v in f.enum_values}
        sep = str(ann.get(ENUM_SEPARATOR) or "|")
        self._steps.append(("enum", f, target, values, sep))
        self._col(target, {}, derived=True)

    def _plan_special(self, f: Field, ann: dict[str, str], alias: str, hide_proc: bool) -> None:
        special, target = special_of(f), derived_name(f)
        if special == "gadget_timestamp":
            self._steps.append(("ts", f, target))
            self._col(f.name, ann, hidden=True)
            if target:
                self._col(target, {}, hidden=True, derived=True)
        elif special in _FORMATTERS and target:
            self._steps.append(("derive", f, target, _FORMATTERS[special]))
            if special in _NAMED:
                self.value_kinds[target] = _NAMED[special]
            self._col(f.name, ann, hidden=True)
            self._col(target, {}, hidden=special in _HIDDEN_DERIVED or hide_proc, derived=True)
        elif special in _FORMATTERS:
            self._col(f.name, ann, hidden=hide_proc, alias=alias)
        elif special == "gadget_mntns_id":
            self._mntns_field = self._mntns_field or f.name
            self._col(f.name, ann, hidden=True)
        else:
            if f.has_type("gadget_netns_id") and self._netns_field is None:
                self._netns_field = f.name
            hidden = hide_proc or f.has_type("gadget_ppid") or f.has_type("gadget_ptid")
            self._col(f.name, ann, hidden=hidden, alias=alias)

    # -- the generated decoder -----------------------------------------------------------
    def _layout(self) -> tuple[str, dict[str, tuple[int, int]]] | None:
        """One struct format reading every field in offset order, and where each field's
        values are in its result: None when fields overlap (unions) or overrun."""
        reads = sorted((st[1].offset, i) for i, st in enumerate(self._steps) if st[0] in _READS)
        parts, pos, index, n = ["<"], 0, {}, 0
        for off, i in reads:
            f, code = self._steps[i][1], self._steps[i][2]
            if off < pos:
                return None
            if off > pos:
                parts.append(f"{off - pos}x")
            parts.append(code)
            size = struct.calcsize("<" + code)
            pos = off + size
            count = len(struct.unpack("<" + code, bytes(size)))
            index[f.name] = (n, count)
            n += count
        return None if pos > self.size else ("".join(parts), index)

    def _item(self, k: int, st: Step, at: int, count: int, env: dict[str, Any]) -> list[str]:
        """The dict display items of step ``k`` (``v`` is the unpacked record)."""
        kind, f = st[0], st[1]
        key = repr(f.name)
        if kind == "read" and f.kind == "float32":
            env["_f32"] = shortest_float32
            return [f"{key}: _f32(v[{at}])"]
        if kind == "read" or (kind == "string" and f.name in self._raw):
            return [f"{key}: v[{at}]"]
        if kind == "string" and f.size <= 64:
            env["_strs"] = self._short_strings  # short strings (comm, names) repeat
            return [f"{key}: _strs[v[{at}]]"]
        if kind == "string":
            return [f"{key}: v[{at}].split(b'\\0', 1)[0].decode('utf-8', 'replace')"]
        if kind == "array":
            return [f"{key}: list(v[{at}:{at + count}])"]
        if kind == "blob" and f.name in self._raw:
            return [f"{key}: v[{at}]"]
        if kind == "blob":
            return [f"{key}: v[{at}].hex()"]
        if kind == "enum" and st[3] is None:
            env[f"_bits{k}"] = [(nm, bit) for nm, bit in f.enum_values if bit]
            env[f"_sep{k}"] = st[4]
            return [f"{st[2]!r}: _sep{k}.join(nm for nm, bit in _bits{k} if v[{at}] & bit == bit)"]
        if kind == "enum":
            env[f"_vals{k}"] = st[3]
            return [f"{st[2]!r}: _vals{k}.get(v[{at}], 'UNKNOWN')"]
        if kind == "derive" and st[3] in _MEMOISED:
            env[f"_m{k}"] = _Memo(st[3])
            return [f"{st[2]!r}: _m{k}[v[{at}]]"]
        if kind == "derive":
            env[f"_f{k}"] = st[3]
            return [f"{st[2]!r}: _f{k}(v[{at}])"]
        # ts: the raw field becomes the wall clock (w{k}, computed first)
        env["_tss"] = fmt.timestamp_string
        return [f"{key}: w{k}"] + ([f"{st[2]!r}: _tss(w{k})"] if st[2] else [])

    def _compile(self) -> Callable[[bytes], dict[str, Any]] | None:
        """One generated function per data source: a single precompiled struct unpack of
        every field, then one dict display with the derived values. None when fields
        overlap (unions): :meth:`decode_slow` then interprets the steps."""
        layout = self._layout()
        if layout is None:
            return None
        form, index = layout
        env: dict[str, Any] = {"_unpack": struct.Struct(form).unpack_from, "_self": self, "_fmt": fmt,
                               "_time": time}
        pre: list[str] = []
        items: list[str] = []
        for k, st in enumerate(self._steps):
            at, count = index.get(st[1].name, (0, 0))
            if st[0] == "ts":
                pre.append(f"w{k} = v[{at}] + _self.boot_offset if v[{at}] else "
                           "_time.clock_gettime_ns(_time.CLOCK_REALTIME)")
                key = repr(st[1].name)
                items = [it for it in items if not it.startswith(f"{key}: ")]  # its earlier read
            items += self._item(k, st, at, count, env)
        src = ["def decode(raw):",
               "    n = len(raw)",
               f"    if n < {self.size}:",
               f"        raw = raw + bytes({self.size} - n)",
               "    v = _unpack(raw)",
               *(f"    {line}" for line in pre)]
        if self.rest is None:
            src.append("    return {" + ", ".join(items) + "}")
        else:  # the record's rest, after the struct (ebpf.rest.name)
            env["_rest"] = self._rest_value
            src += ["    d = {" + ", ".join(items) + "}", f"    d[{self.rest[0]!r}] = _rest(raw, n, d)",
                    "    return d"]
        exec(compile("\n".join(src), f"<decoder {len(self.fields)} fields>", "exec"), env)
        fast: Callable[[bytes], dict[str, Any]] = env["decode"]
        return fast

    def keep_raw(self, names: Iterable[str]) -> None:
        """Decode the char arrays ``names`` as their bytes: the whole array, NULs and what
        follows them included, instead of the text up to the first NUL (and other bytes
        fields, the rest included, as bytes instead of hex text). That is what IG gives a
        WASM module that reads such a field (IG's modules split arguments at NULs); the
        WASM stage turns what the module left as bytes into text again."""
        raw_kinds = {f.name for f in self.fields if f.kind in ("string", "bytes")}
        if self.rest is not None:
            raw_kinds.add(self.rest[0])
        self._raw = frozenset(n for n in names if n in raw_kinds)
        self._fast = self._compile()

    def plan(self) -> tuple[str, dict[str, tuple[int, int]], list[Step]] | None:
        """What the generated decoder runs on: the struct format of a record, where each
        field's values are in its unpacked tuple (first index, count), and the steps in
        order. None when there is no generated decoder (overlapping fields)."""
        layout = self._layout() if self._fast is not None else None
        return None if layout is None else (layout[0], layout[1], list(self._steps))

    def field_values(self, records: list[bytes], name: str) -> list[Any]:
        """``decode(r)[name]`` of each record, read from the bytes alone when ``name`` is
        a plain integer field (the namespace id enrichment looks up)."""
        reads = [st for st in self._steps if st[1].name == name or (len(st) > 2 and st[2] == name)]
        if len(reads) != 1 or reads[0][0] != "read" or reads[0][2] not in _INT_CODES:
            return [self.decode(r)[name] for r in records]
        f = reads[0][1]
        unpack, off, end = struct.Struct("<" + reads[0][2]).unpack_from, f.offset, f.offset + f.size
        try:
            return [unpack(r, off)[0] for r in records]
        except struct.error:  # a short record: zero-padded, as decode() reads it
            return [unpack(r if len(r) >= end else r + bytes(end - len(r)), off)[0] for r in records]

    @property
    def raw_fields(self) -> frozenset[str]:
        """The fields :meth:`keep_raw` set (decoded as bytes)."""
        return self._raw

    def _rest_value(self, raw: bytes, n: int, ev: dict[str, Any]) -> bytes | str:
        """The trailing bytes of a record of ``n`` bytes (``raw``: padded to the size)."""
        assert self.rest is not None
        name, length = self.rest
        extra = max(0, n - self.size)
        if length is not None and isinstance(ev.get(length), int):
            extra = min(extra, ev[length])
        data = raw[self.size:self.size + extra]
        return data if name in self._raw else data.hex()

    # -- decoding ------------------------------------------------------------------------
    def decode(self, raw: bytes) -> dict[str, Any]:
        if self._fast is not None:
            return self._fast(raw)
        return self.decode_slow(raw)

    def decode_many(self, records: list[bytes]) -> list[dict[str, Any]]:
        """:meth:`decode` of each record, in order (one call of the generated function per
        record, nothing else)."""
        fast = self._fast
        if fast is not None:
            return list(map(fast, records))
        return [self.decode_slow(r) for r in records]

    def decode_slow(self, raw: bytes) -> dict[str, Any]:
        """The steps interpreted one by one (what the generated function does at once)."""
        n = len(raw)
        if n < self.size:
            raw = raw + bytes(self.size - n)  # short records are zero-padded
        out: dict[str, Any] = {}
        for st in self._steps:
            kind, f = st[0], st[1]
            name, off = f.name, f.offset
            if kind == "read":
                out[name] = struct.unpack_from("<" + st[2], raw, off)[0]
                if f.kind == "float32":
                    out[name] = shortest_float32(out[name])
            elif kind == "string":
                v = raw[off:off + f.size]
                out[name] = v if name in self._raw else v.split(b"\0", 1)[0].decode("utf-8", "replace")
            elif kind == "array":
                out[name] = list(struct.unpack_from("<" + st[2], raw, off))
            elif kind == "blob":
                v = raw[off:off + f.size]
                out[name] = v if name in self._raw else v.hex()
            elif kind == "enum":
                v = out[name]
                out[st[2]] = (st[4].join(n for n, bit in f.enum_values if bit and v & bit == bit)
                              if st[3] is None else st[3].get(v, "UNKNOWN"))
            elif kind == "derive":
                out[st[2]] = st[3](out[name])
            else:  # ts
                v = out[name]
                out[name] = wall = v + self.boot_offset if v else time.clock_gettime_ns(
                    time.CLOCK_REALTIME)
                if st[2]:
                    out[st[2]] = fmt.timestamp_string(wall)
        if self.rest is not None:
            out[self.rest[0]] = self._rest_value(raw, n, out)
        return out


_F32 = struct.Struct("<f")


def shortest_float32(x: float) -> float:
    """A float32 as the number of the fewest digits that is the same float32 (0.1, not
    0.10000000149011612): what ig prints for a ``float`` field."""
    if x != x:
        return x
    want = _F32.pack(x)
    for digits in range(1, 10):
        y = float(f"{x:.{digits}g}")
        try:
            if _F32.pack(y) == want:
                return y
        except OverflowError:  # rounded past the largest float32
            continue
    return x


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"proc.comm": x}`` -> ``{"proc": {"comm": x}}``."""
    root: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        node = root
        for p in parts[:-1]:
            nxt = node.get(p)
            if not isinstance(nxt, dict):
                nxt = {}
                node[p] = nxt
            node = nxt
        node[parts[-1]] = value
    return root
