"""wasm: the pipeline's WASM slot, running the gadget's module (IG's WASM API version 1).

The stage is in every pipeline; it does something only when the gadget has a module
(``ctx.wasm``: the image's WASM layer, or ``Gadget(wasm=...)``). In the order of IG's
wasm operator:

- ``pre_start`` (nothing is loaded yet): the module is instantiated over the data sources
  the object stage found (their decoded fields, the container fields of enriched ones,
  IG's ``containers`` data source when gadget.yaml enables it) and ``gadgetInit`` runs:
  the fields it adds become columns of their data source, the data sources it creates
  are registered for the consumer, and the char arrays it reads are decoded as their raw
  bytes (IG gives a module the whole array; see ``Decoder.keep_raw``), turned into text
  again after the module. Then ``gadgetPreStart``: the config it sets
  (``programs.<name>.attach_to``) goes into the metadata's ``programs``, which the attach
  stage reads like gadget.yaml's.
- ``start`` (the object is loaded and attached): ``gadgetStart``; ``containers`` gets a
  ``CREATED`` event per selected container, and later ones as the collection sees them.
- events: each batch of a data source the module subscribes to goes through the
  module's chain (its callbacks by priority); what comes out (the events kept, changed,
  and the events of other data sources the module emitted) goes on as batches.
- ``stop``: ``gadgetStop`` and ``gadgetPostStop``; what they emit comes out of
  :meth:`WasmStage.poll`, which the runner calls between reads and once more at the end.

A module that traps, runs out of memory or returns an error in a lifecycle call is a
:class:`~gadgetsmith.runtime.errors.WasmModuleError` naming the module and the call, and
the module is closed. A module that fails in a ``dataSourceCallback`` (a Go panic, a trap)
does not end the run, as under ig (IG's host drops the callback's error,
``callDsCallbackWithLock`` in pkg/operators/wasm): a one-line warning names the module,
the call and the cause, and the run goes on without the module, its data sources' events
as the eBPF side makes them (ig, which shows nothing, calls a module that trapped without
exiting again; this stage does not: its memory may be inconsistent).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable
from typing import Any

from gadgetsmith.runtime.bpf.loader import MNTNS_MAP
from gadgetsmith.runtime.bpf.objmodel import wasm_param_defaults
from gadgetsmith.runtime.containers.collection import Container
from gadgetsmith.runtime.errors import WasmModuleError
from gadgetsmith.runtime.events.decode import Column
from gadgetsmith.runtime.events.enrichment import EMPTY_FIELDS
from gadgetsmith.runtime.pipeline.context import DataSource, RunContext
from gadgetsmith.runtime.pipeline.stage import NOTHING, WASM, Batch, EventStage, Needs
from gadgetsmith.runtime.wasm.bpfmaps import KernelMaps, KernelMntnsFilter, KernelPerf
from gadgetsmith.runtime.wasm.kinds import Kind
from gadgetsmith.runtime.wasm.lazy import load_host
from gadgetsmith.runtime.wasm.model import DataSourceSpec, FieldSpec, containers_datasource
from gadgetsmith.runtime.wasm.providers import Providers
from gadgetsmith.runtime.wasm.specs import (
    containers_enabled,
    datasource_spec,
    metadata_annotations,
)

_ENRICHMENT_KINDS = {str: Kind.STRING, bool: Kind.BOOL, int: Kind.INT64}


class _ToContext(logging.Handler):
    """A module's log lines: errors and warnings as run warnings, the rest for --debug."""

    def __init__(self, ctx: RunContext, module: str) -> None:
        super().__init__(logging.DEBUG - 5)
        self.ctx = ctx
        self.module = module
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        text = f"wasm module {self.module}: {record.getMessage()}"
        if record.levelno < logging.WARNING:
            self.ctx.debug(text)
        elif text not in self.seen:  # a warning per event would drown the output: once each
            if len(self.seen) < 1000:
                self.seen.add(text)
            self.ctx.warn(text)
        else:
            self.ctx.debug(text)


class _MntnsFilter:
    """``shouldDiscardMntnsID`` over the loaded object's filter map (on without --host)."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def should_discard(self, mntns_id: int) -> bool:
        loaded = self.ctx.loaded
        if self.ctx.host or loaded is None or MNTNS_MAP not in loaded.maps:
            return False
        return KernelMntnsFilter(loaded.map_fd(MNTNS_MAP)).should_discard(mntns_id)


class WasmStage(EventStage):
    """The WASM slot (see the module docstring). ``module``: a module to run instead of
    the gadget's own (bytes), ``name`` its name in messages."""

    name = "wasm"
    priority = WASM

    def __init__(self, module: bytes | None = None, module_name: str = "program.wasm") -> None:
        self.module = module
        self.module_name = module_name
        self.host: Any = None  # runtime.wasm.host.WasmHost, once the module runs
        self._ctx: RunContext | None = None
        self._needs = NOTHING
        self._subscribed: set[str] = set()
        self._failed: set[str] = set()  # subscribed when the module failed in a callback
        self._outputs: dict[str, DataSource] = {}
        self._pending: list[Batch] = []
        self._containers: collections.deque[tuple[str, Container]] = collections.deque()
        self._announced: set[str] = set()  # containers the module got a CREATED event for
        self._state = "new"
        self._logger: logging.Logger | None = None

    def needs(self) -> Needs:
        return self._needs

    def describe(self) -> str:
        return f"wasm({self.module_name})" if self.host is not None else "wasm"

    # -- lifecycle --------------------------------------------------------------------
    def pre_start(self, ctx: RunContext) -> None:
        wasm = self.module if self.module is not None else ctx.wasm
        if wasm is None:
            return
        self._ctx = ctx
        self._logger = logging.getLogger(f"gadgetsmith.wasm.run.{id(self):x}")
        self._logger.propagate = False
        self._logger.setLevel(logging.DEBUG - 5)
        self._logger.addHandler(_ToContext(ctx, self.module_name))
        providers = Providers(
            params={**wasm_param_defaults(ctx.metadata), **ctx.wasm_params},
            config={}, maps=KernelMaps(fd_of=self._map_fd), perf=KernelPerf(),
            mntns_filter=_MntnsFilter(ctx), logger=self._logger)
        self.host = load_host().WasmHost(wasm, self._specs(ctx), providers, name=self.module_name,
                                         annotations=metadata_annotations(ctx.metadata))
        self.host.init()
        self._lifecycle("pre_start")
        self._register(ctx)  # after gadgetPreStart: modules (advise_seccomp) subscribe there
        self._apply_config(ctx, providers.config)

    def start(self, ctx: RunContext) -> None:
        if self.host is None:
            return
        self._lifecycle("start")
        self._subscriptions(ctx)  # and gadgetStart (before any event)
        coll = ctx.containers
        if coll is not None and "containers" in self.host.datasources:
            coll.on_add.append(self._added)
            coll.on_remove.append(self._removed)
            for c in coll.select(ctx.selector):
                self._containers.append(("CREATED", c))
            self._pending += self._container_events()

    def stop(self) -> None:
        """gadgetStop and gadgetPostStop (once); what they emit waits for :meth:`poll`."""
        if self.host is None or self._state != "started":
            return
        self._unsubscribe()
        self._lifecycle("stop")
        self._lifecycle("post_stop")

    def close(self) -> None:
        self._unsubscribe()
        if self.host is not None:
            self.host.close()
            for p in (self.host.providers.maps, self.host.providers.perf):
                p.close()
            self.host = None
        if self._logger is not None:
            self._logger.handlers.clear()

    def _lifecycle(self, call: str) -> None:
        getattr(self.host, call)()
        self._state = {"pre_start": "prestarted", "start": "started", "stop": "stopped",
                       "post_stop": "stopped"}[call]
        self._pending += self._batches(self.host.take_lifecycle_outputs())

    # -- events -----------------------------------------------------------------------
    def process(self, batch: Batch) -> list[Batch]:
        host = self.host
        if host is None:
            return [batch]
        out = self.poll() if self._pending or self._containers else []
        name = batch.datasource.name
        if name not in self._subscribed:
            if name in self._failed and not host.pass_through(name, batch.merged()):
                return out
            return [*out, batch]
        try:
            if batch.is_array:
                outputs = host.push_array(name, batch.merged())
            else:
                outputs = host.push_many(name, batch.merged())
        except WasmModuleError as e:
            self._callback_failed(e)
            return [*out, batch] if host.pass_through(name, batch.merged()) else out
        return out + self._batches(outputs)

    def _callback_failed(self, e: WasmModuleError) -> None:
        """As ig: the run goes on, the module is not called again (nor stopped)."""
        self._failed, self._subscribed = self._subscribed, set()
        self._unsubscribe()
        self._state = "failed"
        if self._ctx is not None:
            self._ctx.warn(f"{e}; the run goes on without the module (as ig, which drops "
                           "a callback's failure)")

    def poll(self) -> list[Batch]:
        """What the module emitted outside of events: in its lifecycle calls, and for
        container events (the collection's thread queues them; the module is called from
        the thread that reads events only)."""
        if self.host is not None and self._containers:
            self._pending += self._container_events()
        out, self._pending = self._pending, []
        return out

    # -- set-up -----------------------------------------------------------------------
    def _specs(self, ctx: RunContext) -> list[DataSourceSpec]:
        ann = metadata_annotations(ctx.metadata)
        specs = []
        for ds in ctx.datasources.values():
            if ds.decoder is None:
                continue
            spec = datasource_spec(ds.name, ds.kind, ds.decoder, ann.get(ds.name))
            if ds.decoder.mntns_field or ds.decoder.netns_field:
                have = {f.name for f in spec.fields}
                spec.fields += [FieldSpec(n, _ENRICHMENT_KINDS[type(v)], hidden=True)
                                for n, v in EMPTY_FIELDS.items() if n not in have]
            specs.append(spec)
        if containers_enabled(ctx.metadata):
            specs.append(containers_datasource())
        return specs

    def _register(self, ctx: RunContext) -> None:
        """Columns for the fields the module added, its data sources for the consumer, and
        what it reads (:meth:`_subscriptions`)."""
        ann = metadata_annotations(ctx.metadata)
        for mds in self.host.datasources.values():
            pds = ctx.datasources.get(mds.name)
            if pds is None:
                if mds.name == "containers" or not mds.created_by_module:
                    continue
                pds = DataSource(mds.name, "tracer" if not mds.is_array else "iterator")
                ctx.add_datasource(pds)
            cols = {c.name for c in pds.columns}
            for f in mds.fields.values():
                if f.added and f.name not in cols:
                    pds.columns.append(_column(f, ann.get(mds.name, {}).get(f.name, {})))
                    pds.added[f.name] = f.default
            self._outputs[mds.name] = pds
        self._subscriptions(ctx)

    def _subscriptions(self, ctx: RunContext) -> None:
        """The data sources the module subscribes to, the stage's needs (the fields it
        reads), and the char arrays and bytes it reads, decoded raw for it."""
        read: set[str] = set()
        for mds in self.host.datasources.values():
            if any(s.guest for s in mds.subscriptions):
                self._subscribed.add(mds.name)
            read |= {f.name for f in mds.fields.values() if f.requested and not f.added}
            pds = ctx.datasources.get(mds.name)
            raw = [f.name for f in mds.fields.values() if f.requested and not f.added and not f.raw
                   and ((f.kind.is_text and f.size) or f.kind == Kind.BYTES)]
            if raw and pds is not None and pds.decoder is not None:
                pds.decoder.keep_raw([*pds.decoder.raw_fields, *raw])
                mds.mark_raw(raw)
        self._needs = Needs.reading(read, changes=True)

    @staticmethod
    def _apply_config(ctx: RunContext, config: dict[str, Any]) -> None:
        """``programs.<name>.attach_to`` the module set: into the metadata's ``programs``
        (what gadget.yaml's ``programs:`` says too), for the attach stage."""
        for key, value in config.items():
            parts = key.split(".")
            if len(parts) == 3 and parts[0] == "programs":
                progs = ctx.metadata.setdefault("programs", {})
                progs.setdefault(parts[1], {})[parts[2]] = str(value)

    def _map_fd(self, name: str) -> int | None:
        loaded = self._ctx.loaded if self._ctx is not None else None
        if loaded is None or name not in loaded.maps:
            return None
        return loaded.map_fd(name)

    # -- containers -------------------------------------------------------------------
    def _added(self, c: Container) -> None:
        ctx = self._ctx
        if ctx is not None and ctx.selector.matches(c):
            self._containers.append(("CREATED", c))

    def _removed(self, c: Container) -> None:
        self._containers.append(("DELETED", c))  # only the ones announced go out

    def _unsubscribe(self) -> None:
        coll = self._ctx.containers if self._ctx is not None else None
        if coll is not None:
            for lst, cb in ((coll.on_add, self._added), (coll.on_remove, self._removed)):
                if cb in lst:
                    lst.remove(cb)

    def _container_events(self) -> list[Batch]:
        out: list[Any] = []
        while self._containers:
            kind, c = self._containers.popleft()
            if kind == "CREATED":
                self._announced.add(c.id)
            elif c.id in self._announced:
                self._announced.discard(c.id)
            else:
                continue  # a container the selection never had
            out += self.host.emit("containers", {
                "event_type": kind, "container_id": c.id, "cgroup_id": getattr(c, "cgroup_id", 0) or 0,
                "mntns_id": c.mntns or 0, "name": c.name, "container_config": ""})
        return self._batches(out)

    # -- outputs ------------------------------------------------------------------------
    def _batches(self, outputs: Iterable[tuple[str, Any]]) -> list[Batch]:
        """(data source, event | array packet) in order -> batches: consecutive events of
        one data source together, each array packet a batch of its own."""
        out: list[Batch] = []
        for name, pkt in outputs:
            ds = self._outputs.get(name)
            if ds is None:
                continue                          # "containers" and unregistered sources
            if isinstance(pkt, list):
                out.append(Batch(ds, list(pkt)))
            elif out and out[-1].datasource is ds and not out[-1].is_array:
                out[-1].events.append(pkt)
            else:
                out.append(Batch(ds, [pkt]))
        return out


def _column(f: Any, ann: dict[str, str]) -> Column:
    hidden = f.hidden or str(ann.get("columns.hidden", "")).lower() == "true"
    try:
        width = int(ann.get("columns.width", 0))
    except (TypeError, ValueError):
        width = 0
    return Column(f.name, hidden, ann.get("columns.alias", ""), width)


__all__ = ["WasmStage"]
