"""ustack: user-space stacks, as ig's ustack operator gives them.

A ``struct gadget_user_stack U`` (filled by <gadget/user_stack_map.h> when the gadget runs
with ``collect-ustack``) gets three text fields, hidden in columns as in ig:

- ``U.addresses``: the frames' addresses from ``ig_ustack``, ``0x%016x; `` each;
- ``U.buildid``: with ``collect-build-id``, each frame's build id and file offset from
  ``ig_build_id`` (``<40 hex digits> +<offset hex>; ``, or ``<ip hex>; `` when the kernel
  had no build id for it);
- ``U.symbols``: each frame's function, from the ELF symbols of the file mapped there in
  the process (``0x<addr>`` when none), ``; `` after each.

All three are "" when the stack was not collected (``U.inode`` is 0) or was lost. The
process is found through the pid of the pid namespace this runtime's /proc shows.
"""

from __future__ import annotations

import ctypes
import os

from gadgetsmith.runtime.bpf import libbpf as L
from gadgetsmith.runtime.bpf.formatted import UserStack, formatted
from gadgetsmith.runtime.events.decode import Column
from gadgetsmith.runtime.pipeline.context import DataSource, RunContext
from gadgetsmith.runtime.pipeline.stage import USTACK, Batch, Event, EventStage, Needs
from gadgetsmith.runtime.symbols.elfsyms import Symbolizer

USTACK_MAP = "ig_ustack"
BUILD_ID_MAP = "ig_build_id"
DEPTH = 127  # GADGET_USER_MAX_STACK_DEPTH of <gadget/user_stack_map.h>
BUILD_ID_FRAME = 32  # sizeof(struct bpf_stack_build_id)
BUILD_ID_EMPTY, BUILD_ID_VALID, BUILD_ID_IP = 0, 1, 2


def own_pidns() -> int:
    """The inode of the pid namespace whose pids this process's /proc shows."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


class UserStackStage(EventStage):
    """Fills ``U.addresses``, ``U.buildid`` and ``U.symbols`` of every user stack field."""

    name = "ustack"
    priority = USTACK

    def __init__(self) -> None:
        self._stacks: dict[str, list[UserStack]] = {}
        self._stack_fd = -1
        self._build_id_fd = -1
        self._pidns = 0
        self._symbolizer = Symbolizer()
        self._addrs = (ctypes.c_uint64 * DEPTH)()
        self._build_ids = ctypes.create_string_buffer(DEPTH * BUILD_ID_FRAME)

    def needs(self) -> Needs:
        return Needs(changes=True)

    def pre_start(self, ctx: RunContext) -> None:
        infos = ctx.object.datasources if ctx.object is not None else {}
        for ds in ctx.datasources.values():
            info = infos.get(ds.name)
            if ds.decoder is None or info is None:
                continue
            stacks = formatted(ds.decoder.fields, info.annotations).user_stacks
            if not stacks:
                continue
            if ctx.object is None or USTACK_MAP not in ctx.object.maps:
                ctx.warn(f"data source {ds.name}: user stacks are not read: the object has no "
                         f"{USTACK_MAP} map (#include <gadget/user_stack_map.h>)")
                continue
            self._stacks[ds.name] = stacks
            for u in stacks:
                self._columns(ds, u)

    @staticmethod
    def _columns(ds: DataSource, u: UserStack) -> None:
        for c in ds.columns:
            if c.name == u.name or c.name.startswith(u.name + "."):
                c.hidden = True
        at = max((i for i, c in enumerate(ds.columns) if c.name.startswith(u.name + ".")),
                 default=len(ds.columns) - 1)
        ds.columns[at + 1:at + 1] = [Column(n, hidden=True, derived=True) for n in u.added]
        for n in u.added:
            ds.added[n] = ""

    def start(self, ctx: RunContext) -> None:
        if not self._stacks:
            return
        loaded = ctx.loaded_gadget()
        self._stack_fd = loaded.map_fd(USTACK_MAP)
        if BUILD_ID_MAP in loaded.maps:
            m = loaded.maps[BUILD_ID_MAP]
            if L.lib().bpf_map__value_size(m) == DEPTH * BUILD_ID_FRAME:
                self._build_id_fd = loaded.map_fd(BUILD_ID_MAP)
        self._pidns = own_pidns()

    def process(self, batch: Batch) -> list[Batch]:
        stacks = self._stacks.get(batch.datasource.name)
        if stacks:
            for ev in batch.events:
                for u in stacks:
                    self._fill(ev, u.name)
        return [batch]

    def _pid(self, ev: Event, p: str) -> int:
        """The stack's process as this runtime's /proc numbers it (0: not visible here)."""
        for level in ("0", "1"):
            if ev.get(f"{p}.pidns_level{level}") == self._pidns:
                return int(ev.get(f"{p}.pid_level{level}", 0))
        return int(ev.get(f"{p}.tgid_level0", 0)) if not self._pidns else 0

    def _fill(self, ev: Event, p: str) -> None:
        addresses = buildid = symbols = ""
        if ev.get(f"{p}.inode", 0) and self._stack_fd >= 0:
            stack_id = ev.get(f"{p}.stack_id", 0)
            ips = self._read_stack(stack_id)
            if ips:
                addresses = "".join(f"0x{ip:016x}; " for ip in ips)
                buildid = self._read_build_ids(stack_id, len(ips))
                pid = self._pid(ev, p)
                layout = ev.get(f"{p}.base_addr_hash", 0)
                names = [self._symbolizer.symbol(pid, ip, layout) if pid else "" for ip in ips]
                symbols = "".join(f"{n or f'0x{ip:x}'}; " for n, ip in zip(names, ips, strict=True))
        ev[f"{p}.addresses"] = addresses
        ev[f"{p}.buildid"] = buildid
        ev[f"{p}.symbols"] = symbols

    def _read_stack(self, stack_id: int) -> list[int]:
        key = ctypes.c_uint32(stack_id & 0xFFFFFFFF)
        if L.lib().bpf_map_lookup_elem(self._stack_fd, ctypes.byref(key), self._addrs) != 0:
            return []
        out = []
        for ip in self._addrs:
            if not ip:
                break
            out.append(ip)
        return out

    def _read_build_ids(self, stack_id: int, frames: int) -> str:
        """ig's build id text for the first ``frames`` frames ("" without collect-build-id)."""
        if self._build_id_fd < 0:
            return ""
        key = ctypes.c_uint32(stack_id & 0xFFFFFFFF)
        if L.lib().bpf_map_lookup_elem(self._build_id_fd, ctypes.byref(key), self._build_ids) != 0:
            return ""
        raw = self._build_ids.raw
        out = []
        for i in range(frames):
            frame = raw[i * BUILD_ID_FRAME:(i + 1) * BUILD_ID_FRAME]
            status = int.from_bytes(frame[:4], "little", signed=True)
            where = int.from_bytes(frame[24:32], "little")
            if status == BUILD_ID_VALID:
                out.append(f"{frame[4:24].hex()} +{where:x}; ")
            elif status == BUILD_ID_IP:
                out.append(f"{where:x}; ")
            else:
                break
        return "".join(out)

    def describe(self) -> str:
        return "ustack" + (f"({', '.join(sorted(self._stacks))})" if self._stacks else "")


__all__ = ["UserStackStage"]
