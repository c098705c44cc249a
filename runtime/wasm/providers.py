"""What the host needs from the runtime besides data sources: small interfaces.

The runtime implements them over libbpf (maps, perf readers, the mount-namespace filter
map) and its parameters; :mod:`.syscalls` has the machine's syscall table and ``/proc/kallsyms``.

Errors: a provider raises (any exception) or returns None; the host turns that into the
API's error return value and logs it at debug level, as IG does.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from gadgetsmith.runtime.wasm.syscalls import ProcKallsyms, SyscallDeclaration, SystemSyscalls


class MapType(enum.IntEnum):
    """cilium/ebpf's (and the kernel's) map type numbers, as IG's Go SDK lists them."""
    UNSPEC = 0
    HASH = 1
    ARRAY = 2
    PROG_ARRAY = 3
    PERF_EVENT_ARRAY = 4
    PERCPU_HASH = 5
    PERCPU_ARRAY = 6
    STACK_TRACE = 7
    CGROUP_ARRAY = 8
    LRU_HASH = 9
    LRU_PERCPU_HASH = 10
    LPM_TRIE = 11
    ARRAY_OF_MAPS = 12
    HASH_OF_MAPS = 13
    DEVMAP = 14
    SOCKMAP = 15
    CPUMAP = 16
    XSKMAP = 17
    SOCKHASH = 18
    CGROUP_STORAGE = 19
    REUSEPORT_SOCKARRAY = 20
    PERCPU_CGROUP_STORAGE = 21
    QUEUE = 22
    STACK = 23
    SK_STORAGE = 24
    DEVMAP_HASH = 25
    STRUCT_OPS = 26
    RINGBUF = 27
    INODE_STORAGE = 28
    TASK_STORAGE = 29
    BLOOM_FILTER = 30
    USER_RINGBUF = 31
    CGRP_STORAGE = 32
    ARENA = 33


MAX_MAP_TYPE = MapType.ARENA
FD_ARRAY_MAPS = frozenset({MapType.PROG_ARRAY, MapType.PERF_EVENT_ARRAY, MapType.CGROUP_ARRAY})
MAP_OF_MAPS = frozenset({MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS})

# mapUpdate flags (BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK)
UPDATE_ANY, UPDATE_NOEXIST, UPDATE_EXIST, UPDATE_LOCK = 0, 1, 2, 4


@dataclass(frozen=True)
class MapSpec:
    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int


@runtime_checkable
class Map(Protocol):
    spec: MapSpec

    def lookup(self, key: bytes) -> bytes | None: ...
    # for a map of maps ``value`` is the inner Map, which the runtime turns into its fd
    def update(self, key: bytes, value: bytes | Map, flags: int) -> None: ...
    def delete(self, key: bytes) -> None: ...
    def close(self) -> None: ...


class MapProvider(Protocol):
    def get_map(self, name: str) -> Map | None: ...            # the gadget's own maps
    def new_map(self, spec: MapSpec) -> Map: ...               # newMap
    def map_from_id(self, map_id: int) -> Map | None: ...      # inner maps of maps of maps


class PerfReader(Protocol):
    def read(self) -> bytes | None: ...   # one record; None when the deadline passed
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def close(self) -> None: ...


class PerfProvider(Protocol):
    def new_reader(self, perf_map: Map, size: int, overwritable: bool) -> PerfReader: ...


class SyscallTable(Protocol):
    def name(self, nr: int) -> str | None: ...
    def number(self, name: str) -> int | None: ...
    def declaration(self, name: str) -> SyscallDeclaration | None: ...


class Kallsyms(Protocol):
    def exists(self, symbol: str) -> bool: ...


class MntnsFilter(Protocol):
    def should_discard(self, mntns_id: int) -> bool: ...


class NoMaps:
    """No eBPF maps: getMap finds nothing, newMap fails."""

    def get_map(self, name: str) -> Map | None:
        return None

    def new_map(self, spec: MapSpec) -> Map:
        raise OSError("no map provider")

    def map_from_id(self, map_id: int) -> Map | None:
        return None


class NoPerf:
    def new_reader(self, perf_map: Map, size: int, overwritable: bool) -> PerfReader:
        raise OSError("no perf reader provider")


@dataclass
class Providers:
    """Everything outside the data sources, with working defaults: no params, an empty
    config dict, no maps or perf readers, the machine's syscall table and kallsyms, no
    mount-namespace filter (nothing is discarded, as IG without a filter map)."""
    params: Mapping[str, str] = field(default_factory=dict)
    config: MutableMapping[str, Any] | None = field(default_factory=dict)
    maps: MapProvider = field(default_factory=NoMaps)
    perf: PerfProvider = field(default_factory=NoPerf)
    syscalls: SyscallTable = field(default_factory=SystemSyscalls.shared)
    kallsyms: Kallsyms = field(default_factory=ProcKallsyms.shared)
    mntns_filter: MntnsFilter | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("gadgetsmith.wasm"))
    # gadgetShouldLog: 0 error, 1 warn, 2 info (IG's default), 3 debug, 4 trace; -1 none
    log_level: int = 2
