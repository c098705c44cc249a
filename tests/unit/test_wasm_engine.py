"""The wasmtime pin (pyproject: wasmtime>=50,<51) and why: the host's raw calls into
wasmtime's C API use private wasmtime-py pieces (runtime/wasm/engine.py says which). These
tests fail at once when an upgrade removes one, and show the speed the pin buys."""

from __future__ import annotations

import re
import time
from importlib import metadata
from pathlib import Path

from ..wasm_util import cmod, module_dir, providers, standard_datasources  # noqa: F401

REPO = Path(__file__).resolve().parents[2]


def test_private_pieces_are_there_and_the_pin_matches():
    from gadgetsmith.runtime.wasm import engine

    engine.check_bindings()
    pin = re.search(r'"wasmtime>=(\d+),<(\d+)"', (REPO / "pyproject.toml").read_text())
    assert pin, "pyproject.toml pins wasmtime"
    assert (int(pin.group(1)), int(pin.group(2))) == (engine.WASMTIME_MAJOR, engine.WASMTIME_MAJOR + 1)
    assert metadata.version("wasmtime").startswith(f"{engine.WASMTIME_MAJOR}.")


def test_raw_calls_are_faster(cmod):
    """A pass-through module's callback through wasmtime-py's public API and through the
    host's raw path (an event pushed through the chain): the gain the private pieces buy
    (about 35 µs vs 1.5 µs of CPU a call here)."""
    from gadgetsmith.runtime.wasm.host import WasmHost

    from ..wasm_util import sample_event

    with WasmHost(cmod("passthrough"), standard_datasources(), providers()) as h:
        public = h.instance.export("dataSourceCallback")
        ev = sample_event()
        n = 500

        def per_call(fn) -> float:
            best = float("inf")
            for _ in range(3):
                t0 = time.process_time()
                for _ in range(n):
                    fn()
                best = min(best, (time.process_time() - t0) / n)
            return best

        assert h.push("events", ev) == [("events", ev)]
        slow = per_call(lambda: public(0, 1, 1))
        fast = per_call(lambda: h.push("events", ev))
    assert slow > 5 * fast, f"public {slow * 1e6:.1f} µs, raw {fast * 1e6:.1f} µs a call"
