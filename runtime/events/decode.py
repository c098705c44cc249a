"""Decode raw records into field values, generically from BTF.

A :class:`Decoder` is built once per data source from its flattened fields; it turns a
record's bytes into an ordered flat mapping ``{"proc.comm": "cat", "error_raw": 2,
"error": "ENOENT", ...}``. Derived fields for special types follow IG's naming: the source
name without ``_raw`` (e.g. ``error_raw`` -> ``error``), ``user``/``group`` next to uids
and gids, and the raw field is marked hidden for columns.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gadgetsmith.runtime.events import formatters as fmt
from gadgetsmith.runtime.events.fields import Field

_SCALAR = {
    "bool": "?", "int8": "b", "uint8": "B", "int16": "h", "uint16": "H", "int32": "i",
    "uint32": "I", "int64": "q", "uint64": "Q", "float32": "f", "float64": "d",
}


class _StringCache(dict):
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


def _derived_name(f: Field, fallback: str | None = None) -> str | None:
    if f.short_name.endswith("_raw"):
        base = f.short_name[: -len("_raw")]
    elif fallback:
        base = fallback
    else:
        return None
    return f"{f.parent}.{base}" if f.parent else base


class Decoder:
    def __init__(self, fields: list[Field], record_size: int,
                 annotations: dict[str, dict[str, str]] | None = None) -> None:
        self.fields = fields
        self.size = record_size
        self.boot_offset = fmt.boot_to_realtime_offset_ns()
        self._ops: list[Callable[[bytes, dict[str, Any]], None]] = []
        self.columns: list[Column] = []
        self._mntns_field: str | None = None
        self._netns_field: str | None = None
        # (kind, field, extra...) per op, for the compiled decoder
        self._steps: list[tuple] = []
        self._short_strings = _StringCache()
        #: char arrays decoded as their bytes (see keep_raw)
        self._raw: frozenset[str] = frozenset()
        ann = annotations or {}
        for f in fields:
            self._plan(f, ann.get(f.name, {}))
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

    def _col(self, name: str, ann: dict[str, str], hidden: bool = False, derived: bool = False,
             alias: str = "") -> None:
        if "columns.hidden" in ann:
            hidden = str(ann["columns.hidden"]).lower() == "true"
        width = 0
        try:
            width = int(ann.get("columns.width", 0))
        except (TypeError, ValueError):
            width = 0
        self.columns.append(Column(name, hidden, ann.get("columns.alias", alias), width, derived))

    def _plan(self, f: Field, ann: dict[str, str]) -> None:
        name, off = f.name, f.offset
        in_process = f.parent.split(".")[0] if f.parent else ""
        # gadget_process children show as COMM / PID / TID; the rest of proc is hidden
        proc_child = bool(f.parent) and any(
            t in ("gadget_process",) for t in self._parent_types(f))
        alias = f.short_name if proc_child else ""
        hide_proc = bool(in_process) and (f.parent.count(".") >= 1 or f.short_name in
                                          ("mntns_id",)) and proc_child
        if f.kind == "struct":
            self._col(name, ann, hidden=True)
            return
        if f.kind in _SCALAR:
            code = "<" + _SCALAR[f.kind]
            size = struct.calcsize(code)
            if f.size != size:
                self._col(name, ann, hidden=True)
                return

            def scalar(raw: bytes, out: dict[str, Any], code=code, off=off, name=name) -> None:
                out[name] = struct.unpack_from(code, raw, off)[0]

            self._ops.append(scalar)
            self._steps.append(("read", f, code[1:]))
            self._plan_special(f, ann, alias, hide_proc)
            return
        if f.kind == "enum":
            code = "<" + _SCALAR.get(f.elem_kind, "I")
            values = {v: n for n, v in f.enum_values}
            target = _derived_name(f, f.short_name + "_str") or name
            bitfield = f.enum_name.endswith("_set")

            def enum(raw: bytes, out: dict[str, Any], code=code, off=off, name=name) -> None:
                v = struct.unpack_from(code, raw, off)[0]
                out[name] = v
                if bitfield:
                    out[target] = "|".join(n for n, bit in f.enum_values if bit and v & bit == bit)
                else:
                    out[target] = values.get(v, "UNKNOWN")

            self._ops.append(enum)
            self._steps.append(("read", f, code[1:]))
            self._steps.append(("enum", f, target, values if not bitfield else None))
            self._col(name, ann, hidden=True)
            self._col(target, {}, derived=True)
            return
        if f.kind == "string":

            def string(raw: bytes, out: dict[str, Any], off=off, n=f.size, name=name) -> None:
                v = raw[off:off + n]
                out[name] = v if name in self._raw else v.split(b"\0", 1)[0].decode("utf-8", "replace")

            self._ops.append(string)
            self._steps.append(("string", f, f"{f.size}s"))
            hidden = hide_proc or f.has_type("gadget_pcomm")
            self._col(name, ann, hidden=hidden, alias=alias)
            return
        if f.kind == "array":
            code = "<" + _SCALAR.get(f.elem_kind, "B") * f.nelems

            def array(raw: bytes, out: dict[str, Any], code=code, off=off, name=name) -> None:
                out[name] = list(struct.unpack_from(code, raw, off))

            self._ops.append(array)
            self._steps.append(("array", f, code[1:]))
            self._col(name, ann, hidden=True)
            return

        def blob(raw: bytes, out: dict[str, Any], off=off, n=f.size, name=name) -> None:
            out[name] = raw[off:off + n].hex()

        self._ops.append(blob)
        self._steps.append(("blob", f, f"{f.size}s"))
        self._col(name, ann, hidden=True)

    def _parent_types(self, f: Field) -> list[str]:
        """Type names of the struct directly containing ``f``."""
        for g in self.fields:
            if g.kind == "struct" and f.parent == g.name:
                return g.type_names
        return []

    def _plan_special(self, f: Field, ann: dict[str, str], alias: str, hide_proc: bool) -> None:
        name = f.name
        t = f.type_names

        def derive(target: str | None, func: Callable[[Any], Any], hidden_derived=False) -> None:
            if not target:
                self._col(name, ann, hidden=hide_proc, alias=alias)
                return

            def op(raw: bytes, out: dict[str, Any], target=target) -> None:
                out[target] = func(out[name])

            self._ops.append(op)
            self._steps.append(("derive", f, target, func))
            self._col(name, ann, hidden=True)
            self._col(target, {}, hidden=hidden_derived or hide_proc, derived=True)

        if "gadget_timestamp" in t:
            boot = self

            def ts(raw: bytes, out: dict[str, Any]) -> None:
                v = out[name]
                wall = v + boot.boot_offset if v else fmt.time.clock_gettime_ns(
                    fmt.time.CLOCK_REALTIME)
                out[name] = wall
                target = _derived_name(f)
                if target:
                    out[target] = fmt.timestamp_string(wall)

            self._ops.append(ts)
            self._steps.append(("ts", f, _derived_name(f)))
            self._col(name, ann, hidden=True)
            target = _derived_name(f)
            if target:
                self._col(target, {}, hidden=True, derived=True)
        elif "gadget_errno" in t:
            derive(_derived_name(f), fmt.errno_name)
        elif "gadget_signal" in t:
            derive(_derived_name(f), fmt.signal_name)
        elif "gadget_syscall" in t:
            derive(_derived_name(f), fmt.syscall_name)
        elif "gadget_file_flags" in t:
            derive(_derived_name(f), fmt.file_flags)
        elif "gadget_file_mode" in t:
            derive(_derived_name(f), fmt.file_mode)
        elif "gadget_bytes" in t:
            derive(_derived_name(f), fmt.human_bytes)
        elif "gadget_duration" in t:
            derive(_derived_name(f), fmt.human_duration)
        elif "gadget_uid" in t:
            derive(_derived_name(f, "user"), fmt.user_name, hidden_derived=True)
        elif "gadget_gid" in t:
            derive(_derived_name(f, "group"), fmt.group_name, hidden_derived=True)
        elif "gadget_mntns_id" in t:
            if self._mntns_field is None:
                self._mntns_field = name
            self._col(name, ann, hidden=True)
        else:
            if "gadget_netns_id" in t and self._netns_field is None:
                self._netns_field = name
            self._col(name, ann, hidden=hide_proc or "gadget_ppid" in t or "gadget_ptid" in t,
                      alias=alias)

    def _compile(self) -> Callable[[bytes], dict[str, Any]] | None:
        """One generated function per data source: a single precompiled struct unpack of
        every field, then one dict display with the derived values. None when fields
        overlap (unions): :meth:`decode_slow` then runs the per-field operations."""
        reads = sorted(((st[1].offset, i) for i, st in enumerate(self._steps)
                        if st[0] in ("read", "string", "array", "blob")))
        fmt_parts, pos, index, n = ["<"], 0, {}, 0
        for off, i in reads:
            kind, f, code = self._steps[i][:3]
            if off < pos:
                return None
            if off > pos:
                fmt_parts.append(f"{off - pos}x")
            fmt_parts.append(code)
            pos = off + struct.calcsize("<" + code)
            count = len(struct.unpack("<" + code, bytes(struct.calcsize("<" + code))))
            index[f.name] = (n, count)
            n += count
        if pos > self.size:
            return None
        env: dict[str, Any] = {"_unpack": struct.Struct("".join(fmt_parts)).unpack_from,
                               "_self": self, "_fmt": fmt}
        pre: list[str] = []
        items: list[str] = []
        for k, st in enumerate(self._steps):
            kind, f = st[0], st[1]
            key = repr(f.name)
            at, count = index.get(f.name, (0, 0))
            if kind == "read":
                items.append(f"{key}: v[{at}]")
            elif kind == "string" and f.name in self._raw:
                items.append(f"{key}: v[{at}]")
            elif kind == "string" and f.size <= 64:
                # short strings (comm, names) repeat: decode each distinct value once
                env["_strs"] = self._short_strings
                items.append(f"{key}: _strs[v[{at}]]")
            elif kind == "string":
                items.append(f"{key}: v[{at}].split(b'\\0', 1)[0].decode('utf-8', 'replace')")
            elif kind == "array":
                items.append(f"{key}: list(v[{at}:{at + count}])")
            elif kind == "blob":
                items.append(f"{key}: v[{at}].hex()")
            elif kind == "enum":
                target, values = st[2], st[3]
                if values is None:
                    env[f"_bits{k}"] = [(nm, bit) for nm, bit in f.enum_values if bit]
                    items.append(f"{target!r}: '|'.join(nm for nm, bit in _bits{k} "
                                 f"if v[{at}] & bit == bit)")
                else:
                    env[f"_vals{k}"] = values
                    items.append(f"{target!r}: _vals{k}.get(v[{at}], 'UNKNOWN')")
            elif kind == "derive":
                env[f"_f{k}"] = st[3]
                items.append(f"{st[2]!r}: _f{k}(v[{at}])")
            elif kind == "ts":
                pre.append(f"w{k} = v[{at}] + _self.boot_offset if v[{at}] else "
                           "_fmt.time.clock_gettime_ns(_fmt.time.CLOCK_REALTIME)")
                # the raw field becomes the wall clock: replace its earlier read
                items = [it for it in items if not it.startswith(f"{key}: ")]
                items.append(f"{key}: w{k}")
                if st[2]:
                    items.append(f"{st[2]!r}: _fmt.timestamp_string(w{k})")
        src = ["def decode(raw):",
               f"    if len(raw) < {self.size}:",
               f"        raw = raw + bytes({self.size} - len(raw))",
               "    v = _unpack(raw)"]
        src += [f"    {line}" for line in pre]
        src.append("    return {" + ", ".join(items) + "}")
        exec(compile("\n".join(src), f"<decoder {len(self.fields)} fields>", "exec"), env)
        return env["decode"]

    def keep_raw(self, names: Iterable[str]) -> None:
        """Decode the char arrays ``names`` as their bytes: the whole array, NULs and what
        follows them included, instead of the text up to the first NUL. That is what IG
        gives a WASM module that reads such a field (IG's modules split arguments at
        NULs); the WASM stage turns what the module left as bytes into that text again."""
        strings = {f.name for f in self.fields if f.kind == "string"}
        self._raw = frozenset(n for n in names if n in strings)
        self._fast = self._compile()

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
        if len(raw) < self.size:
            raw = raw + bytes(self.size - len(raw))  # short records are zero-padded
        out: dict[str, Any] = {}
        for op in self._ops:
            op(raw, out)
        return out


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
