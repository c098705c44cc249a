"""The loops of a run, over a started pipeline: tracers followed until a timeout, a
count or a stop; iterators run once; map iterators drained at an interval."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Generator

from gadgetsmith.runtime.bpf.objmodel import datasource_annotations
from gadgetsmith.runtime.errors import RuntimeGadgetError
from gadgetsmith.runtime.pipeline.context import DataSource, RunContext
from gadgetsmith.runtime.pipeline.pipeline import Pipeline
from gadgetsmith.runtime.pipeline.readers import ReadersStage
from gadgetsmith.runtime.pipeline.stage import Batch

FLUSH_ON_STOP = "ebpf.map.flush-on-stop"
LOST_CHECK_INTERVAL = 0.5  # seconds between checks of the lost-record counters
POLL_MS = 200  # longest wait for records, so stop() and timeouts are seen soon


class Runner:
    """Takes records from the readers stage through the pipeline. Batches that came out
    but were not handed over yet (after a ``count`` was reached, or of a data source not
    asked for) wait in :attr:`pending` for the next call."""

    def __init__(self, pipeline: Pipeline, ctx: RunContext) -> None:
        self.pipeline = pipeline
        self.ctx = ctx
        readers = pipeline["readers"]
        assert isinstance(readers, ReadersStage)
        self.readers = readers
        self.pending: deque[Batch] = deque()

    def run(self, on_batch: Callable[[Batch], None], timeout: float | None = None,
            count: int | None = None, interval: float = 1.0,
            on_idle: Callable[[], None] | None = None) -> None:
        """What ``gadget run`` does, by the kind of the object's first data source: follow
        every tracer (``count`` events), or run every iterator once, or drain every map
        iterator each ``interval`` seconds (``count`` rounds); a gadget whose data sources
        all come from its WASM module is followed like tracers. Then the stages stop, and
        what they emit meanwhile (a module's ``gadgetStop``) is handed over too.
        ``on_batch`` gets each batch; ``on_idle`` runs whenever everything read so far
        was handed over."""
        first = next((d for d in self.ctx.datasources.values() if d.decoder is not None), None)
        if first is None or first.kind == "tracer":
            # tracers, and the map iterators of a gadget that has both (IG's deadlock)
            for batch in self.follow(None, timeout, count, on_idle, drain_every=interval):
                on_batch(batch)
        elif first.kind == "iterator":
            for batch in self.arrays(self.ctx.of_kind("iterator")):
                on_batch(batch)
        else:
            self.rounds(on_batch, timeout, count, interval)
        for batch in self.pipeline.finish():
            if len(batch):
                on_batch(batch)
        if on_idle is not None:
            on_idle()

    # -- tracers ----------------------------------------------------------------------
    def follow(self, datasource: str | None = None, timeout: float | None = None,
               count: int | None = None, on_idle: Callable[[], None] | None = None,
               merged: bool = False, drain_every: float | None = None,
               ) -> Generator[Batch, None, None]:
        """Batches of the tracers (every one, or ``datasource``) until ``timeout``
        seconds, ``count`` events or ``ctx.stop_event``. ``merged``: the consumer reads
        the container fields (so they are merged into every event). ``drain_every``: the
        gadget's map iterators are drained at that interval too, their batches handed
        over with the tracers' (all data sources only)."""
        tracers = self.ctx.of_kind("tracer", datasource)
        if not tracers:
            raise RuntimeGadgetError("this gadget has no tracer data source: use snapshot()")
        if any(ds.name not in self.readers.readers for ds in tracers if ds.decoder is not None):
            raise RuntimeGadgetError("the gadget is closed")
        self.pipeline.plan(merged)
        mapiters = self.ctx.of_kind("mapiter") if drain_every and datasource is None else []
        return self._follow(tracers, datasource, timeout, count, on_idle, mapiters, drain_every or 0)

    def _follow(self, tracers: list[DataSource], datasource: str | None, timeout: float | None,
                count: int | None, on_idle: Callable[[], None] | None,
                mapiters: list[DataSource], interval: float,
                ) -> Generator[Batch, None, None]:
        wanted = {ds.name for ds in tracers} | {ds.name for ds in mapiters}
        # a WASM module's data source: its events come from the object's tracers, all read
        # for it (their own batches are not kept: nobody asked for them)
        sources, keep = tracers, None
        if any(ds.decoder is None for ds in tracers):
            sources = [d for d in self.ctx.of_kind("tracer") if d.decoder is not None]
            keep = wanted
        deadline = None if timeout is None else time.monotonic() + timeout
        next_lost_check = time.monotonic() + LOST_CHECK_INTERVAL
        next_drain = time.monotonic() + interval
        left = count
        if left is not None and left <= 0:
            return
        try:
            while True:
                self._read(sources, keep)
                while (batch := self._take(wanted)) is not None:
                    if left is not None:
                        if len(batch) > left:
                            self.pending.appendleft(batch.split(left))
                        left -= len(batch)
                    yield batch
                    if left == 0:
                        return
                if self.readers.queued({d.name for d in sources}):
                    continue  # more records read already: no wait, no idle
                if on_idle is not None:
                    on_idle()
                if self.ctx.stopped:
                    return
                now = time.monotonic()
                if now >= next_lost_check:
                    self._check_lost(datasource)
                    next_lost_check = now + LOST_CHECK_INTERVAL
                if mapiters and now >= next_drain:
                    self.pending.extend(b for b in self.arrays(mapiters) if len(b))
                    next_drain = now + interval
                    continue
                wait = POLL_MS
                if deadline is not None:
                    if now >= deadline:
                        return
                    wait = int(min(deadline - now, POLL_MS / 1000) * 1000)
                self.readers.poll(max(wait, 1))
        finally:
            self._check_lost(datasource)

    def _read(self, tracers: list[DataSource], keep: set[str] | None = None) -> None:
        """Records of ``tracers`` through the pipeline, and what stages emitted on their
        own; the batches (only those of ``keep``'s data sources, when given) wait in
        :attr:`pending`."""
        out: list[Batch] = []
        for ds in tracers:
            if ds.decoder is None:
                continue  # a WASM module's: its events come out of the pipeline
            records = self.readers.take(ds.name)
            if records:
                out += self.pipeline.feed(ds, records)
        out += self.pipeline.poll()
        self.pending.extend(b for b in out if len(b) and (keep is None or b.datasource.name in keep))

    def _take(self, wanted: set[str]) -> Batch | None:
        """The first pending batch of a data source in ``wanted``, taken out."""
        for i, batch in enumerate(self.pending):
            if batch.datasource.name in wanted:
                del self.pending[i]
                return batch
        return None

    def _check_lost(self, datasource: str | None) -> None:
        if self.ctx.loaded is not None and self.ctx.loaded.obj:
            self.readers.check_lost(datasource)

    # -- arrays -----------------------------------------------------------------------
    def arrays(self, datasources: list[DataSource]) -> list[Batch]:
        """One batch per data source: its iterator run once, or its map drained."""
        out = []
        for ds in datasources:
            if ds.decoder is None:
                continue  # a WASM module's: its packets come out of the pipeline
            if ds.kind == "iterator":
                records = self.readers.iterator_records(ds)
            else:
                records = self.readers.map_records(ds)
            out += self.pipeline.feed(ds, records)
        return out + self.pipeline.poll()

    def rounds(self, on_batch: Callable[[Batch], None], timeout: float | None,
               count: int | None, interval: float) -> None:
        """Every ``interval`` seconds, each map iterator's entries since the last round,
        until ``count`` rounds, ``timeout`` seconds or a stop. A stop drains once more the
        data sources annotated ``ebpf.map.flush-on-stop: true`` (as ig)."""
        mapiters = self.ctx.of_kind("mapiter")
        deadline = None if timeout is None else time.monotonic() + timeout
        done = 0
        while True:
            wait = interval
            if deadline is not None:
                wait = min(interval, max(0.0, deadline - time.monotonic()))
            if self.ctx.stop_event.wait(max(0.0, wait)):
                flush = [ds for ds in mapiters if datasource_annotations(
                    self.ctx.metadata, ds.name).get(FLUSH_ON_STOP) == "true"]
                for batch in self.arrays(flush):
                    on_batch(batch)
                return
            for batch in self.arrays(mapiters):
                on_batch(batch)
            done += 1
            if (count is not None and done >= count) or (
                    deadline is not None and time.monotonic() >= deadline):
                return


__all__ = ["Runner"]
