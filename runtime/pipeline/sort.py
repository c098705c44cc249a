"""sort: ``--sort f1,-f2`` on snapshots and map-iterator rounds (arrays)."""

from __future__ import annotations

from gadgetsmith.runtime.errors import SortError
from gadgetsmith.runtime.events.enrichment import EMPTY_FIELDS
from gadgetsmith.runtime.events.output import sort_events
from gadgetsmith.runtime.pipeline.context import RunContext
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

    def pre_start(self, ctx: RunContext) -> None:
        """A spec that cannot sort anything is an error: an empty key, only tracers, or a
        field that no snapshot or map-iterator data source has."""
        if not self.spec:
            return
        if any(not k.strip().lstrip("-") for k in self.spec.split(",")):
            raise SortError(f"--sort {self.spec!r}: empty field name: write f1,-f2 "
                            "('-' sorts that field in descending order)")
        arrays = [ds for ds in ctx.datasources.values() if ds.kind != "tracer"]
        if not arrays:
            names = ", ".join(ctx.datasources) or "none"
            raise SortError(f"--sort: the gadget's data sources ({names}) are tracers, whose "
                            "events are printed as they come: --sort orders snapshots "
                            "(iterators) and top rounds (map iterators); drop it")
        known: set[str] = set()
        for ds in arrays:
            known |= set(ds.decoder.decode(b"")) if ds.decoder is not None else set()
            known |= set(ds.added)
        if ctx.containers is not None:
            known |= set(EMPTY_FIELDS)
        for f in self.fields:
            if f not in known:
                close = sorted(k for k in known if k.rsplit(".", 1)[-1] == f.rsplit(".", 1)[-1])
                hint = f" (did you mean {close[0]}?)" if close else ""
                own = sorted(k for k in known if not k.startswith(("k8s.", "runtime.")))
                raise SortError(f"--sort: unknown field {f!r}{hint}; fields: {', '.join(own)}")

    def process(self, batch: Batch) -> list[Batch]:
        if self.fields and batch.is_array:
            batch.events = sort_events(batch.merged(), self.spec)
        return [batch]

    def describe(self) -> str:
        return f"sort({self.spec})" if self.spec else "sort"


__all__ = ["SortStage"]
