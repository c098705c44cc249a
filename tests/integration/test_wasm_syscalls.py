"""The machine's syscall table and declarations and /proc/kallsyms, as the WASM host's
getSyscallName/ID/Declaration and kallsymsSymbolExists give them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ..conftest import need_root
from ..wasm_util import ensure_tracefs

HEADER = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
GENERIC = Path("/usr/include/asm-generic/unistd.h")


def test_table_is_the_header():
    from gadgetsmith.runtime.wasm.syscalls import SystemSyscalls

    if not HEADER.exists():
        pytest.skip("no UAPI headers (linux-libc-dev)")
    names = {}
    for m in re.finditer(r"#define\s+__NR_(\w+)\s+(\d+)\b", HEADER.read_text()):
        names.setdefault(int(m.group(2)), m.group(1))
    t = SystemSyscalls("x86_64")
    assert {nr: t.name(nr) for nr in names} == names
    assert t.name(59) == "execve" and t.number("openat") == 257 and t.name(9999) is None


def test_generated_fallback_matches_headers():
    """The table used on machines without the UAPI headers is the headers' (regenerate
    it with `python -m gadgetsmith.runtime.wasm.syscalls` when they change)."""
    from gadgetsmith.runtime.wasm.syscall_tables import TABLES
    from gadgetsmith.runtime.wasm.syscalls import parse_unistd

    if HEADER.exists():
        assert TABLES["x86_64"] == parse_unistd(HEADER.read_text())
    if GENERIC.exists():
        assert TABLES["aarch64"] == parse_unistd(GENERIC.read_text(), generic=True)
    arm = TABLES["aarch64"]
    assert (arm[56], arm[63], arm[64], arm[79], arm[80], arm[221], arm[222]) == (
        "openat", "read", "write", "newfstatat", "fstat", "execve", "mmap")


def test_arm64_from_generic_header():
    from gadgetsmith.runtime.wasm.syscalls import parse_unistd

    if not GENERIC.exists():
        pytest.skip("no asm-generic/unistd.h")
    t = parse_unistd(GENERIC.read_text(), generic=True)
    assert t[62] == "lseek" and t[25] == "fcntl" and "llseek" not in t.values()


def test_declarations_from_tracefs():
    from gadgetsmith.runtime.wasm.syscalls import SystemSyscalls

    ensure_tracefs()
    t = SystemSyscalls()
    d = t.declaration("openat")
    assert [(p.name, p.is_pointer) for p in d.params] == [
        ("dfd", False), ("filename", True), ("flags", False), ("mode", False)]
    assert t.declaration("fstat") is not None          # its tracepoint is sys_enter_newfstat
    assert t.declaration("no_such") is None


def test_kallsyms_duplicates_are_ambiguous(tmp_path):
    from gadgetsmith.runtime.wasm.syscalls import ProcKallsyms

    f = tmp_path / "kallsyms"
    f.write_text("ffffffff81000000 T one\nffffffff81000010 t dup\nffffffffc0000000 t dup\t[mod]\n"
                 "ffffffffc0000010 T modsym\t[mod]\n")
    k = ProcKallsyms(str(f))
    assert k.exists("one") and k.exists("modsym") and not k.exists("dup") and not k.exists("two")


def test_real_kallsyms():
    from gadgetsmith.runtime.wasm.syscalls import ProcKallsyms

    need_root("/proc/kallsyms lists symbols for root only")
    k = ProcKallsyms()
    assert k.exists("vfs_read") and not k.exists("no_such_symbol_here")
