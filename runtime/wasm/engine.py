"""wasmtime for the host: one engine per process, the epoch ticker, and the raw C calls.

Why the host calls wasmtime's C API itself, and why ``pyproject.toml`` pins
``wasmtime>=50,<51``:

wasmtime-py's public ``Func.__call__`` builds the function's type objects and converts
every argument through ``Val`` on each call, and a function given to
``Linker.define_func`` converts its arguments back the same way. Measured here
(``tests/unit/test_wasm_engine.py::test_raw_calls_are_faster``, CPU time on a busy 2-core VM):
a module's ``dataSourceCallback`` costs about 35 µs a call through the public API and
1.5 µs through the raw ``wasmtime_func_call_unchecked`` (an argument-less export: 12 µs
and 1.2 µs). A gadget calls its module once per event, and the Python path of an event
without a module is 6-9 µs: through the public API a pass-through module alone would cut
a gadget's event rate to a fifth.

The raw path needs four private pieces of wasmtime-py: the loaded library
(``wasmtime._bindings.dll`` and its ``wasmtime_error_t``/``wasm_trap_t`` types), the C
structs behind a function and a memory (``Func._func``, ``Memory._memory``), the store's
context pointer (``Store._context()``), and the constructors that turn an error or trap
pointer into wasmtime-py's exceptions (``WasmtimeError._from_ptr``, ``Trap._from_ptr``).
wasmtime-py has renamed such internals between major versions, and the C functions' own
prototypes (declared below) follow wasmtime's C API of that major version. On an upgrade
past 50.x: :func:`check_bindings` raises :class:`~gadgetsmith.runtime.errors.WasmError`
naming the missing piece when a name is gone (``tests/unit/test_wasm_engine.py`` fails at
once), and a changed C prototype shows up as every module test failing. To upgrade, check
the C API headers (``wasmtime/func.h``, ``wasmtime/linker.h``, ``wasmtime/memory.h``) of
the new version against the prototypes here, then move the pin.

Safety: the unchecked calls pass raw 64-bit slots without type checks; that is sound
because every import and export of a module is checked against
:data:`~gadgetsmith.runtime.wasm.abi.IMPORTS` before it is instantiated
(:meth:`~gadgetsmith.runtime.wasm.module.Module.check`).
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from importlib import metadata
from typing import Any

import wasmtime
from gadgetsmith.runtime.errors import WasmError
from wasmtime import _bindings as _B

#: the wasmtime-py major version the raw prototypes below were checked against
WASMTIME_MAJOR = 50


def check_bindings() -> None:
    """The private pieces of wasmtime-py the raw path uses are there (see the module
    docstring); a :class:`WasmError` naming what is missing otherwise."""
    version = metadata.version("wasmtime")
    missing = [n for n in ("dll", "wasmtime_error_t", "wasm_trap_t") if not hasattr(_B, n)]
    missing += [f"{c.__name__}.{n}" for c, n in ((wasmtime.Store, "_context"),
                                                 (wasmtime.WasmtimeError, "_from_ptr"),
                                                 (wasmtime.Trap, "_from_ptr"))
                if not hasattr(c, n)]
    if missing or int(version.split(".")[0]) != WASMTIME_MAJOR:
        what = f"lacks {', '.join(missing)}" if missing else "is another major version"
        raise WasmError(f"wasmtime {version} {what}: gadgetsmith's WASM host needs wasmtime "
                        f"{WASMTIME_MAJOR}.x (pip install 'wasmtime>={WASMTIME_MAJOR},"
                        f"<{WASMTIME_MAJOR + 1}')")


check_bindings()

#: a host function as wasmtime's unchecked API calls it:
#: (env, caller, args_and_results, nargs_and_results) -> trap or NULL
CALLBACK_T = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p,
                              ctypes.c_void_p, ctypes.c_size_t)


def _cfn(name: str, restype: Any, *argtypes: Any) -> Any:
    """A C function of the library with our own prototype (wasmtime-py's typed one stays
    as it is for its own use)."""
    addr = ctypes.cast(getattr(_B.dll, name), ctypes.c_void_p).value
    return ctypes.CFUNCTYPE(restype, *argtypes)(addr)


_vp, _sz = ctypes.c_void_p, ctypes.c_size_t
# wasmtime_error_t *(linker, module, module_len, name, name_len, const wasm_functype_t *,
#                    wasmtime_func_unchecked_callback_t, void *env, finalizer)
define_unchecked = _cfn("wasmtime_linker_define_func_unchecked", _vp, _vp, ctypes.c_char_p, _sz,
                        ctypes.c_char_p, _sz, _vp, CALLBACK_T, _vp, _vp)
# wasmtime_error_t *(context, const wasmtime_func_t *, wasmtime_val_raw_t *args_and_results,
#                    size_t args_and_results_len, wasm_trap_t **trap)
call_unchecked = _cfn("wasmtime_func_call_unchecked", _vp, _vp, _vp, _vp, _sz, _vp)
# wasm_trap_t *(const char *message, size_t len)
trap_new = _cfn("wasmtime_trap_new", _vp, ctypes.c_char_p, _sz)
# uint8_t *(const wasmtime_context_t *, const wasmtime_memory_t *)
memory_data = _cfn("wasmtime_memory_data", _vp, _vp, _vp)
# size_t (const wasmtime_context_t *, const wasmtime_memory_t *)
memory_data_size = _cfn("wasmtime_memory_data_size", _sz, _vp, _vp)


def context_of(store: wasmtime.Store) -> int:
    """The ``wasmtime_context_t *`` of a store."""
    return ctypes.cast(store._context(), ctypes.c_void_p).value or 0


def func_address(func: wasmtime.Func) -> int:
    """The address of the ``wasmtime_func_t`` behind a function."""
    return ctypes.addressof(_private(func, "_func"))


def memory_address(memory: wasmtime.Memory) -> int:
    """The address of the ``wasmtime_memory_t`` behind a memory."""
    return ctypes.addressof(_private(memory, "_memory"))


def _private(obj: object, name: str) -> Any:
    try:
        return getattr(obj, name)
    except AttributeError:
        raise WasmError(f"wasmtime {metadata.version('wasmtime')}: {type(obj).__name__} has no "
                        f"{name}: gadgetsmith's WASM host needs wasmtime {WASMTIME_MAJOR}.x") from None


def error_from(ptr: int) -> wasmtime.WasmtimeError:
    return wasmtime.WasmtimeError._from_ptr(ctypes.cast(ptr, ctypes.POINTER(_B.wasmtime_error_t)))


def trap_from(ptr: int) -> wasmtime.Trap:
    return wasmtime.Trap._from_ptr(ctypes.cast(ptr, ctypes.POINTER(_B.wasm_trap_t)))


_engine: wasmtime.Engine | None = None
_engine_lock = threading.Lock()


def engine() -> wasmtime.Engine:
    """One engine for the process. Compiled modules are cached on disk by wasmtime (a Go
    module takes seconds to compile, ~0.1 s from the cache); GADGETSMITH_WASM_NO_CACHE=1
    turns the cache off."""
    global _engine
    with _engine_lock:
        if _engine is None:
            cfg = wasmtime.Config()
            cfg.memory_may_move = False         # the memory's base address stays valid
            cfg.epoch_interruption = True       # calls have deadlines (see Ticker)
            if os.environ.get("GADGETSMITH_WASM_NO_CACHE") != "1":
                try:
                    cfg.cache = True
                except wasmtime.WasmtimeError:
                    pass                        # no cache directory: compile every time
            _engine = wasmtime.Engine(cfg)
        return _engine


class Ticker:
    """Advances the engine's epoch every :attr:`TICK` seconds from a daemon thread, so a
    guest call past its deadline traps ("interrupt") instead of hanging the runtime."""

    TICK = 0.1

    def __init__(self) -> None:
        self.ticks = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def ensure(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="gadget-wasm-epoch",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        eng = engine()
        while True:
            time.sleep(self.TICK)
            eng.increment_epoch()
            self.ticks += 1


ticker = Ticker()
