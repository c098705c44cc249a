"""Uprobe targets: ``uprobe/PATH:SYMBOL[+OFFSET]`` sections and library names.

IG gadgets name their targets either by path (``uprobe//usr/bin/bash:readline``) or by a
short library name (``uprobe/libc:malloc``). A short name is resolved on this host: the
dynamic linker's cache (``ldconfig -p``) first, then the usual library directories, then
``PATH`` for executables. The probe is attached for every process that maps that file
(pid -1); processes in containers that ship their own copy of the library are not covered.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache

from .errors import RuntimeGadgetError

UPROBE_KINDS = ("uprobe", "uretprobe", "uprobe.s", "uretprobe.s")
_LIB_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
             "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
             "/usr/local/lib")
_TARGET = re.compile(r"^(?P<path>.+):(?P<sym>[A-Za-z0-9_.@$]+)(?:\+(?P<off>0x[0-9a-fA-F]+|\d+))?$")


@dataclass
class UprobeTarget:
    retprobe: bool
    target: str  # as written in the section
    symbol: str
    offset: int

    def path(self) -> str:
        return resolve_binary(self.target)


def parse_section(section: str) -> UprobeTarget:
    kind, _, rest = section.partition("/")
    if kind not in UPROBE_KINDS:
        raise ValueError(f"not a uprobe section: {section}")
    m = _TARGET.match(rest)
    if not m:
        raise RuntimeGadgetError(
            f"section {section!r}: expected {kind}/PATH:SYMBOL or {kind}/LIBRARY:SYMBOL "
            "(e.g. uprobe/libc:malloc)")
    return UprobeTarget(kind.startswith("uretprobe"), m["path"], m["sym"],
                        int(m["off"], 0) if m["off"] else 0)


@lru_cache(maxsize=1)
def _ldconfig_cache() -> tuple[tuple[str, str], ...]:
    """(soname, path) pairs of this machine's dynamic linker cache, for this machine's ABI."""
    exe = shutil.which("ldconfig") or ("/sbin/ldconfig" if os.path.exists("/sbin/ldconfig")
                                       else None)
    if exe is None:
        return ()
    try:
        out = subprocess.run([exe, "-p"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ()
    want = {"x86_64": "x86-64", "aarch64": "AArch64"}.get(os.uname().machine, "")
    pairs = []
    for line in out.splitlines():
        m = re.match(r"^\s+(\S+) \(([^)]*)\) => (\S+)$", line)
        if m and (not want or want in m[2] or "64" not in m[2]):
            pairs.append((m[1], m[3]))
    return tuple(pairs)


def _lib_names(name: str) -> list[str]:
    base = name if name.startswith("lib") else f"lib{name}"
    return [name, base] if name != base else [name]


def _matches(soname: str, names: list[str]) -> bool:
    return any(soname == n or soname.startswith(f"{n}.so") for n in names)


def resolve_binary(target: str) -> str:
    """The real path of a uprobe target: a path, a library name (libc, libssl.so.3) or an
    executable name found in PATH."""
    if "/" in target:
        path = os.path.realpath(target)
        if not os.path.isfile(path):
            raise RuntimeGadgetError(f"uprobe target {target}: no such file")
        return path
    names = _lib_names(target)
    for soname, path in _ldconfig_cache():
        if _matches(soname, names) and os.path.isfile(path):
            return os.path.realpath(path)
    for d in _LIB_DIRS:
        try:
            entries = sorted(os.listdir(d))
        except OSError:
            continue
        for e in entries:
            if _matches(e, names) and os.path.isfile(os.path.join(d, e)):
                return os.path.realpath(os.path.join(d, e))
    exe = shutil.which(target)
    if exe:
        return os.path.realpath(exe)
    raise RuntimeGadgetError(
        f"uprobe target {target!r}: no library or executable of that name on this host "
        "(searched the ldconfig cache, the library directories and PATH)")


__all__ = ["UPROBE_KINDS", "UprobeTarget", "parse_section", "resolve_binary"]
