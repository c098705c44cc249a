"""The ordered stages of one run: their lifecycle, and how batches flow through them."""

from __future__ import annotations

from collections.abc import Iterable

from gadgetsmith.runtime.pipeline.context import DataSource, RunContext
from gadgetsmith.runtime.pipeline.decode import DecodeStage
from gadgetsmith.runtime.pipeline.stage import Batch, EventStage, Stage


class Pipeline:
    """Stages ordered by priority (a stage's name is unique: :meth:`put` replaces the
    stage of that name). :meth:`start` runs every ``pre_start``, then every ``start``;
    :meth:`close` closes the started stages in reverse order. :meth:`feed` takes one data
    source's raw records through the decode stage and every event stage after it."""

    def __init__(self, stages: Iterable[Stage] = ()) -> None:
        self._stages: dict[str, Stage] = {}
        self._started: list[Stage] = []
        self._events: list[EventStage] = []
        self._decode: DecodeStage | None = None
        for s in stages:
            self.put(s)

    def put(self, stage: Stage) -> None:
        """Add ``stage``, or replace the stage of the same name (before :meth:`start`)."""
        if self._started:
            raise RuntimeError("the pipeline has started: stages cannot change")
        if not stage.name:
            raise ValueError(f"{type(stage).__name__} has no name")
        self._stages[stage.name] = stage

    def __getitem__(self, name: str) -> Stage:
        return self._stages[name]

    def get(self, name: str) -> Stage | None:
        return self._stages.get(name)

    @property
    def stages(self) -> list[Stage]:
        return sorted(self._stages.values(), key=lambda s: s.priority)

    def describe(self) -> str:
        return " -> ".join(s.describe() for s in self.stages)

    # -- lifecycle --------------------------------------------------------------------
    def start(self, ctx: RunContext) -> None:
        stages = self.stages
        decode = [s for s in stages if isinstance(s, DecodeStage)]
        self._decode = decode[0] if decode else None
        after = stages.index(self._decode) + 1 if self._decode else 0
        self._events = [s for s in stages[after:] if isinstance(s, EventStage)]
        try:
            for s in stages:
                self._started.append(s)
                s.pre_start(ctx)
            for s in stages:
                s.start(ctx)
        except BaseException:
            self.close()
            raise

    def stop(self) -> None:
        for s in reversed(self._started):
            s.stop()

    def close(self) -> None:
        """Close every started stage, last first; the first error is raised after all."""
        error: BaseException | None = None
        while self._started:
            s = self._started.pop()
            try:
                s.close()
            except Exception as e:  # noqa: BLE001 - the other stages still get closed
                error = error or e
        if error is not None:
            raise error

    # -- events -----------------------------------------------------------------------
    def plan(self, consumer_needs_enrichment: bool) -> None:
        """Tell each event stage whether a later stage (or the consumer) reads the
        container fields: the enrichment stage merges them into events only then."""
        later = consumer_needs_enrichment
        for s in reversed(self._events):
            s.plan(later)
            later = later or s.needs().enrichment

    def feed(self, ds: DataSource, records: list[bytes]) -> list[Batch]:
        """Decode ``records`` of ``ds`` and take them through the event stages; the
        batches that come out of the last one."""
        if self._decode is None:
            raise RuntimeError("the pipeline has no decode stage")
        return self.flow(self._decode.decode(ds, records))

    def flow(self, batch: Batch) -> list[Batch]:
        """``batch`` (decoded) through the event stages."""
        return self._flow([batch], 0)

    def _flow(self, batches: list[Batch], first: int) -> list[Batch]:
        """``batches`` through the event stages from the ``first``-th on."""
        for stage in self._events[first:]:
            if not batches:
                break
            if len(batches) == 1:
                batches = stage.process(batches[0])
            else:
                out: list[Batch] = []
                for b in batches:
                    out += stage.process(b)
                batches = out
        return batches

    def poll(self) -> list[Batch]:
        """What event stages emitted on their own since the last call (see
        ``EventStage.poll``), each through the stages after it."""
        out: list[Batch] = []
        for i, stage in enumerate(self._events):
            batches = stage.poll()
            if batches:
                out += self._flow(batches, i + 1)
        return out

    def finish(self) -> list[Batch]:
        """The end of a run: every stage's ``stop``, then what the event stages emitted
        while stopping (a WASM module's ``gadgetStop``), through the later stages."""
        self.stop()
        return self.poll()


__all__ = ["Pipeline"]
