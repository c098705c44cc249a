"""containers: the container collection of the run (``ctx.containers``).

Checks the selector, finds the container runtimes when the run needs a collection and
none was given, and starts it. The load stage fills the in-kernel mount namespace filter
from it, the attach stage probes containers' files, the enrich stage adds their fields.
"""

from __future__ import annotations

from gadgetsmith.runtime.containers.collection import ContainerCollection, default_sources
from gadgetsmith.runtime.errors import SelectorError
from gadgetsmith.runtime.pipeline.context import RunContext
from gadgetsmith.runtime.pipeline.stage import CONTAINERS, Stage

NO_RUNTIME = ("no container runtime found (podman, docker): no container events will match; "
              "use --host to trace host processes")


class ContainersStage(Stage):
    """``containers``: a collection to use (started here unless it runs already), True to
    find this host's runtimes (the selector's ``runtimes`` only) even with ``host``, False
    for none, None for a collection only when containers are selected (``host`` false)."""

    name = "containers"
    priority = CONTAINERS

    def __init__(self, containers: ContainerCollection | bool | None = None) -> None:
        self.requested = containers
        self.collection: ContainerCollection | None = None
        self._own = False

    def pre_start(self, ctx: RunContext) -> None:
        sel = ctx.selector
        if ctx.host and not sel.is_empty():
            raise SelectorError("--host shows every process: drop the container selectors or --host")
        sel.validate()
        req = self.requested
        if isinstance(req, ContainerCollection):
            self.collection = req
        elif req is True or (req is None and not ctx.host):
            unavailable: list[str] = []
            runtimes = [r for r in sel.runtimes.split(",") if r.strip()] or None
            sources = default_sources(runtimes, unavailable)
            for why in unavailable:
                ctx.warn(why)
            if not sources and not ctx.host:
                ctx.warn(NO_RUNTIME)
            self.collection = ContainerCollection(sources)
            self._own = True
        ctx.containers = self.collection

    def start(self, ctx: RunContext) -> None:
        coll = self.collection
        if coll is not None and (self._own or not coll.running):
            # with --host nothing waits for the runtimes' answer (podman ps): the first
            # scan runs beside the first events, and the enrich stage waits for it only
            # for an event from a namespace that is not the host's
            coll.start(background=ctx.host and self._own)
            if not ctx.host:
                self._hint(ctx, coll)

    @staticmethod
    def _hint(ctx: RunContext, coll: ContainerCollection) -> None:
        """Why a run of container events may print only its header: a runtime that did not
        answer, or no container (matching the selection) running yet."""
        for name, why in coll.unanswered.items():
            ctx.warn(f"{name} did not answer, its containers are traced once it does: {why}")
        if coll.sources and not coll.unanswered and not coll.select(ctx.selector):
            which = "matches the container selection" if not ctx.selector.is_empty() else "runs"
            ctx.warn(f"no container {which} now: events come from containers only (those that "
                     "start from now on too); use --host to trace host processes")

    def close(self) -> None:
        if self._own and self.collection is not None:
            self.collection.stop()


__all__ = ["NO_RUNTIME", "ContainersStage"]
