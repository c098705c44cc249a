"""load: the object into the kernel (params in ``.rodata``, map sizes, the btfgen BTF on
a kernel without one), and the container filter (the mount namespaces of the selected
containers, kept current)."""

from __future__ import annotations

import contextlib

from gadgetsmith.runtime.bpf import btfgen, sockets
from gadgetsmith.runtime.bpf import libbpf as L
from gadgetsmith.runtime.bpf.loader import LoadedGadget
from gadgetsmith.runtime.containers.collection import Container, ContainerCollection
from gadgetsmith.runtime.pipeline.context import RunContext
from gadgetsmith.runtime.pipeline.stage import LOAD, Stage


class LoadStage(Stage):
    """``ctx.loaded``: the object loaded, nothing attached yet. Without ``ctx.host``, the
    gadget's ``gadget_mntns_filter_map`` holds the selected containers' mount namespaces:
    those running now, and, from the collection's thread, those that start later. A gadget
    with the map ``gadget_sockets`` gets it filled by the socket enricher
    (:mod:`~gadgetsmith.runtime.bpf.sockets`) while it runs."""

    name = "load"
    priority = LOAD

    def __init__(self) -> None:
        self._ctx: RunContext | None = None
        self._coll: ContainerCollection | None = None
        self._enricher: sockets.SocketEnricher | None = None

    def start(self, ctx: RunContext) -> None:
        assert ctx.object is not None, "the object stage runs first"
        self._ctx = ctx
        # a kernel without BTF: CO-RE relocations against the image's btfgen entry; a
        # gadget of the sockets map: struct gadget_socket_value described besides
        enrich = sockets.SOCKETS_MAP in ctx.object.maps
        with contextlib.ExitStack() as stack:
            btf_path = stack.enter_context(btfgen.btf_for_load(ctx.btfgen_layer))
            if enrich:
                btf_path = stack.enter_context(sockets.btf_with_socket_value(btf_path))
            ctx.loaded = LoadedGadget(ctx.object, ctx.params, autoattach=False,
                                      filter_by_mntns=not ctx.host, on_warning=ctx.warn,
                                      on_debug=ctx.on_debug, btf_custom_path=btf_path)
        if enrich:
            m = ctx.loaded.maps[sockets.SOCKETS_MAP]
            misses = (ctx.loaded.map_fd(sockets.MISSES_MAP)
                      if sockets.MISSES_MAP in ctx.loaded.maps else None)
            self._enricher = sockets.SocketEnricher(ctx.loaded.map_fd(sockets.SOCKETS_MAP),
                                                    L.lib().bpf_map__value_size(m),
                                                    misses_fd=misses, on_debug=ctx.on_debug)
        coll = ctx.containers
        if ctx.host or coll is None:
            return
        # called from the collection's thread when it sees a container start or stop
        self._coll = coll
        coll.on_add.append(self._added)
        coll.on_remove.append(self._removed)
        ctx.loaded.set_mntns({c.mntns for c in coll.select(ctx.selector) if c.mntns})

    def _added(self, c: Container) -> None:
        ctx = self._ctx
        if ctx is not None and ctx.loaded is not None and c.mntns and ctx.selector.matches(c):
            ctx.loaded.set_mntns({c.mntns})

    def _removed(self, c: Container) -> None:
        ctx = self._ctx
        if ctx is not None and ctx.loaded is not None and ctx.loaded.obj and c.mntns:
            ctx.loaded.set_mntns({c.mntns}, present=False)

    def close(self) -> None:
        coll = self._coll
        if coll is not None:  # no callback may touch the object once it is closed
            if self._added in coll.on_add:
                coll.on_add.remove(self._added)
            if self._removed in coll.on_remove:
                coll.on_remove.remove(self._removed)
            self._coll = None
        if self._enricher is not None:
            self._enricher.close()
            self._enricher = None
        ctx = self._ctx
        if ctx is not None and ctx.loaded is not None:
            ctx.loaded.close()
            ctx.loaded = None


__all__ = ["LoadStage"]
