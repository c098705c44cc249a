"""Printing events: columns, json (one object per line), jsonpretty, yaml."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from .decode import Column, nest

MODES = ("columns", "json", "jsonpretty", "yaml")


def visible_columns(columns: list[Column], fields: list[str] | None) -> list[Column]:
    if fields:
        by_name = {c.name: c for c in columns}
        by_alias: dict[str, Column] = {}
        for c in columns:
            if c.alias and (c.alias not in by_alias or by_alias[c.alias].hidden):
                by_alias[c.alias] = c
        out = []
        for f in fields:
            c = by_name.get(f) or by_alias.get(f)
            if c is None:
                known = ", ".join(c.name for c in columns if not c.hidden)
                raise ValueError(f"--fields: unknown field {f!r} (visible fields: {known})")
            out.append(Column(c.name, False, c.alias, c.width, c.derived))
        return out
    return [c for c in columns if not c.hidden]


class Printer:
    def __init__(self, mode: str, columns: list[Column], fields: list[str] | None = None,
                 out: TextIO | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown output mode {mode!r}: use one of {', '.join(MODES)}")
        self.mode = mode
        self.out = out or sys.stdout
        self.cols = visible_columns(columns, fields)
        self.fields = fields
        self._header_done = False
        self.widths = [max(c.width or 0, len(self._title(c)), 6 if not c.width else 0)
                       for c in self.cols]

    @staticmethod
    def _title(c: Column) -> str:
        return (c.alias or c.name).upper()

    def _select(self, ev: dict[str, Any]) -> dict[str, Any]:
        if self.fields:
            return {c.name: ev.get(c.name) for c in self.cols}
        return ev

    def header(self) -> None:
        if self.mode == "columns" and not self._header_done:
            self.out.write(" ".join(self._title(c).ljust(w) for c, w in zip(self.cols, self.widths,
                                                                             strict=True)).rstrip()
                           + "\n")
            self.out.flush()
            self._header_done = True

    def event(self, ev: dict[str, Any]) -> None:
        if self.mode == "columns":
            self.header()
            cells = []
            for c, w in zip(self.cols, self.widths, strict=True):
                v = ev.get(c.name, "")
                s = "" if v is None else str(v)
                if c.width and len(s) > c.width:
                    s = s[: c.width - 1] + "…"
                cells.append(s.ljust(w))
            self.out.write(" ".join(cells).rstrip() + "\n")
        elif self.mode == "json":
            self.out.write(json.dumps(nest(self._select(ev)), sort_keys=True) + "\n")
        elif self.mode == "jsonpretty":
            self.out.write(json.dumps(nest(self._select(ev)), sort_keys=True, indent=2) + "\n")
        else:
            import yaml

            self.out.write("---\n" + yaml.safe_dump(nest(self._select(ev)), sort_keys=True))
        self.out.flush()

    def batch(self, events: list[dict[str, Any]]) -> None:
        if self.mode in ("json", "jsonpretty"):
            arr = [nest(self._select(e)) for e in events]
            self.out.write(json.dumps(arr, sort_keys=True, indent=2 if self.mode == "jsonpretty"
                                      else None) + "\n")
            self.out.flush()
            return
        for e in events:
            self.event(e)
        if self.mode == "columns" and not events:
            self.header()


def sort_events(events: list[dict[str, Any]], spec: str | None) -> list[dict[str, Any]]:
    if not spec:
        return events
    out = list(events)
    for key in reversed([k.strip() for k in spec.split(",") if k.strip()]):
        desc = key.startswith("-")
        name = key.lstrip("-")
        out.sort(key=lambda e, n=name: (e.get(n) is None, e.get(n, 0)), reverse=desc)
    return out
