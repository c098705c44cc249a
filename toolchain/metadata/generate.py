"""Generate gadget.yaml from a compiled object, or merge what is new into an existing one.

The merge is a round trip through ruamel.yaml: every key, value and comment the author
wrote stays (also keys ig does not model, such as ``paramDefaults``, ``operator`` or
``params.custom.*.values``, which ig's own ``--update-metadata`` drops). New data
sources, fields and params are added; entries that the object no longer declares are
kept and marked with an end-of-line comment (:data:`GONE`), which a later update removes
again if they come back.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gadgetsmith.toolchain.errors import UsageError
from gadgetsmith.toolchain.fsutil import atomic_write
from gadgetsmith.toolchain.metadata.objinfo import (
    TEMPLATES,
    WELL_KNOWN_KEYS,
    DataSourceInfo,
    ObjectInfo,
    ParamInfo,
)
from gadgetsmith.toolchain.metadata.yamldoc import YamlSyntaxError, decode_text, syntax_error
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

GONE = "gadget: not in the compiled object"
TOP_ORDER = ("name", "description", "homepageURL", "documentationURL", "sourceURL",
             "annotations", "datasources", "params")
PLACEHOLDERS = {
    "description": "TODO: Fill the gadget description",
    "homepageURL": "TODO: Fill the gadget homepage URL",
    "documentationURL": "TODO: Fill the gadget documentation URL",
    "sourceURL": "TODO: Fill the gadget source code URL",
}
FIELD_DESCRIPTION = "TODO: Fill field description"
PARAM_DESCRIPTION = "TODO: Fill parameter description"


@dataclass
class MergeResult:
    text: str
    added: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    back: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.gone or self.back)


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def _cmap(*pairs: tuple[str, Any]) -> CommentedMap:
    m = CommentedMap()
    for k, v in pairs:
        m[k] = v
    return m


def _field_entry(ds: DataSourceInfo, name: str) -> CommentedMap:
    f = next(x for x in ds.fields if x.name == name)
    ann = _cmap(("description", FIELD_DESCRIPTION))
    for t in f.type_names:
        if t in TEMPLATES:
            ann["template"] = TEMPLATES[t]
            break
    return _cmap(("annotations", ann))


def _top_fields(ds: DataSourceInfo) -> list[str]:
    return [f.name for f in ds.fields if "." not in f.name]


def _ds_entry(ds: DataSourceInfo) -> CommentedMap:
    fields = _cmap()
    for n in _top_fields(ds):
        fields[n] = _field_entry(ds, n)
    return _cmap(("fields", fields))


def _param_entry(p: ParamInfo) -> CommentedMap:
    m = _cmap(("key", p.key))
    if p.default is not None:
        m["defaultValue"] = DoubleQuotedScalarString(p.default)
    m["description"] = PARAM_DESCRIPTION
    return m


def _described_params(obj: ObjectInfo) -> list[str]:
    """Params worth an entry: the well-known filter params get key and text from ig."""
    return [v for v in obj.params if v not in WELL_KNOWN_KEYS and obj.params[v].type]


def generate_doc(obj: ObjectInfo, name: str) -> CommentedMap:
    doc = _cmap(("name", name))
    for k, v in PLACEHOLDERS.items():
        doc[k] = v
    if obj.datasources:
        dss = _cmap()
        for dsname, ds in obj.datasources.items():
            dss[dsname] = _ds_entry(ds)
        doc["datasources"] = dss
    params = _described_params(obj)
    if params:
        doc["params"] = _cmap(("ebpf", _cmap(*[(v, _param_entry(obj.params[v])) for v in params])))
    return doc


def dump(doc: Any) -> str:
    buf = io.StringIO()
    _yaml().dump(doc, buf)
    return buf.getvalue()


def generate(obj: ObjectInfo, name: str) -> str:
    return dump(generate_doc(obj, name))


# ---------------------------------------------------------------------------- merge
def _mark_gone(m: Any, key: str) -> bool:
    """Add the GONE comment to ``key`` of CommentedMap ``m``. True if it was not there."""
    items = m.ca.items.get(key)
    tok = items[2] if items and len(items) > 2 else None
    if tok is not None and GONE in str(tok.value):
        return False
    if tok is not None and isinstance(tok, CommentToken):
        old = str(tok.value).strip().lstrip("#").strip()
        tok.value = f"# {GONE}; {old}\n"
        return True
    m.yaml_add_eol_comment(GONE, key)
    return True


def _without_mark(comment: str) -> str:
    return comment.strip().lstrip("#").strip().replace(GONE, "", 1).lstrip(";").strip()


def _unmark(m: Any, key: str) -> bool:
    # a mapping value also carries the key's end-of-line comment as its own start comment
    value = m.get(key)
    start = getattr(getattr(value, "ca", None), "comment", None)
    if start and start[0] is not None and GONE in str(getattr(start[0], "value", "")):
        rest = _without_mark(str(start[0].value))
        if rest:
            start[0].value = f"# {rest}\n"
        else:
            start[0] = None
    items = m.ca.items.get(key)
    tok = items[2] if items and len(items) > 2 else None
    if tok is None or GONE not in str(tok.value):
        return False
    rest = _without_mark(str(tok.value))
    if rest:
        tok.value = f"# {rest}\n"
    else:
        items[2] = None
        if not any(items):
            del m.ca.items[key]
    return True


def _insert_top(doc: Any, key: str, value: Any) -> None:
    """Insert ``key`` after the keys that precede it in ig's order."""
    want = TOP_ORDER.index(key)
    pos = 0
    for i, k in enumerate(doc.keys()):
        if k in TOP_ORDER and TOP_ORDER.index(k) < want:
            pos = i + 1
    doc.insert(pos, key, value)


def merge(existing: bytes | str, obj: ObjectInfo, name: str) -> MergeResult:
    """Merge the object's declarations into the YAML text ``existing``."""
    doc = _load_for_update(existing)
    res = MergeResult("")
    if doc is None:
        res.added.append("everything (the file was empty)")
        res.text = dump(generate_doc(obj, name))
        return res
    if "name" not in doc:
        _insert_top(doc, "name", name)
        res.added.append("name")
    for k, v in PLACEHOLDERS.items():
        if k not in doc:
            _insert_top(doc, k, v)
            res.added.append(k)
    _merge_datasources(doc, obj, res)
    _merge_params(doc, obj, res)
    res.text = dump(doc)
    return res


def _load_for_update(existing: bytes | str) -> CommentedMap | None:
    """The round-trip document of gadget.yaml (None: empty); bad YAML is refused, so a
    file that does not parse is never overwritten."""
    try:
        text = decode_text(existing)
    except YamlSyntaxError as e:
        raise UsageError(f"gadget.yaml:{e.line}:{e.col}: {e.message}") from None
    try:
        doc = _yaml().load(text)
    except Exception as e:  # noqa: BLE001 - any parse problem: report, do not overwrite
        se = syntax_error(e)
        raise UsageError(f"gadget.yaml:{se.line}:{se.col}: {se.message}; fix it before "
                         "updating") from None
    if doc is not None and not isinstance(doc, CommentedMap):
        raise UsageError("gadget.yaml must be a mapping of keys (name: ..., ...) to be updated")
    return doc


def _merge_datasources(doc: CommentedMap, obj: ObjectInfo, res: MergeResult) -> None:
    if obj.datasources and not isinstance(doc.get("datasources"), CommentedMap):
        if "datasources" in doc and doc["datasources"] not in (None, {}):
            raise UsageError("gadget.yaml: 'datasources' must be a mapping to be updated")
        if "datasources" in doc:
            doc["datasources"] = _cmap()
        else:
            _insert_top(doc, "datasources", _cmap())
    dss = doc.get("datasources")
    if not isinstance(dss, CommentedMap):
        return
    for dsname, ds in obj.datasources.items():
        if dsname not in dss:
            dss[dsname] = _ds_entry(ds)
            res.added.append(f"datasources.{dsname}")
            continue
        if _unmark(dss, dsname):
            res.back.append(f"datasources.{dsname}")
        entry = dss[dsname]
        if entry is None:
            dss[dsname] = entry = _cmap()
        if isinstance(entry, CommentedMap):
            _merge_fields(entry, dsname, ds, res)
    for dsname in list(dss.keys()):
        if dsname not in obj.datasources and _mark_gone(dss, dsname):
            res.gone.append(f"datasources.{dsname}")


def _merge_fields(entry: CommentedMap, dsname: str, ds: DataSourceInfo, res: MergeResult) -> None:
    fields = entry.get("fields")
    if fields is None:
        entry["fields"] = fields = _cmap()
    if not isinstance(fields, CommentedMap):
        return
    for fname in _top_fields(ds):
        if fname not in fields:
            fields[fname] = _field_entry(ds, fname)
            res.added.append(f"datasources.{dsname}.fields.{fname}")
    for fname in list(fields.keys()):
        if ds.knows_field(str(fname)):
            if _unmark(fields, fname):
                res.back.append(f"datasources.{dsname}.fields.{fname}")
        elif _mark_gone(fields, fname):
            res.gone.append(f"datasources.{dsname}.fields.{fname}")


def _params_section(doc: CommentedMap, wanted: list[str]) -> tuple[Any, str]:
    """The mapping the eBPF params go in (created when there are some), and its path: the
    legacy ``ebpfParams`` when that is what the file uses."""
    if "ebpfParams" in doc and isinstance(doc["ebpfParams"], CommentedMap) and \
            not isinstance(doc.get("params"), CommentedMap):
        return doc["ebpfParams"], "ebpfParams"
    params = doc.get("params")
    if not wanted:
        return (params.get("ebpf") if isinstance(params, CommentedMap) else None), "params.ebpf"
    if params is None:
        if "params" in doc:
            doc["params"] = params = _cmap()
        else:
            params = _cmap()
            _insert_top(doc, "params", params)
    if not isinstance(params, CommentedMap):
        return None, "params.ebpf"
    if params.get("ebpf") is None:
        params["ebpf"] = _cmap()
    return params["ebpf"], "params.ebpf"


def _merge_params(doc: CommentedMap, obj: ObjectInfo, res: MergeResult) -> None:
    wanted = _described_params(obj)
    section, prefix = _params_section(doc, wanted)
    if not isinstance(section, CommentedMap):
        return
    for var in wanted:
        if var not in section:
            section[var] = _param_entry(obj.params[var])
            res.added.append(f"{prefix}.{var}")
    for var in list(section.keys()):
        if var in obj.params:
            if _unmark(section, var):
                res.back.append(f"{prefix}.{var}")
        elif _mark_gone(section, var):
            res.gone.append(f"{prefix}.{var}")


def update_file(path: Path, obj: ObjectInfo, name: str) -> MergeResult:
    """Create or refresh ``path`` atomically; unchanged files are not rewritten."""
    if path.exists():
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise UsageError(f"{path}: cannot read ({e.strerror})") from None
        res = merge(raw, obj, name)
        if not res.changed:
            return res
    else:
        res = MergeResult(generate(obj, name), added=["everything (new file)"])
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    atomic_write(path, res.text.encode(), mode)
    return res
