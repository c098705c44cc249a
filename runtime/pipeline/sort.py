"""sort: ``--sort f1,-f2`` on snapshots and map-iterator rounds (arrays)."""

from __future__ import annotations

from gadgetsmith.runtime.events.output import sort_events
from gadgetsmith.runtime.pipeline.stage import SORT, Batch, EventStage, Needs


class SortStage(EventStage):
    """Orders the events of array batches (a tracer's stream stays in arrival order):
    fields left to right, ``-`` for descending, events without the field last."""

    name = "sort"
    priority = SORT

    def __init__(self, spec: str | None = None) -> None:
        self.spec = spec or ""
        self.fields = [k.strip().lstrip("-") for k in self.spec.split(",") if k.strip()]

    def needs(self) -> Needs:
        return Needs.reading(set(self.fields)) if self.fields else Needs()

    def process(self, batch: Batch) -> list[Batch]:
        if self.fields and batch.is_array:
            batch.events = sort_events(batch.merged(), self.spec)
        return [batch]

    def describe(self) -> str:
        return f"sort({self.spec})" if self.spec else "sort"


__all__ = ["SortStage"]
