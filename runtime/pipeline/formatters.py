"""formatters: the fields ig's formatters derive from special types, after decode (the
names come from :mod:`gadgetsmith.runtime.bpf.formatted`, as the object model reports them).

- ``struct gadget_l3endpoint_t`` ``P``: ``P.addr`` (the address as text) replaces
  ``P.addr_raw``; the column ``P`` shows the address.
- ``struct gadget_l4endpoint_t`` ``P``: ``P.addr`` and ``P.proto`` (IANA's name of
  ``P.proto_raw``); the column ``P`` shows ``addr:port`` (ig's ``P.endpoint``, which
  JSON does not print).
- ``gadget_kernel_stack`` ``K_raw`` (a stack id in the gadget's ``ig_kstack`` map):
  ``K`` (or the name ``ebpf.formatter.kstack`` gives), the frames' function names from
  ``/proc/kallsyms``, each followed by ``"; "``; "" when the stack was lost.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

from gadgetsmith.runtime.bpf import libbpf as L
from gadgetsmith.runtime.bpf.formatted import KSTACK_TARGET, Endpoint, KernelStack, formatted
from gadgetsmith.runtime.events.decode import Column
from gadgetsmith.runtime.events.netfmt import ip_text, proto_name
from gadgetsmith.runtime.pipeline.context import DataSource, RunContext
from gadgetsmith.runtime.pipeline.stage import FORMATTERS, Batch, Event, EventStage, Needs
from gadgetsmith.runtime.symbols.kallsyms import KernelSymbols

KSTACK_MAP = "ig_kstack"
KSTACK_DEPTH = 127  # GADGET_KERNEL_MAX_STACK_DEPTH of <gadget/kernel_stack_map.h>

Format = Callable[[Event], None]


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


class FormattersStage(EventStage):
    """Adds ig's formatted fields (see the module docstring) to every data source that
    has the types, and their columns; the fields read are the stage's own."""

    name = "formatters"
    priority = FORMATTERS

    def __init__(self) -> None:
        self._formats: dict[str, list[Format]] = {}
        self._ksyms: KernelSymbols | None = None
        self._kstack_fd = -1
        self._kstack_buf = (ctypes.c_uint64 * KSTACK_DEPTH)()
        self._wants_kstack = False

    def needs(self) -> Needs:
        return Needs(changes=True)

    def pre_start(self, ctx: RunContext) -> None:
        infos = ctx.object.datasources if ctx.object is not None else {}
        for ds in ctx.datasources.values():
            if ds.decoder is None:
                continue
            info = infos.get(ds.name)
            annotations = info.annotations if info is not None else {}
            plan = formatted(ds.decoder.fields, annotations)
            formats = [self._endpoint(ds, e, annotations.get(e.name, {})) for e in plan.endpoints]
            for k in plan.kernel_stacks:
                fmt = self._kstack(ctx, ds, k)
                if fmt is not None:
                    formats.append(fmt)
            if formats:
                self._formats[ds.name] = formats

    def start(self, ctx: RunContext) -> None:
        if self._wants_kstack:
            self._ksyms = KernelSymbols()
            self._kstack_fd = ctx.loaded_gadget().map_fd(KSTACK_MAP)

    def process(self, batch: Batch) -> list[Batch]:
        formats = self._formats.get(batch.datasource.name)
        if formats:
            for ev in batch.events:
                for fmt in formats:
                    fmt(ev)
        return [batch]

    def describe(self) -> str:
        return "formatters" + (f"({', '.join(sorted(self._formats))})" if self._formats else "")

    # -- endpoints ----------------------------------------------------------------------
    def _endpoint(self, ds: DataSource, e: Endpoint, ann: dict[str, str]) -> Format:
        p = e.name
        raw6, raw6i, raw4 = f"{p}.addr_raw.v6", f"{p}.addr_raw.v6_raw", f"{p}.addr_raw.v4"
        version, proto_raw = f"{p}.version", f"{p}.proto_raw"
        addr, proto, with_proto = f"{p}.addr", f"{p}.proto", e.proto
        ds.removed |= e.removed
        for name in e.added:
            ds.added[name] = ""
        self._endpoint_columns(ds, e, ann)

        def fmt(ev: Event) -> None:
            raw = ev.pop(raw6, None)
            ev.pop(raw4, None)
            ev.pop(raw6i, None)
            text = ip_text(bytes(raw), ev.get(version, 0)) if raw is not None else ""
            ev[addr] = text
            if with_proto:
                ev[proto] = proto_name(ev.get(proto_raw, 0)) if text else ""

        return fmt

    @staticmethod
    def _endpoint_columns(ds: DataSource, e: Endpoint, ann: dict[str, str]) -> None:
        p, cols = e.name, ds.columns
        at = next((i for i, c in enumerate(cols) if c.name == p), len(cols))
        width = cols[at].width if at < len(cols) else 0
        hidden = str(ann.get("columns.hidden", "false")).lower() == "true"
        # the struct's own column gives way to the endpoint's (--fields P finds that one)
        cols[:] = [c for c in cols if c.name not in e.removed and c.name != p]
        for c in cols:  # the members show through the endpoint's one column
            if c.name.startswith(p + "."):
                c.hidden = True
        new = [Column(f"{p}.addr", hidden=True, derived=True)]
        if e.proto:
            new.append(Column(f"{p}.proto", hidden=True, derived=True))
        if e.l4:
            port, addr = f"{p}.port", f"{p}.addr"

            def endpoint(ev: dict[str, Any]) -> str:
                a = ev.get(addr, "")
                return f"{a}:{ev.get(port, 0)}" if a else ""

            new.append(Column(f"{p}.endpoint", hidden=hidden, alias=_short(p), width=width,
                              derived=True, value=endpoint))
        else:
            new[0] = Column(f"{p}.addr", hidden=hidden, alias=_short(p), width=width, derived=True)
        at = min(at, len(cols))
        cols[at:at] = new

    # -- kernel stacks ------------------------------------------------------------------
    def _kstack(self, ctx: RunContext, ds: DataSource, k: KernelStack) -> Format | None:
        if not k.target:
            ctx.warn(f"data source {ds.name}: kernel stack field {k.name} is not formatted: "
                     f"name it {_short(k.name)}_raw or give it the annotation {KSTACK_TARGET}")
            return None
        if ctx.object is None or KSTACK_MAP not in ctx.object.maps:
            ctx.warn(f"data source {ds.name}: kernel stack field {k.name} is not formatted: the "
                     f"object has no {KSTACK_MAP} map (#include <gadget/kernel_stack_map.h>)")
            return None
        self._wants_kstack = True
        name, target = k.name, k.target
        ds.added[target] = ""
        for c in ds.columns:
            if c.name == name:
                c.hidden = True
        at = next((i for i, c in enumerate(ds.columns) if c.name == name), len(ds.columns))
        ds.columns.insert(at + 1, Column(target, derived=True))

        def fmt(ev: Event) -> None:
            ev[target] = self.kernel_stack(ev.get(name, 0))

        return fmt

    def kernel_stack(self, stack_id: int) -> str:
        """The text of stack ``stack_id`` of ``ig_kstack`` ("" when it is not there)."""
        if self._ksyms is None or self._kstack_fd < 0:
            return ""
        buf = self._kstack_buf
        key = ctypes.c_uint32(stack_id & 0xFFFFFFFF)
        if L.lib().bpf_map_lookup_elem(self._kstack_fd, ctypes.byref(key), buf) != 0:
            return ""
        return self._ksyms.format_stack(list(buf))


__all__ = ["FormattersStage"]
