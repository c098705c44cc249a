"""The minimisation cache: an unchanged rebuild runs no bpftool and extracts no archive.

Layout under ``$GADGETSMITH_BTFGEN_CACHE`` (default ``$XDG_CACHE_HOME/gadgetsmith/btfgen``,
``~/.cache/gadgetsmith/btfgen``)::

    v2/min/ab/<sha256(kernel digest, object key, bpftool version)>.btf
    v2/inputs/cd/<sha256(path, device, inode, size, mtime, ctime)>   -> kernel digest

The kernel digest is the sha256 of the kernel's BTF file as the archive holds it (the
``.btf``, or the ``.btf.tar.xz``): a hit costs a read and a hash of ~1 MB, never a
decompression. The second map skips even that when a ``stat`` of the file says it has not
changed (any change to size, times or inode misses it). Every file is written
atomically, so concurrent builds share the cache.
Nothing is ever evicted: an entry is a few KB (``rm -rf`` the folder to reclaim it).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from gadgetsmith.toolchain.fsutil import atomic_write

VERSION = "v2"


def default_root() -> Path:
    env = os.environ.get("GADGETSMITH_BTFGEN_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gadgetsmith" / "btfgen"


def _h(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


class BtfgenCache:
    def __init__(self, root: Path | str | None = None) -> None:
        self.root = (Path(root) if root is not None else default_root()) / VERSION
        self.usable = True

    # -- kernel BTF digests by file identity --------------------------------------------
    @staticmethod
    def _identity(path: Path) -> str | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return _h(os.path.realpath(path), str(st.st_dev), str(st.st_ino), str(st.st_size),
                  str(st.st_mtime_ns), str(st.st_ctime_ns))

    def input_digest(self, path: Path) -> str | None:
        ident = self._identity(path)
        if ident is None:
            return None
        try:
            text = (self.root / "inputs" / ident[:2] / ident).read_text().strip()
        except OSError:
            return None
        return text if len(text) == 64 else None

    def remember_input(self, path: Path, digest: str) -> None:
        ident = self._identity(path)
        if ident is not None:
            self._write(self.root / "inputs" / ident[:2] / ident, digest.encode())

    # -- minimised BTF ------------------------------------------------------------------
    def _min_path(self, kernel_digest: str, object_digest: str, tool: str) -> Path:
        key = _h(kernel_digest, object_digest, tool)
        return self.root / "min" / key[:2] / f"{key}.btf"

    def get(self, kernel_digest: str, object_digest: str, tool: str) -> bytes | None:
        try:
            return self._min_path(kernel_digest, object_digest, tool).read_bytes()
        except OSError:
            return None

    def put(self, kernel_digest: str, object_digest: str, tool: str, data: bytes) -> None:
        self._write(self._min_path(kernel_digest, object_digest, tool), data)

    def _write(self, path: Path, data: bytes) -> None:
        if not self.usable:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data)
        except OSError:
            self.usable = False  # a read-only or full cache costs speed, never the build
