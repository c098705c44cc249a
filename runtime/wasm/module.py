"""A compiled WASM module: what it imports and exports, checked against IG's API."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NoReturn

import wasmtime
from gadgetsmith.runtime.errors import WasmModuleError
from gadgetsmith.runtime.wasm import abi
from gadgetsmith.runtime.wasm.engine import engine

#: export -> (accepted signatures)
_EXPORTS: dict[str, tuple[tuple[str, str], ...]] = {
    abi.VERSION: (("", "I"), ("", "i")),
    abi.CALLBACK: (("Iii", ""),),
    "_initialize": (("", ""),),
    **{n: (("", "i"), ("", "I")) for n in abi.LIFECYCLE},
}


def signature(t: Any) -> tuple[str, str] | None:
    """A function type as (params, results) in :mod:`.abi`'s letters (``?`` for a type
    other than i32/i64); None when ``t`` is not a function type."""
    if not isinstance(t, wasmtime.FuncType):
        return None

    def code(v: wasmtime.ValType) -> str:
        if v == wasmtime.ValType.i32():
            return "i"
        if v == wasmtime.ValType.i64():
            return "I"
        return "?"
    return "".join(code(p) for p in t.params), "".join(code(r) for r in t.results)


class Module:
    """A module compiled by the process's engine. ``name`` names it in errors (the file
    name, or ``program.wasm`` for an image's layer)."""

    def __init__(self, wasm: bytes | str | os.PathLike[str], name: str | None = None) -> None:
        if isinstance(wasm, (bytes, bytearray)):
            data, self.name = bytes(wasm), name or "program.wasm"
        else:
            path = Path(wasm)
            self.name = name or path.name
            try:
                data = path.read_bytes()
            except OSError as e:
                raise WasmModuleError(self.name, "load", e.strerror or str(e)) from None
        self.size = len(data)
        try:
            self.module = wasmtime.Module(engine(), data)
        except wasmtime.WasmtimeError as e:
            first = str(e).splitlines()[0] if str(e) else "invalid"
            raise WasmModuleError(self.name, "load",
                                  f"not a valid WebAssembly module: {first}") from None
        self.imports = [(i.module, i.name, i.type) for i in self.module.imports]
        self.exports: dict[str, Any] = {e.name: e.type for e in self.module.exports}

    @property
    def ig_imports(self) -> list[str]:
        """The host functions it calls (IG shows them as ``wasm.upcalls``)."""
        return [n for m, n, _ in self.imports if m == abi.HOST_MODULE]

    def result_of(self, export: str) -> str:
        """The result letter of an exported function ('' for none)."""
        sig = signature(self.exports.get(export))
        return sig[1] if sig else ""

    def check(self) -> None:
        """The imports are ours with the signatures of IG's SDK, the exports those IG
        requires; a :class:`WasmModuleError` (call ``load``) names the first problem."""
        for mod, name, t in self.imports:
            if mod == "wasi_snapshot_preview1":
                continue
            if mod != abi.HOST_MODULE:
                self._fail(f"imports {mod}.{name}, which this host does not provide (only "
                           f"{abi.HOST_MODULE} and wasi_snapshot_preview1)")
            want = abi.IMPORTS.get(name)
            if want is None:
                self._fail(f"imports {mod}.{name}, which is not in IG's WASM API version "
                           f"{abi.API_VERSION}")
            got = signature(t)
            if got != want:
                have = abi.sig_text(*got) if got and "?" not in got[0] + got[1] else "another type"
                self._fail(f"imports {mod}.{name} as {have}, the API has {abi.sig_text(*want)}")
        if abi.VERSION not in self.exports:
            self._fail(f"does not export {abi.VERSION} (not a gadget module?)")
        for name, accepted in _EXPORTS.items():
            if name in self.exports:
                got = signature(self.exports[name])
                if got not in accepted:
                    have = "not a function" if got is None else abi.sig_text(*got)
                    self._fail(f"exports {name} as {have}, expected {abi.sig_text(*accepted[0])}")
        mem = self.exports.get("memory")
        if not isinstance(mem, wasmtime.MemoryType):
            self._fail("exports no memory")
        if mem.limits.min > abi.MEMORY_PAGES:
            self._fail(f"needs {mem.limits.min} pages of memory at start, more than IG's cap of "
                       f"{abi.MEMORY_PAGES} pages ({abi.MEMORY_PAGES * 64 // 1024} MiB)")

    def _fail(self, detail: str) -> NoReturn:
        raise WasmModuleError(self.name, "load", detail)
