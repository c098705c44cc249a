"""params: the ``--param`` values, checked and encoded before anything is loaded."""

from __future__ import annotations

from typing import Any

from gadgetsmith.runtime.bpf.objmodel import Param, wasm_param_defaults
from gadgetsmith.runtime.errors import ParamError
from gadgetsmith.runtime.pipeline.context import RunContext
from gadgetsmith.runtime.pipeline.stage import PARAMS, Stage

#: ig's param of gadgets with TC classifier programs: the interface they attach to
IFACE = "iface"


def _has_classifiers(ctx: RunContext) -> bool:
    assert ctx.object is not None
    return any(sec.startswith("classifier/") for sec in ctx.object.programs.values())


def _is_object_param(ctx: RunContext, key: str) -> bool:
    assert ctx.object is not None
    return any(key in (p.key, p.var) for p in ctx.object.params.values())


class ParamsStage(Stage):
    """Every value must name a settable ``GADGET_PARAM`` (by flag name or variable) and
    encode as its type, or be a param of the gadget's WASM module (gadget.yaml's
    ``params.wasm``, into ``ctx.wasm_params``): a ``ParamError`` otherwise. The load stage
    writes the others into ``.rodata`` (``ctx.params``).

    ``iface`` of a gadget with TC classifier programs is ig's: the interface they attach
    to (``ctx.operator_params``).

    A value of ``None`` is a param given as a flag alone (`gadget run IMAGE --failed`):
    ``true`` for a bool param, a ``ParamError`` for any other type."""

    name = "params"
    priority = PARAMS

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.values = {str(k): None if v is None else str(v) for k, v in (params or {}).items()}

    def pre_start(self, ctx: RunContext) -> None:
        assert ctx.object is not None, "the object stage runs first"
        # a gadget with a WASM module: its params (gadget.yaml params.wasm) are the module's
        wasm_keys = set(wasm_param_defaults(ctx.metadata)) if ctx.wasm is not None else set()
        values: dict[str, str] = {}
        for key, text in self.values.items():
            if key == IFACE and _has_classifiers(ctx) and not _is_object_param(ctx, key):
                ctx.operator_params[IFACE] = text or ""
                continue
            if key in wasm_keys:
                ctx.wasm_params[key] = values[key] = "true" if text is None else text
            else:
                param = self._ebpf_param(ctx, key, wasm_keys)
                values[key] = self._flag_value(param) if text is None else text
                param.encode(values[key])
        ctx.params = {k: v for k, v in values.items() if k not in wasm_keys}

    @staticmethod
    def _ebpf_param(ctx: RunContext, key: str, wasm_keys: set[str]) -> Param:
        assert ctx.object is not None
        try:
            return ctx.object.param(key)
        except ParamError as e:
            if not wasm_keys or not str(e).startswith("unknown param"):
                raise
            raise ParamError(f"{e}, and its WASM module's are {', '.join(sorted(wasm_keys))}") from None

    @staticmethod
    def _flag_value(param: Param) -> str:
        if param.type != "bool":
            raise ParamError(f"--{param.key} needs a value (--{param.key} VALUE or "
                             f"--{param.key}=VALUE): it is a {param.type or param.c_type} param")
        return "true"

    def describe(self) -> str:
        return f"params({', '.join(self.values)})" if self.values else "params"


__all__ = ["ParamsStage"]
