"""Load YAML and keep where every key and value was (line and column, 1-based).

Validation reports ``gadget.yaml:LINE:COL: ...``, so the loader records a mark for each
path in the document. ruamel.yaml's round-trip loader keeps these marks (and comments,
which ``--update-metadata`` needs); the data handed to JSON Schema is converted to plain
dicts, lists and scalars.

Every YAML file the toolchain reads goes through here (gadget.yaml, build.yaml, policy
files: :func:`load_plain`), so all of them are parsed one way: YAML 1.2, as ``gadget
validate`` checks them and as ig's Go YAML reads gadget.yaml (``yes`` is a string, not a
boolean), duplicate keys refused, control characters and NUL bytes refused.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from gadgetsmith.toolchain.errors import UsageError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.scalarbool import ScalarBoolean

Path_ = tuple[Any, ...]

#: documents with more nodes than this are refused (alias bombs, generated junk)
MAX_NODES = 200_000


@dataclass
class Diagnostic:
    file: str
    line: int  # 1-based; 0 = no position in the file
    col: int
    severity: str  # "error" | "warning"
    message: str
    path: str = ""  # dotted YAML path, "" for the document

    def format(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return f"{where}: {self.severity}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.col,
            "severity": self.severity,
            "message": self.message,
            "path": self.path,
        }


@dataclass
class MarkedDoc:
    data: Any
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    value_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    problems: list[tuple[Path_, str]] = field(default_factory=list)
    raw: Any = None  # the ruamel round-trip document

    def mark(self, path: Path_, prefer_key: bool = False) -> tuple[int, int]:
        """Best position for ``path``: its value (or key), else the nearest ancestor's."""
        p = tuple(path)
        while True:
            first, second = (self.key_marks, self.value_marks) if prefer_key else (
                self.value_marks, self.key_marks)
            if p in first:
                return first[p]
            if p in second:
                return second[p]
            if not p:
                return (1, 1)
            p = p[:-1]


class YamlSyntaxError(UsageError):
    """A YAML file that does not parse; ``line`` and ``col`` (1-based) say where."""

    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.col = col


def dotted(path: Path_) -> str:
    return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in path).replace(".[", "[")


def _round_trip_yaml() -> YAML:
    y = YAML(typ="rt")
    y.allow_duplicate_keys = False
    return y


def syntax_error(e: Exception) -> YamlSyntaxError:
    """The position and one-line message of a ruamel parse error."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    if isinstance(e, DuplicateKeyError):
        problem = getattr(e, "problem", "") or ""
        key = problem.split('"')[1] if '"' in problem else ""
        msg = f"duplicate key {key!r}: keep only one" if key else "duplicate key"
        return YamlSyntaxError(line, col, msg)
    problem = getattr(e, "problem", None)
    context = getattr(e, "context", None)
    if problem:
        msg = f"{context}: {problem}" if context else str(problem)
    else:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return YamlSyntaxError(line, col, f"malformed YAML: {msg}")


def decode_text(data: bytes | str) -> str:
    """The text of a YAML file: UTF-8 (a BOM is dropped), no NUL or control characters."""
    if isinstance(data, str):
        text = data
    else:
        if b"\0" in data:
            off = data.index(b"\0")
            line = data.count(b"\n", 0, off) + 1
            raise YamlSyntaxError(line, off - (data.rfind(b"\n", 0, off) + 1) + 1,
                                  "not a text file (NUL byte): gadget.yaml must be UTF-8 YAML")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
            raise YamlSyntaxError(line, col, "not valid UTF-8: gadget.yaml must be UTF-8 text") from None
    for i, ch in enumerate(text):
        o = ord(ch)
        if (o < 0x20 and ch not in "\t\n\r") or 0x7F <= o <= 0x9F or 0xD800 <= o <= 0xDFFF or o in (
                0xFFFE, 0xFFFF):
            line = text.count("\n", 0, i) + 1
            col = i - (text.rfind("\n", 0, i) + 1) + 1
            raise YamlSyntaxError(line, col, f"control character U+{o:04X} is not allowed in YAML")
    return text


def load_marked(data: bytes | str) -> MarkedDoc:
    """Parse YAML keeping positions. Raises :class:`YamlSyntaxError` for unparsable input."""
    text = decode_text(data)
    y = _round_trip_yaml()
    try:
        raw = y.load(text)
    except RecursionError:
        raise YamlSyntaxError(1, 1, "document is nested too deeply") from None
    except Exception as e:  # noqa: BLE001 - ruamel raises many types for bad input
        raise syntax_error(e) from None
    doc = MarkedDoc(None, raw=raw)
    counter = [0]
    try:
        doc.data = _plain(raw, (), doc, counter, set())
    except RecursionError:
        raise YamlSyntaxError(1, 1, "document is nested too deeply") from None
    return doc


def _pos(lc_pair: Any) -> tuple[int, int] | None:
    try:
        line, col = lc_pair
        return (int(line) + 1, int(col) + 1)
    except (TypeError, ValueError):
        return None


def load_plain(data: bytes | str, origin: str) -> Any:
    """The plain data (dicts, lists, scalars) of a YAML file, parsed as validation parses
    it. Bad YAML is a :class:`~gadgetsmith.toolchain.errors.UsageError` naming
    ``origin:LINE``."""
    try:
        return load_marked(data).data
    except YamlSyntaxError as e:
        raise UsageError(f"{origin}:{e.line}: {e.message}") from None


def _plain(node: Any, path: Path_, doc: MarkedDoc, counter: list[int], active: set[int]) -> Any:
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise YamlSyntaxError(1, 1, f"document has more than {MAX_NODES} nodes")
    if isinstance(node, dict):
        if id(node) in active:
            doc.problems.append((path, "recursive alias"))
            return None
        active.add(id(node))
        out: dict[str, Any] = {}
        for k, v in node.items():
            if isinstance(k, str):
                key = k
            else:
                key = _scalar_text(k)
                doc.problems.append((path + (key,), f"key {key!r} must be a string: quote it"))
            kp = path + (key,)
            if isinstance(node, CommentedMap):
                try:
                    km = _pos(node.lc.key(k))
                    vm = _pos(node.lc.value(k))
                except (KeyError, TypeError, AttributeError):
                    km = vm = None
                if km:
                    doc.key_marks[kp] = km
                if vm:
                    doc.value_marks[kp] = vm
            out[key] = _plain(v, kp, doc, counter, active)
        active.discard(id(node))
        return out
    if isinstance(node, list):
        if id(node) in active:
            doc.problems.append((path, "recursive alias"))
            return None
        active.add(id(node))
        items = []
        for i, v in enumerate(node):
            ip = path + (i,)
            if isinstance(node, CommentedSeq):
                try:
                    m = _pos(node.lc.item(i))
                except (KeyError, TypeError, AttributeError, IndexError):
                    m = None
                if m:
                    doc.value_marks[ip] = m
            items.append(_plain(v, ip, doc, counter, active))
        active.discard(id(node))
        return items
    return _scalar(node)


def _scalar(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, (bool, ScalarBoolean)):
        return bool(v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, str):
        return str(v)
    if isinstance(v, (_dt.date, _dt.datetime)):
        return v.isoformat()
    return _scalar_text(v)


def _scalar_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_scalar_text(x) for x in v) + "]"
    try:
        return str(v)
    except Exception:  # noqa: BLE001
        return type(v).__name__
