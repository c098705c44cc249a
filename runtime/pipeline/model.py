"""object: the object model of the loaded bytes, and the run's data sources.

The data sources, and each one's decoder, come from the same model ``gadget validate``
and ``gadget metadata`` read (:class:`~gadgetsmith.runtime.bpf.objmodel.GadgetObject`), so
the fields they report are the keys of the events the run emits.
"""

from __future__ import annotations

from gadgetsmith.runtime.bpf.objmodel import GadgetObject
from gadgetsmith.runtime.errors import RuntimeGadgetError
from gadgetsmith.runtime.events.decode import decoder_for
from gadgetsmith.runtime.pipeline.context import DataSource, RunContext
from gadgetsmith.runtime.pipeline.stage import OBJECT, Stage


def datasources_of(obj: GadgetObject, wasm: bool = False) -> list[DataSource]:
    """The object's data sources, each with a new decoder (a data source the object
    model finds broken is an error naming its first problem). None is an error, unless
    the gadget has a WASM module (``wasm``), whose data sources may be all there is."""
    out = [DataSource(info.name, info.kind, decoder_for(info), map_name=info.map_name,
                      programs=tuple(info.programs), key_size=info.key_size,
                      value_size=info.value_size)
           for info in obj.datasources.values()]
    if not out and not wasm:
        raise RuntimeGadgetError("the gadget declares no data source (GADGET_TRACER, "
                                 "GADGET_ITER or GADGET_MAPITER)")
    return out


class ObjectStage(Stage):
    """``ctx.object`` (the model of ``ctx.data`` with ``ctx.metadata``) and
    ``ctx.datasources``."""

    name = "object"
    priority = OBJECT

    def pre_start(self, ctx: RunContext) -> None:
        ctx.object = GadgetObject(ctx.data, ctx.metadata)
        for ds in datasources_of(ctx.object, wasm=ctx.wasm is not None):
            ctx.add_datasource(ds)


__all__ = ["ObjectStage", "datasources_of"]
