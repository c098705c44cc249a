"""Printing events: columns, json (one object per line), jsonpretty, yaml."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from functools import partial
from json.encoder import encode_basestring_ascii
from typing import Any, Literal, TextIO

from gadgetsmith.runtime.events import yamltext
from gadgetsmith.runtime.events.decode import Column, nest

MODES = ("columns", "json", "jsonpretty", "yaml")

#: a generated JSON line writer: ``(event)`` or, spliced, ``(event, enrichment texts)``
Template = Callable[..., str]
#: a generated nest() for one set of keys
Nester = Callable[[dict[str, Any]], dict[str, Any]]


def fit_widths(widths: list[int], total: int, least: list[int]) -> list[int]:
    """Column widths for a line of ``total`` characters (columns one space apart): the
    room left goes to the last column (a path, a command line: the long values are last);
    too little room takes from the widest columns first, none narrower than ``least`` (its
    title). A line that still does not fit is as narrow as that."""
    out = list(widths)
    if not out:
        return out
    room = total - (sum(out) + len(out) - 1)
    if room >= 0:
        out[-1] += room
        return out
    while room < 0:
        i = max(range(len(out)), key=lambda k: (out[k] - least[k], k))
        if out[i] <= least[i]:
            break
        out[i] -= 1
        room += 1
    return out


def visible_columns(columns: list[Column], fields: list[str] | None) -> list[Column]:
    if fields:
        by_name = {c.name: c for c in columns}
        by_alias: dict[str, Column] = {}
        for c in columns:
            if c.alias and (c.alias not in by_alias or by_alias[c.alias].hidden):
                by_alias[c.alias] = c
        out = []
        for f in fields:
            found = by_name.get(f) or by_alias.get(f)
            if found is None:
                known = ", ".join(c.name for c in columns if not c.hidden)
                raise ValueError(f"--fields: unknown field {f!r} (visible fields: {known})")
            out.append(replace(found, hidden=False))
        return out
    return [c for c in columns if not c.hidden]


class Printer:
    def __init__(self, mode: str, columns: list[Column], fields: list[str] | None = None,
                 out: TextIO | None = None, autoflush: bool = True, prefix: str = "",
                 terminal: int | None = None) -> None:
        """``autoflush=False``: the caller flushes (e.g. whenever the reader goes idle),
        instead of one write(2) per event. ``prefix``: the start of every columns line
        (the data source's name, when a gadget prints several). ``terminal``: the width the
        columns fit in (see :func:`fit_widths`; every value is cut to its column, ``…``
        marking the cut); None: no limit, no value is cut (output to a file or a pipe)."""
        if mode not in MODES:
            raise ValueError(f"unknown output mode {mode!r}: use one of {', '.join(MODES)}")
        self.mode = mode
        self.out = out or sys.stdout
        self.cols = visible_columns(columns, fields)
        self.fields = fields
        self.autoflush = autoflush
        self.prefix = prefix
        self._nesters: dict[tuple[str, ...], Nester] = {}
        self._templates: dict[tuple[str, ...], Template | Literal[False]] = {}
        self._last_template: tuple[int, Template] | None = None
        self._spliced: dict[tuple[tuple[str, ...], tuple[str, ...]], Template | Literal[False]] = {}
        self._last_spliced: tuple[int, Template] | None = None
        #: fields JSON leaves out (json.skip)
        self._skip = frozenset(c.name for c in columns if c.json_skip) if mode in (
            "json", "jsonpretty") else frozenset()
        if mode == "json":
            self.event = self._event_json  # type: ignore[method-assign]
        self._header_done = False
        self.widths = [max(c.width or 0, len(self._title(c)), 6 if not c.width else 0)
                       for c in self.cols]
        self._cut = terminal is not None
        if terminal is not None:
            self.widths = fit_widths(self.widths, terminal - len(prefix),
                                     [len(self._title(c)) for c in self.cols])

    @staticmethod
    def _title(c: Column) -> str:
        return (c.alias or c.name).upper()

    def _select(self, ev: dict[str, Any]) -> dict[str, Any]:
        if self.fields:
            return {c.name: ev.get(c.name) if c.value is None else c.value(ev) for c in self.cols
                    if c.name not in self._skip}
        if self._skip:
            return {k: v for k, v in ev.items() if k not in self._skip}
        return ev

    def header(self, again: bool = False) -> None:
        """The columns' titles (once, unless ``again``); nothing in the other modes."""
        if self.mode == "columns" and (again or not self._header_done):
            titles = " ".join(self._title(c).ljust(w) for c, w in zip(self.cols, self.widths,
                                                                       strict=True))
            self.out.write(self.prefix + titles.rstrip() + "\n")
            self.out.flush()
            self._header_done = True

    def event(self, ev: dict[str, Any], extra: Any = None) -> None:
        """Print one event. ``extra``: an :class:`~gadgetsmith.runtime.events.enrichment.Enrichment`
        whose fields belong to the event (see ``Gadget.event_pairs``); the output is what
        printing ``ev`` with those fields merged in gives."""
        if extra is not None:
            ev.update(extra.plain)
        if self.mode == "columns":
            self.header()
            cells = []
            for c, w in zip(self.cols, self.widths, strict=True):
                v = ev.get(c.name, "") if c.value is None else c.value(ev)
                s = "" if v is None else str(v)
                if len(s) > w and self._cut:
                    s = s[: w - 1] + "…"
                cells.append(s.ljust(w))
            self.out.write(self.prefix + " ".join(cells).rstrip() + "\n")
        elif self.mode == "json":
            self.out.write(self._json(self._select(ev)))
        elif self.mode == "jsonpretty":
            self.out.write(dumps_pretty(nest(self._select(ev))) + "\n")
        else:
            self.out.write("---\n" + yamltext.dump(nest(self._select(ev))))
        if self.autoflush:
            self.out.flush()

    def events(self, events: list[dict[str, Any]], extras: list[Any] | None = None) -> None:
        """Print a stream of events; ``extras``: each one's enrichment (see :meth:`event`)."""
        if self.mode == "json" and not (self.fields or self._skip or self.autoflush):
            self.out.write(self._json_lines(events, extras))
            return
        event = self.event
        if extras is None:
            for ev in events:
                event(ev)
        else:
            for ev, extra in zip(events, extras, strict=True):
                event(ev, extra)

    def _json_lines(self, events: list[dict[str, Any]], extras: list[Any] | None) -> str:
        """The JSON lines of a batch, as :meth:`_event_json` writes them one by one: the
        last template's fast path inlined, one write per batch."""
        lines: list[str] = []
        add = lines.append
        if extras is None:
            for ev in events:
                last = self._last_template
                if last is not None and len(ev) == last[0]:
                    try:
                        add(last[1](ev))
                        continue
                    except (KeyError, TypeError):
                        pass
                add(self._json(ev))
            return "".join(lines)
        for ev, extra in zip(events, extras, strict=True):
            if extra is None:
                add(self._json(ev))
                continue
            last = self._last_spliced
            if last is not None and len(ev) == last[0]:
                try:
                    add(last[1](ev, extra.json))
                    continue
                except (KeyError, TypeError):
                    pass
            add(self._json_spliced(ev, extra))
        return "".join(lines)

    def _event_json(self, ev: dict[str, Any], extra: Any = None) -> None:
        if extra is not None:
            if self.fields:
                ev.update(extra.plain)
            else:
                self.out.write(self._json_spliced(self._select(ev), extra))
                if self.autoflush:
                    self.out.flush()
                return
        if self.fields or self._skip:
            ev = self._select(ev)
        # per event: _json()'s last-template fast path, inlined (saves a call per line)
        last = self._last_template
        if last is not None and len(ev) == last[0]:
            try:
                self.out.write(last[1](ev))
            except (KeyError, TypeError):
                self.out.write(self._json(ev))
        else:
            self.out.write(self._json(ev))
        if self.autoflush:
            self.out.flush()

    def flush(self) -> None:
        self.out.flush()

    def _json(self, ev: dict[str, Any]) -> str:
        """One JSON line, as ``dumps(nest(ev))`` would write it (ig's compact JSON), through
        a template generated once per set of keys (value types taken from the first event;
        a value of another type falls back to the json module for that event). An event
        with as many keys as the last template's, all present, has exactly its keys."""
        last = self._last_template
        if last is not None and len(ev) == last[0]:
            try:
                return last[1](ev)
            except (KeyError, TypeError):
                pass
        keys = tuple(ev)
        fn = self._templates.get(keys)
        if fn is None:
            fn = _compile_json(keys, ev)
            if len(self._templates) < 64:
                self._templates[keys] = fn
        if fn is not False:
            try:
                out = fn(ev)
                self._last_template = (len(keys), fn)
                return out
            except TypeError:
                pass
        return dumps(self._nest(ev)) + "\n"

    def _json_spliced(self, ev: dict[str, Any], extra: Any) -> str:
        """The JSON line of ``ev`` merged with ``extra.fields``, without merging: a template
        per set of keys takes each enrichment object (``"k8s"``, ``"runtime"``) as the
        pre-rendered text in ``extra.json``. Falls back to merging when the event has a
        field under one of those names."""
        last = self._last_spliced
        if last is not None and len(ev) == last[0]:
            try:
                return last[1](ev, extra.json)
            except (KeyError, TypeError):
                pass
        key = (tuple(ev), tuple(sorted(extra.json)))
        fn = self._spliced.get(key)
        if fn is None:
            fn = _compile_json(key[0], ev, key[1])
            if len(self._spliced) < 64:
                self._spliced[key] = fn
        if fn is not False:
            try:
                out = fn(ev, extra.json)
                self._last_spliced = (len(ev), fn)
                return out
            except (KeyError, TypeError):
                pass
        ev.update(extra.plain)
        return self._json(ev)

    def _nest(self, ev: dict[str, Any]) -> dict[str, Any]:
        """nest() through a function generated once per set of keys."""
        keys = tuple(ev)
        fn = self._nesters.get(keys)
        if fn is None:
            fn = _compile_nest(keys) or nest
            if len(self._nesters) < 64:
                self._nesters[keys] = fn
        return fn(ev)

    def batch(self, events: list[dict[str, Any]]) -> None:
        if self.mode in ("json", "jsonpretty"):
            arr = [nest(self._select(e)) for e in events]
            self.out.write((dumps_pretty(arr) if self.mode == "jsonpretty" else dumps(arr)) + "\n")
            self.out.flush()
            return
        for e in events:
            self.event(e)
        if self.mode == "columns" and not events:
            self.header()
        self.out.flush()


_compact = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


def go_float(v: float) -> str:
    """A float as ig (Go's encoding/json) writes it: the shortest text that reads back
    as the same number, without a fraction when it is integral (``0``, ``1500``), in
    exponent form only below 1e-6 or from 1e21 (``1e-7``, ``1.5e+21``)."""
    if type(v) is not float:
        raise TypeError(v)  # the template's type check (see _compile_json)
    text = repr(v)
    a = abs(v)
    if v != v or a == float("inf"):
        return text  # NaN/Infinity: what the json module writes (ig refuses the event)
    if a != 0 and (a < 1e-6 or a >= 1e21):  # repr has the exponent form there: 1e-07
        mant, _, exp = text.partition("e")
        return f"{mant}e-{exp[1:].lstrip('0')}" if exp[0] == "-" else text
    if "e" in text:
        text = format(Decimal(text), "f")
    return text[:-2] if text.endswith(".0") else text


def dumps_pretty(value: Any, level: int = 0) -> str:
    """``json.dumps(value, sort_keys=True, indent=2)``'s text with floats as
    :func:`go_float` writes them (ig's jsonpretty)."""
    inner, outer = "  " * (level + 1), "  " * level
    if isinstance(value, dict) and value:
        items = [f"{inner}{encode_basestring_ascii(str(k))}: {dumps_pretty(value[k], level + 1)}"
                 for k in sorted(value)]
        return "{\n" + ",\n".join(items) + f"\n{outer}}}"
    if isinstance(value, (list, tuple)) and value:
        items = [f"{inner}{dumps_pretty(v, level + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + f"\n{outer}]"
    return dumps(value)


def dumps(value: Any) -> str:
    """The JSON text of a value as every line of the JSON printer writes it, as ig does:
    compact (``{"a":1,"b":[1,2]}``), keys sorted, floats as :func:`go_float`."""
    if type(value) is float:
        return go_float(value)
    if isinstance(value, dict):
        if not any(type(v) is float or isinstance(v, (dict, list, tuple)) for v in value.values()):
            return _compact(value)
        return "{" + ",".join(f"{encode_basestring_ascii(str(k))}:{dumps(value[k])}"
                              for k in sorted(value)) + "}"
    if isinstance(value, (list, tuple)):
        if not any(type(v) is float or isinstance(v, (dict, list, tuple)) for v in value):
            return _compact(value)
        return "[" + ",".join(map(dumps, value)) + "]"
    return _compact(value)


def key_tree(keys: tuple[str, ...], tree: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Nest dotted ``keys`` into a tree whose leaves are the keys themselves (added to
    ``tree`` when given), or None when a key is both a value and a parent."""
    tree = {} if tree is None else tree
    for k in keys:
        parts = k.split(".")
        node = tree
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                return None
            node = nxt
        if parts[-1] in node:
            return None
        node[parts[-1]] = k
    return tree


def _compile_nest(keys: tuple[str, ...]) -> Nester | None:
    """A function building nest()'s result for events with exactly these keys, or None
    when a key is both a value and a parent (nest() then decides, later key wins)."""
    tree = key_tree(keys)
    if tree is None:
        return None

    def expr(node: dict[str, Any]) -> str:
        return "{" + ", ".join(
            f"{name!r}: " + (expr(v) if isinstance(v, dict) else f"ev[{v!r}]")
            for name, v in node.items()) + "}"

    env: dict[str, Any] = {}
    exec(f"def nest_fixed(ev):\n    return {expr(tree)}\n", env)
    nester: Nester = env["nest_fixed"]
    return nester


class _Spliced:
    """A top-level name whose JSON text is given to the template ready-made."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def _mapping_encoder() -> Callable[[Any], str]:
    """The JSON text of dict values (k8s.podLabels), which repeat per container: each
    object is encoded once while it stays equal to what was encoded (one memo per
    generated writer)."""
    memo: dict[int, tuple[Any, dict[str, Any], str]] = {}

    def mapping(v: Any) -> str:
        hit = memo.get(id(v))
        if hit is not None and hit[0] is v and hit[1] == v:
            return hit[2]
        text = dumps(v)
        if isinstance(v, dict):
            if len(memo) > 1024:
                memo.clear()
            memo[id(v)] = (v, dict(v), text)
        return text

    return mapping


def _name_json(name: str) -> str:
    return encode_basestring_ascii(name).replace("%", "%%")


def template_text(tree: dict[str, Any], leaf: Callable[[Any], str]) -> str:
    """The ``%`` template of the JSON object of a :func:`key_tree`: names sorted, nested
    objects inline, each leaf's text (a placeholder) from ``leaf(the leaf's value)``."""
    out = []
    for name in sorted(tree):
        v = tree[name]
        out.append(f"{_name_json(name)}:{template_text(v, leaf) if isinstance(v, dict) else leaf(v)}")
    return "{" + ",".join(out) + "}"


#: the template argument of a value of the first event's type (see _compile_json)
_BY_TYPE = {str: "_s(ev[{!r}])", int: "_i(ev[{!r}])", float: "_g(ev[{!r}])", dict: "_m(ev[{!r}])"}


def _compile_json(keys: tuple[str, ...], sample: dict[str, Any],
                  spliced: tuple[str, ...] = ()) -> Template | Literal[False]:
    """A function writing one event as a JSON line (see Printer._json), or False.
    With ``spliced`` names, the function is ``to_json(ev, texts)`` and writes
    ``texts[name]`` (ready JSON) as the value of each of those top-level names; False
    when a key of the event lives under one of them."""
    tree = key_tree(keys, {name: _Spliced(name) for name in spliced})
    if tree is None:
        return False
    args: list[str] = []

    def leaf(v: Any) -> str:
        if isinstance(v, _Spliced):
            args.append(f"_x[{v.name!r}]")
        else:  # _i, _g: TypeError for anything but an int, a float
            args.append(_BY_TYPE.get(type(sample[v]), "_d(ev[{!r}])").format(v))
        return "%s"

    template = template_text(tree, leaf) + "\n"
    env: dict[str, Any] = {"_s": encode_basestring_ascii, "_i": int.__repr__, "_d": dumps,
                           "_g": go_float, "_m": _mapping_encoder(), "_t": template}
    params = "ev, _x" if spliced else "ev"
    src = f"def to_json({params}):\n    return _t % ({', '.join(args)}{',' if len(args) == 1 else ''})\n"
    exec(src, env)
    writer: Template = env["to_json"]
    return writer


def _sort_key(name: str, ev: dict[str, Any]) -> tuple[bool, Any]:
    """Events without the field last (first when descending), then by its value."""
    return ev.get(name) is None, ev.get(name, 0)


def sort_events(events: list[dict[str, Any]], spec: str | None) -> list[dict[str, Any]]:
    if not spec:
        return events
    out = list(events)
    for key in reversed([k.strip() for k in spec.split(",") if k.strip()]):
        desc = key.startswith("-")
        name = key.lstrip("-")
        out.sort(key=partial(_sort_key, name), reverse=desc)
    return out
