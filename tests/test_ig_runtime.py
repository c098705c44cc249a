"""The runtime against what IG's gadgets need from it (issue 14, points 5 to 7), with
gadgets of our own in tests/c/igrt/: fields formatted as ig formats them, the program
kinds IG supports, and load failures that explain themselves.

Each test gadget is compiled once per test run, for amd64 and arm64 (``objects``), and
loaded and run on this kernel as root; the assertions are on what a user sees.
"""

from __future__ import annotations

import ctypes
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gadgetsmith.toolchain.build.compile import compile_arches

from .conftest import load_yaml, need_root, run_gadget

HERE = Path(__file__).resolve().parent
SRC = HERE / "c" / "igrt"
ARCHES = ("amd64", "arm64")
GADGETS = sorted(p.name.removesuffix(".bpf.c") for p in SRC.glob("*.bpf.c"))
pytestmark = pytest.mark.usefixtures("clang_available")


@pytest.fixture(scope="session")
def objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    """Every gadget of tests/c/igrt, compiled for both arches: {name: {arch: object}}."""
    out = tmp_path_factory.mktemp("igrt-objs")

    def build(name: str) -> tuple[str, dict[str, Path]]:
        return name, compile_arches(SRC / f"{name}.bpf.c", ARCHES, out / name, cwd=SRC)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(build, GADGETS))


def metadata(name: str) -> dict:
    """tests/c/igrt/NAME.yaml (the gadget.yaml of that gadget), or nothing."""
    path = SRC / f"{name}.yaml"
    return load_yaml(path.read_text()) if path.exists() else {}


@pytest.mark.parametrize("name", GADGETS)
def test_each_gadget_builds_for_both_arches(objects: dict, name: str) -> None:
    assert set(objects[name]) == set(ARCHES)
    for obj in objects[name].values():
        assert obj.read_bytes()[:4] == b"\x7fELF"


# -- point 7: load failures explain themselves ----------------------------------------------------
def test_verifier_rejection_names_program_section_and_reason(objects: dict) -> None:
    """The program, its section, the errno and the verifier's own words, then its last
    lines (not the whole log, which --debug prints)."""
    need_root()
    obj = objects["rejected"]["amd64"]
    res = run_gadget("run", str(obj), "--host", "--timeout", "1", check=False)
    assert res.returncode == 1, res
    first, *rest = res.stderr.strip().splitlines()
    assert first.startswith("error: program out_of_bounds (tracepoint/syscalls/sys_enter_getpgid) "
                            "cannot be loaded: EACCES: invalid access to map value, value_size=16 "
                            "off=31 size=1"), first
    assert rest[0] == "  verifier log, last lines (--debug prints all of it):"
    shown = [line.strip() for line in rest[1:]]
    assert 1 <= len(shown) <= 8 and "invalid access to map value, value_size=16 off=31 size=1" in shown
    assert any(re.match(r"\d+: \(73\) \*\(u8 \*\)\(r\d \+0\) = r\d", line) for line in shown), shown
    assert not any(line.startswith("processed ") for line in shown)
    assert "Traceback" not in res.stderr

    debug = run_gadget("--debug", "run", str(obj), "--host", "--timeout", "1", check=False)
    assert debug.returncode == 1
    log = debug.stderr.split("debug: verifier log of program out_of_bounds "
                             "(tracepoint/syscalls/sys_enter_getpgid):\n", 1)[1]
    # the whole log: from the program's first instruction to the verifier's summary
    assert re.search(r"^0: R1=ctx\(\)", log, re.M) and re.search(r"^processed \d+ insns", log, re.M)


def test_core_relocation_failure_points_to_gadget_check(objects: dict) -> None:
    from gadgetsmith.runtime import Gadget
    from gadgetsmith.runtime.errors import ProgramError

    need_root()
    with pytest.raises(ProgramError) as err:
        Gadget(objects["unrelocatable"]["amd64"])
    e = err.value
    assert (e.program, e.section) == ("reads_missing", "tracepoint/syscalls/sys_enter_getppid")
    assert str(e).startswith("program reads_missing (tracepoint/syscalls/sys_enter_getppid) cannot "
                             "be loaded: CO-RE relocation ")
    assert "struct gadgetsmith_no_such_struct.member" in str(e)
    assert "'gadget check IMAGE --kernels /sys/kernel/btf/vmlinux'" in str(e)
    assert "\n" not in str(e)


# -- point 6: a uprobe whose library is not installed -----------------------------------------------
def test_uprobe_on_a_missing_library_is_a_warning(objects: dict) -> None:
    """Missing library, missing symbol: one warning each; the tracepoint and the uprobe
    that found its target still deliver events (as ig, which runs trace_ssl here)."""
    from gadgetsmith.runtime import Gadget

    need_root()
    libc = ctypes.CDLL(None, use_errno=True)
    warnings: list[str] = []
    with Gadget(objects["optional_uprobes"]["amd64"], params={"tid": threading.get_native_id()},
                on_warning=warnings.append) as g:
        for _ in range(3):
            libc.getppid()
        evs = list(g.events(timeout=10, count=6))
    assert sorted(e["source"] for e in evs) == ["FROM_TRACEPOINT"] * 3 + ["FROM_UPROBE"] * 3
    assert all(e["proc.pid"] == os.getpid() for e in evs)
    assert len(warnings) == 2, warnings
    assert any(w.startswith("program on_absent_library (uprobe/libgadgetsmith_not_installed:"
                            "gs_function) is not attached on this host: target "
                            "'libgadgetsmith_not_installed': no library or executable") for w in warnings)
    assert any("on_absent_symbol" in w and "no symbol gadgetsmith_no_such_symbol in" in w
               for w in warnings)
