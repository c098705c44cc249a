"""params: the ``--param`` values, checked and encoded before anything is loaded."""

from __future__ import annotations

from typing import Any

from gadgetsmith.runtime.pipeline.context import RunContext
from gadgetsmith.runtime.pipeline.stage import PARAMS, Stage


class ParamsStage(Stage):
    """Every value must name a settable ``GADGET_PARAM`` (by flag name or variable) and
    encode as its type: a ``ParamError`` otherwise. The load stage writes them into
    ``.rodata`` (``ctx.params``)."""

    name = "params"
    priority = PARAMS

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.values = {str(k): str(v) for k, v in (params or {}).items()}

    def pre_start(self, ctx: RunContext) -> None:
        assert ctx.object is not None, "the object stage runs first"
        for key, text in self.values.items():
            ctx.object.param(key).encode(text)
        ctx.params = dict(self.values)

    def describe(self) -> str:
        return f"params({', '.join(self.values)})" if self.values else "params"


__all__ = ["ParamsStage"]
