"""The machine's syscall table and kernel symbols, for the host functions
``getSyscallName``/``getSyscallID``/``getSyscallDeclaration`` and ``kallsymsSymbolExists``.

Syscall names are read the way the project's formatters read them (the UAPI header
``asm/unistd_64.h``, ``asm-generic/unistd.h`` on arm64), with a generated copy of those
tables when the headers are missing. Names are the kernel's, lower case, without
``SYS_`` (``openat``); an unknown number is ``syscall_<hex>``, like strace and IG.
Declarations (parameter names, which are pointers) come from tracefs'
``events/syscalls/sys_enter_*/format``, as IG reads them; without tracefs there are none.
"""

from __future__ import annotations

import os
import platform
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from gadgetsmith.runtime.wasm.syscall_tables import TABLES

_HEADERS = {
    "x86_64": ("/usr/include/x86_64-linux-gnu/asm/unistd_64.h", False),
    "aarch64": ("/usr/include/asm-generic/unistd.h", True),
}
_TRACEFS = ("/sys/kernel/tracing/events/syscalls", "/sys/kernel/debug/tracing/events/syscalls")
# tracepoint names that differ from the syscall's (IG's relateSyscallName)
_EVENT_TO_SYSCALL = {
    "newfstat": "fstat", "newlstat": "lstat", "newstat": "stat", "newuname": "uname",
    "sendfile64": "sendfile", "sysctl": "_sysctl", "umount": "umount2",
}
_FIELD_RE = re.compile(r"\s+field:(?P<type>.*?) (?P<name>[a-z_0-9]+);")


@dataclass(frozen=True)
class SyscallParam:
    name: str
    is_pointer: bool


@dataclass(frozen=True)
class SyscallDeclaration:
    """What getSyscallDeclaration gives: the parameters' names, which are pointers."""

    name: str
    params: tuple[SyscallParam, ...]


def parse_unistd(text: str, generic: bool = False) -> dict[int, str]:
    """number -> name from a unistd header. ``generic``: asm-generic/unistd.h, whose
    64/32-bit shared numbers (``__NR3264_*``) are named as on a 64-bit kernel."""
    table: dict[int, str] = {}
    for m in re.finditer(r"#define\s+__NR_(\w+)\s+(\d+)\b", text):
        table.setdefault(int(m.group(2)), m.group(1))
    if generic:
        nr3264 = {m.group(1): int(m.group(2))
                  for m in re.finditer(r"#define\s+__NR3264_(\w+)\s+(\d+)\b", text)}
        # '#define __NR_newfstatat __NR3264_fstatat': the 64-bit names come first in the
        # file, the 32-bit ones (fcntl64, llseek, mmap2 ...) after them
        for m in re.finditer(r"#define\s+__NR_(\w+)\s+__NR3264_(\w+)\b", text):
            nr = nr3264.get(m.group(2))
            if nr is not None:
                table.setdefault(nr, m.group(1))
    table.pop(-1, None)
    return table


class SystemSyscalls:
    """The running machine's table (see the module docstring)."""

    _shared: SystemSyscalls | None = None
    _lock = threading.Lock()

    def __init__(self, arch: str | None = None, tracefs: str | None = None) -> None:
        self.arch = arch or platform.machine()
        self._tracefs = tracefs
        self._by_nr = self._load_table()
        self._by_name = {v: k for k, v in sorted(self._by_nr.items(), reverse=True)}
        self._decls: dict[str, SyscallDeclaration] | None = None

    @classmethod
    def shared(cls) -> SystemSyscalls:
        with cls._lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def _load_table(self) -> dict[int, str]:
        header, generic = _HEADERS.get(self.arch, ("", False))
        try:
            return parse_unistd(Path(header).read_text(), generic)
        except OSError:
            return dict(TABLES.get(self.arch, {}))

    def name(self, nr: int) -> str | None:
        return self._by_nr.get(nr)

    def number(self, name: str) -> int | None:
        return self._by_name.get(name)

    def declaration(self, name: str) -> SyscallDeclaration | None:
        if self._decls is None:
            self._decls = self._load_declarations()
        return self._decls.get(name)

    def _load_declarations(self) -> dict[str, SyscallDeclaration]:
        dirs = (self._tracefs,) if self._tracefs else _TRACEFS
        for d in dirs:
            try:
                events = sorted(os.listdir(d))
            except OSError:
                continue
            out = {}
            for ev in events:
                if not ev.startswith("sys_enter_"):
                    continue
                try:
                    fmt = Path(d, ev, "format").read_text()
                except OSError:
                    continue
                name = ev[len("sys_enter_"):]
                name = _EVENT_TO_SYSCALL.get(name, name)
                out[name] = parse_format(name, fmt)
            if out:
                return out
        return {}


def parse_format(name: str, text: str) -> SyscallDeclaration:
    """The parameters of a ``sys_enter_*`` tracepoint format: the fields after the common
    ones (the first empty line), without ``__syscall_nr``."""
    params = []
    lines = text.split("\n")
    try:
        start = lines.index("") + 1
    except ValueError:
        start = len(lines)
    for line in lines[start:]:
        m = _FIELD_RE.match(line)
        if not m or m.group("name") == "__syscall_nr":
            continue
        params.append(SyscallParam(m.group("name"), "*" in m.group("type")))
    return SyscallDeclaration(name, tuple(params))


class ProcKallsyms:
    """``/proc/kallsyms``, read once. A symbol exists when it is listed exactly once
    (IG, like libbpf and cilium/ebpf, treats duplicates as ambiguous)."""

    _shared: ProcKallsyms | None = None
    _lock = threading.Lock()

    def __init__(self, path: str = "/proc/kallsyms") -> None:
        self.path = path
        self._counts: dict[str, int] | None = None

    @classmethod
    def shared(cls) -> ProcKallsyms:
        with cls._lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def _load(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        try:
            with open(self.path, "rb") as f:
                for line in f:
                    parts = line.split(None, 3)
                    if len(parts) >= 3:
                        name = parts[2].decode("utf-8", "replace")
                        counts[name] = counts.get(name, 0) + 1
        except OSError:
            pass
        return counts

    def exists(self, symbol: str) -> bool:
        if self._counts is None:
            self._counts = self._load()
        return self._counts.get(symbol, 0) == 1


def _write_fallback_tables() -> None:
    """Regenerate syscall_tables.py from this machine's UAPI headers (linux-libc-dev)."""
    out = ['"""Syscall numbers per architecture, generated by `python -m',
           'gadgetsmith.runtime.wasm.syscalls` from the Linux UAPI headers; used when the',
           'headers are not installed."""', "", "TABLES = {"]
    for arch, (header, generic) in _HEADERS.items():
        table = parse_unistd(Path(header).read_text(), generic)
        out.append(f"    {arch!r}: {{")
        out += [f"        {nr}: {table[nr]!r}," for nr in sorted(table)]
        out.append("    },")
    out.append("}")
    target = Path(__file__).with_name("syscall_tables.py")
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text("\n".join(out) + "\n")
    os.replace(tmp, target)


if __name__ == "__main__":
    _write_fallback_tables()
