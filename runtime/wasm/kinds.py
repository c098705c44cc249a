"""Field kinds with IG's numbers, and the conversions between Python values and the
64-bit words that cross the WASM boundary.

The numbers are those of IG's ``api.Kind`` (the guest passes them to ``fieldGetScalar``,
``fieldSet``, ``dataSourceAddField`` and ``setConfig``). A scalar crosses as its bit
pattern zero- or sign-extended to 64 bits; floats as their IEEE 754 bits.
"""

from __future__ import annotations

import enum
import struct
from typing import Any


class Kind(enum.IntEnum):
    INVALID = 0
    BOOL = 1
    INT8 = 2
    INT16 = 3
    INT32 = 4
    INT64 = 5
    UINT8 = 6
    UINT16 = 7
    UINT32 = 8
    UINT64 = 9
    FLOAT32 = 10
    FLOAT64 = 11
    STRING = 12
    CSTRING = 13
    BYTES = 14

    @property
    def size(self) -> int:
        """Bytes of a scalar kind, 0 for the variable-size ones (string, bytes)."""
        return _SIZE[self]

    @property
    def is_scalar(self) -> bool:
        return _SIZE[self] > 0

    @property
    def is_text(self) -> bool:
        return self in (Kind.STRING, Kind.CSTRING)

    @classmethod
    def parse(cls, name: str | int | Kind) -> Kind:
        """``Kind.UINT32``, 8, ``"uint32"`` or the project's kind strings (``enum`` and
        ``array`` are not kinds: the caller maps them to their element kind / bytes)."""
        if isinstance(name, Kind):
            return name
        if isinstance(name, int):
            return cls(name)
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(f"unknown field kind {name!r}") from None


_SIZE = {
    Kind.INVALID: 0, Kind.BOOL: 1, Kind.INT8: 1, Kind.UINT8: 1, Kind.INT16: 2, Kind.UINT16: 2,
    Kind.INT32: 4, Kind.UINT32: 4, Kind.FLOAT32: 4, Kind.INT64: 8, Kind.UINT64: 8,
    Kind.FLOAT64: 8, Kind.STRING: 0, Kind.CSTRING: 0, Kind.BYTES: 0,
}
_SIGNED = {Kind.INT8, Kind.INT16, Kind.INT32, Kind.INT64}
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
M64 = (1 << 64) - 1


def default_value(kind: Kind) -> Any:
    """The value of a field that was never written (IG allocates zeroed payloads)."""
    if kind in (Kind.FLOAT32, Kind.FLOAT64):
        return 0.0
    if kind == Kind.BOOL:
        return False
    if kind.is_text:
        return ""
    if kind == Kind.BYTES or kind == Kind.INVALID:
        return b""
    return 0


def to_bits(kind: Kind, value: Any) -> int:
    """A scalar field's value as its unsigned bit pattern (size of ``kind``)."""
    if kind == Kind.FLOAT32:
        return _U32.unpack(_F32.pack(float(value)))[0]
    if kind == Kind.FLOAT64:
        return _U64.unpack(_F64.pack(float(value)))[0]
    if kind == Kind.BOOL:
        return 1 if value else 0
    return int(value) & ((1 << (8 * _SIZE[kind])) - 1)


def from_bits(kind: Kind, bits: int) -> Any:
    """The Python value of a scalar field of ``kind`` holding ``bits`` (its size's low bits)."""
    size = _SIZE[kind]
    bits &= (1 << (8 * size)) - 1
    if kind == Kind.FLOAT32:
        return _F32.unpack(_U32.pack(bits))[0]
    if kind == Kind.FLOAT64:
        return _F64.unpack(_U64.pack(bits))[0]
    if kind == Kind.BOOL:
        return bits != 0
    if kind in _SIGNED and bits >> (8 * size - 1):
        return bits - (1 << (8 * size))
    return bits


def to_word(kind: Kind, bits: int) -> int:
    """Bits of a ``kind``-sized scalar widened to the 64-bit word the guest gets: signed
    kinds sign-extend (IG's ``uint64(int32(v))``), the others zero-extend."""
    size = _SIZE[kind]
    if kind in _SIGNED and bits >> (8 * size - 1):
        return (bits - (1 << (8 * size))) & M64
    return bits


def raw_bytes(kind: Kind, value: Any) -> bytes:
    """The little-endian bytes IG's payload holds for a field (what ``fieldGetBuffer``
    copies)."""
    if kind.is_scalar:
        return to_bits(kind, value).to_bytes(_SIZE[kind], "little")
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    return bytes(value)


def cstring(raw: bytes) -> str:
    """Text of a raw char array: up to the first NUL (IG's CString)."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")
