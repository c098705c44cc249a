"""decode: raw records of a data source -> a :class:`~.stage.Batch` of flat events."""

from __future__ import annotations

from gadgetsmith.runtime.errors import RuntimeGadgetError
from gadgetsmith.runtime.pipeline.context import DataSource, RunContext
from gadgetsmith.runtime.pipeline.stage import DECODE, Batch, Stage


class DecodeStage(Stage):
    """Turns each record into an event with the data source's decoder (built from the
    object model, see the object stage) and counts the records (``raw_records``)."""

    name = "decode"
    priority = DECODE

    def __init__(self) -> None:
        self._ctx: RunContext | None = None

    def pre_start(self, ctx: RunContext) -> None:
        self._ctx = ctx

    def decode(self, ds: DataSource, records: list[bytes]) -> Batch:
        if ds.decoder is None:
            raise RuntimeGadgetError(f"data source {ds.name!r} has no records to decode")
        if self._ctx is not None:
            self._ctx.raw_records += len(records)
        return Batch.of_records(ds, records)


__all__ = ["DecodeStage"]
