"""The ``ig`` host functions of IG's WASM API version 1, as a mixin of
:class:`~gadgetsmith.runtime.wasm.instance.Instance`.

Each ``_ig_<name>`` implements the import ``<name>`` of :data:`.abi.IMPORTS`. Arguments
arrive as unsigned ints (an i32 as 32 bits, an i64 as 64); the result is masked to the
result's width by the caller. Error values follow IG's host (0 handles, 1 for "error");
what went wrong is logged at warning level on the gadget's logger, as IG logs it.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import Any

from gadgetsmith.runtime.wasm import abi
from gadgetsmith.runtime.wasm.kinds import M64, Kind, cstring, from_bits, raw_bytes, to_bits, to_word
from gadgetsmith.runtime.wasm.model import DataSource, DataSourceType, Field, PacketArray, SubscriptionKind
from gadgetsmith.runtime.wasm.providers import (
    FD_ARRAY_MAPS,
    MAP_OF_MAPS,
    MAX_MAP_TYPE,
    UPDATE_LOCK,
    Map,
    MapSpec,
    PerfReader,
    Providers,
)

M32 = 0xFFFFFFFF
_KINDS = tuple(Kind)
_MASK = tuple((1 << (8 * k.size)) - 1 for k in Kind)
_SIGN = tuple(1 << (8 * k.size - 1) if k in (Kind.INT8, Kind.INT16, Kind.INT32, Kind.INT64) else 0
              for k in Kind)
_ERR1 = (1).to_bytes(4, "little")
_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG, 4: 5}


class GuestFault(Exception):
    """A guest pointer outside its memory."""


class HostTrap(BaseException):
    """Raised in a host function to trap the guest (IG closes the module there)."""


class MapRef:
    __slots__ = ("map", "created")

    def __init__(self, m: Map, created: bool) -> None:
        self.map = m
        self.created = created


class PerfRef:
    __slots__ = ("reader",)

    def __init__(self, r: PerfReader) -> None:
        self.reader = r


class HostFunctions:
    """The host functions; :class:`~.instance.Instance` provides the state they use."""

    p: Providers
    datasources: dict[str, DataSource]
    on_new_datasource: Callable[[DataSource], None] | None
    logs: Any
    _objs: dict[int, Any]
    _created_maps: dict[int, Map]
    _msize: int
    _view: memoryview

    # provided by Instance
    def _add(self, obj: Any) -> int: raise NotImplementedError
    def _del(self, h: int) -> None: raise NotImplementedError
    def _typed(self, h: int, cls: type) -> Any: raise NotImplementedError
    def _data(self, h: int) -> dict[str, Any] | None: raise NotImplementedError
    def _warn(self, msg: str) -> None: raise NotImplementedError
    def _check(self, addr: int, n: int) -> int: raise NotImplementedError
    def _read(self, word: int) -> bytes: raise NotImplementedError
    def _text(self, word: int) -> str: raise NotImplementedError
    def _write(self, dst: int, data: bytes) -> bool: raise NotImplementedError
    def _write_err(self, addr: int) -> None: raise NotImplementedError
    def emit(self, ds: DataSource, pkt: Any) -> bool: raise NotImplementedError


    # -- log ----------------------------------------------------------------------------
    def _ig_gadgetLog(self, level: int, msg: int) -> None:
        try:
            text = self._text(msg)
        except GuestFault as e:
            self._warn(f"gadgetLog: {e}")
            return
        self.logs.append((level, text))
        lv = _LEVELS.get(level)
        if lv is None:
            self._warn(f"gadgetlog: gadget used unknown log level: {level} for {text}")
        else:
            self.p.logger.log(lv, text)

    def _ig_gadgetShouldLog(self, level: int) -> int:
        return 1 if level <= self.p.log_level else 0

    # -- data sources -----------------------------------------------------------------
    def _ig_newDataSource(self, name: int, typ: int) -> int:
        try:
            n = self._text(name)
        except GuestFault as e:
            self._warn(f"newDataSource: {e}")
            return 0
        if typ not in (DataSourceType.SINGLE, DataSourceType.ARRAY):
            self._warn(f"newDataSource: invalid type {typ}")
            return 0
        if n in self.datasources or not n:
            self._warn(f"failed to register datasource: {n!r} exists" if n else
                       "newDataSource: empty name")
            return 0
        ds = DataSource(n, DataSourceType(typ), created_by_module=True)
        self.datasources[n] = ds
        if self.on_new_datasource:
            self.on_new_datasource(ds)
        return self._add(ds)

    def _ig_getDataSource(self, name: int) -> int:
        try:
            n = self._text(name)
        except GuestFault as e:
            self._warn(f"getDataSource: {e}")
            return 0
        ds = self.datasources.get(n)
        if ds is None:
            self._warn(f"datasource not found {n!r}")
            return 0
        return self._add(ds)

    def _ig_dataSourceSubscribe(self, dsh: int, typ: int, prio: int, cb: int) -> int:
        if not self._cb_addr:
            self._warn("wasm module doesn't export dataSourceCallback")
            return 1
        ds = self._typed(dsh, DataSource)
        if ds is None:
            return 1
        if prio >> 31:
            prio -= 1 << 32
        try:
            ds.subscribe(SubscriptionKind(typ), prio, cb, guest=True, ds_handle=dsh)
        except ValueError as e:
            self._warn(f"failed to subscribe to datasource: {e}")
            return 1
        return 0

    def _ig_dataSourceGetField(self, dsh: int, name: int) -> int:
        ds = self._typed(dsh, DataSource)
        if ds is None:
            return 0
        try:
            f = ds.field(self._text(name))
        except GuestFault as e:
            self._warn(f"dataSourceGetField: {e}")
            return 0
        if f is not None:
            f.requested = True
        return self._add(f)

    def _ig_dataSourceAddField(self, dsh: int, name: int, kind: int) -> int:
        if kind > Kind.BYTES:
            self._warn(f"dataSourceAddField: invalid field kind {kind}")
            return 0
        ds = self._typed(dsh, DataSource)
        if ds is None:
            return 0
        try:
            f = ds.add_field(self._text(name), Kind(kind))
        except (GuestFault, ValueError) as e:
            self._warn(f"dataSourceAddField: {e}")
            return 0
        return self._add(f)

    def _ig_dataSourceNewPacketSingle(self, dsh: int) -> int:
        ds = self._typed(dsh, DataSource)
        if ds is None:
            return 0
        if ds.is_array:
            self._warn("failed to create NewPacketSingle: only single data sources can "
                       "create single packets")
            return 0
        return self._add(ds.new_event())

    def _ig_dataSourceNewPacketArray(self, dsh: int) -> int:
        ds = self._typed(dsh, DataSource)
        if ds is None:
            return 0
        if not ds.is_array:
            self._warn("failed to call NewPacketArray: only array data sources can create "
                       "array packets")
            return 0
        return self._add(PacketArray(ds=ds))

    def _ig_dataSourceEmitAndRelease(self, dsh: int, ph: int) -> int:
        ds = self._typed(dsh, DataSource)
        if ds is None:
            return 1
        pkt = self._objs.get(ph)
        if not isinstance(pkt, PacketArray if ds.is_array else dict):
            self._warn(f"packet handle {ph} not found")
            return 1
        self._del(ph)
        self.emit(ds, pkt)
        return 0

    def _ig_dataSourceRelease(self, dsh: int, ph: int) -> int:
        if self._typed(dsh, DataSource) is None:
            return 1
        if not isinstance(self._objs.get(ph), (dict, PacketArray)):
            return 1
        self._del(ph)
        return 0

    def _ig_dataSourceUnreference(self, dsh: int) -> int:
        ds = self._typed(dsh, DataSource)
        if ds is None:
            return 1
        ds.referenced = False
        return 0

    def _ig_dataSourceIsReferenced(self, dsh: int) -> int:
        ds = self._typed(dsh, DataSource)
        if ds is None:
            return 2
        return 1 if ds.referenced else 0

    # -- data arrays --------------------------------------------------------------------
    def _ig_dataArrayNew(self, ah: int) -> int:
        arr = self._typed(ah, PacketArray)
        if arr is None:
            return 0
        return self._add(arr.ds.new_event() if arr.ds is not None else {})

    def _ig_dataArrayAppend(self, ah: int, dh: int) -> int:
        arr = self._typed(ah, PacketArray)
        if arr is None:
            return 1
        d = self._objs.get(dh)
        if not isinstance(d, dict):
            self._warn(f"Data handle {dh} not found")
            return 1
        arr.append(d)
        self._del(dh)
        return 0

    def _ig_dataArrayRelease(self, ah: int, dh: int) -> int:
        if self._typed(ah, PacketArray) is None or not isinstance(self._objs.get(dh), dict):
            return 1
        self._del(dh)
        return 0

    def _ig_dataArrayLen(self, ah: int) -> int:
        arr = self._typed(ah, PacketArray)
        return 0 if arr is None else len(arr)

    def _ig_dataArrayGet(self, ah: int, index: int) -> int:
        arr = self._typed(ah, PacketArray)
        if arr is None:
            return 0
        if index >> 31:
            index -= 1 << 32
        if index < 0 or index >= len(arr):
            self._warn(f"Index {index} out of bounds for array with length {len(arr)}")
            return 0
        if index > abi.MAX_ARRAY_INDEX or ah > 0xFFFF:
            self._warn(f"Index {index} is too large. Max {abi.MAX_ARRAY_INDEX}")
            return 0
        return abi.DATA_ARRAY_FLAG | index << 16 | ah

    # -- fields -------------------------------------------------------------------------
    def _ig_fieldGetScalar(self, fh: int, dh: int, kind: int, errp: int) -> int:
        objs = self._objs
        f = objs.get(fh)
        data = objs.get(dh) if dh < abi.DATA_ARRAY_FLAG else self._data(dh)
        if type(f) is not Field or not isinstance(data, dict) or kind >= 15:
            self._write_err(errp)
            return 0
        k = _KINDS[kind]
        fk = f.kind
        v = data.get(f.name, f.default)
        try:
            if fk is k and type(v) is int:
                return v & M64                 # same integer kind: the common case
            if not k.is_scalar:
                self._warn(f"fieldGetScalar: field kind {k.name.lower()} not supported, use "
                           "fieldGetBuffer instead()")
                self._write_err(errp)
                return 0
            if fk.is_scalar:
                if fk.size != k.size:
                    raise ValueError(f"invalid field length {fk.size}, expected {k.size}")
                bits = to_bits(fk, v)
            else:
                raw = raw_bytes(fk, v)
                if len(raw) != k.size:
                    raise ValueError(f"invalid field length {len(raw)}, expected {k.size}")
                bits = int.from_bytes(raw, "little")
            return to_word(k, bits)
        except (TypeError, ValueError, OverflowError) as e:
            self._warn(f"fieldGetScalar for field {f.name!r} failed: {e}")
            self._write_err(errp)
            return 0

    def _ig_fieldGetBuffer(self, fh: int, dh: int, kind: int, dst: int) -> int:
        objs = self._objs
        f = objs.get(fh)
        data = objs.get(dh) if dh < abi.DATA_ARRAY_FLAG else self._data(dh)
        if type(f) is not Field or not isinstance(data, dict):
            return M32
        if kind != 12 and kind != 14:                      # Kind.STRING, Kind.BYTES
            self._warn(f"unknown field kind: {kind}")
            return M32
        v = data.get(f.name, f.default)
        t = type(v)
        try:
            raw = v if t is bytes else v.encode("utf-8", "surrogateescape") if t is str \
                else raw_bytes(f.kind, v)
            n = len(raw)
            if n > dst >> 32:
                self._warn(f"fieldGetBuffer: writing {n} bytes to guest memory buffer "
                           f"of {dst >> 32} bytes: not enough memory")
                return M32
            if n:
                a = dst & M32
                if a + n > self._msize:
                    self._check(a, n)
                self._view[a:a + n] = raw
        except (GuestFault, TypeError, ValueError) as e:
            self._warn(f"fieldGetBuffer: {e}")
            return M32
        return n

    def _ig_fieldSet(self, fh: int, dh: int, kind: int, value: int) -> int:
        objs = self._objs
        f = objs.get(fh)
        data = objs.get(dh) if dh < abi.DATA_ARRAY_FLAG else self._data(dh)
        if type(f) is not Field or not isinstance(data, dict) or kind >= 15:
            return 1
        fk = f.kind
        if fk == kind and 2 <= kind <= 9:                  # same integer kind
            v = value & _MASK[kind]
            if v & _SIGN[kind]:
                v -= _SIGN[kind] << 1
            data[f.name] = v
            return 0
        k = _KINDS[kind]
        try:
            if k.is_scalar:
                if not fk.is_scalar or fk.size != k.size:
                    raise ValueError(f"invalid field length {fk.size or 'variable'}, "
                                     f"expected {k.size}")
                if k == Kind.BOOL:
                    value = 1 if value else 0
                data[f.name] = from_bits(fk, value)
                return 0
            if kind != 12 and kind != 14:
                raise ValueError(f"unknown field kind: {kind}")
            b = self._read(value)
            if fk.is_text:
                if f.size:
                    if len(b) > f.size:
                        raise ValueError(f"invalid field length {len(b)}, expected at most {f.size}")
                    data[f.name] = cstring(b) if b"\0" in b else b.decode("utf-8", "replace")
                else:
                    data[f.name] = b.decode("utf-8", "replace")
            elif fk == Kind.BYTES or fk == Kind.INVALID:
                if f.size and len(b) != f.size:
                    raise ValueError(f"invalid field length {len(b)}, expected {f.size}")
                data[f.name] = b
            else:
                if len(b) != fk.size:
                    raise ValueError(f"invalid field length {len(b)}, expected {fk.size}")
                data[f.name] = from_bits(fk, int.from_bytes(b, "little"))
        except (GuestFault, TypeError, ValueError) as e:
            self._warn(f"fieldSet for field {f.name!r} failed: {e}")
            return 1
        return 0

    def _ig_fieldAddTag(self, fh: int, tag: int) -> int:
        f = self._typed(fh, Field)
        if f is None:
            return 1
        try:
            f.add_tag(self._text(tag))
        except GuestFault as e:
            self._warn(f"fieldAddTag: {e}")
            return 1
        return 0

    # -- params and config ----------------------------------------------------------------
    def _ig_getParamValue(self, key: int, dst: int) -> int:
        try:
            k = self._text(key)
            v = self.p.params.get(k)
            if v is None:
                self._warn(f"getParamValue: param {k!r} not found")
                return 1
            if not self._write(dst, str(v).encode()):
                self._warn(f"getParamValue: value of {k!r} does not fit in {dst >> 32} bytes")
                return 1
        except GuestFault as e:
            self._warn(f"getParamValue: {e}")
            return 1
        return 0

    def _ig_setConfig(self, key: int, value: int, kind: int) -> int:
        if self.p.config is None:
            self._warn("setConfig: config not initialized")
            return 1
        if kind != Kind.STRING:
            self._warn(f"setConfig: unsupported type: {kind}")
            return 1
        try:
            self.p.config[self._text(key)] = self._text(value)
        except GuestFault as e:
            self._warn(f"setConfig: {e}")
            return 1
        return 0

    # -- maps -------------------------------------------------------------------------
    def _map_for_access(self, mh: int, call: str) -> Map | None:
        ref = self._typed(mh, MapRef)
        if ref is None:
            return None
        t = ref.map.spec.type
        if t > MAX_MAP_TYPE:
            self._warn(f"{call}: unknown map type {t}")
            return None
        if t in FD_ARRAY_MAPS:
            self._warn(f"{call}: FD array maps like {t} are not supported")
            return None
        return ref.map

    def _ig_newMap(self, name: int, typ: int, ks: int, vs: int, me: int) -> int:
        if typ > MAX_MAP_TYPE:
            self._warn(f"newMap: unknown map type {typ}")
            return 0
        try:
            m = self.p.maps.new_map(MapSpec(self._text(name), typ, ks, vs, me))
        except Exception as e:  # noqa: BLE001 - a provider's error is the guest's 0
            self._warn(f"newMap: creating map: {e}")
            return 0
        h = self._add(MapRef(m, True))
        if h:
            self._created_maps[h] = m
        return h

    def _ig_getMap(self, name: int) -> int:
        try:
            n = self._text(name)
        except GuestFault as e:
            self._warn(f"getMap: {e}")
            return 0
        m = self.p.maps.get_map(n)
        if m is None:
            self._warn(f"getMap: no map for name {n!r}")
            return 0
        if m.spec.type > MAX_MAP_TYPE:
            self._warn(f"getMap: unknown map type {m.spec.type}")
            return 0
        return self._add(MapRef(m, False))

    def _ig_mapLookup(self, mh: int, key: int, dst: int) -> int:
        m = self._map_for_access(mh, "mapLookup")
        if m is None:
            return 1
        try:
            v = m.lookup(self._read(key))
        except Exception as e:  # noqa: BLE001
            self._warn(f"mapLookup: getting value: {e}")
            return 1
        if v is None:
            self._warn("mapLookup: getting value: key does not exist")
            return 1
        inner_h = 0
        if m.spec.type in MAP_OF_MAPS:
            inner = self.p.maps.map_from_id(int.from_bytes(v[:4], "little"))
            if inner is None:
                self._warn("mapLookup: getting inner map from ID")
                return 1
            inner_h = self._add(MapRef(inner, False))
            v = inner_h.to_bytes(4, "little") + bytes(v[4:])
        try:
            ok = self._write(dst, bytes(v))
        except GuestFault:
            ok = False
        if not ok:
            self._warn("mapLookup: writing back value to stack")
            if inner_h:
                self._del(inner_h)
            return 1
        return 0

    def _ig_mapUpdate(self, mh: int, key: int, value: int, flags: int) -> int:
        if flags > UPDATE_LOCK:
            self._warn(f"mapUpdate: invalid flags values: {flags}, expected no more than {UPDATE_LOCK}")
            return 1
        m = self._map_for_access(mh, "mapUpdate")
        if m is None:
            return 1
        try:
            k, v = self._read(key), self._read(value)
            if m.spec.type in MAP_OF_MAPS:
                ref = self._typed(int.from_bytes(v[:4], "little"), MapRef)
                if ref is None:
                    return 1
                m.update(k, ref.map, flags)
            else:
                m.update(k, v, flags)
        except Exception as e:  # noqa: BLE001
            self._warn(f"mapUpdate: updating value: {e}")
            return 1
        return 0

    def _ig_mapDelete(self, mh: int, key: int) -> int:
        m = self._map_for_access(mh, "mapDelete")
        if m is None:
            return 1
        try:
            m.delete(self._read(key))
        except Exception as e:  # noqa: BLE001
            self._warn(f"mapDelete: deleting value: {e!r}")
            return 1
        return 0

    def _ig_mapRelease(self, mh: int) -> int:
        ref = self._typed(mh, MapRef)
        if ref is None:
            return 1
        if mh not in self._created_maps or not ref.created:
            self._warn(f"mapRelease: map {mh} was not created by newMap() or was already closed")
            return 1
        del self._created_maps[mh]
        self._del(mh)
        try:
            ref.map.close()
        except Exception as e:  # noqa: BLE001
            self._warn(f"mapRelease: closing map: {e}")
            return 1
        return 0

    # -- handles ----------------------------------------------------------------------
    def _ig_releaseHandle(self, h: int) -> int:
        if h not in self._objs:
            self._warn(f"handle {h} not found")
            return 1
        self._del(h)
        return 0

    # -- syscalls ---------------------------------------------------------------------
    def _ig_getSyscallName(self, nr: int, dst: int) -> int:
        nr &= 0xFFFF
        name = self.p.syscalls.name(nr) or f"syscall_{nr:x}"
        try:
            if self._write(dst, name.encode()):
                return 0
        except GuestFault:
            pass
        self._warn(f"getSyscallName: writing to guest memory for {name}")
        return 1

    def _ig_getSyscallID(self, name: int) -> int:
        try:
            n = self._text(name)
        except GuestFault as e:
            self._warn(f"getSyscallID: {e}")
            return M32
        nr = self.p.syscalls.number(n)
        if nr is None:
            self._warn(f"getSyscallID: no syscall {n}")
            return M32
        return nr

    def _ig_getSyscallDeclaration(self, name: int, dst: int) -> int:
        try:
            n = self._text(name)
        except GuestFault as e:
            self._warn(f"getSyscallDeclaration: {e}")
            return 1
        decl = self.p.syscalls.declaration(n)
        if decl is None:
            self._warn(f"getSyscallDeclaration: no syscall correspond to {n!r}")
            return 1
        L = abi.SYSCALL_NAME_LEN
        params = decl.params[:abi.SYSCALL_MAX_PARAMS]
        out = bytearray(n.encode()[:L].ljust(L, b"\0"))
        out += struct.pack("<B3x", len(params))
        for i in range(abi.SYSCALL_MAX_PARAMS):
            if i < len(params):
                prm = params[i]
                out += prm.name.encode()[:L].ljust(L, b"\0")
                out += struct.pack("<I", abi.SYSCALL_PARAM_IS_POINTER if prm.is_pointer else 0)
            else:
                out += bytes(L + 4)
        try:
            if self._write(dst, bytes(out)):
                return 0
        except GuestFault:
            pass
        self._warn("getSyscallDeclaration: writing back syscall declaration")
        return 1

    # -- perf -----------------------------------------------------------------------------
    def _ig_newPerfReader(self, mh: int, size: int, overwritable: int) -> int:
        ref = self._typed(mh, MapRef)
        if ref is None:
            return 0
        try:
            r = self.p.perf.new_reader(ref.map, size, overwritable > 0)
        except Exception as e:  # noqa: BLE001
            self._warn(f"newPerfReader: creating perf reader: {e}")
            return 0
        return self._add(PerfRef(r))

    def _perf_op(self, ph: int, op: str) -> int:
        ref = self._typed(ph, PerfRef)
        if ref is None:
            return 1
        try:
            getattr(ref.reader, op)()
        except Exception as e:  # noqa: BLE001
            self._warn(f"perfReader {op}: {e}")
            return 1
        if op == "close":
            self._del(ph)
        return 0

    def _ig_perfReaderPause(self, ph: int) -> int:
        return self._perf_op(ph, "pause")

    def _ig_perfReaderResume(self, ph: int) -> int:
        return self._perf_op(ph, "resume")

    def _ig_perfReaderClose(self, ph: int) -> int:
        return self._perf_op(ph, "close")

    def _ig_perfReaderRead(self, ph: int, dst: int) -> int:
        ref = self._typed(ph, PerfRef)
        if ref is None:
            return 1
        try:
            rec = ref.reader.read()
        except Exception as e:  # noqa: BLE001
            self._warn(f"perfReaderRead: reading perf buffer: {e}")
            return 1
        if rec is None:
            return 2
        try:
            if self._write(dst, bytes(rec)):
                return 0
        except GuestFault:
            pass
        self._warn("perfReaderRead: writing record raw bytes to guest memory")
        return 1

    # -- kallsyms, filtering --------------------------------------------------------------
    def _ig_kallsymsSymbolExists(self, sym: int) -> int:
        try:
            return 1 if self.p.kallsyms.exists(self._text(sym)) else 0
        except GuestFault as e:
            self._warn(f"kallsymsSymbolExists: {e}")
            return 0

    def _ig_shouldDiscardMntnsID(self, mntns: int) -> int:
        f = self.p.mntns_filter
        if f is None:
            return 0
        return 1 if f.should_discard(mntns) else 0


