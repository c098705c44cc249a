"""One instance of a gadget's module: wasmtime store, guest memory, handles, calls, emission.

Calls cross through wasmtime's unchecked C API (see :mod:`.engine` for why and what it
costs); the ``ig`` host functions themselves are in :mod:`.imports`. An
:class:`Instance` is not thread-safe (IG serialises ``dataSourceCallback`` with a mutex
too): the runtime calls it from the thread that reads the gadget's events.
"""

from __future__ import annotations

import collections
import ctypes
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from typing import Any

import wasmtime
from gadgetsmith.runtime.errors import WasmModuleError
from gadgetsmith.runtime.wasm import abi
from gadgetsmith.runtime.wasm.engine import (
    CALLBACK_T,
    Ticker,
    call_unchecked,
    context_of,
    define_unchecked,
    engine,
    error_from,
    func_address,
    memory_address,
    memory_data,
    memory_data_size,
    ticker,
    trap_from,
    trap_new,
)
from gadgetsmith.runtime.wasm.imports import GuestFault, HostFunctions, HostTrap, PerfRef
from gadgetsmith.runtime.wasm.kinds import M64, cstring
from gadgetsmith.runtime.wasm.model import (
    DataSource,
    DataSourceSpec,
    PacketArray,
    Subscription,
    SubscriptionKind,
)
from gadgetsmith.runtime.wasm.module import Module, signature
from gadgetsmith.runtime.wasm.providers import Map, Providers

M32 = 0xFFFFFFFF
_VT = {"i": wasmtime.ValType.i32, "I": wasmtime.ValType.i64}
_U64 = ctypes.c_uint64
_ERR1 = (1).to_bytes(4, "little")
#: how deep emissions may nest (a callback emitting into a source whose callback emits...)
MAX_EMIT_DEPTH = 8
_RESERVED = MAX_EMIT_DEPTH + 2
#: tests: a collections.Counter of host function calls, or None
CALL_COUNTS: Any = None


class _Stderr:
    """Where a module's WASI stderr goes: an unlinked temporary file (a Go module's panic
    is read from it for the error message). Not a Python callback: wasmtime writes WASI
    streams from its tokio threads, and a thread that calls into Python while the
    interpreter exits is ended with pthread_exit, which aborts the process when it
    unwinds through Rust frames."""

    KEEP = 8192

    def __init__(self) -> None:
        fd, self.path = tempfile.mkstemp(prefix="gadget-wasm-stderr-")
        self.fd: int | None = fd

    def opened(self) -> None:
        """wasmtime has opened the file: its name is not needed any more."""
        os.unlink(self.path)

    def tail(self) -> str:
        if self.fd is None:
            return ""
        size = os.fstat(self.fd).st_size
        start = max(0, size - self.KEEP)
        return os.pread(self.fd, size - start, start).decode("utf-8", "replace")

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Instance(HostFunctions):
    """A module instantiated with the ``ig`` host module over a set of data sources."""

    def __init__(self, module: Module, datasources: dict[str, DataSource], providers: Providers,
                 inherit_output: bool = False,
                 on_new_datasource: Callable[[DataSource], None] | None = None,
                 call_timeout: float = 60.0, callback_timeout: float = 10.0) -> None:
        """``call_timeout``: seconds a lifecycle call may take; ``callback_timeout``: a
        dataSourceCallback (measured from the last deadline refresh, every 0.1 s at most)."""
        self.module = module
        self.call_ticks = max(1, int(call_timeout / Ticker.TICK))
        self.callback_ticks = max(2, int(callback_timeout / Ticker.TICK))
        self.deadline_at = -1
        self.name = module.name
        self.datasources = datasources
        self.p = providers
        self.on_new_datasource = on_new_datasource
        self.outputs: list[tuple[str, Any]] = []
        self.logs: collections.deque[tuple[int, str]] = collections.deque(maxlen=1000)
        self.dead: str | None = None           # why the instance cannot be called any more
        self._objs: dict[int, Any] = {}
        # handles 1.._RESERVED: the packet of the callback running at each nesting depth
        self._free = collections.deque(range(_RESERVED + 1, abi.MAX_HANDLES + 1))
        self._created_maps: dict[int, Map] = {}
        self._host_exc: BaseException | None = None
        self._depth = 0
        self.stderr = _Stderr()
        self._callbacks: list[Any] = []        # keep the ctypes thunks alive
        self._base = 0
        self._msize = 0
        self._view = memoryview(b"")
        module.check()
        self._instantiate(inherit_output)

    # -- set-up ---------------------------------------------------------------------
    def _instantiate(self, inherit_output: bool) -> None:
        eng = engine()
        ticker.ensure()
        self.store = wasmtime.Store(eng)
        self.store.set_epoch_deadline(self.call_ticks)
        self.store.set_limits(memory_size=abi.MEMORY_PAGES * 65536)
        wasi = wasmtime.WasiConfig()
        if inherit_output:
            wasi.inherit_stdout()
            wasi.inherit_stderr()
        else:                # IG discards both; stderr is kept for error messages
            wasi.stderr_file = self.stderr.path
        self.store.set_wasi(wasi)
        self.stderr.opened()
        linker = wasmtime.Linker(eng)
        linker.define_wasi()
        self._define_ig(linker)
        try:
            inst = linker.instantiate(self.store, self.module.module)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as e:
            raise self._failure("instantiate", e) from None
        self._ctx = context_of(self.store)
        exports = inst.exports(self.store)
        self._exports = exports
        self._mem = exports["memory"]
        self._mem_addr = memory_address(self._mem)
        self._refresh_memory()
        self._funcs = {}
        for name in (abi.VERSION, abi.CALLBACK, "_initialize", *abi.LIFECYCLE):
            f = exports.get(name) if name in self.module.exports else None
            if isinstance(f, wasmtime.Func):
                res = signature(self.module.exports[name])
                self._funcs[name] = (f, func_address(f), res[1] if res else "")
        self._args = [(_U64 * 8)() for _ in range(_RESERVED)]
        self._args_addr = [ctypes.addressof(a) for a in self._args]
        self._trap = ctypes.c_void_p()
        self._trap_addr = ctypes.addressof(self._trap)
        cb = self._funcs.get(abi.CALLBACK)
        self._cb_addr = cb[1] if cb else 0
        if "_initialize" in self._funcs:
            self._set_deadline(self.call_ticks)
            self._call("_initialize")
        self._set_deadline(self.call_ticks)
        version = self._call(abi.VERSION)
        if version != abi.API_VERSION:
            self._set_dead("wrong API version")
            raise WasmModuleError(self.name, abi.VERSION, f"returned {version}, this host "
                                  f"implements IG's WASM API version {abi.API_VERSION}")

    def _define_ig(self, linker: wasmtime.Linker) -> None:
        lp = ctypes.cast(linker.ptr(), ctypes.c_void_p).value
        for name, (params, results) in abi.IMPORTS.items():
            impl = getattr(self, "_ig_" + name)
            ft = wasmtime.FuncType([_VT[c]() for c in params], [_VT[c]() for c in results])
            thunk = CALLBACK_T(self._thunk(name, impl, params, results))
            self._callbacks.append((thunk, ft))
            m, n = abi.HOST_MODULE.encode(), name.encode()
            err = define_unchecked(lp, m, len(m), n, len(n),
                                    ctypes.cast(ft.ptr(), ctypes.c_void_p).value, thunk, None, None)
            if err:
                raise error_from(err)

    def _thunk(self, name: str, impl: Callable[..., Any], params: str, results: str
               ) -> Callable[[Any, Any, int, int], int]:
        """A callback for wasmtime's unchecked API, generated per signature: the slots
        (16 bytes each) are read as a u64 array, i32 arguments masked to 32 bits, and the
        result goes into slot 0."""
        args = ", ".join(f"a[{2 * i}] & 0xFFFFFFFF" if c == "i" else f"a[{2 * i}]"
                         for i, c in enumerate(params))
        call = f"a[0] = impl({args}) & {M32 if results == 'i' else M64}" if results \
            else f"impl({args})"
        src = (f"def thunk(_env, _caller, args, _n):\n"
               f"    try:\n"
               f"        if _g['CALL_COUNTS'] is not None:\n"
               f"            _g['CALL_COUNTS'][name] += 1\n"
               f"        a = ARR.from_address(args)\n"
               f"        {call}\n"
               f"        return 0\n"
               f"    except BaseException as e:\n"
               f"        return trap(name, e)\n")
        ns = {"_g": globals(), "name": name, "impl": impl, "trap": self._trap_for,
              "ARR": _U64 * (2 * max(len(params), 1))}
        exec(compile(src, f"<wasm host function {name}>", "exec"), ns)  # noqa: S102 - our own text
        return ns["thunk"]

    def _trap_for(self, name: str, e: BaseException) -> int:
        if isinstance(e, HostTrap):
            msg = f"{name}: {e}"
        else:
            if self._host_exc is None:
                self._host_exc = e
            msg = f"host function {name} failed: {type(e).__name__}: {e}"
        b = msg.encode()
        return trap_new(b, len(b)) or 0

    # -- calling the guest --------------------------------------------------------------
    def _call(self, name: str, a0: int = 0, a1: int = 0, a2: int = 0, nargs: int = 0,
              label: str = "") -> int:
        """Call an export through the raw API; its result (an i32 sign-extended, or an
        i64), or raise WasmModuleError."""
        if self.dead:
            raise WasmModuleError(self.name, label or name, f"the module cannot be called any more "
                                  f"({self.dead})")
        f = self._funcs[name]
        d = self._depth
        args = self._args[d]
        args[0], args[2], args[4] = a0, a1, a2
        self._depth = d + 1
        try:
            err = call_unchecked(self._ctx, f[1], self._args_addr[d], max(nargs, 1),
                                  self._trap_addr)
        finally:
            self._depth = d
        if err or self._trap.value:
            raise self._guest_failure(label or name, err)
        return args[0] & M32 if f[2] == "i" else args[0]

    def _guest_failure(self, call: str, err: int | None) -> BaseException:
        if err:
            exc: Exception = error_from(err)
        else:
            exc = trap_from(self._trap.value)
            self._trap.value = None
        host_exc, self._host_exc = self._host_exc, None
        self._set_dead(f"it failed in {call}")
        if host_exc is not None and not isinstance(host_exc, WasmModuleError):
            return host_exc       # the runtime's own exception, raised in a host function
        if isinstance(host_exc, WasmModuleError):
            return host_exc
        return self._failure(call, exc)

    def _failure(self, call: str, exc: BaseException) -> WasmModuleError:
        if isinstance(exc, wasmtime.ExitTrap):
            detail = f"exited with code {exc.code}"
        else:
            detail = _cause(exc.message if isinstance(exc, wasmtime.Trap) else str(exc))
            if "trap: interrupt" in detail:
                ticks = self.callback_ticks if call.startswith(abi.CALLBACK) else self.call_ticks
                secs = ticks * Ticker.TICK
                detail = detail.replace("trap: interrupt", f"did not return within {secs:g} s "
                                        "(interrupted)")
        tail = self._stderr_tail()
        if tail:                     # Go's panic / fatal error says more than its trap
            detail = f"{tail} ({detail})"
        try:
            used = self._mem_size()
        except Exception:  # noqa: BLE001 - not instantiated
            used = 0
        cap = abi.MEMORY_PAGES * 65536
        if used > cap - cap // 8:        # a failed memory.grow leaves it a bit below
            detail += (f"; the module's memory is {used / 2**20:.1f} MiB, IG's cap is "
                       f"{abi.MEMORY_PAGES} pages ({cap // 2**20} MiB)")
        return WasmModuleError(self.name, call, detail)

    def _stderr_tail(self) -> str:
        lines = [ln.strip() for ln in self.stderr.tail().splitlines() if ln.strip()]
        # Go prints "fatal error: ..." / "panic: ..." before its goroutine dump
        for ln in lines:
            if ln.startswith(("fatal error:", "panic:", "runtime:")):
                return ln
        return lines[-1] if lines else ""

    def export(self, name: str) -> Callable[..., Any]:
        """Any exported function, called through wasmtime-py's checked API (slow; tests)."""
        f = self._exports[name]
        return lambda *args: f(self.store, *args)

    def _set_deadline(self, ticks: int) -> None:
        self.store.set_epoch_deadline(ticks)
        self.deadline_at = -1

    def refresh_callback_deadline(self) -> None:
        """Before events: the callbacks' deadline, renewed when the clock has ticked."""
        if self.deadline_at != ticker.ticks:
            self.deadline_at = ticker.ticks
            self.store.set_epoch_deadline(self.callback_ticks)

    def call_lifecycle(self, name: str) -> bool:
        """Call gadgetInit & co when exported; False when it is not."""
        if self.dead:
            raise WasmModuleError(self.name, name, f"the module cannot be called any more ({self.dead})")
        if name not in self._funcs:
            return False
        self._set_deadline(self.call_ticks)
        ret = self._call(name) & M32
        if ret:
            raise WasmModuleError(self.name, name, f"returned {ret - (1 << 32) if ret >> 31 else ret}"
                                  " (an error)")
        return True

    def close(self) -> None:
        for m in list(self._created_maps.values()):
            try:
                m.close()
            except Exception:  # noqa: BLE001
                pass
        self._created_maps.clear()
        for obj in list(self._objs.values()):
            if isinstance(obj, PerfRef):
                try:
                    obj.reader.close()
                except Exception:  # noqa: BLE001
                    pass
        self._objs.clear()
        self._set_dead(self.dead or "closed")
        self.stderr.close()
        # the store (and the module's memory) goes now, not when the interpreter exits
        self._exports, self._funcs, self._ctx = {}, {}, 0
        self._view = memoryview(b"")
        self.store = None  # type: ignore[assignment]

    # -- handles --------------------------------------------------------------------
    def _add(self, obj: Any) -> int:
        if obj is None:
            return 0
        if not self._free:
            self.p.logger.warning("too many open handles")
            return 0
        h = self._free.popleft()
        self._objs[h] = obj
        return h

    def _del(self, h: int) -> None:
        if self._objs.pop(h, None) is not None and h > _RESERVED:
            self._free.append(h)

    @property
    def open_handles(self) -> int:
        return len(self._objs)

    def _data(self, h: int) -> dict[str, Any] | None:
        if h & abi.DATA_ARRAY_FLAG:
            arr = self._objs.get(h & 0xFFFF)
            if type(arr) is not PacketArray:
                return None
            i = (h & 0x7FFFFFFF) >> 16
            return arr[i] if i < len(arr) else None
        d = self._objs.get(h)
        return d if isinstance(d, dict) else None

    def _typed(self, h: int, cls: type) -> Any:
        obj = self._objs.get(h)
        if not isinstance(obj, cls):
            self._warn(f"handle {h} not found" if obj is None else f"bad handle type for {h}")
            return None
        return obj

    def _warn(self, msg: str) -> None:
        self.p.logger.warning(msg)

    # -- guest memory ---------------------------------------------------------------
    def _mem_size(self) -> int:
        return memory_data_size(self._ctx, self._mem_addr)

    def _refresh_memory(self) -> None:
        """The memory never moves (memory_may_move is off) and only grows, up to the cap:
        one view of the cap's size over it; only its first _msize bytes are mapped."""
        base = memory_data(self._ctx, self._mem_addr) or 0
        if base != self._base:
            self._base = base
            self._view = memoryview((ctypes.c_char * (abi.MEMORY_PAGES * 65536)).from_address(
                base)).cast("B")
        self._msize = memory_data_size(self._ctx, self._mem_addr)

    def _check(self, addr: int, n: int) -> int:
        if addr + n > self._msize:
            self._refresh_memory()
            if addr + n > self._msize:
                raise GuestFault(f"{n} bytes at {addr:#x} are outside the module's memory "
                             f"({self._msize} bytes)")
        return addr

    def _read(self, word: int) -> bytes:
        n = word >> 32
        if not n:
            return b""
        a = word & M32
        if a + n > self._msize:
            self._check(a, n)
        return self._view[a:a + n].tobytes()

    def _text(self, word: int) -> str:
        return self._read(word).decode("utf-8", "replace")

    def _write(self, dst: int, data: bytes) -> bool:
        """Copy into the guest buffer ``dst`` (len << 32 | ptr); False when it is too small."""
        n = len(data)
        if n > dst >> 32:
            return False
        if n:
            a = dst & M32
            if a + n > self._msize:
                self._check(a, n)
            self._view[a:a + n] = data
        return True

    def _write_err(self, addr: int) -> None:
        if addr:
            try:
                self._check(addr, 4)
            except GuestFault:
                raise HostTrap("error pointer is outside the module's memory") from None
            self._view[addr:addr + 4] = _ERR1

    # -- emission ---------------------------------------------------------------------
    def emit(self, ds: DataSource, pkt: Any) -> bool:
        """Run ``pkt`` through ``ds``'s subscriptions in order; a packet that is not
        dropped is appended to :attr:`outputs` when the data source is referenced."""
        if self._depth > MAX_EMIT_DEPTH:
            raise HostTrap(f"emission into {ds.name!r} nested more than {MAX_EMIT_DEPTH} deep")
        if ds.type == 2:
            return self._emit_array(ds, pkt)
        for s in ds.subscriptions:
            if s.guest:
                self._callback(s, pkt, ds)
            else:
                pkt = s.target(pkt)
                if pkt is None:
                    return False
        if ds.raw_text:
            for name in ds.raw_text:
                v = pkt.get(name)
                if type(v) is bytes:
                    pkt[name] = cstring(v)
        if ds.raw_hex:
            for name in ds.raw_hex:
                v = pkt.get(name)
                if type(v) is bytes:
                    pkt[name] = v.hex()
        if ds.referenced:
            self.outputs.append((ds.name, pkt))
        return True

    def _emit_array(self, ds: DataSource, arr: PacketArray) -> bool:
        for s in ds.subscriptions:
            if s.guest:
                if s.kind == SubscriptionKind.DATA:
                    for el in list(arr):
                        self._callback(s, el, ds)
                else:
                    self._callback(s, arr, ds)
            elif s.kind == SubscriptionKind.DATA:
                kept = PacketArray(ds=ds)
                for el in arr:
                    el = s.target(el)
                    if el is not None:
                        kept.append(el)
                arr = kept
            else:
                arr = s.target(arr)
                if arr is None:
                    return False
        if ds.raw_text or ds.raw_hex:
            for el in arr:
                for name in ds.raw_text:
                    v = el.get(name)
                    if type(v) is bytes:
                        el[name] = cstring(v)
                for name in ds.raw_hex:
                    v = el.get(name)
                    if type(v) is bytes:
                        el[name] = v.hex()
        if ds.referenced:
            self.outputs.append((ds.name, arr))
        return True

    def _callback(self, s: Subscription, obj: Any, ds: DataSource) -> None:
        """One dataSourceCallback: ``obj`` gets the handle reserved for this depth."""
        d = self._depth
        h = d + 1
        objs = self._objs
        objs[h] = obj
        args = self._args[d]
        args[0] = s.target
        args[2] = s.ds_handle
        args[4] = h
        self._depth = h
        err = call_unchecked(self._ctx, self._cb_addr, self._args_addr[d], 3, self._trap_addr)
        self._depth = d
        objs.pop(h, None)
        if err or self._trap.value:
            raise self._guest_failure(f"{abi.CALLBACK} for {ds.name!r}", err)

    def _dead_callback(self, s: Subscription, obj: Any, ds: DataSource) -> None:
        raise WasmModuleError(self.name, f"{abi.CALLBACK} for {ds.name!r}",
                              f"the module cannot be called any more ({self.dead})")

    def _set_dead(self, why: str) -> None:
        self.dead = why
        self._callback = self._dead_callback  # type: ignore[method-assign]


_FRAME = re.compile(r"^\d+:\s+0x[0-9a-f]+ - (?:.*!)?(?P<func>.+)$")


def _cause(text: str) -> str:
    """One line from a wasmtime error: its cause ("Caused by:"), the trap's "wasm trap:"
    turned into "trap:", and the function it happened in (the innermost frame)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return text
    frame = next((m.group("func") for m in map(_FRAME.match, lines) if m), None)
    if "Caused by:" in lines:
        cause = "; ".join(lines[lines.index("Caused by:") + 1:])
    else:
        cause = next((ln for ln in lines if not _FRAME.match(ln) and not ln.startswith(
            ("note:", "error while executing"))), lines[0])
    if cause.startswith("wasm trap: "):
        cause = "trap: " + cause[len("wasm trap: "):]
    if frame and not frame.startswith("<"):
        cause += f" (in {frame})"
    return cause


def add_datasources(specs: Iterable[Any]) -> dict[str, DataSource]:
    """Data sources by name, from specs, data sources or dicts of DataSourceSpec's arguments."""
    out: dict[str, DataSource] = {}
    for s in specs:
        ds = s if isinstance(s, DataSource) else DataSource.from_spec(s if isinstance(s, DataSourceSpec)
                                                                      else DataSourceSpec(**s))
        out[ds.name] = ds
    return out
