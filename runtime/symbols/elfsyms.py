"""User-space symbols: a process's stack addresses -> the functions of its ELF files.

Each address is looked up in the process's ``/proc/PID/maps``: the mapping gives the
file and the offset in it, the file's ``PT_LOAD`` program headers turn that offset into
the address the ELF symbols use, and the symbol whose ``[value, value + size)`` holds it
names the frame (``.symtab``, else ``.dynsym`` for stripped files). ig's ``symtab``
symbolizer does the same for the main executable only; libraries are resolved here too.
Files are read through ``/proc/PID/map_files`` (a container's own copy, even deleted) or
``/proc/PID/root``. Symbol tables are cached by (device, inode, mtime).
"""

from __future__ import annotations

import mmap
import os
import struct
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass

PT_LOAD = 1
SHT_SYMTAB, SHT_DYNSYM = 2, 11
STT_FUNC, STT_GNU_IFUNC = 2, 10
MAX_FILE = 512 << 20  # larger files are not read (as ig)
MAX_NAME = 256


@dataclass(frozen=True)
class Mapping:
    start: int
    end: int
    offset: int
    path: str


class SymbolTable:
    """The function symbols of one ELF file and its loadable segments."""

    def __init__(self, data: bytes | mmap.mmap) -> None:
        if data[:4] != b"\x7fELF" or data[4] != 2:
            raise ValueError("not a 64-bit ELF file")
        endian = "<" if data[5] == 1 else ">"
        self.segments: list[tuple[int, int, int]] = []  # (p_offset, p_filesz, p_vaddr)
        phoff = struct.unpack_from(endian + "Q", data, 0x20)[0]
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
        for i in range(phnum):
            ptype, _flags, off, vaddr, _paddr, filesz = struct.unpack_from(
                endian + "IIQQQQ", data, phoff + i * phentsize)
            if ptype == PT_LOAD:
                self.segments.append((off, filesz, vaddr))
        syms = self._symbols(data, endian, SHT_SYMTAB) or self._symbols(data, endian, SHT_DYNSYM)
        syms.sort()
        self._values = [v for v, _s, _n in syms]
        self._syms = syms

    @staticmethod
    def _symbols(data: bytes | mmap.mmap, e: str, want: int) -> list[tuple[int, int, str]]:
        shoff = struct.unpack_from(e + "Q", data, 0x28)[0]
        shentsize, shnum = struct.unpack_from(e + "HH", data, 0x3A)
        headers = [struct.unpack_from(e + "IIQQQQIIQQ", data, shoff + i * shentsize)
                   for i in range(shnum)]
        out: list[tuple[int, int, str]] = []
        for _name, typ, _fl, _addr, off, size, link, _info, _align, entsize in headers:
            if typ != want or not entsize or link >= len(headers):
                continue
            str_off, str_size = headers[link][4], headers[link][5]
            for i in range(size // entsize):
                name, info, _other, shndx, value, sym_size = struct.unpack_from(
                    e + "IBBHQQ", data, off + i * entsize)
                if not name or not sym_size or not shndx or (info & 0xF) not in (STT_FUNC, STT_GNU_IFUNC):
                    continue
                start = str_off + name
                end = data.find(b"\0", start, min(start + MAX_NAME, str_off + str_size))
                text = bytes(data[start:end if end >= 0 else start + MAX_NAME])
                out.append((value, sym_size, text.decode("utf-8", "replace")))
        return out

    def __len__(self) -> int:
        return len(self._syms)

    def vaddr(self, file_offset: int) -> int | None:
        """The ELF virtual address of a byte of the file (None outside every segment)."""
        for off, filesz, vaddr in self.segments:
            if off <= file_offset < off + filesz:
                return file_offset - off + vaddr
        return None

    def lookup(self, vaddr: int) -> str:
        """The function holding ``vaddr``, or ""."""
        i = bisect_right(self._values, vaddr) - 1
        while i >= 0:
            value, size, name = self._syms[i]
            if vaddr < value + size:
                return name
            if i and self._values[i - 1] != value:
                break  # symbols of one address may differ in size; others end before
            i -= 1
        return ""


def read_maps(pid: int, root: str = "/proc") -> list[Mapping]:
    """The file-backed mappings of ``pid`` (empty when it is gone)."""
    out = []
    try:
        with open(f"{root}/{pid}/maps") as f:
            for line in f:
                parts = line.split(maxsplit=5)
                if len(parts) < 6 or not parts[5].startswith("/"):
                    continue
                lo, _, hi = parts[0].partition("-")
                out.append(Mapping(int(lo, 16), int(hi, 16), int(parts[2], 16),
                                   parts[5].rstrip("\n")))
    except OSError:
        return []
    return out


class Symbolizer:
    """Addresses of a process -> function names, with caches (symbol tables by file
    identity; maps per process until :meth:`forget`)."""

    def __init__(self, tables: int = 64, processes: int = 256) -> None:
        self._tables: OrderedDict[tuple[int, int, int], SymbolTable | None] = OrderedDict()
        self._maps: OrderedDict[tuple[int, int], list[Mapping]] = OrderedDict()
        self._max_tables = tables
        self._max_maps = processes

    def maps(self, pid: int, layout: int = 0) -> list[Mapping]:
        """``pid``'s mappings, cached per (pid, ``layout``: a hash of its address space)."""
        key = (pid, layout)
        found = self._maps.get(key)
        if found is None:
            found = read_maps(pid)
            if found:  # a process gone (or not yet exec'd) is asked again next time
                self._maps[key] = found
                if len(self._maps) > self._max_maps:
                    self._maps.popitem(last=False)
        else:
            self._maps.move_to_end(key)
        return found

    def forget(self, pid: int) -> None:
        for key in [k for k in self._maps if k[0] == pid]:
            del self._maps[key]

    def _table(self, pid: int, m: Mapping) -> SymbolTable | None:
        for path in (f"/proc/{pid}/map_files/{m.start:x}-{m.end:x}", f"/proc/{pid}/root{m.path}"):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                key = (st.st_dev, st.st_ino, st.st_mtime_ns)
                if key in self._tables:
                    self._tables.move_to_end(key)
                    return self._tables[key]
                table = None
                if 0 < st.st_size <= MAX_FILE:
                    with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as data:
                        try:
                            table = SymbolTable(data)
                        except (ValueError, struct.error, IndexError):
                            table = None
                self._tables[key] = table
                if len(self._tables) > self._max_tables:
                    self._tables.popitem(last=False)
                return table
            finally:
                os.close(fd)
        return None

    def symbol(self, pid: int, addr: int, layout: int = 0) -> str:
        """The function at ``addr`` in process ``pid``, or ""."""
        maps = self.maps(pid, layout)
        for m in maps:
            if m.start <= addr < m.end:
                table = self._table(pid, m)
                if table is None:
                    return ""
                vaddr = table.vaddr(addr - m.start + m.offset)
                return table.lookup(vaddr) if vaddr is not None else ""
        return ""


__all__ = ["Mapping", "SymbolTable", "Symbolizer", "read_maps"]
