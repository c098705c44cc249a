"""Printing results: human-readable tables and reports, and the -o/--output values with
their JSON/YAML printing (the stdlib only: the commands cli/entry.py starts without typer
print through it too)."""

from __future__ import annotations

import json
import sys
import time
from enum import Enum
from typing import Any

from gadgetsmith.runtime.events import yamltext


class Output(str, Enum):
    """The values of ``-o/--output``, as ig's (``columns`` is text for people)."""

    columns = "columns"
    json = "json"
    jsonpretty = "jsonpretty"
    yaml = "yaml"

    @property
    def structured(self) -> bool:
        """For programs (json, jsonpretty, yaml), not people."""
        return self is not Output.columns


def echo_err(text: str) -> None:
    """A line on stderr, flushed (what ``typer.echo(text, err=True)`` writes)."""
    print(text, file=sys.stderr, flush=True)


def print_json(data: object, output: Output = Output.jsonpretty) -> None:
    """``data`` as ``output`` says: one JSON line, indented JSON, or YAML (on stdout,
    flushed, as ``typer.echo`` writes it)."""
    if output is Output.yaml:  # (what JSON would hold: paths and dates as text)
        sys.stdout.write(yamltext.dump(json.loads(json.dumps(data, default=str))))
        sys.stdout.flush()
    elif output is Output.json:
        print(json.dumps(data, separators=(",", ":"), default=str), flush=True)
    else:
        print(json.dumps(data, indent=2, sort_keys=False, default=str), flush=True)


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(str(c)))
    line = "  ".join(h.ljust(widths[i]) for i, h in enumerate(headers)).rstrip()
    out = [line]
    for r in rows:
        out.append("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)).rstrip())
    sys.stdout.write("\n".join(out) + "\n")


def human_size(n: Any) -> str:
    """``512 B``, ``1.2 kB``, ``34.0 MB`` (decimal units, as docker prints sizes)."""
    return _size(n)


def _size(n: Any) -> str:
    try:
        n = int(n)
    except (TypeError, ValueError):
        return "?"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def print_inspect(info: dict[str, Any]) -> None:
    w = sys.stdout.write
    w(f"Reference:  {info.get('reference') or '<untagged>'}\n")
    others = [r for r in info.get("references", []) if r != info.get("reference")]
    if others:
        w(f"Also:       {', '.join(others)}\n")
    w(f"Digest:     {info['digest']}\n")
    w(f"Media type: {info.get('mediaType')}\n")
    ann = info.get("annotations") or {}
    if ann:
        w("Annotations:\n")
        for k in sorted(ann):
            w(f"  {k}: {ann[k]}\n")
    w("Manifests:\n")
    for m in info.get("manifests", []):
        plat = m.get("platform") or {}
        w(f"  {plat.get('os', '?')}/{plat.get('architecture', '?')}  {m['digest']}\n")
        cfg = m.get("config") or {}
        w(f"    config  {cfg.get('mediaType')}  {_size(cfg.get('size'))}\n")
        for layer in m.get("layers", []):
            w(f"    layer   {layer['kind']:<7} {layer['digest'][:19]}  {_size(layer['size'])}\n")
    ds = info.get("datasources") or []
    if ds:
        w("Data sources:\n")
        for d in ds:
            names = ", ".join(f["name"] for f in d["fields"])
            w(f"  {d['name']}" + (f": {names}" if names else "") + "\n")
    params = info.get("params") or []
    if params:  # as gadget run takes them: --failed, --comm cat
        w("Params (gadget run IMAGE --KEY VALUE):\n")
        rows = [[f"--{p['key']}", p.get("type") or "", p["default"] or '""', p["description"]]
                for p in params]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for k, t, d, desc in rows:
            w(f"  {k:<{widths[0]}}  {t:<{widths[1]}}  default {d:<{widths[2]}}  {desc}".rstrip()
              + "\n")


def size_text(n: int) -> str:
    """``982.5 kB``, ``4.1 MB`` (decimal units, one decimal)."""
    return f"{n / 1000:.1f} kB" if n < 1_000_000 else f"{n / 1e6:.1f} MB"


class KernelProgress:
    """One self-rewriting line on stderr: ``btfgen [#####.....] 12/340 debian/12/...``.
    Callable as ``progress(done, total, item)``; ``close()`` erases the line."""

    def __init__(self, label: str, width: int = 24) -> None:
        self.label = label
        self.width = width
        self.shown = False
        self._last = 0.0

    def __call__(self, done: int, total: int, item: Any) -> None:
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        name = getattr(item, "key", None) or str(item)
        fill = self.width * done // max(total, 1)
        line = f"{self.label} [{'#' * fill}{'.' * (self.width - fill)}] {done}/{total} {name}"
        sys.stderr.write("\r\x1b[K" + line[:200])
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.shown = False


def btfgen_line(s: dict[str, Any]) -> str:
    """``5 kernels (amd64 3, arm64 2), 38.0 kB of BTF in 7.1 kB of layers, 5 cached, 0.06 s``"""
    per = ", ".join(f"{a} {n}" for a, n in s["kernels"].items())
    total = sum(s["kernels"].values())
    return (f"{total} kernel{'s' if total != 1 else ''} ({per}), {size_text(s['btfBytes'])} of "
            f"BTF in {size_text(sum(s['layerSizes'].values()))} of layers, {s['cached']} cached, "
            f"{s['seconds']:.2f} s on {s['jobs']} job{'s' if s['jobs'] != 1 else ''}")
