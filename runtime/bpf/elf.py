"""A minimal ELF64 little-endian reader: sections and the symbol table (stdlib only)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from gadgetsmith.runtime.errors import ElfError


@dataclass
class Section:
    index: int
    name: str
    type: int
    offset: int
    size: int
    data: bytes


@dataclass
class Symbol:
    name: str
    value: int
    size: int
    bind: int  # 0 local, 1 global, 2 weak
    type: int  # 1 object, 2 func, 3 section
    section_index: int


class Elf:
    def __init__(self, data: bytes) -> None:
        if data[:4] != b"\x7fELF":
            raise ElfError("not an ELF file")
        if data[4:6] != b"\x02\x01":
            raise ElfError("only 64-bit little-endian ELF objects are supported")
        self.data = data
        try:
            self._parse(data)
        except (struct.error, IndexError) as e:
            raise ElfError(f"truncated or corrupt ELF object ({e})") from None

    def _parse(self, data: bytes) -> None:
        self.machine = struct.unpack_from("<H", data, 18)[0]
        shoff = struct.unpack_from("<Q", data, 0x28)[0]
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        raw = []
        for i in range(shnum):
            name, typ, _flags, _addr, off, size = struct.unpack_from(
                "<IIQQQQ", data, shoff + i * shentsize
            )
            raw.append((name, typ, off, size))
        if shstrndx >= len(raw):
            raise ElfError("bad section header string table index")
        strtab = raw[shstrndx]
        self.sections: list[Section] = []
        for i, (name, typ, off, size) in enumerate(raw):
            sname = self._cstr(data, strtab[2] + name)
            body = data[off:off + size] if typ != 8 else b""  # SHT_NOBITS has no bytes
            self.sections.append(Section(i, sname, typ, off, size, body))
        self.symbols = self._read_symbols()

    @staticmethod
    def _cstr(data: bytes, off: int) -> str:
        end = data.index(b"\0", off)
        return data[off:end].decode("utf-8", "replace")

    def section(self, name: str) -> Section | None:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def _read_symbols(self) -> list[Symbol]:
        symtab = next((s for s in self.sections if s.type == 2), None)  # SHT_SYMTAB
        if symtab is None:
            return []
        link = struct.unpack_from("<I", self.data, self._shdr_offset(symtab.index) + 40)[0]
        strs = self.sections[link]
        out = []
        for off in range(0, len(symtab.data), 24):
            name, info, _other, shndx, value, size = struct.unpack_from("<IBBHQQ", symtab.data, off)
            out.append(Symbol(self._cstr(strs.data, name) if name else "", value, size,
                              info >> 4, info & 0xF, shndx))
        return out

    def _shdr_offset(self, index: int) -> int:
        shoff: int = struct.unpack_from("<Q", self.data, 0x28)[0]
        shentsize: int = struct.unpack_from("<H", self.data, 0x3A)[0]
        return shoff + index * shentsize

    def relocations(self, section_name: str) -> dict[int, Symbol]:
        """Offset in ``section_name`` -> symbol, from its ``.rel<section>`` (SHT_REL) table."""
        sec = self.section(section_name)
        if sec is None:
            return {}
        out: dict[int, Symbol] = {}
        for rel in self.sections:
            if rel.type != 9:  # SHT_REL
                continue
            info = struct.unpack_from("<I", self.data, self._shdr_offset(rel.index) + 44)[0]
            if info != sec.index:
                continue
            for off in range(0, len(rel.data) - 15, 16):
                r_offset, r_info = struct.unpack_from("<QQ", rel.data, off)
                idx = r_info >> 32
                if idx < len(self.symbols):
                    out[r_offset] = self.symbols[idx]
        return out

    def symbol_in(self, section_name: str) -> dict[str, Symbol]:
        sec = self.section(section_name)
        if sec is None:
            return {}
        return {s.name: s for s in self.symbols if s.section_index == sec.index and s.name}
