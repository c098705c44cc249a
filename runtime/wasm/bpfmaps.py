"""The host's providers over the kernel: eBPF maps, perf readers, the container filter.

:class:`KernelMaps` gives a module the gadget's own maps by name (``getMap``), creates
maps (``newMap``) and opens inner maps of maps of maps by id (``mapLookup``);
:class:`KernelPerf` reads perf event arrays with :class:`~gadgetsmith.runtime.bpf.perfring.PerfRing`;
:class:`KernelMntnsFilter` answers ``shouldDiscardMntnsID`` from the gadget's mount
namespace filter map, as IG's host does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from gadgetsmith.runtime.bpf import libbpf as L
from gadgetsmith.runtime.bpf.perfring import PerfRing
from gadgetsmith.runtime.wasm.providers import MAP_OF_MAPS, Map, MapSpec, MapType, PerfReader

_PERCPU = frozenset({MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH,
                     MapType.PERCPU_CGROUP_STORAGE})
# maps without keys
_KEYLESS = frozenset({MapType.QUEUE, MapType.STACK, MapType.RINGBUF, MapType.BLOOM_FILTER})


class KernelMap:
    """A map by fd. ``owned``: this object opened the fd and closes it."""

    def __init__(self, fd: int, owned: bool, name: str = "") -> None:
        typ, mid, ks, vs, me, kname = L.map_info(fd)
        self.fd = fd
        self.owned = owned
        self.id = mid
        self.spec = MapSpec(name or kname, typ, ks, vs, me)
        self._value_size = vs * (L.num_possible_cpus() if typ in _PERCPU else 1)

    def lookup(self, key: bytes) -> bytes | None:
        return L.map_lookup(self.fd, key, self._value_size)

    def update(self, key: bytes, value: bytes | Map, flags: int) -> None:
        if self.spec.type in MAP_OF_MAPS:
            if not isinstance(value, KernelMap):
                raise TypeError("a map of maps takes a map")
            value = value.fd.to_bytes(4, "little")
        elif not isinstance(value, (bytes, bytearray)):
            raise TypeError("the value must be bytes")
        L.map_update(self.fd, key, bytes(value), flags)

    def delete(self, key: bytes) -> None:
        L.map_delete(self.fd, key)

    def close(self) -> None:
        if self.owned and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class KernelMaps:
    """``maps``: the gadget's maps, name -> fd (or a function giving the fd of a name,
    such as ``LoadedGadget.map_fd``); the host never closes those."""

    def __init__(self, maps: Mapping[str, int] | None = None,
                 fd_of: Callable[[str], int | None] | None = None) -> None:
        self._named = dict(maps or {})
        self._fd_of = fd_of
        self._opened: list[KernelMap] = []

    def get_map(self, name: str) -> KernelMap | None:
        fd = self._named.get(name)
        if fd is None and self._fd_of is not None:
            fd = self._fd_of(name)
        return None if fd is None else KernelMap(fd, False, name)

    def new_map(self, spec: MapSpec) -> KernelMap:
        if spec.type in MAP_OF_MAPS:
            raise OSError("a map of maps needs an inner map template, which newMap cannot give")
        key_size = 0 if spec.type in _KEYLESS else spec.key_size
        entries = spec.max_entries
        if spec.type == MapType.PERF_EVENT_ARRAY and entries == 0:
            entries = L.num_possible_cpus()     # as cilium/ebpf, which IG's host uses
        fd = L.map_create(spec.type, spec.name, key_size, spec.value_size, entries)
        return self._keep(KernelMap(fd, True, spec.name))

    def map_from_id(self, map_id: int) -> KernelMap | None:
        return self._keep(KernelMap(L.map_fd_by_id(map_id), True))

    def _keep(self, m: KernelMap) -> KernelMap:
        self._opened.append(m)
        return m

    def close(self) -> None:
        """Close every map this provider opened (newMap's and inner maps)."""
        for m in self._opened:
            m.close()
        self._opened.clear()


class KernelPerf:
    """Perf readers on perf event arrays (IG's ``newPerfReader``)."""

    def __init__(self) -> None:
        self._rings: list[PerfRing] = []

    def new_reader(self, perf_map: Map, size: int, overwritable: bool) -> PerfReader:
        if not isinstance(perf_map, KernelMap) or perf_map.spec.type != MapType.PERF_EVENT_ARRAY:
            raise OSError(f"map {perf_map.spec.name!r} is not a perf event array")
        ring = PerfRing(perf_map.fd, size, overwritable)
        self._rings.append(ring)
        return ring

    def close(self) -> None:
        for r in self._rings:
            r.close()
        self._rings.clear()


class KernelMntnsFilter:
    """IG's rule: with the container filter on, a mount namespace the filter map lacks is
    discarded; with it off (``--host``), nothing is."""

    def __init__(self, fd: int, enabled: bool = True) -> None:
        self.fd = fd
        self.enabled = enabled

    def should_discard(self, mntns_id: int) -> bool:
        if not self.enabled:
            return False
        return L.map_lookup(self.fd, mntns_id.to_bytes(8, "little"), 4) is None
