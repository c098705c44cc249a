"""The WASM host imported on first use: it loads wasmtime (a 30 MB library, 0.1-0.4 s),
which only gadgets with a WASM module need."""

from __future__ import annotations

from types import ModuleType


def load_host() -> ModuleType:
    """:mod:`gadgetsmith.runtime.wasm.host` (``WasmHost``, ``Module``)."""
    from gadgetsmith.runtime.wasm import host

    return host
