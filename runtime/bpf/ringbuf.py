"""A BPF ring buffer read from its mapped pages, a batch of records per call.

libbpf's ``ring_buffer__poll`` calls back into Python for every record (a ctypes
callback, then a copy: about a microsecond each). :class:`MappedRing` maps the ring
itself, as cilium/ebpf's reader does, and walks the records in a Python loop: one slice
per record, the consumer position stored once per batch.

The kernel's layout (``kernel/bpf/ringbuf.c``): page 0 of the map holds the consumer
position (ours to write), page 1 the producer position; the data pages follow, mapped
twice in a row so that a record that wraps around the end reads as one piece. Each
record starts with an 8-byte header: its length, with bit 31 set while the producer is
still writing it (busy) and bit 30 when it was discarded, then a page offset. Records are
8-byte aligned.

Ordering: the producer clears the busy bit with a release store after writing the
record; this reader loads the header before the record's bytes and stores the consumer
position after them. x86-64 keeps loads in order and never moves a store before an
earlier load, so plain loads and stores suffice there; on other architectures
:func:`mapped_reading_supported` is false and the runtime uses libbpf's reader.

Wake-ups: the kernel wakes a waiting reader when a record is committed at the consumer
position (the reader had caught up). After storing the position the reader reads the
producer position again and goes on when records arrived meanwhile, so it never sleeps
with records pending (what libbpf's loop does too).
"""

from __future__ import annotations

import ctypes
import mmap
import platform
import select
import struct
from collections.abc import Callable

_BUSY = 1 << 31
_DISCARD = 1 << 30
_LEN_MASK = _DISCARD - 1
_HEADER = 8
_U32 = struct.Struct("<I").unpack_from
_U64 = struct.Struct("<Q").unpack_from


def mapped_reading_supported() -> bool:
    """Whether this machine's memory ordering lets the Python loop read the ring (x86-64)."""
    return platform.machine() == "x86_64"


class MappedRing:
    """Records of the ring buffer map ``map_fd`` of ``size`` bytes (its max_entries: a
    power of two, a multiple of the page size), handed to ``on_records`` as a list of
    bytes per call, at most ``batch`` per :meth:`poll` (the rest waits in the ring, where
    a full ring shows up as the gadget's lost samples)."""

    def __init__(self, map_fd: int, size: int, on_records: Callable[[list[bytes]], object],
                 batch: int = 4096) -> None:
        if size <= 0 or size & (size - 1) or size % mmap.PAGESIZE:
            raise ValueError(f"ring buffer size {size} is not a power of two of whole pages")
        page = mmap.PAGESIZE
        self._consumer = mmap.mmap(map_fd, page, mmap.MAP_SHARED,
                                   mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        try:
            self._data = mmap.mmap(map_fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ,
                                   offset=page)
        except BaseException:
            self._consumer.close()
            raise
        self._cons = ctypes.c_uint64.from_buffer(self._consumer)  # one 8-byte store
        self._mask = size - 1
        self._base = page  # the data pages, after the producer's page
        self._on_records = on_records
        self.batch = batch
        self._epoll = select.epoll()
        self._epoll.register(map_fd, select.EPOLLIN)
        self._closed = False

    def pending(self) -> bool:
        """Records (or a record being written) past the consumer position."""
        return bool(_U64(self._data, 0)[0] > self._cons.value)

    def read(self) -> int:
        """Hand over up to ``batch`` committed records now; returns how many."""
        data, mask, base, limit = self._data, self._mask, self._base, self.batch
        cons = start = self._cons.value
        out: list[bytes] = []
        append = out.append
        while True:
            prod = _U64(data, 0)[0]
            while cons < prod and len(out) < limit:
                at = base + (cons & mask)
                length = _U32(data, at)[0]
                if length & _BUSY:
                    prod = cons  # not committed yet: the batch ends before it
                    break
                n = length & _LEN_MASK
                if not length & _DISCARD:
                    append(data[at + _HEADER:at + _HEADER + n])
                cons += (n + _HEADER + 7) & ~7
            if cons == start:
                break
            self._cons.value = start = cons  # what was read may be overwritten now
            if len(out) >= limit or cons == prod and prod == _U64(data, 0)[0]:
                break
        if out:
            self._on_records(out)
        return len(out)

    def poll(self, timeout_ms: int) -> int:
        """Read what is there; when nothing is, wait up to ``timeout_ms`` for records."""
        got = self.read()
        if got or timeout_ms == 0 or self.pending():
            return got
        try:
            self._epoll.poll(timeout_ms / 1000 if timeout_ms > 0 else -1)
        except InterruptedError:
            return 0
        return self.read()

    def epoll_fd(self) -> int:
        """An fd that polls readable when the ring has records (for one wait on several)."""
        return self._epoll.fileno()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._epoll.close()
        del self._cons  # the ctypes view must go before its mapping
        self._consumer.close()
        self._data.close()


__all__ = ["MappedRing", "mapped_reading_supported"]
