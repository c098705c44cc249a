"""wasm: the place of a gadget's WASM module in the pipeline.

The stage itself is :class:`gadgetsmith.runtime.wasm.stage.WasmStage`; its modules (the
host's model, providers, syscall tables, logging) cost a run 10-25 ms of start-up, so
this slot imports and builds it only when the run has a module (``ctx.wasm``, set by the
source stage), and is a pass-through otherwise.
"""

from __future__ import annotations

import importlib

from gadgetsmith.runtime.pipeline.context import RunContext
from gadgetsmith.runtime.pipeline.stage import NOTHING, WASM, Batch, EventStage, Needs

#: the module of the stage the slot holds (imported when a run has a WASM module)
STAGE_MODULE = "gadgetsmith.runtime.wasm.stage"


class WasmSlot(EventStage):
    """The WASM stage when the run has a module (:attr:`stage`), else nothing."""

    name = "wasm"
    priority = WASM

    def __init__(self) -> None:
        self.stage: EventStage | None = None

    def needs(self) -> Needs:
        return self.stage.needs() if self.stage is not None else NOTHING

    def describe(self) -> str:
        return self.stage.describe() if self.stage is not None else "wasm"

    def pre_start(self, ctx: RunContext) -> None:
        if ctx.wasm is None:
            return
        stage: EventStage = importlib.import_module(STAGE_MODULE).WasmStage()
        self.stage = stage
        stage.pre_start(ctx)

    def start(self, ctx: RunContext) -> None:
        if self.stage is not None:
            self.stage.start(ctx)

    def stop(self) -> None:
        if self.stage is not None:
            self.stage.stop()

    def close(self) -> None:
        if self.stage is not None:
            self.stage.close()

    def plan(self, later_needs_enrichment: bool) -> None:
        if self.stage is not None:
            self.stage.plan(later_needs_enrichment)

    def process(self, batch: Batch) -> list[Batch]:
        return self.stage.process(batch) if self.stage is not None else [batch]

    def poll(self) -> list[Batch]:
        return self.stage.poll() if self.stage is not None else []


__all__ = ["STAGE_MODULE", "WasmSlot"]
