"""output: the end of the pipeline in ``gadget run``, a printer per data source."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from gadgetsmith.runtime.bpf.objmodel import datasource_annotations
from gadgetsmith.runtime.events.enrichment import EMPTY
from gadgetsmith.runtime.events.jsonline import Writer, records_writer
from gadgetsmith.runtime.events.metrics import HistogramPrinter, histogram_printer
from gadgetsmith.runtime.events.output import Printer
from gadgetsmith.runtime.pipeline.context import DataSource
from gadgetsmith.runtime.pipeline.stage import Batch


def terminal_width(out: TextIO) -> int | None:
    """The width columns fit in when ``out`` is a terminal: ``COLUMNS`` when set (as shells
    and ``ls`` use it), else the terminal's own. None for a file or a pipe, whatever
    ``COLUMNS`` says: what a script reads is never cut (a parent that imported GNU
    readline exports ``COLUMNS=80`` to every child, terminal or not)."""
    try:
        if not out.isatty():
            return None
        env = os.environ.get("COLUMNS", "")
        cols = int(env) if env.isdigit() else os.get_terminal_size(out.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return None
    return cols if cols > 0 else None  # a new pty says 0x0: no width known


def fields_by_datasource(text: str | None) -> dict[str, list[str]]:
    """``--fields``: ``f1,f2`` (key ``""``: every data source) or, as ig takes it, per
    data source ``ds1:f1,f2;ds2:f3``."""
    out: dict[str, list[str]] = {}
    for part in (text.split(";") if text else []):
        name, sep, rest = part.partition(":")
        key, names = (name.strip(), rest) if sep else ("", part)
        out[key] = [f.strip() for f in names.split(",")]
    return out


class Output:
    """The consumer ``gadget run`` gives ``Gadget.run``: a :class:`Printer` per data
    source, each batch to its data source's printer.

    ``fields`` (see :func:`fields_by_datasource`) that do not fit a data source are a
    ValueError with one data source; with several, that data source is not printed and
    ``on_warning`` says so (as ig does). Columns of a gadget with several data sources
    start with the data source's name, and each one's header is printed once, before the
    first event (:meth:`start`, for tracers; with the first snapshot otherwise). JSON
    lines carry no data source name (as ig's). Snapshots and map-iterator rounds are
    printed whole (one JSON array each). In the columns mode, a data source annotated
    ``metrics.print: "true"`` (gadget.yaml, in ``metadata``) with histogram fields is
    printed as ig prints it: its histograms as text after every round
    (:mod:`~gadgetsmith.runtime.events.metrics`)."""

    def __init__(self, mode: str, datasources: list[DataSource], fields: str | None = None,
                 out: TextIO | None = None, on_warning: Callable[[str], None] | None = None,
                 metadata: dict[str, Any] | None = None, direct: bool = True) -> None:
        """``direct``: JSON lines of batches no stage looked at are written from their
        records (:mod:`~gadgetsmith.runtime.events.jsonline`; the same text)."""
        self.mode = mode
        self.direct = direct and mode == "json"
        self._writers: dict[tuple[str, bool], Writer | None] = {}
        self.out = out or sys.stdout
        wanted = fields_by_datasource(fields)
        names = [ds.name for ds in datasources]
        for name in wanted:
            if name and name not in names:
                raise ValueError(f"--fields: no data source {name!r} (this gadget has "
                                 f"{', '.join(names)})")
        width = max(len(n) for n in names) + 2  # "name:" and a space
        self.printers: dict[str, Printer | HistogramPrinter] = {}
        errors: list[tuple[str, ValueError]] = []
        for ds in datasources:
            hist = None
            if mode == "columns" and ds.decoder is not None and not wanted:
                hist = histogram_printer(datasource_annotations(metadata or {}, ds.name),
                                         ds.decoder.fields, ds.decoder.annotations, self.out)
            if hist is not None:
                self.printers[ds.name] = hist
                continue
            prefix = f"{ds.name}:".ljust(width) if len(names) > 1 else ""
            try:
                self.printers[ds.name] = Printer(mode, ds.columns, wanted.get(ds.name, wanted.get("")),
                                                 out=self.out, autoflush=False, prefix=prefix,
                                                 terminal=terminal_width(self.out))
            except ValueError as e:
                errors.append((ds.name, e))
        if errors and (len(datasources) == 1 or not self.printers):
            raise errors[0][1]
        for name, error in errors:
            if on_warning is not None:
                on_warning(f"data source {name} is not printed: {error}")
        self._streams = [ds.name for ds in datasources if ds.kind == "tracer"
                         and ds.name in self.printers]

    def start(self) -> None:
        """Before the first batch: the tracers' column titles."""
        for name in self._streams:
            self.printers[name].header()

    def __call__(self, batch: Batch) -> None:
        printer = self.printers.get(batch.datasource.name)
        if printer is None:
            return
        if batch.is_array:
            printer.batch(batch.merged())
            return
        records = batch.records
        if records is not None and self.direct:
            write = self._writer(batch.datasource, printer, batch.extras is not None)
            if write is not None:
                self.out.write(write(records, batch.extras))
                return
        printer.events(batch.events, batch.extras)

    def _writer(self, ds: DataSource, printer: Printer | HistogramPrinter,
                spliced: bool) -> Writer | None:
        """The records writer of ``ds`` (with the container fields spliced or not), when
        its printer writes every field as JSON lines; made once."""
        key = (ds.name, spliced)
        if key not in self._writers:
            ok = isinstance(printer, Printer) and not printer.fields and not printer.autoflush
            self._writers[key] = records_writer(
                ds.decoder, frozenset(c.name for c in ds.columns if c.json_skip),
                tuple(sorted(EMPTY.json)) if spliced else ()) if ok and ds.decoder else None
        return self._writers[key]

    def flush(self) -> None:
        for p in self.printers.values():
            if isinstance(p, HistogramPrinter):
                p.flush()  # a tracer's metrics wait for their interval
        self.out.flush()


__all__ = ["Output", "fields_by_datasource"]
