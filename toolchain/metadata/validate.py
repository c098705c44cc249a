"""Validate gadget.yaml: JSON Schema with line marks, then a cross-check with the object.

Schema errors come from ``schemas/gadget.schema.json``. That schema accepts keys it does
not know (so files written for newer ig versions still validate, and editors do not flag
them); here a strict copy is used in which every object with listed ``properties`` refuses
others, and those refusals are reported as warnings.

The cross-check compares the YAML with what the compiled object declares
(:mod:`.objinfo`): data sources both ways, fields (dotted names, plus the fields the
runtime derives such as ``error`` from ``error_raw``), ``params.ebpf`` against
``gadget_param_`` markers and their C types, and the maps behind tracers and map
iterators. Every message says what to change.

By default validation is as strict as ig and no stricter: what ig builds and runs is never
an error here, only a warning (ig itself checks only ``params.ebpf`` when it builds, and
at run time applies ``datasources.<ds>.fields.<name>`` to whatever field of that name
exists, ignoring the others). That covers a missing gadget.yaml, a mapping left empty
(``fields:`` is null in YAML), fields the object lacks (ig's formatters derive ``kstack``
from a kernel-stack id, ``addr``/``proto``/``endpoint`` from endpoints, the ustack
operator ``addresses``/``symbols``/``buildid``; those are known and not reported at all),
and data sources only one of gadget.yaml and the object has. ``strict=True`` (``gadget
validate --strict``) makes those errors again. Keys are matched case-insensitively where
ig's reader (viper) does: ``dataSources`` is ``datasources``.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from gadgetsmith.runtime.bpf.objmodel import PARAM_TYPES_HINT, int_range, parse_int
from gadgetsmith.runtime.errors import ParamError
from gadgetsmith.runtime.oci import mediatypes as mt
from gadgetsmith.runtime.oci.layout import Layout, LayoutError, UnknownReference, default_store_path
from gadgetsmith.runtime.oci.reference import InvalidReference
from gadgetsmith.runtime.wasm.probe import Additions, module_additions
from gadgetsmith.schemas import schema_file
from gadgetsmith.toolchain.errors import GadgetError, NotFoundError, UsageError
from gadgetsmith.toolchain.metadata import buildspec, fastschema
from gadgetsmith.toolchain.metadata.objinfo import WELL_KNOWN_KEYS as WELL_KNOWN
from gadgetsmith.toolchain.metadata.objinfo import DataSourceInfo, ObjectInfo, ParamInfo, analyze
from gadgetsmith.toolchain.metadata.yamldoc import (
    Diagnostic,
    MarkedDoc,
    YamlSyntaxError,
    dotted,
    load_marked,
)

TODO_PREFIX = "TODO"
GO_BOOL = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
           "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


@dataclass
class Report:
    file: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    source: str = ""  # what was validated: directory or image reference
    object_checked: bool = False

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        ne, nw = len(self.errors), len(self.warnings)
        return f"{ne} error{'s' * (ne != 1)}, {nw} warning{'s' * (nw != 1)}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "source": self.source,
            "valid": self.ok,
            "objectChecked": self.object_checked,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "diagnostics": [d.as_dict() for d in self.diagnostics],
        }


# ---------------------------------------------------------------------------- schema
def schema_path(name: str = "gadget") -> Path:
    return schema_file(name)


@lru_cache(maxsize=4)
def load_schema(name: str = "gadget") -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_path(name).read_text())
    return schema


def _strict(schema: Any) -> Any:
    """Copy of ``schema`` where objects with listed properties refuse unlisted ones."""
    s = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node and \
                    "patternProperties" not in node:
                node["additionalProperties"] = False
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(s)
    return s


def _tools() -> ModuleType:
    # jsonschema and fastjsonschema (~100 ms): only to report a refused document's errors,
    # or to generate the fast check once per schema (see fastschema)
    from gadgetsmith.toolchain.metadata import schematools

    return schematools


@lru_cache(maxsize=4)
def schema_validator(name: str) -> Any:
    """jsonschema's validator of the strict schema ``name`` (imported on first use)."""
    return _tools().full_validator(_strict(load_schema(name)))


@lru_cache(maxsize=4)
def fast_check(name: str) -> fastschema.Check | None:
    """The cached generated check of the strict schema ``name`` (see fastschema)."""

    def generate() -> str:
        source: str = _tools().generate(_strict(load_schema(name)))
        return source

    return fastschema.cached_check(name, schema_path(name), generate)


def schema_valid(data: Any, name: str = "gadget") -> bool:
    """Whether ``data`` has no error or warning against the strict schema ``name``, without
    importing jsonschema when the answer is yes (False: ask jsonschema which errors)."""
    check = fast_check(name)
    return check is not None and check(data)


def _describe(v: Any) -> str:
    if v is None:
        return "nothing (null)"
    if isinstance(v, bool):
        return f"a boolean ({'true' if v else 'false'})"
    if isinstance(v, int):
        return f"a number ({v})"
    if isinstance(v, float):
        return f"a number ({v:g})"
    if isinstance(v, str):
        return f"a string ({v!r})" if len(v) < 40 else "a string"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a mapping"
    return type(v).__name__


_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string",
               "integer": "an integer", "number": "a number", "boolean": "true or false",
               "null": "nothing"}


def _expected(types: Any) -> str:
    if isinstance(types, str):
        types = [types]
    words = [_TYPE_WORDS.get(t, t) for t in types if t != "null"] or ["nothing"]
    return " or ".join(words)


def _suggest(name: str, options: list[str] | set[str]) -> str:
    m = difflib.get_close_matches(str(name), sorted(options), n=1, cutoff=0.6)
    if not m:
        low = {o.lower(): o for o in options}
        if str(name).lower() in low:
            m = [low[str(name).lower()]]
    return f" (did you mean {m[0]!r}?)" if m else ""


def _where(path: tuple[Any, ...]) -> str:
    return dotted(path) if path else "the document"


def check_schema(doc: MarkedDoc, label: str, schema_name: str = "gadget",
                 strict: bool = False) -> list[Diagnostic]:
    out: list[Diagnostic] = []

    def add(path: tuple[Any, ...], severity: str, msg: str, prefer_key: bool = False) -> None:
        line, col = doc.mark(path, prefer_key)
        out.append(Diagnostic(label, line, col, severity, msg, dotted(path)))

    for path, problem in doc.problems:
        add(path, "error", f"{_where(path)}: {problem}", prefer_key=True)
    data = doc.data
    if data is None:
        if schema_name == "gadget":
            add((), "error", "gadget.yaml is empty: it needs at least 'name: <gadget name>'")
        return out
    if schema_valid(data, schema_name):
        return out
    validator = schema_validator(schema_name)
    errors = sorted(validator.iter_errors(data),
                    key=lambda e: (doc.mark(tuple(e.absolute_path)), str(e.message)))
    for e in errors:
        for path, severity, msg, prefer_key in _schema_messages(e, schema_name, data, strict):
            add(path, severity, msg, prefer_key)
    return out


#: (YAML path, severity, message, whether the key's position is the better one)
_Message = tuple[tuple[Any, ...], str, str, bool]


def _schema_messages(e: Any, schema_name: str, data: Any, strict: bool = False) -> list[_Message]:
    """One jsonschema error in words a gadget author can act on. ``strict``: what ig
    accepts is an error too (see the module docstring)."""
    path = tuple(e.absolute_path)
    kw = "propertyNames" if "propertyNames" in e.absolute_schema_path else e.validator
    where = _where(path)
    if kw == "additionalProperties":
        props = set((e.schema.get("properties") or {}).keys())
        folded = {str(k).lower() for k in props}
        return [(path + (k,), "warning",
                 f"{dotted(path + (k,))}: unknown key, ignored by ig{_suggest(k, props)}", True)
                for k in (e.instance or {})
                if k not in props and (strict or str(k).lower() not in folded)]  # viper: any case
    if kw == "type" and e.instance is None and _expects_object(e.validator_value):
        return [(path, "error" if strict else "warning",
                 f"{where}: empty (null): ig reads it as no entries; give entries or remove the key",
                 False)]
    if kw == "required":
        return [(path, "error", f"{where}: missing required key '{r}': {_required_hint(r, path)}",
                 True) for r in e.validator_value if r not in (e.instance or {})]
    if kw == "propertyNames":
        key = e.instance
        kpath = path + (key,) if isinstance(key, str) else path
        return [(kpath, "error", f"{dotted(kpath)}: {key!r} is not a valid name (letters, digits "
                 "and _, not starting with a digit; field names may be dotted)", True)]
    return [(path, "error", _value_message(e, kw, path, where, schema_name, data), False)]


def _expects_object(types: Any) -> bool:
    return bool(types == "object" or (isinstance(types, list) and "object" in types))


def _required_hint(key: str, path: tuple[Any, ...]) -> str:
    if key == "name":
        return "add 'name: <gadget name>'"
    if key == "key":
        flag = str(path[-1]).replace("_", "-") if path else "my-flag"
        return f"add 'key: <flag name>' (the flag is --<key>; e.g. key: {flag})"
    return f"add '{key}:'"


def _value_message(e: Any, kw: str, path: tuple[Any, ...], where: str, schema_name: str,
                   data: Any) -> str:
    if kw == "type":
        if not path and not isinstance(data, dict):
            what = "gadget.yaml" if schema_name == "gadget" else "build.yaml"
            return f"{what} must be a mapping of keys (name: ..., ...), not {_describe(e.instance)}"
        return f"{where}: expected {_expected(e.validator_value)}, got {_describe(e.instance)}"
    if kw == "enum":
        opts = ", ".join(str(x) for x in e.validator_value)
        return (f"{where}: {e.instance!r} is not allowed: use one of {opts}"
                f"{_suggest(str(e.instance), [str(x) for x in e.validator_value])}")
    if kw == "minLength":
        return f"{where}: must not be empty"
    if kw == "pattern":
        if schema_name == "build" and path == ("wasm",):
            return (f"wasm: {e.instance!r}: give a Go (.go), C (.c) or Rust (.rs) source or a "
                    "prebuilt .wasm module")
        return f"{where}: {e.instance!r} does not match {e.validator_value}"
    if kw in ("anyOf", "oneOf"):
        desc = e.schema.get("description") or "a valid value"
        return f"{where}: expected {desc[0].lower() + desc[1:].rstrip('.')}, got {_describe(e.instance)}"
    if kw == "minimum":
        return f"{where}: must be at least {e.validator_value}, got {e.instance}"
    return f"{where}: {e.message}"


def _todo_warnings(doc: MarkedDoc, label: str) -> list[Diagnostic]:
    out: list[Diagnostic] = []

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, path + (i,))
        elif isinstance(node, str) and node.startswith(TODO_PREFIX + ":"):
            line, col = doc.mark(path)
            out.append(Diagnostic(label, line, col, "warning",
                                  f"{dotted(path)}: still the placeholder {node!r}: fill it in",
                                  dotted(path)))

    walk(doc.data, ())
    return out


# ---------------------------------------------------------------------------- object
def _get(m: dict[str, Any], key: str) -> Any:
    """``m[key]``, the key matched case-insensitively (as ig's viper reader does)."""
    if key in m:
        return m[key]
    return next((v for k, v in m.items() if isinstance(k, str) and k.lower() == key.lower()), None)


def _key(m: dict[str, Any], key: str) -> str:
    """The spelling of ``key`` that ``m`` uses (for line marks), else ``key``."""
    if key in m:
        return key
    return next((k for k in m if isinstance(k, str) and k.lower() == key.lower()), key)


#: params the SDK's headers declare for every gadget including them (user_stack_map.h's
#: map size), as IG's do: the author does not describe them
SDK_PARAMS = {"ig_build_id_max_entries"}


def ig_derived_fields(ds: DataSourceInfo, entry: dict[str, Any]) -> set[str]:
    """Field names ig's formatters and operators add to ``ds`` that its struct lacks (``entry``:
    the data source's gadget.yaml mapping): the kernel-stack formatter's string
    (``ebpf.formatter.kstack``, else the id's name without ``_raw``), the ustack operator's
    ``addresses``/``symbols``/``buildid`` under a ``gadget_user_stack``, the endpoint
    formatters' ``addr``/``proto``/``endpoint``, and ``ebpf.rest.name``'s trailing bytes."""
    out: set[str] = set()
    fields_ann = _mapping(_get(entry, "fields"))
    for f in ds.fields:
        parent = f.name.rsplit(".", 1)[0] + "." if "." in f.name else ""
        if f.has_type("gadget_kernel_stack"):
            target = _mapping(_mapping(fields_ann.get(f.name)).get("annotations")).get(
                "ebpf.formatter.kstack")
            if isinstance(target, str) and target:
                out.add(parent + target)
            elif f.name.endswith("_raw"):
                out.add(f.name[:-4])
        if f.has_type("gadget_user_stack"):
            out |= {f"{f.name}.{sub}" for sub in ("addresses", "symbols", "buildid")}
        if f.has_type("gadget_l3endpoint_t") or f.has_type("gadget_l4endpoint_t"):
            out.add(f"{f.name}.addr")
            if f.has_type("gadget_l4endpoint_t"):
                out |= {f"{f.name}.proto", f"{f.name}.endpoint"}
    rest = _mapping(_get(entry, "annotations")).get("ebpf.rest.name")
    if isinstance(rest, str) and rest:
        out.add(rest)
    return out


def _mapping(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _as_text(value: Any) -> str:
    """A YAML value as the string ig hands to the param (booleans as Go prints them)."""
    return "true" if value is True else "false" if value is False else "" if value is None \
        else str(value)


def _value_problem(p: ParamInfo, value: Any) -> str | None:
    """Why ``value`` cannot be given to param ``p`` (None = it can)."""
    text = _as_text(value)
    t = p.type
    if t == "bool":
        if text not in GO_BOOL and text != "":
            return f"{text!r} is not a boolean: use true or false"
    elif t and t.startswith(("int", "uint")):
        if text == "":
            return None
        v = parse_int(text)
        lo, hi = int_range(t)
        if v is None:
            return f"{text!r} is not an integer"
        if not lo <= v <= hi:
            return f"{text} is out of range for {p.c_type} ({lo}..{hi})"
    elif t and t.startswith("float"):
        try:
            float(text or "0")
        except ValueError:
            return f"{text!r} is not a number"
        try:
            p.pack(text or "0")
        except ParamError:
            return f"{text} is out of range for {p.c_type} ({t})"
    elif t == "ip":
        try:
            p.pack(text)
        except ParamError:
            return f"{text!r} is not an IP address: use an IPv4 or IPv6 address"
    elif t == "string":
        if len(text.encode()) > p.size:
            return f"{text!r} is longer than {p.c_type} ({p.size} bytes)"
    return None


def _same_default(p: ParamInfo, value: Any) -> bool:
    if p.default is None:
        return True
    text = _as_text(value)
    if p.type == "bool":
        return GO_BOOL.get(text, text == "" and False) == (p.default == "true") or (
            text == "" and p.default == "false")
    if p.type and p.type.startswith(("int", "uint")):
        return (parse_int(text) if text else 0) == int(p.default)
    return True  # strings: ig shows defaultValue (char-array defaults read as empty)


def _type_matches(yaml_type: str, ptype: str | None) -> bool:
    if ptype is None:
        return True
    if yaml_type == ptype:
        return True
    if yaml_type == "int" and ptype.startswith("int"):
        return True
    if yaml_type == "uint" and ptype.startswith("uint"):
        return True
    if yaml_type in ("bytes", "string") and ptype == "string":
        return True
    return False


def check_object(doc: MarkedDoc, obj: ObjectInfo, label: str, object_label: str = "object",
                 has_wasm: bool = False, wasm: Additions | None = None,
                 strict: bool = False) -> list[Diagnostic]:
    """``wasm``: what the gadget's module adds (runtime/wasm/probe.py): its fields and data
    sources are accepted; without it (``has_wasm`` only) a field or data source the object
    lacks is a warning, as the module may add it. ``strict``: what ig accepts (see the
    module docstring) is an error too."""
    c = _ObjectCheck(doc, obj, label, object_label, has_wasm, wasm, strict)
    for p in obj.problems:
        c.add(None, "error", p)
    c.yaml_datasources()
    c.object_datasources()
    c.params()
    return c.out


class _ObjectCheck:
    """gadget.yaml against the compiled object; diagnostics collect in ``out``."""

    def __init__(self, doc: MarkedDoc, obj: ObjectInfo, label: str, object_label: str,
                 has_wasm: bool, wasm: Additions | None, strict: bool = False) -> None:
        self.doc, self.obj, self.label, self.object_label = doc, obj, label, object_label
        self.has_wasm, self.wasm, self.strict = has_wasm, wasm, strict
        #: the severity of what ig builds and runs anyway
        self.lenient = "error" if strict else "warning"
        self.known_wasm = wasm is not None and not wasm.error
        self.data: dict[str, Any] = doc.data if isinstance(doc.data, dict) else {}
        self.ds_key = _key(self.data, "datasources")
        self.yds = _mapping(_get(self.data, "datasources"))
        self.out: list[Diagnostic] = []

    def add(self, path: tuple[Any, ...] | None, severity: str, msg: str, prefer_key: bool = True) -> None:
        if path is None:
            self.out.append(Diagnostic(self.object_label, 0, 0, severity, msg))
            return
        line, col = self.doc.mark(path, prefer_key)
        self.out.append(Diagnostic(self.label, line, col, severity, msg, dotted(path)))

    # -- data sources
    def yaml_datasources(self) -> None:
        """Every data source gadget.yaml names exists in the object (or the WASM module)."""
        have = set(self.obj.datasources)
        wasm = self.wasm
        for name in self.yds:
            if name in self.obj.datasources:
                continue
            if wasm is not None and self.known_wasm and name in wasm.datasources:
                entry = _mapping(self.yds[name])
                for fname in _mapping(_get(entry, "fields")):
                    if fname not in wasm.datasources[name]:
                        self.add((self.ds_key, name, _key(entry, "fields"), fname), "warning",
                                 f"datasources.{name}.fields.{fname}: the WASM module's data source "
                                 f"{name!r} has no field {fname!r} after gadgetInit; its fields are: "
                                 f"{', '.join(wasm.datasources[name]) or 'none'}")
                continue
            declared = ", ".join(sorted(have)) or "none"
            created = (f"; the WASM module creates: {', '.join(wasm.datasources) or 'none'}"
                       if wasm is not None and self.known_wasm else "")
            maybe = self.has_wasm and not self.known_wasm
            self.add((self.ds_key, name), "warning" if maybe else self.lenient,
                     f"datasources.{name}: the object has no data source {name!r}{_suggest(name, have)}"
                     f"; it declares: {declared}{created}"
                     + (" (the WASM module may create it)" if maybe else
                        ". Rename the entry or remove it (ig ignores it)"))

    def object_datasources(self) -> None:
        """Every data source of the object is described, with fields its struct has."""
        for name, ds in self.obj.datasources.items():
            macro = ds.macro
            ypath: tuple[Any, ...] | None = (self.ds_key, name) if name in self.yds else None
            for prob in ds.problems:
                self.add(ypath, "error", f"data source {name!r} ({macro}): {prob}")
            if name not in self.yds:
                if _get(self.data, "datasources") is not None:
                    self.add((self.ds_key,), self.lenient,
                             f"datasources: data source {name!r} ({macro} in the object) is missing: add "
                             f"'{name}:' under datasources (gadget metadata generate prints it)")
                else:
                    self.add(None if not self.data else ("name",), "warning",
                             f"no 'datasources' section: data source {name!r} ({macro}) has no "
                             "description; run 'gadget build DIR --update-metadata' to add it")
                continue
            self.fields(name, ds)

    def fields(self, name: str, ds: DataSourceInfo) -> None:
        known = ds.field_names + ds.derived
        entry = _mapping(self.yds[name])
        fields_key = _key(entry, "fields")
        ig_derived = ig_derived_fields(ds, entry)
        for fname in _mapping(_get(entry, "fields")):
            if ds.knows_field(fname) or (self.wasm is not None and self.wasm.adds_field(name, fname)):
                continue
            if fname in ig_derived:
                if self.strict:
                    self.add((self.ds_key, name, fields_key, fname), "error",
                             f"datasources.{name}.fields.{fname}: ig's formatters add {fname!r} at "
                             "run time, gadgetsmith's decoder does not print it")
                continue
            structs = " and ".join(f"struct {s}" for s in ds.structs) or "the event struct"
            sev = "warning" if self.has_wasm else self.lenient
            extra = ((" nor among the fields the WASM module adds at gadgetInit" if self.known_wasm
                      else " (it may be added by the WASM module)") if self.has_wasm else "")
            top = [f for f in ds.field_names if "." not in f]
            self.add((self.ds_key, name, fields_key, fname), sev,
                     f"datasources.{name}.fields.{fname}: no field {fname!r} in {structs}{extra}"
                     f"{_suggest(fname, known)}; fields are: {', '.join(top)}")

    # -- params
    def params(self) -> None:
        sections: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        params = _mapping(_get(self.data, "params"))
        if _get(params, "ebpf") is not None:
            sections.append(((_key(self.data, "params"), _key(params, "ebpf")),
                             _mapping(_get(params, "ebpf"))))
        if "ebpfParams" in self.data:
            sections.append((("ebpfParams",), _mapping(self.data.get("ebpfParams"))))
        described: set[str] = set()
        keys: dict[str, tuple[Any, ...]] = {}
        for base, section in sections:
            for var, spec in section.items():
                path = base + (var,)
                p = self.obj.params.get(var)
                if p is None:
                    names = sorted(self.obj.params)
                    self.add(path, "error",
                             f"{dotted(path)}: the object has no GADGET_PARAM({var}){_suggest(var, names)};"
                             f" its params are: {', '.join(names) or 'none'}. Rename the entry, or add "
                             f"'const volatile ... {var}; GADGET_PARAM({var});' to the C code")
                    continue
                described.add(var)
                self.param(path, var, _mapping(spec), p, keys)
        self.undescribed_params(described, keys)

    def param(self, path: tuple[Any, ...], var: str, spec: dict[str, Any], p: ParamInfo,
              keys: dict[str, tuple[Any, ...]]) -> None:
        if not p.const_volatile or not p.in_rodata:
            self.add(path, "error",
                     f"{dotted(path)}: C variable {var} ({p.c_type}) must be a global "
                     f"'const volatile' variable so ig can set it in .rodata")
        if p.type is None:
            self.add(path, "error",
                     f"{dotted(path)}: C type {p.c_type} cannot be a param: use {PARAM_TYPES_HINT}")
        key = spec.get("key")
        if var in WELL_KNOWN and isinstance(key, str) and key != WELL_KNOWN[var]:
            self.add(path + ("key",), "warning",
                     f"{dotted(path)}.key: ig always uses the key {WELL_KNOWN[var]!r} for {var}; "
                     f"{key!r} is ignored")
            key = WELL_KNOWN[var]
        elif var in WELL_KNOWN:
            key = WELL_KNOWN[var]
        if isinstance(key, str) and key:
            if key in keys:
                self.add(path + ("key",), "error",
                         f"{dotted(path)}.key: {key!r} is already the key of {dotted(keys[key])}: "
                         "keys must be unique")
            keys[key] = path
        for tkey in ("type", "typeHint"):
            yt = spec.get(tkey)
            if isinstance(yt, str) and not _type_matches(yt, p.type):
                self.add(path + (tkey,), "error",
                         f"{dotted(path)}.{tkey}: {yt!r} does not match the C type {p.c_type} "
                         f"({p.type}): set {tkey}: {p.type}, or remove it (ig reads the "
                         "type from BTF)", prefer_key=False)
        if p.type is not None:
            self.param_values(path, var, spec, p)

    def param_values(self, path: tuple[Any, ...], var: str, spec: dict[str, Any], p: ParamInfo) -> None:
        if "defaultValue" in spec:
            dv = spec["defaultValue"]
            prob = _value_problem(p, dv)
            if prob:
                self.add(path + ("defaultValue",), "error",
                         f"{dotted(path)}.defaultValue: {prob}", prefer_key=False)
            elif not _same_default(p, dv):
                self.add(path + ("defaultValue",), "warning",
                         f"{dotted(path)}.defaultValue: {dv!r} differs from the C initial value "
                         f"{p.default} of {var}, and ig shows the C value: set defaultValue: "
                         f"\"{p.default}\" or change the initialiser", prefer_key=False)
        pv = spec.get("possibleValues")
        if isinstance(pv, list):
            for i, v in enumerate(pv):
                prob = _value_problem(p, v)
                if prob:
                    self.add(path + ("possibleValues", i), "error",
                             f"{dotted(path)}.possibleValues[{i}]: {prob}", prefer_key=False)

    def undescribed_params(self, described: set[str], keys: dict[str, tuple[Any, ...]]) -> None:
        for var, p in self.obj.params.items():
            key = p.key
            if var not in described and not p.settable:
                self.add(None, "error", f"GADGET_PARAM({var}): {p.why_not_settable()}")
            if var not in described:
                if key in keys:
                    self.add(keys[key] + ("key",), "error",
                             f"{dotted(keys[key])}.key: {key!r} is also the key of GADGET_PARAM({var}): "
                             "keys must be unique")
                if var not in WELL_KNOWN and var not in SDK_PARAMS:
                    where = ((_key(self.data, "params"),) if _get(self.data, "params") is not None
                             else None)
                    self.add(where, "warning",
                             f"GADGET_PARAM({var}) is not described under params.ebpf: its flag is "
                             f"--{key} with no description; add params.ebpf.{var} with key and description")


# ---------------------------------------------------------------------------- entry points
def validate_bytes(data: bytes | str, label: str = "gadget.yaml", obj: ObjectInfo | None = None,
                   object_label: str = "object", has_wasm: bool = False,
                   schema_name: str = "gadget", doc: MarkedDoc | None = None,
                   wasm: Additions | None = None, strict: bool = False) -> Report:
    """Validate one document (``doc``: ``data`` already parsed with :func:`load_marked`;
    ``wasm``: what the gadget's WASM module adds, see :func:`wasm_additions`).
    Never raises for bad input: problems become diagnostics."""
    report = Report(label)
    if doc is None:
        try:
            doc = load_marked(data)
        except YamlSyntaxError as e:
            report.diagnostics.append(Diagnostic(label, e.line, e.col, "error", e.message))
            return report
    report.diagnostics += check_schema(doc, label, schema_name, strict)
    if schema_name != "gadget":
        return report
    report.diagnostics += _todo_warnings(doc, label)
    if obj is not None and isinstance(doc.data, dict):
        report.object_checked = True
        report.diagnostics += check_object(doc, obj, label, object_label,
                                           has_wasm or wasm is not None, wasm, strict)
        if wasm is not None and wasm.error:
            report.diagnostics.append(Diagnostic(
                object_label, 0, 0, "warning", f"{wasm.error}: the fields and data sources the "
                "module adds are not known, so gadget.yaml entries for them are not checked"))
    report.diagnostics.sort(key=lambda d: (d.file != label, d.line, d.col))
    return report


def display_path(p: Path) -> str:
    try:
        rel = os.path.relpath(p)
    except ValueError:
        return str(p)
    return str(p) if rel.startswith("..") else rel


def validate_dir(gadget_dir: Path | str, build_file: Path | str | None = None,
                 analyze_object: Callable[[buildspec.BuildSpec], ObjectInfo] | None = None,
                 probe_wasm: Callable[[buildspec.BuildSpec, ObjectInfo], Additions] | None = None,
                 strict: bool = False) -> Report:
    """Validate a gadget directory's gadget.yaml (and build.yaml); with ``analyze_object`` (which
    compiles the program: :func:`gadgetsmith.toolchain.build.driver.compile_and_analyze`)
    also against the object, and with ``probe_wasm`` (which builds the WASM module:
    :func:`gadgetsmith.toolchain.build.driver.wasm_additions_of`) against what the module adds.
    A program that does not compile is one error diagnostic (clang's first), not a raise."""
    base = Path(gadget_dir)
    bf = Path(build_file) if build_file else base / "build.yaml"
    pre: list[Diagnostic] = []
    content = None  # the build file is read once: checked here, then parsed by buildspec
    if base.is_dir() and bf.is_file():
        try:
            content = bf.read_bytes()
        except OSError as e:
            raise UsageError(f"{bf}: cannot read ({e.strerror})") from None
        b = validate_bytes(content, display_path(bf), schema_name="build")
        pre = b.diagnostics
        if b.errors:
            r = Report(display_path(bf), pre, source=str(gadget_dir))
            return r
    spec = buildspec.load(gadget_dir, build_file, content)
    meta = spec.metadata
    obj_label = display_path(spec.ebpf_source) if spec.ebpf_source else "object"
    obj, compiled = _analyze(spec, analyze_object, obj_label)
    if meta is None:
        label = display_path(spec.gadget_dir / buildspec.DEFAULT_METADATA)
        r = Report(label, pre + compiled, source=str(gadget_dir), object_checked=obj is not None)
        r.diagnostics.append(Diagnostic(
            label, 0, 0, "error" if strict else "warning",
            "no metadata file: ig builds and runs the gadget with an empty config; create it "
            f"with 'gadget metadata generate {gadget_dir} > {label}'"))
        return r
    label = display_path(meta)
    wasm = probe_wasm(spec, obj) if probe_wasm is not None and obj is not None and spec.wasm else None
    r = validate_bytes(meta.read_bytes(), label, obj, obj_label, has_wasm=spec.wasm is not None,
                       wasm=wasm, strict=strict)
    r.diagnostics[:0] = pre + compiled
    r.source = str(gadget_dir)
    return r


def _analyze(spec: buildspec.BuildSpec,
             analyze_object: Callable[[buildspec.BuildSpec], ObjectInfo] | None,
             obj_label: str) -> tuple[ObjectInfo | None, list[Diagnostic]]:
    """The object, or no object and the compiler's first error as a diagnostic."""
    if analyze_object is None or spec.ebpf_source is None:
        return None, []
    try:
        return analyze_object(spec), []
    except GadgetError as e:  # clang refused the source: the report goes on without it
        return None, [_compile_diagnostic(e, obj_label)]


_CLANG_ERROR_RE = re.compile(r"^(?P<file>[^:\s][^:]*):(?P<line>\d+):(?P<col>\d+): "
                             r"(?:fatal )?error: (?P<msg>.*)$")


def _compile_diagnostic(e: GadgetError, obj_label: str) -> Diagnostic:
    """The first error clang printed, as a diagnostic at its file:line:col."""
    for text in (e.detail or "", e.message):
        for line in text.splitlines():
            m = _CLANG_ERROR_RE.match(line.strip())
            if m:
                return Diagnostic(m["file"], int(m["line"]), int(m["col"]), "error",
                                  f"the program does not compile: {m['msg']}")
    return Diagnostic(obj_label, 0, 0, "error", f"the program does not compile: {e.message}")


def _data_of(raw: bytes) -> Any:
    """gadget.yaml's data, None when it does not parse (validation says why)."""
    try:
        return load_marked(raw).data
    except YamlSyntaxError:
        return None


def wasm_additions(data: bytes, obj: ObjectInfo | None, metadata: Any = None) -> Additions:
    """What the WASM module ``data`` adds to ``obj``'s data sources (runs its gadgetInit;
    nothing is loaded into the kernel)."""
    return module_additions(data, obj, metadata=metadata if isinstance(metadata, dict) else None)


def image_contents(ref: str, store_path: Path | str | None,
                   arch: str = "amd64") -> tuple[bytes | None, bytes | None, bytes | None]:
    """(gadget.yaml bytes, eBPF object, WASM module) of an image in the local store."""
    layout = Layout(Path(store_path) if store_path else default_store_path())
    try:
        layout.check()
        _, desc = layout.resolve(ref)
        man_desc = layout.manifest_for_arch(desc, arch)
        manifest = layout.read_json(man_desc["digest"])
    except UnknownReference:
        raise NotFoundError(f"unknown reference {ref!r}: build or pull it first (see 'gadget list')"
                            ) from None
    except (LayoutError, InvalidReference) as e:
        raise UsageError(f"{ref}: {e}") from None
    cfg = manifest.get("config") or {}
    meta = layout.read_blob(cfg["digest"]) if cfg.get("mediaType") == mt.CONFIG else None
    ebpf = wasm = None
    for layer in manifest.get("layers") or []:
        if layer.get("mediaType") == mt.EBPF and ebpf is None:
            ebpf = layout.read_blob(layer["digest"])
        elif layer.get("mediaType") == mt.WASM and wasm is None:
            wasm = layout.read_blob(layer["digest"])
    return meta, ebpf, wasm


def validate_image(ref: str, store_path: Path | str | None = None, strict: bool = False, *,
                   arch: str = "amd64", label: str = "gadget.yaml") -> Report:
    """An image's stored gadget.yaml against the schema and the ``arch`` eBPF layer;
    diagnostics name ``label`` (the file the config came from, when it is known)."""
    meta, ebpf, wasm = image_contents(ref, store_path, arch)
    if meta is None:
        r = Report(label, source=ref)
        r.diagnostics.append(Diagnostic(label, 0, 0, "error" if strict else "warning",
                                        f"{ref} has no gadget.yaml (empty config, as ig runs it)"))
        return r
    obj_label = f"{ref} ({arch} eBPF layer)"
    obj = analyze(ebpf, obj_label) if ebpf else None
    additions = wasm_additions(wasm, obj, _data_of(meta)) if wasm is not None else None
    r = validate_bytes(meta, label, obj, obj_label, has_wasm=wasm is not None,
                       wasm=additions, strict=strict)
    r.source = ref
    return r

