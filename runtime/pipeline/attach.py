"""attach: every program by its section (after the readers exist), and uprobes and USDT
probes in containers, and TC classifiers of a run without ``iface`` on containers'
networks: those running now, and those that start later."""

from __future__ import annotations

from typing import Any

from gadgetsmith.runtime.containers.collection import Container, ContainerCollection
from gadgetsmith.runtime.pipeline.context import RunContext
from gadgetsmith.runtime.pipeline.stage import ATTACH, Stage


def attach_targets(metadata: dict[str, Any]) -> dict[str, str]:
    """gadget.yaml's ``programs.<name>.attach_to`` (a WASM module's ``setConfig`` of the
    same keys lands there too), by program."""
    progs = metadata.get("programs")
    if not isinstance(progs, dict):
        return {}
    return {str(n): str(p["attach_to"]) for n, p in progs.items()
            if isinstance(p, dict) and p.get("attach_to")}


class AttachStage(Stage):
    """Attaches all programs but the iterators' (the readers stage runs those), each to
    its section's target or to gadget.yaml's ``programs.<name>.attach_to``. With a
    container collection, each selected container's own copy of a probed file gets the
    probe too (one probe per distinct file), from the collection's thread as containers
    start, and it goes when the last container using it stops."""

    name = "attach"
    priority = ATTACH

    def __init__(self) -> None:
        self._ctx: RunContext | None = None
        self._coll: ContainerCollection | None = None

    def start(self, ctx: RunContext) -> None:
        self._ctx = ctx
        loaded = ctx.loaded_gadget()
        iterators = {p for ds in ctx.datasources.values() for p in ds.programs}
        loaded.tc_iface = ctx.operator_params.get("iface") or None
        loaded.tc_containers = ctx.containers is not None and not ctx.host
        loaded.attach_all(skip=iterators, targets=attach_targets(ctx.metadata))
        coll = ctx.containers
        if coll is None or not (loaded.uprobe_programs() or loaded.container_tc.programs):
            return
        self._coll = coll
        coll.on_add.append(self._added)
        coll.on_remove.append(self._removed)
        for c in coll.select(ctx.selector):  # after subscribing: none is missed
            self._added(c)

    def _added(self, c: Container) -> None:
        ctx = self._ctx
        if ctx is not None and ctx.loaded is not None and c.pid > 0 and ctx.selector.matches(c):
            ctx.loaded.attach_container_uprobes(c.id, c.pid, c.name)
            ctx.loaded.attach_container_tc(c.id, c.pid, c.name)

    def _removed(self, c: Container) -> None:
        ctx = self._ctx
        if ctx is not None and ctx.loaded is not None and ctx.loaded.obj:
            ctx.loaded.detach_container_uprobes(c.id)
            ctx.loaded.detach_container_tc(c.id)

    def close(self) -> None:
        coll = self._coll
        if coll is not None:
            if self._added in coll.on_add:
                coll.on_add.remove(self._added)
            if self._removed in coll.on_remove:
                coll.on_remove.remove(self._removed)
            self._coll = None


__all__ = ["AttachStage"]
