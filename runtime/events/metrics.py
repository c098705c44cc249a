"""Histograms printed as ig prints them (its otel-metrics operator with ``metrics.print``).

A data source annotated ``metrics.print: "true"`` is not printed event by event in the
columns mode: its histogram fields (arrays typed ``gadget_histogram_slot__u32``/``__u64``,
or annotated ``metrics.type: histogram``) are summed over the run, per value of the fields
annotated ``metrics.type: key``, and after every round the histograms are printed as text
(ig's ``<ds>-rendered`` data source): the metric's name (``metrics.name``, else the
field's name), then per set of keys one line per slot, slot ``i`` counting the values from
``2^(i-1)`` to ``2^i`` (``0 -> 1`` first) with the count and a bar of up to 40 stars,
under a header naming the unit (``metrics.unit``).

Counters and gauges (scalar fields typed ``gadget_counter__u32``/``__u64``,
``gadget_gauge__u32``/``__u64``, or annotated ``metrics.type: counter|gauge``, and the
data source's ``metrics.implicit-counter.name``, which counts its events) are metrics of
the same text, in field order after the implicit counter: ig's printer writes a metric's
name and renders histograms only, so a counter or a gauge is its name alone, once it has
a value (ig keeps their values for its Prometheus exporter, ``metrics.collect``).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from gadgetsmith.runtime.bpf.fields import Field

PRINT = "metrics.print"
SLOT_TYPES = ("gadget_histogram_slot__u32", "gadget_histogram_slot__u64")
SCALAR_TYPES = {"gadget_counter__u32": "counter", "gadget_counter__u64": "counter",
                "gadget_gauge__u32": "gauge", "gadget_gauge__u64": "gauge"}
IMPLICIT_COUNTER = "metrics.implicit-counter.name"
_NUMBERS = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "enum",
            "float32", "float64"}
STARS = 40
CLEAR = "\033[H\033[2J"


@dataclass
class Histogram:
    """One histogram field: its metric name, unit and slot count; counts per key."""

    name: str  # the field's
    metric: str
    unit: str
    slots: int
    counts: dict[tuple[Any, ...], list[int]] = field(default_factory=dict)

    def add(self, key: tuple[Any, ...], values: list[int]) -> None:
        if not any(values):
            return  # ig records nothing for an all-zero entry: no data point
        acc = self.counts.setdefault(key, [0] * self.slots)
        for i, v in enumerate(values[: self.slots]):
            acc[i] += v


@dataclass
class Scalar:
    """A counter or a gauge (``name`` its field, "" for the implicit counter): printed
    as its metric's name once an event had it."""

    name: str
    metric: str
    seen: bool = False

    def add(self, ev: dict[str, Any]) -> None:
        if not self.seen and (not self.name or self.name in ev):
            self.seen = True


Metric = Histogram | Scalar


def histogram_fields(fields: list[Field], annotations: dict[str, dict[str, str]]) -> list[Histogram]:
    """The histogram fields of a data source (integer arrays of the slot types, or
    annotated ``metrics.type: histogram``)."""
    return [m for m in metric_fields(fields, annotations) if isinstance(m, Histogram)]


def _scalar_kind(f: Field, kind: str) -> str:
    if f.kind not in _NUMBERS:
        return ""
    if kind in ("counter", "gauge"):
        return kind
    return "" if kind else next((v for t, v in SCALAR_TYPES.items() if f.has_type(t)), "")


def metric_fields(fields: list[Field], annotations: dict[str, dict[str, str]],
                  ds_annotations: dict[str, str] | None = None) -> list[Metric]:
    """The metrics of a data source, in ig's order: the implicit counter, then its
    histogram, counter and gauge fields as they come."""
    out: list[Metric] = []
    implicit = str((ds_annotations or {}).get(IMPLICIT_COUNTER, ""))
    if implicit:
        out.append(Scalar("", implicit))
    for f in fields:
        ann = annotations.get(f.name, {})
        kind = str(ann.get("metrics.type", ""))
        metric = str(ann.get("metrics.name") or f.name)
        if f.kind == "array" and f.elem_kind in ("uint32", "uint64"):
            if kind == "histogram" or (not kind and any(f.has_type(t) for t in SLOT_TYPES)):
                out.append(Histogram(f.name, metric, str(ann.get("metrics.unit", "")), f.nelems))
        elif _scalar_kind(f, kind):
            out.append(Scalar(f.name, metric))
    return out


def key_fields(annotations: dict[str, dict[str, str]]) -> list[str]:
    return sorted(n for n, a in annotations.items() if str(a.get("metrics.type", "")) == "key")


def render(h: Histogram, counts: list[int]) -> str:
    """One histogram's text, as ig's (the unit header, then ``start -> end : count |*|``)."""
    lines = [f"{'':8}{h.unit:<16} : count    distribution"]
    top = max(counts, default=0)
    low = 0
    for i, n in enumerate(counts):
        high = 1 << i
        stars = n * STARS // top if top else 0
        lines.append(f"{low:>10} -> {high:<10} : {n:<8} |{'*' * stars}{' ' * (STARS - stars)}|")
        low = high
    return "\n".join(lines) + "\n"


class HistogramPrinter:
    """The columns printer of a ``metrics.print`` data source (see the module's doc);
    the same calls as :class:`~gadgetsmith.runtime.events.output.Printer`'s."""

    def __init__(self, hists: list[Metric], keys: list[str], out: TextIO | None = None,
                 clear: bool = False) -> None:
        self.metrics = hists
        self.hists = [h for h in hists if isinstance(h, Histogram)]
        self.scalars = [h for h in hists if isinstance(h, Scalar)]
        self.keys = keys
        self._last = -1e9
        self._pending = False
        self.out = out or sys.stdout
        self.clear = clear  # cli.clear-screen-before, on a terminal

    #: seconds between two prints of a tracer's metrics (ig's otel-metrics-print-interval)
    interval = 1.0

    def header(self, again: bool = False) -> None:
        return None

    def flush(self) -> None:
        """Called when the reader is idle: a tracer's metrics changed since the last
        print are printed once ``interval`` has passed (what changed in the last
        interval before the run ends is not, as ig's ticker)."""
        if self._pending and time.monotonic() - self._last >= self.interval:
            self._print()
        self.out.flush()

    def _print(self) -> None:
        self._pending = False
        self._last = time.monotonic()
        text = self.text()
        if text:
            self.out.write((CLEAR if self.clear else "") + text)
            self.out.flush()

    def text(self) -> str:
        parts = []
        for h in self.metrics:
            if isinstance(h, Scalar):
                if h.seen:
                    parts.append(h.metric + "\n")
                continue
            if not h.counts:
                continue
            parts.append(h.metric + "\n")
            parts += [render(h, h.counts[k]) + "\n" for k in sorted(h.counts, key=repr)]
        return "".join(parts)

    def _add(self, events: list[dict[str, Any]]) -> None:
        for ev in events:
            key = tuple(ev.get(k) for k in self.keys)
            for h in self.hists:
                values = ev.get(h.name)
                if isinstance(values, list):
                    h.add(key, values)
            for c in self.scalars:
                c.add(ev)

    def batch(self, events: list[dict[str, Any]]) -> None:
        """A snapshot or map round: printed after it."""
        self._add(events)
        self._print()

    def events(self, events: list[dict[str, Any]], extras: list[Any] | None = None) -> None:
        """A tracer's events: printed at most once per ``interval``."""
        self._add(events)
        if time.monotonic() - self._last >= self.interval:
            self._print()
        else:
            self._pending = True


def histogram_printer(ds_annotations: dict[str, str], fields: list[Field],
                      annotations: dict[str, dict[str, str]], out: TextIO | None = None
                      ) -> HistogramPrinter | None:
    """The metrics printer of a data source annotated ``metrics.print: "true"`` that
    has metrics (histograms, counters, gauges), else None."""
    if str(ds_annotations.get(PRINT, "")).lower() != "true":
        return None
    hists = metric_fields(fields, annotations, ds_annotations)
    if not hists:
        return None
    stream = out or sys.stdout
    clear = str(ds_annotations.get("cli.clear-screen-before", "")).lower() == "true" and \
        stream.isatty()
    return HistogramPrinter(hists, key_fields(annotations), stream, clear)


__all__ = ["HistogramPrinter", "histogram_printer", "render"]
