"""A gadget's WASM module over the gadget's data sources: its lifecycle and its events.

    host = WasmHost("program.wasm", [DataSourceSpec("exec", [FieldSpec("args", "string",
                    size=5120, raw=True), FieldSpec("args_size", "uint32"), ...])],
                    Providers(params={...}, maps=..., mntns_filter=...))
    host.init()                        # instantiate, check gadgetAPIVersion, gadgetInit
    host.datasources["exec"].fields    # now with the fields the module added
    host.pre_start(); host.start()
    for name, event in host.push("exec", event): ...   # what comes out, in order
    host.stop(); host.post_stop(); host.close()

The runtime's own steps can join a data source's ordered chain with :meth:`subscribe`
(IG: formatters and enrichment at priority 0, filter 9000, sort 9500), or wrap the host as
one per-event processor with :meth:`processor`. The pipeline's stage is
:class:`~gadgetsmith.runtime.wasm.stage.WasmStage`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from gadgetsmith.runtime.errors import WasmModuleError
from gadgetsmith.runtime.wasm import abi
from gadgetsmith.runtime.wasm.engine import ticker
from gadgetsmith.runtime.wasm.imports import HostTrap
from gadgetsmith.runtime.wasm.instance import Instance, add_datasources
from gadgetsmith.runtime.wasm.kinds import cstring
from gadgetsmith.runtime.wasm.model import (
    DataSource,
    DataSourceSpec,
    Field,
    HostSubscriber,
    PacketArray,
    SubscriptionKind,
)
from gadgetsmith.runtime.wasm.module import Module
from gadgetsmith.runtime.wasm.providers import Providers

Output = tuple[str, Any]     # (data source name, event dict | PacketArray)


class WasmHost:
    def __init__(self, wasm: bytes | str | os.PathLike[str] | Module,
                 datasources: Iterable[DataSourceSpec | DataSource | dict[str, Any]] = (),
                 providers: Providers | None = None, name: str | None = None,
                 inherit_output: bool = False,
                 annotations: dict[str, dict[str, dict[str, str]]] | None = None,
                 call_timeout: float = 60.0, callback_timeout: float = 10.0) -> None:
        """``annotations``: gadget.yaml's field annotations per data source, applied to the
        fields the module adds (also in data sources it creates)."""
        self.module = wasm if isinstance(wasm, Module) else Module(wasm, name)
        self.name = self.module.name
        self.datasources: dict[str, DataSource] = add_datasources(datasources)
        self.providers = providers or Providers()
        self.inherit_output = inherit_output
        self.timeouts = (call_timeout, callback_timeout)
        self.annotations = annotations or {}
        for ds in self.datasources.values():
            ds.field_annotations.update(self.annotations.get(ds.name, {}))
        self.side_outputs: list[Output] = []     # what processor() does not return
        self.lifecycle_outputs: list[Output] = []  # emitted during gadgetInit & co
        self.new_datasources: list[DataSource] = []
        self.state = "new"
        self._inst: Instance | None = None

    # -- lifecycle (IG's order: instantiate+gadgetInit, PreStart, Start, Stop, PostStop) --
    def init(self) -> WasmHost:
        if self._inst is not None:
            return self
        try:
            self._inst = Instance(self.module, self.datasources, self.providers,
                                  self.inherit_output, self._new_datasource, *self.timeouts)
            self._inst.outputs = self.lifecycle_outputs
            self._inst.call_lifecycle("gadgetInit")
        except BaseException:
            self.close()
            raise
        self.state = "initialized"
        return self

    def _new_datasource(self, ds: DataSource) -> None:
        ds.field_annotations.update(self.annotations.get(ds.name, {}))
        self.new_datasources.append(ds)

    def _lifecycle(self, name: str, state: str) -> None:
        if self._inst is None and self.state == "new":
            self.init()
        if self._inst is None:
            raise WasmModuleError(self.name, name, f"the module cannot be called any more ({self.state})")
        assert self._inst is not None
        try:
            self._inst.outputs = self.lifecycle_outputs
            self._inst.call_lifecycle(name)
        except BaseException:
            self.close()
            raise
        self.state = state

    def pre_start(self) -> None:
        self._lifecycle("gadgetPreStart", "prestarted")

    def start(self) -> None:
        self._lifecycle("gadgetStart", "started")

    def stop(self) -> None:
        self._lifecycle("gadgetStop", "stopped")

    def post_stop(self) -> None:
        self._lifecycle("gadgetPostStop", "poststopped")

    def run_all_start(self) -> WasmHost:
        """init, pre_start and start."""
        self.init()
        self.pre_start()
        self.start()
        return self

    def close(self) -> None:
        if self._inst is not None:
            self._inst.close()
            self._inst = None
        self.state = "closed"

    def __enter__(self) -> WasmHost:
        return self.init()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what the module did at init ----------------------------------------------------
    @property
    def instance(self) -> Instance:
        if self._inst is None:
            raise WasmModuleError(self.name, "", f"not running ({self.state})")
        return self._inst

    @property
    def imports(self) -> list[str]:
        return self.module.ig_imports

    @property
    def logs(self) -> list[tuple[int, str]]:
        return list(self._inst.logs) if self._inst else []

    def fields(self, ds: str) -> list[Field]:
        return list(self.datasources[ds].fields.values())

    def has_subscribers(self, ds: str) -> bool:
        return any(s.guest for s in self.datasources[ds].subscriptions)

    # -- the runtime's stages in the same chain -----------------------------------------
    def subscribe(self, ds: str, fn: HostSubscriber, priority: int = 0,
                  kind: SubscriptionKind | str = SubscriptionKind.DATA) -> None:
        """``fn(event) -> event | None`` (None drops it; for an array source with kind
        "data" it drops the element), run at ``priority`` among the module's callbacks."""
        if isinstance(kind, str):
            kind = SubscriptionKind[kind.upper()]
        self.datasources[ds].subscribe(kind, priority, fn, guest=False)

    # -- events ---------------------------------------------------------------------
    def push(self, ds: str, event: dict[str, Any]) -> list[Output]:
        """One decoded event of single data source ``ds``; returns every packet that came
        out (this one unless dropped or unreferenced, and what the module emitted)."""
        inst = self._inst
        if inst is None:
            raise WasmModuleError(self.name, abi.CALLBACK, f"not running ({self.state})")
        d = self.datasources[ds]
        if d.fill:
            for k, v in d.fill:
                if k not in event:
                    event[k] = v
        out: list[Output] = []
        inst.outputs = out
        if inst.deadline_at != ticker.ticks:
            inst.refresh_callback_deadline()
        try:
            inst.emit(d, event)
        except HostTrap as e:
            raise WasmModuleError(self.name, abi.CALLBACK, str(e)) from None
        return out

    def push_array(self, ds: str, events: Iterable[dict[str, Any]]) -> list[Output]:
        """One packet of array data source ``ds`` (a snapshot, a map iterator's batch)."""
        inst = self._inst
        if inst is None:
            raise WasmModuleError(self.name, abi.CALLBACK, f"not running ({self.state})")
        d = self.datasources[ds]
        arr = events if isinstance(events, PacketArray) else PacketArray(events, d)
        arr.ds = d
        if d.fill:
            for ev in arr:
                for k, v in d.fill:
                    if k not in ev:
                        ev[k] = v
        out: list[Output] = []
        inst.outputs = out
        inst.refresh_callback_deadline()
        try:
            inst.emit(d, arr)
        except HostTrap as e:
            raise WasmModuleError(self.name, abi.CALLBACK, str(e)) from None
        return out

    def push_many(self, ds: str, events: Iterable[dict[str, Any]]) -> list[Output]:
        """Every event of ``events`` (a batch of single data source ``ds``) as :meth:`push`;
        what came out of all of them, in order."""
        inst = self._inst
        if inst is None:
            raise WasmModuleError(self.name, abi.CALLBACK, f"not running ({self.state})")
        d = self.datasources[ds]
        fill, emit, tk = d.fill, inst.emit, ticker
        out: list[Output] = []
        inst.outputs = out
        try:
            for ev in events:
                if fill:
                    for k, v in fill:
                        if k not in ev:
                            ev[k] = v
                if inst.deadline_at != tk.ticks:
                    inst.refresh_callback_deadline()
                emit(d, ev)
        except HostTrap as e:
            raise WasmModuleError(self.name, abi.CALLBACK, str(e)) from None
        return out

    def pass_through(self, ds: str, events: Iterable[dict[str, Any]]) -> bool:
        """Events of ``ds`` the module is not called for (it failed): as ig shows them
        then, the fields it added at their zero value, the raw text fields as text.
        False when the module unreferenced ``ds`` (nothing of it is shown)."""
        d = self.datasources[ds]
        if not d.referenced:
            return False
        for ev in events:
            for k, v in d.fill:
                ev.setdefault(k, v)
            for name in d.raw_text:
                v = ev.get(name)
                if type(v) is bytes:
                    ev[name] = cstring(v)
            for name in d.raw_hex:
                v = ev.get(name)
                if type(v) is bytes:
                    ev[name] = v.hex()
        return True

    def take_lifecycle_outputs(self) -> list[Output]:
        """What the lifecycle calls emitted since the last call (emptied)."""
        out = list(self.lifecycle_outputs)
        self.lifecycle_outputs.clear()
        return out

    def emit(self, ds: str, event: dict[str, Any] | None = None) -> list[Output]:
        """A packet the runtime creates on a data source (``containers`` events and the
        like): like :meth:`push`, starting from the data source's defaults."""
        ev = self.datasources[ds].new_event()
        if event:
            ev.update(event)
        return self.push(ds, ev)

    def processor(self, ds: str) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
        """A processor for the project's ``Gadget.processors``: returns the event as the
        chain left it (None when dropped or unreferenced); packets of other data sources
        (or more of this one) go to :attr:`side_outputs`."""
        inst = self.instance
        d = self.datasources[ds]
        side, name, emit, tk = self.side_outputs, self.name, inst.emit, ticker

        def wasm_stage(ev: dict[str, Any]) -> dict[str, Any] | None:
            # push(), inlined: this runs once per event
            if d.fill:
                for k, v in d.fill:
                    if k not in ev:
                        ev[k] = v
            out: list[Output] = []
            inst.outputs = out
            if inst.deadline_at != tk.ticks:
                inst.refresh_callback_deadline()
            try:
                emit(d, ev)
            except HostTrap as e:
                raise WasmModuleError(name, abi.CALLBACK, str(e)) from None
            if len(out) == 1 and out[0][0] == ds:
                return out[0][1]
            main = None
            if out and out[-1][0] == ds:
                main = out.pop()[1]
            side.extend(out)
            return main

        return wasm_stage

    def take_side_outputs(self) -> list[Output]:
        out, self.side_outputs[:] = list(self.side_outputs), []
        return out
