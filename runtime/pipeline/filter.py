"""filter: ``--filter`` (IG's syntax) on the events, in user space."""

from __future__ import annotations

from collections.abc import Callable

from gadgetsmith.runtime.errors import RuntimeGadgetError
from gadgetsmith.runtime.events import filter as filt
from gadgetsmith.runtime.events.enrichment import EMPTY_FIELDS
from gadgetsmith.runtime.pipeline.context import DataSource, RunContext
from gadgetsmith.runtime.pipeline.stage import FILTER, Batch, Event, EventStage, Needs


class FilterStage(EventStage):
    """Keeps the events that match ``expr``. The expression is checked in ``pre_start``
    against the data source's fields (and the container fields, with a collection): a
    ``FilterError`` names an unknown field or a bad value. It reads only the fields it
    names, so container fields are merged before it only when it names one."""

    name = "filter"
    priority = FILTER

    def __init__(self, expr: str | None = None) -> None:
        self.expr = expr or ""
        self._pred: Callable[[Event], bool] | None = None
        self._ds: DataSource | None = None
        self._needs = Needs()

    def needs(self) -> Needs:
        return self._needs

    def pre_start(self, ctx: RunContext) -> None:
        if not self.expr:
            return
        if len(ctx.datasources) != 1:
            raise RuntimeGadgetError("--filter needs a gadget with one data source")
        ds = self._ds = next(iter(ctx.datasources.values()))
        sample = ds.sample()
        if ctx.containers is not None:
            sample.update(EMPTY_FIELDS)  # the names and types a --filter may use
        kinds = filt.kinds_from_sample(sample.keys(), sample)
        if ds.decoder is not None:
            kinds.update(ds.decoder.value_kinds)
        self._pred = filt.build(self.expr, kinds)
        self._needs = Needs.reading({r.field for r in filt.parse(self.expr)})

    def process(self, batch: Batch) -> list[Batch]:
        pred = self._pred
        if pred is None or batch.datasource is not self._ds:
            return [batch]
        if batch.extras is None:
            batch.events = [ev for ev in batch.events if pred(ev)]
        else:
            batch.keep([pred(ev) for ev in batch.events])
        return [batch]

    def describe(self) -> str:
        return f"filter({self.expr})" if self.expr else "filter"


__all__ = ["FilterStage"]
