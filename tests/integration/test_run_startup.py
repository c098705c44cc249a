"""What a run loads before its first event: only what it needs (issue 19). A gadget
without a WASM module never imports the WASM host's modules (its pipeline's wasm slot
stays empty); one with a module does (tests/integration/test_wasm_run.py runs those)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import entry_imports
from .test_buffers import RING_PROGRAM, build_object

pytestmark = pytest.mark.usefixtures("root", "clang_available")


def test_a_gadget_without_a_wasm_module_imports_no_wasm_code(tmp_path: Path) -> None:
    obj = tmp_path / "ring.o"
    obj.write_bytes(build_object(tmp_path, "ringpid", RING_PROGRAM))
    code = f"""
import sys
from gadgetsmith.runtime import Gadget
with Gadget({str(obj)!r}) as g:
    print(g.pipeline.describe())
    print(sorted(m for m in sys.modules if m.startswith(("gadgetsmith.runtime.wasm", "wasmtime"))))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    described, modules = res.stdout.splitlines()
    assert " -> wasm -> " in described  # the slot is in its place, empty
    assert modules == "[]"


def test_a_plain_gadget_run_imports_neither_typer_nor_click(tmp_path: Path) -> None:
    """`gadget run OBJ --host ...` goes from the console script to the run without the
    typer command (cli/entry.py); a line it does not read itself (--help) still works."""
    obj = tmp_path / "ring.o"
    obj.write_bytes(build_object(tmp_path, "ringpid", RING_PROGRAM))
    _, frameworks = entry_imports("run", str(obj), "--host", "--timeout", "0.3", "-o", "json")
    assert frameworks == "[]"
    gadget = Path(sys.executable).parent / "gadget"
    help_text = subprocess.run([str(gadget), "run", str(obj), "--help"], capture_output=True,
                               text=True, check=True).stdout
    assert "--filter" in help_text and "Example: gadget run" in help_text
