"""processors: the caller's per-event hooks (``Gadget(processors=[...])``)."""

from __future__ import annotations

from collections.abc import Callable

from gadgetsmith.runtime.pipeline.stage import PROCESSORS, Batch, Event, EventStage, Needs

Processor = Callable[[Event], "Event | None"]


class ProcessorStage(EventStage):
    """Runs each processor on every event, in order: a processor returns the event
    (changed or not) or None to drop it. Processors may read any field, container fields
    included, and change any. ``processors`` is the caller's list: it may change
    between reads."""

    name = "processors"
    priority = PROCESSORS

    def __init__(self, processors: list[Processor] | None = None) -> None:
        self.processors: list[Processor] = processors if processors is not None else []

    def needs(self) -> Needs:
        return Needs.reading(None, changes=True) if self.processors else Needs()

    def process(self, batch: Batch) -> list[Batch]:
        procs = self.processors
        if not procs:
            return [batch]
        kept: list[Event] = []
        for ev in batch.merged():
            out = _through(procs, ev)
            if out is not None:
                kept.append(out)
        batch.events = kept
        return [batch]


def _through(procs: list[Processor], ev: Event) -> Event | None:
    for p in procs:
        out = p(ev)
        if out is None:
            return None
        ev = out
    return ev


__all__ = ["Processor", "ProcessorStage"]
