"""Runs a gadget's WebAssembly module with Inspektor Gadget's WASM API (version 1) as a
stage of the gadget's event pipeline.

    host.py        WasmHost: a module over the gadget's data sources (lifecycle, events)
    stage.py       WasmStage: the pipeline stage around a WasmHost
    module.py      Module: a compiled module, its imports and exports checked
    instance.py    Instance: store, guest memory, handles, calls, emission
    imports.py     the ``ig`` host functions
    engine.py      the wasmtime engine, epoch deadlines, the raw C calls (and the pin)
    abi.py         the API's imports, exports and constants
    model.py       data sources, fields, packets, subscriptions as a module sees them
    kinds.py       IG's field kinds and their 64-bit encodings
    providers.py   what the host needs from the runtime (maps, perf readers, syscalls ...)
    bpfmaps.py     those providers over libbpf and the loaded gadget
    syscalls.py    the machine's syscall table and declarations, /proc/kallsyms

    lazy.py        load_host(): the host (and wasmtime) imported on first use
    probe.py       a module checked, and what it adds, without running the gadget

Importing this package, :mod:`.probe`, :mod:`.specs` or :mod:`.stage` does not import
wasmtime; :mod:`.host` and what it uses do (:func:`.lazy.load_host` on first use).
"""

