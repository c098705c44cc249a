"""readers: records from the kernel, for each kind of data source.

Tracers are read from their ring buffer or perf event array (a reader per tracer, made
before anything is attached: a perf event array drops records sent before its per-CPU
buffers are open); iterators are run; map iterators' hash maps are drained. Records lost
on the kernel side (perf buffer overflow, the SDK's ``<map>_lost_samples`` counter) are
counted per data source.
"""

from __future__ import annotations

import select
import time
from collections import deque

from gadgetsmith.runtime.bpf import libbpf as L
from gadgetsmith.runtime.bpf.loader import LoadedGadget
from gadgetsmith.runtime.bpf.ringbuf import MappedRing, mapped_reading_supported
from gadgetsmith.runtime.pipeline.context import DataSource, RunContext
from gadgetsmith.runtime.pipeline.stage import READERS, Stage

Reader = MappedRing | L.RingBuffer | L.PerfBuffer
#: records per batch: enough to spread the per-batch costs, few enough that a batch's
#: events are still in the CPU caches when the consumer gets them
BATCH = 256


class ReadersStage(Stage):
    """``readers[name]`` and ``queues[name]`` per tracer: the reader's records wait in the
    queue until :meth:`take`. ``perf_buffer_pages``: pages per CPU of perf buffers.
    Ring buffers are read from their mapped pages (:class:`MappedRing`) where the machine
    allows it, else with libbpf's ``ring_buffer__poll``; ``ring_reader="libbpf"`` chooses
    libbpf's everywhere."""

    name = "readers"
    priority = READERS

    def __init__(self, perf_buffer_pages: int = 64, ring_reader: str = "mapped") -> None:
        if ring_reader not in ("mapped", "libbpf"):
            raise ValueError(f"ring_reader must be 'mapped' or 'libbpf', not {ring_reader!r}")
        self.perf_buffer_pages = perf_buffer_pages
        self.ring_reader = ring_reader
        self.readers: dict[str, Reader] = {}
        self.queues: dict[str, deque[bytes]] = {}
        self._ctx: RunContext | None = None
        self._perf_lost: dict[str, int] = {}
        self._lost_seen: dict[str, int] = {}
        self._epoll: select.epoll | None = None
        self._by_fd: dict[int, Reader] = {}

    def start(self, ctx: RunContext) -> None:
        self._ctx = ctx
        loaded = ctx.loaded_gadget()
        for ds in ctx.of_kind("tracer"):
            if ds.map_name:  # not a data source of a WASM module
                self.readers[ds.name] = self._reader(loaded, ds)
        if len(self.readers) > 1:  # one wait for all of them
            self._epoll = select.epoll()
            for r in self.readers.values():
                fd = r.epoll_fd()
                self._epoll.register(fd, select.EPOLLIN)
                self._by_fd[fd] = r

    def _reader(self, loaded: LoadedGadget, ds: DataSource) -> Reader:
        fd = loaded.map_fd(ds.map_name)
        queue = self.queues.setdefault(ds.name, deque())
        if L.map_type(loaded.maps[ds.map_name]) == L.MAP_TYPE_PERF_EVENT_ARRAY:
            def lost(_cpu: int, count: int) -> None:
                self._perf_lost[ds.name] = self._perf_lost.get(ds.name, 0) + count

            return L.PerfBuffer(fd, self.perf_buffer_pages, queue.append, lost)
        if self.ring_reader == "mapped" and mapped_reading_supported():
            size = int(L.lib().bpf_map__max_entries(loaded.maps[ds.map_name]))
            return MappedRing(fd, size, queue.extend)
        return L.RingBuffer(fd, queue.append)

    # -- tracers ----------------------------------------------------------------------
    def take(self, name: str, limit: int = BATCH) -> list[bytes]:
        """Up to ``limit`` of the records of tracer ``name`` read so far (oldest first)."""
        queue = self.queues[name]
        if len(queue) <= limit:
            records = list(queue)
            queue.clear()
            return records
        popleft = queue.popleft
        return [popleft() for _ in range(limit)]

    def queued(self, names: set[str]) -> bool:
        """Whether one of the tracers ``names`` has records read and not taken yet."""
        return any(self.queues.get(n) for n in names)

    def poll(self, timeout_ms: int) -> None:
        """Wait up to ``timeout_ms`` for records of any tracer and read what is there."""
        if not self.readers:  # a gadget whose events all come from its WASM module
            time.sleep(timeout_ms / 1000)
            return
        if self._epoll is None:
            for r in self.readers.values():
                r.poll(timeout_ms)
            return
        try:
            ready = self._epoll.poll(timeout_ms / 1000)
        except InterruptedError:
            return
        for fd, _mask in ready:
            self._by_fd[fd].poll(0)

    def check_lost(self, datasource: str | None = None) -> int:
        """Report records lost since the last check (``ctx.lost``, per tracer), for every
        tracer or only ``datasource``; returns how many."""
        ctx = self._ctx
        if ctx is None or ctx.loaded is None or not ctx.loaded.obj:
            return 0
        loaded, total = ctx.loaded, 0
        for ds in ctx.of_kind("tracer", datasource):
            new = self._perf_lost.pop(ds.name, 0)
            counter = f"{ds.map_name}_lost_samples"
            m = loaded.maps.get(counter)
            if m is not None and L.map_type(m) == L.MAP_TYPE_PERCPU_ARRAY:
                seen = L.percpu_u64_sum(loaded.map_fd(counter))
                new += seen - self._lost_seen.get(counter, 0)
                self._lost_seen[counter] = seen
            if new > 0:
                ctx.lost(new, ds.name)
                total += new
        return total

    # -- iterators and map iterators --------------------------------------------------
    def iterator_records(self, ds: DataSource) -> list[bytes]:
        """Run the iterator programs of ``ds`` once: one record per entry."""
        assert self._ctx is not None and ds.decoder is not None
        loaded, size = self._ctx.loaded_gadget(), ds.decoder.size
        records = []
        for prog in ds.programs:
            data = loaded.run_iterator(prog)
            records += [data[off:off + size] for off in range(0, len(data) - size + 1, size)]
        return records

    def map_records(self, ds: DataSource) -> list[bytes]:
        """Read and empty the hash map of map iterator ``ds``: key then value per entry."""
        assert self._ctx is not None
        pairs = self._ctx.loaded_gadget().drain_hash(ds.map_name, ds.key_size, ds.value_size)
        return [k + v for k, v in pairs]

    def close(self) -> None:
        for r in self.readers.values():
            r.close()
        self.readers = {}
        self._by_fd = {}
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None


__all__ = ["Reader", "ReadersStage"]
