"""A perf event array read record by record, optionally in overwrite mode.

libbpf's perf buffer calls back for every record and cannot read a ring the kernel
writes backwards (overwrite mode: the newest records replace the oldest, a flight
recorder). :class:`PerfRing` opens one ``PERF_COUNT_SW_BPF_OUTPUT`` event per CPU, maps
its ring and puts its fd into the map at the CPU's index, as ``bpf_perf_event_output``
expects; :meth:`PerfRing.read` returns one record's raw sample at a time and None when
every ring is empty. In overwrite mode the ring is only read while it is paused
(:meth:`PerfRing.pause`, as cilium/ebpf's reader does), newest record first, each record
once.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import platform
import struct

from gadgetsmith.runtime.bpf import libbpf as L
from gadgetsmith.runtime.errors import LibbpfError

_NR_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241}
PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_BPF_OUTPUT = 10
PERF_SAMPLE_RAW = 1 << 10
PERF_FLAG_FD_CLOEXEC = 1 << 3
_WRITE_BACKWARD = 1 << 27       # perf_event_attr flag bit
_IOC_PAUSE_OUTPUT = 0x40042409  # _IOW('$', 9, __u32)
_RECORD_LOST = 2
_RECORD_SAMPLE = 9
_ATTR = struct.Struct("<IIQQQQQII")  # type size config period sample_type read_format flags wakeup bp_type
_ATTR_SIZE = 128
_HEADER = struct.Struct("<IHH")
# struct perf_event_mmap_page: data_head, data_tail, data_offset, data_size
_PAGE_FIELDS = struct.Struct("<QQQQ")
_PAGE_FIELDS_AT = 1024

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.ioctl.restype = ctypes.c_int
_libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong]


def _perf_event_open(cpu: int, overwritable: bool) -> int:
    nr = _NR_PERF_EVENT_OPEN.get(platform.machine())
    if nr is None:
        raise LibbpfError(f"perf_event_open on {platform.machine()}", errno.ENOSYS)
    flags = _WRITE_BACKWARD if overwritable else 0
    attr = bytearray(_ATTR_SIZE)
    _ATTR.pack_into(attr, 0, PERF_TYPE_SOFTWARE, _ATTR_SIZE, PERF_COUNT_SW_BPF_OUTPUT, 1,
                    PERF_SAMPLE_RAW, 0, flags, 1, 0)
    buf = (ctypes.c_char * _ATTR_SIZE).from_buffer(attr)
    fd = _libc.syscall(ctypes.c_long(nr), buf, ctypes.c_int(-1), ctypes.c_int(cpu),
                       ctypes.c_int(-1), ctypes.c_ulong(PERF_FLAG_FD_CLOEXEC))
    if fd < 0:
        raise LibbpfError(f"perf_event_open for CPU {cpu}", ctypes.get_errno())
    return int(fd)


class _Ring:
    """One CPU's event and its mapped ring."""

    def __init__(self, cpu: int, pages: int, overwritable: bool) -> None:
        self.cpu = cpu
        self.fd = _perf_event_open(cpu, overwritable)
        page = mmap.PAGESIZE
        prot = mmap.PROT_READ if overwritable else mmap.PROT_READ | mmap.PROT_WRITE
        try:
            self.mem = mmap.mmap(self.fd, (pages + 1) * page, mmap.MAP_SHARED, prot)
        except OSError as e:
            os.close(self.fd)
            raise LibbpfError(f"mapping the perf ring of CPU {cpu}", e.errno or errno.ENOMEM) from None
        _head, _tail, offset, size = _PAGE_FIELDS.unpack_from(self.mem, _PAGE_FIELDS_AT)
        self.offset = offset or page
        self.size = size or pages * page
        self.view = memoryview(self.mem)
        #: overwrite mode: the head up to which records were read (the next read stops there)
        self.seen: int | None = None

    def _bytes(self, pos: int, n: int) -> bytes:
        start = self.offset + pos % self.size
        end = start + n
        limit = self.offset + self.size
        if end <= limit:
            return bytes(self.view[start:end])
        return bytes(self.view[start:limit]) + bytes(self.view[self.offset:self.offset + end - limit])

    def head(self) -> int:
        return int.from_bytes(self.view[_PAGE_FIELDS_AT:_PAGE_FIELDS_AT + 8], "little")

    def forward(self, out: list[bytes]) -> int:
        """Records from the tail to the head (normal mode); the lost count seen."""
        head = self.head()
        tail = int.from_bytes(self.view[_PAGE_FIELDS_AT + 8:_PAGE_FIELDS_AT + 16], "little")
        lost = 0
        while tail < head:
            typ, _misc, size = _HEADER.unpack(self._bytes(tail, 8))
            if size < 8:
                break
            lost += self._record(typ, tail, size, out)
            tail += size
        self.view[_PAGE_FIELDS_AT + 8:_PAGE_FIELDS_AT + 16] = tail.to_bytes(8, "little")
        return lost

    def backward(self, out: list[bytes]) -> int:
        """Overwrite mode: records from the head (the newest) on, until a never-written
        header, the end of the ring, or what the previous read reached."""
        head = self.head()
        mask = (1 << 64) - 1
        stop = self.size if self.seen is None else min(self.size, (self.seen - head) & mask)
        pos, lost = 0, 0
        while pos + 8 <= stop:
            typ, _misc, size = _HEADER.unpack(self._bytes(head + pos, 8))
            if size < 8 or pos + size > stop:
                break
            lost += self._record(typ, head + pos, size, out)
            pos += size
        self.seen = head
        return lost

    def _record(self, typ: int, pos: int, size: int, out: list[bytes]) -> int:
        if typ == _RECORD_SAMPLE:
            raw_size = int.from_bytes(self._bytes(pos + 8, 4), "little")
            out.append(self._bytes(pos + 12, min(raw_size, size - 12)))
        elif typ == _RECORD_LOST:
            return int.from_bytes(self._bytes(pos + 16, 8), "little")
        return 0

    def pause(self, on: bool) -> None:
        if _libc.ioctl(self.fd, _IOC_PAUSE_OUTPUT, 1 if on else 0) < 0:
            raise LibbpfError("pausing a perf ring" if on else "resuming a perf ring",
                              ctypes.get_errno())

    def close(self) -> None:
        self.view.release()
        self.mem.close()
        os.close(self.fd)


class PerfRing:
    """Perf rings of ``size`` bytes per CPU (rounded up to a power of two of pages) on the
    perf event array ``map_fd``. ``lost`` counts records the kernel could not write."""

    def __init__(self, map_fd: int, size: int, overwritable: bool = False) -> None:
        pages = 1
        while pages * mmap.PAGESIZE < size:
            pages *= 2
        self.map_fd = map_fd
        self.overwritable = overwritable
        self.paused = False
        self.lost = 0
        self._pending: list[bytes] = []
        self._rings: list[_Ring] = []
        try:
            for cpu in range(L.num_possible_cpus()):
                try:
                    ring = _Ring(cpu, pages, overwritable)
                except LibbpfError as e:
                    if e.err == errno.ENODEV:      # a possible CPU that is not online
                        continue
                    raise
                self._rings.append(ring)
                L.map_update(map_fd, cpu.to_bytes(4, "little"), ring.fd.to_bytes(4, "little"))
        except BaseException:
            self.close()
            raise

    def read(self) -> bytes | None:
        """The next record's raw sample, or None when there is none now (in overwrite
        mode: none until the next pause)."""
        if not self._pending:
            if self.overwritable and not self.paused:
                return None
            out: list[bytes] = []
            for ring in self._rings:
                self.lost += ring.backward(out) if self.overwritable else ring.forward(out)
            out.reverse()
            self._pending = out
        return self._pending.pop() if self._pending else None

    def pause(self) -> None:
        for ring in self._rings:
            ring.pause(True)
        self.paused = True

    def resume(self) -> None:
        for ring in self._rings:
            ring.pause(False)
        self.paused = False

    def close(self) -> None:
        for ring in self._rings:
            try:
                L.lib().bpf_map_delete_elem(self.map_fd, ring.cpu.to_bytes(4, "little"))
            except OSError:
                pass
            ring.close()
        self._rings = []
        self._pending = []
